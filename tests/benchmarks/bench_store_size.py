"""Store size after weeks of 1-minute polls, against one row per instance per poll; and the
speed of "fleet as of T" and "spans in a 7-day window" at that size."""

from __future__ import annotations

import dataclasses
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from fleetview.domain.model import Group, Image, Instance, Inventory, Scope, State
from fleetview.store import Store
from fleetview.store.schema import poll_regions, polls
from fleetview.store.spans import instance_observation
from fleetview.store.times import to_us
from tests.benchmarks import Figure

# instances, days, polls per day, replacement batches per day
SIZES = {"tiny": (500, 2, 1440), "full": (10_000, 30, 1440)}
REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2")
CHURN_PER_DAY = 0.01
BATCHES_PER_DAY = 10
NAIVE_SAMPLE_POLLS = 20
T0 = datetime(2026, 1, 1, tzinfo=UTC)
SCOPE = Scope("aws", "bench", "123456789012", REGIONS)


def _instance(n: int, version: str) -> Instance:
    region = REGIONS[n % len(REGIONS)]
    return Instance("aws", f"i-{n:017x}", f"web-{n}", "bench", "123456789012", region,
                    f"{region}a", f"group-{n % 100}", f"ami-{version}", State.RUNNING,
                    version=version)


def _inventory(when: datetime, fleet: list[Instance], version: str) -> Inventory:
    groups = tuple(Group("aws", "bench", "123456789012", REGIONS[g % len(REGIONS)],
                         f"group-{g}", "asg", f"ami-{version}", 100, desired_version=version)
                   for g in range(100))
    images = {i.image_id: Image("aws", i.image_id, f"web-{i.version}", version=i.version)
              for i in fleet[:: max(1, len(fleet) // 50)]}
    images[f"ami-{version}"] = Image("aws", f"ami-{version}", f"web-{version}", version=version)
    return Inventory(SCOPE, when, tuple(fleet), groups, images, (), REGIONS, 12)


def _bulk_unchanged_polls(store: Store, minutes: list[int], fleet_size: int) -> None:
    """What record_poll writes for a poll that changes nothing: its poll rows, no span."""
    if not minutes:
        return
    per_region = fleet_size // len(REGIONS)
    with store._writer.begin() as conn:
        next_id = (conn.execute(sa.select(sa.func.max(polls.c.poll_id))).scalar() or 0) + 1
        poll_rows, region_rows = [], []
        for offset, minute in enumerate(minutes):
            poll_id = next_id + offset
            started = to_us(T0 + timedelta(minutes=minute))
            finished = started + 3_000_000
            poll_rows.append({"poll_id": poll_id, "scope": "bench", "provider": "aws",
                              "started_us": started, "finished_us": finished, "ok": True,
                              "error": None, "instances": fleet_size, "api_calls": 12})
            region_rows.extend({"poll_id": poll_id, "seq": n, "scope": "bench",
                                "region": region, "finished_us": finished, "ok": True,
                                "error": None, "instances": per_region}
                               for n, region in enumerate(REGIONS))
        conn.execute(sa.insert(polls), poll_rows)
        conn.execute(sa.insert(poll_regions), region_rows)


def _db_bytes(conn: sqlite3.Connection) -> int:
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    return (pages - free) * conn.execute("PRAGMA page_size").fetchone()[0]


def _naive_bytes_per_row(path: Path, fleet: list[Instance]) -> float:
    """One row per instance per poll, measured on a sample of polls."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE observations (polled_us INTEGER, provider TEXT, scope TEXT, "
                 "instance_id TEXT, account TEXT, region TEXT, zone TEXT, group_name TEXT, "
                 "name TEXT, image_id TEXT, version TEXT, state TEXT, lifecycle TEXT, "
                 "state_reason TEXT, standby INTEGER, warm INTEGER, desired_image_id TEXT, "
                 "desired_version TEXT)")
    empty = _db_bytes(conn)
    conn.execute("BEGIN")
    for poll in range(NAIVE_SAMPLE_POLLS):
        at = to_us(T0 + timedelta(minutes=poll))
        conn.executemany("INSERT INTO observations VALUES "
                         "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                         [(at, "aws", "bench", i.id, *instance_observation(i)) for i in fleet])
    conn.execute("COMMIT")
    size = _db_bytes(conn) - empty
    conn.close()
    return size / (NAIVE_SAMPLE_POLLS * len(fleet))


def _timed(call, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def run(size: str) -> list[Figure]:
    n, days, per_day = SIZES[size]
    replaced_per_batch = max(1, round(n * CHURN_PER_DAY / BATCHES_PER_DAY))
    change_minutes = {d * per_day + 60 + b * 60: d for d in range(days)
                      for b in range(BATCHES_PER_DAY)}
    fleet = [_instance(k, "1.0") for k in range(n)]
    next_number, victim = n, 0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "store.db"
        store = Store.open(f"sqlite:///{path}")
        try:
            store.record_poll(_inventory(T0, fleet, "1.0"), T0, T0)
            pending: list[int] = []
            started = time.perf_counter()
            for minute in range(1, days * per_day):
                day = change_minutes.get(minute)
                if day is None:
                    pending.append(minute)
                    if len(pending) >= 5000:
                        _bulk_unchanged_polls(store, pending, n)
                        pending = []
                    continue
                _bulk_unchanged_polls(store, pending, n)
                pending = []
                version = f"1.{day + 1}"
                for _ in range(replaced_per_batch):  # replace the oldest instances
                    fleet[victim % n] = dataclasses.replace(
                        _instance(next_number, version), region=fleet[victim % n].region,
                        zone=fleet[victim % n].zone)
                    victim += 1
                    next_number += 1
                when = T0 + timedelta(minutes=minute)
                store.record_poll(_inventory(when, fleet, version), when, when)
            _bulk_unchanged_polls(store, pending, n)
            generate = time.perf_counter() - started

            middle = T0 + timedelta(days=days / 2)
            fleet_at = _timed(lambda: store.fleet_at(middle))
            window_start = T0 + timedelta(days=max(0, days - 7))
            window = _timed(lambda: store.spans(window_start, window_start + timedelta(days=7)))
            spans_kept = len(store.spans(T0, T0 + timedelta(days=days + 1)))
            assert len(store.fleet_at(middle)) == n
        finally:
            store.close()
        conn = sqlite3.connect(path)
        store_bytes = _db_bytes(conn)
        # Same-run baselines: a bare fetch of the same rows, no DataFrame (the machine's
        # load moves both alike).
        columns = ("provider, scope, account, region, zone, group_name, instance_id, name, "
                   "image_id, version, state, start_us")
        at, w0 = to_us(middle), to_us(window_start)
        w1 = to_us(window_start + timedelta(days=7))
        bare_fleet = _timed(lambda: conn.execute(
            f"SELECT {columns} FROM spans WHERE start_us <= ? AND (end_us IS NULL OR "
            "end_us > ?) AND state != 'terminated'", (at, at)).fetchall())
        bare_window = _timed(lambda: conn.execute(
            f"SELECT span_id, {columns}, end_us FROM spans WHERE start_us <= ? AND "
            "(end_us IS NULL OR end_us > ?)", (w1, w0)).fetchall())
        conn.close()
        naive_row = _naive_bytes_per_row(Path(tmp) / "naive.db", fleet)
    total_polls = days * per_day
    naive_bytes = naive_row * total_polls * n
    label = f"{days} days of 1-minute polls of {n} instances, 1% churn a day"
    return [
        Figure(f"store size, {label} ({spans_kept} spans, {total_polls} polls)",
               store_bytes / 1e6, "MB", baseline=naive_bytes / 1e6,
               baseline_name=f"naive row per instance per poll ({naive_row:.0f} B/row measured)",
               target="baseline at least 100x the store"),
        Figure("naive size / store size", naive_bytes / store_bytes, "x",
               target=">= 100x"),
        Figure(f"fleet as of T at that size ({n} rows)", fleet_at * 1000, "ms",
               baseline=bare_fleet * 1000, baseline_name="bare sqlite3 fetch of the rows",
               target="< 200 ms"),
        Figure("spans in a 7-day window at that size", window * 1000, "ms",
               baseline=bare_window * 1000, baseline_name="bare sqlite3 fetch of the rows",
               target="< 200 ms"),
        Figure("time to generate the history", generate, "s"),
    ]
