"""A GCP backfill of 1,000 MIG instances with 30 days of rollouts on the emulator: wall time, API
calls and peak request rates per API, beside a bare read of the same audit log entries."""

from __future__ import annotations

import gc
import time
from collections import Counter
from datetime import timedelta

from google.auth.credentials import AnonymousCredentials
from google.cloud import logging as cloud_logging

from fleetview.domain.timing import Timing
from fleetview.domain.versions import VersionRules
from fleetview.providers.gcp import backfill
from fleetview.providers.gcp.provider import GcpProvider
from fleetview.providers.gcp.scope import GcpScopeConfig
from fleetview.sim.gce import EmulatedClock, GceEmulator, GceState
from fleetview.sim.gce.audit import seed_rollouts
from fleetview.sim.gce.logging_api import READS_PER_MINUTE
from tests.benchmarks import Figure

PROJECT = "bench-project"
ZONES = ("us-central1-a", "us-central1-b", "us-central1-c")
# (groups, instances a group): 1,000 instances; each group rolled out 3 times in 30 days.
SIZES = {"tiny": (3, 10), "full": (10, 100)}
VERSIONS = ("1-0-0", "1-1-0", "1-2-0", "1-3-0")
SPREAD = 10.0  # seconds between two instances of a rollout
SMALL_PAGE = {"tiny": 5, "full": 100}  # the paced run: many pages, so the budget binds
REPEATS = {"tiny": 1, "full": 3}


class TimedCalls(Counter):
    """The emulator's call counter, also noting when each call came (the wall clock)."""

    def __init__(self) -> None:
        super().__init__()
        self.times: dict[str, list[float]] = {}

    def __setitem__(self, key, value) -> None:
        self.times.setdefault(key, []).append(time.monotonic())
        super().__setitem__(key, value)


def peak_per_minute(times: list[float]) -> int:
    peak, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= 60.0:
            start += 1
        peak = max(peak, end - start + 1)
    return peak


def seed(state: GceState, size: str) -> int:
    groups, per_group = SIZES[size]
    for n, version in enumerate(VERSIONS):
        state.create_image(f"app-{version}", labels={"version": version},
                           created=timedelta(days=40 - 10 * n))
        state.create_instance_template(f"app-{version}-tmpl", f"app-{version}",
                                       created=timedelta(days=40 - 10 * n))
    for g in range(groups):
        name = f"group-{g:02d}"
        state.create_mig(name, f"app-{VERSIONS[-1]}-tmpl", zone=ZONES[g % len(ZONES)],
                         target_size=per_group)
        # Created a month ago, then a rollout every 9 days or so, staggered by group.
        offset = g * 0.37
        seed_rollouts(state, name, [
            (timedelta(days=30 - offset / 3), f"app-{VERSIONS[0]}-tmpl"),
            (timedelta(days=27 - offset), f"app-{VERSIONS[1]}-tmpl"),
            (timedelta(days=18 - offset), f"app-{VERSIONS[2]}-tmpl"),
            (timedelta(days=9 - offset), f"app-{VERSIONS[3]}-tmpl")], spread=SPREAD)
    return groups * per_group


def bare_read(endpoint: str, since, until) -> tuple[int, int]:
    """(entries, requests) of one plain read of the range's audit log, 1,000 a page."""
    client = cloud_logging.Client(project=PROJECT, credentials=AnonymousCredentials(),
                                  _use_grpc=False, client_options={"api_endpoint": endpoint})
    text = backfill.audit_filter(PROJECT, backfill.LAUNCH + backfill.TERMINATE + backfill.GROUP,
                                 since, until)
    entries = list(client.list_entries(resource_names=[f"projects/{PROJECT}"], filter_=text,
                                       page_size=backfill.PAGE_SIZE))
    return len(entries), -(-max(len(entries), 1) // backfill.PAGE_SIZE)


def timed(fn):
    gc.collect()
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def run(size: str) -> list[Figure]:
    state = GceState(EmulatedClock(1_768_478_400.0), project=PROJECT, zones=ZONES)
    calls = state.calls = TimedCalls()
    figures = []
    with GceEmulator(state) as emulator:
        total = seed(state, size)
        config = GcpScopeConfig(name="bench", project=PROJECT, credentials="anonymous",
                                api_endpoint=emulator.endpoint)
        until = emulator.clock.now_datetime()
        since = until - timedelta(days=30)
        bare_read(emulator.endpoint, since, until)  # warm: imports, connections
        runs = []
        for _ in range(REPEATS[size]):  # interleaved, so load from elsewhere hits both
            emulator.logging.reads_per_minute = None  # the bare read is not FleetView's
            bare_s, (entries, bare_calls) = timed(
                lambda: bare_read(emulator.endpoint, since, until))
            emulator.logging.reads_per_minute = READS_PER_MINUTE
            emulator.clock.advance(60)  # each backfill in a minute of its own
            calls.clear()
            calls.times.clear()
            provider = GcpProvider(config, VersionRules())  # a first backfill: cold caches
            try:
                wall, found = timed(lambda p=provider: p.history(since, until))
            finally:
                provider.close()
            assert not found.skipped, found.skipped
            runs.append((wall / bare_s, wall, bare_s, found, Counter(calls),
                         {k: list(v) for k, v in calls.times.items()}))
        # The run with the median ratio: the 2 cores are shared, so single runs are noisy.
        _, wall, bare_s, found, counted, times = sorted(runs, key=lambda r: r[0])[len(runs) // 2]
        launches = sum(r.kind == "launch" for r in found.records)
        assert launches >= total * 3, launches
        logging_calls = counted["logging.entries.list"]
        compute_calls = sum(v for k, v in counted.items() if k.startswith("compute."))
        compute_times = sorted(t for k, ts in times.items() if k.startswith("compute.")
                               for t in ts)
        figures += [
            Figure(f"gcp backfill of {total} instances, 30 days ({entries} audit entries), "
                   "wall", wall, "s", bare_s, "bare entries.list read of the same range"),
            Figure(f"gcp backfill of {total} instances, API calls", found.api_calls, "calls",
                   bare_calls, "bare read's pages"),
            Figure("gcp backfill, Logging entries.list calls", logging_calls, "calls"),
            Figure("gcp backfill, Compute calls (poll, templates, images)", compute_calls,
                   "calls"),
            Figure("gcp backfill, Logging peak requests in any minute (wall clock)",
                   peak_per_minute(times.get("logging.entries.list", [])), "req/min",
                   READS_PER_MINUTE, "documented quota",
                   f"<= {backfill.READ_BUDGET} (FleetView's budget)"),
            Figure("gcp backfill, Compute peak requests in any minute (wall clock)",
                   peak_per_minute(compute_times), "req/min",
                   target="a poll's worth: what one poll of the same fleet asks"),
        ]

        # The same range read in small pages: the budget binds, the pacer waits (on the
        # emulator's clock, so the minutes it waits cost no wall time).
        def sleep(seconds: float) -> None:
            emulator.clock.advance(seconds)

        timing = Timing(sleep=sleep, clock=emulator.clock.now)
        emulator.clock.advance(60)  # a minute of its own: the first run's reads are past
        paced_provider = GcpProvider(config, VersionRules(), timing=timing)
        reading = backfill.History(config, paced_provider._poller, paced_provider.poll, timing,
                                   page_size=SMALL_PAGE[size])
        started = emulator.clock.now()
        try:
            paced_wall, paced = timed(lambda: reading.run(since, until))
        finally:
            reading.close()
            paced_provider.close()
        assert not paced.skipped and emulator.logging.refused == 0, paced.skipped
        figures += [
            Figure(f"gcp backfill in pages of {SMALL_PAGE[size]}: Logging calls",
                   reading.logging_calls, "calls"),
            Figure(f"gcp backfill in pages of {SMALL_PAGE[size]}: Logging peak requests in "
                   "any minute (emulated clock)", reading.pacer.peak_per_minute(), "req/min",
                   READS_PER_MINUTE, "documented quota",
                   f"<= {backfill.READ_BUDGET}; the emulator refused {emulator.logging.refused}"),
            Figure(f"gcp backfill in pages of {SMALL_PAGE[size]}: emulated minutes spent",
                   (emulator.clock.now() - started) / 60, "min"),
            Figure(f"gcp backfill in pages of {SMALL_PAGE[size]}: wall", paced_wall, "s"),
        ]
    return figures
