"""The report (rollouts, metrics, versions, and its HTML with the charts) over 10,000 instances
and 90 days of history, beside a plain pandas read of the same spans."""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from fleetview.reports.export import to_html
from fleetview.reports.params import ReportParams
from fleetview.reports.report import build_report
from fleetview.store import Store
from fleetview.store.times import to_us
from tests.benchmarks import Figure

# instances, days, instances per group
SIZES = {"tiny": (200, 14, 20), "full": (10_000, 90, 100)}
T0 = datetime(2026, 1, 1, tzinfo=UTC)
HOUR = 3_600_000_000
RELEASE_EVERY_H = 7 * 24  # a release a week; each group rolls it out within two days
BATCHES = 5  # a rollout replaces its group in this many batches, an hour apart
ROLLED_BACK_SHARE = 0.1  # of a group's rollouts, stopped after two batches and undone
RUNS = 3
SCOPE, ACCOUNT = "bench", "123456789012"


def _history(n: int, days: int, per_group: int, seed: int = 11):
    """(instance spans, group spans, images): each group rolls each weekly release out in
    batches; some rollouts go back after two batches."""
    rng = np.random.default_rng(seed)
    t0, t_end = to_us(T0), to_us(T0) + days * 24 * HOUR
    releases = [(f"2.{r}", t0 + r * RELEASE_EVERY_H * HOUR)
                for r in range(1, days * 24 // RELEASE_EVERY_H + 1)]
    spans: list[tuple] = []
    groups: list[tuple] = []
    serial = 0

    def new_id() -> str:
        nonlocal serial
        serial += 1
        return f"i-{serial:09x}"

    for g in range(n // per_group):
        name, region = f"group-{g:03d}", ("us-east-1", "eu-west-1")[g % 2]
        members = [[new_id(), "2.0", t0] for _ in range(per_group)]
        desired, desired_since = "2.0", t0

        def replace(i: int, version: str, when: int, g=name, r=region, m=members) -> None:
            iid, old, born = m[i]
            spans.append((iid, g, r, old, born, when))
            m[i] = [new_id(), version, when]

        def want(version: str, when: int, g=name, r=region) -> None:
            nonlocal desired, desired_since
            groups.append((g, r, desired, desired_since, when))
            desired, desired_since = version, when

        for version, released in releases:
            at = released + int(rng.integers(1, 48)) * HOUR
            if at + (BATCHES + 1) * HOUR >= t_end:
                break
            previous = desired
            want(version, at)
            batches = np.array_split(np.arange(per_group), BATCHES)
            if rng.random() < ROLLED_BACK_SHARE:
                moved = [i for batch in batches[:2] for i in batch]
                for b, batch in enumerate(batches[:2]):
                    for i in batch:
                        replace(int(i), version, at + b * HOUR)
                want(previous, at + 2 * HOUR)
                for i in moved:
                    replace(int(i), previous, at + 3 * HOUR)
                continue
            for b, batch in enumerate(batches):
                for i in batch:
                    replace(int(i), version, at + (b + 1) * HOUR)
        groups.append((name, region, desired, desired_since, None))
        spans.extend((iid, name, region, version, born, None) for iid, version, born in members)
    images = [("2.0", t0 - 24 * HOUR), *releases]
    return spans, groups, images


def _fill(store: Store, spans: list[tuple], groups: list[tuple], images: list[tuple],
          t_last: int) -> None:
    """Straight into the tables (record_poll would take minutes for 90 days of polls)."""
    with store.writing("seed the benchmark") as conn:
        conn.exec_driver_sql(
            "INSERT INTO spans (provider, scope, account, region, zone, group_name, "
            "instance_id, name, image_id, version, state, start_us, end_us) VALUES "
            "('aws', ?, ?, ?, NULL, ?, ?, ?, ?, ?, 'running', ?, ?)",
            [(SCOPE, ACCOUNT, region, group, iid, iid, f"ami-{version}", version, start, end)
             for iid, group, region, version, start, end in spans])
        conn.exec_driver_sql(
            "INSERT INTO group_spans (provider, scope, account, region, zone, group_name, kind, "
            "desired_image_id, desired_version, target_size, updating, start_us, end_us) "
            "VALUES ('aws', ?, ?, ?, NULL, ?, 'asg', ?, ?, 100, 0, ?, ?)",
            [(SCOPE, ACCOUNT, region, group, f"ami-{version}", version, start, end)
             for group, region, version, start, end in groups])
        conn.exec_driver_sql(
            "INSERT INTO images (scope, image_id, provider, name, version, created_us, "
            "deprecated, gone, first_seen_us, last_seen_us) VALUES "
            "(?, ?, 'aws', ?, ?, ?, 0, 0, ?, ?)",
            [(SCOPE, f"ami-{v}", f"app-{v}", v, created, created, t_last)
             for v, created in images])
        conn.exec_driver_sql(
            "INSERT INTO polls (scope, provider, started_us, finished_us, ok, instances, "
            "api_calls) VALUES (?, 'aws', ?, ?, 1, 0, 1)",
            [(SCOPE, to_us(T0), to_us(T0)), (SCOPE, t_last, t_last)])


def _timed(fn, runs: int = RUNS) -> tuple[float, float, object]:
    """Median wall and CPU seconds of `runs` calls, and the last result. On a machine shared
    with other work the CPU time is the steadier figure."""
    wall, cpu, result = [], [], None
    for _ in range(runs):
        w0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return statistics.median(wall), statistics.median(cpu), result


def run(size: str) -> list[Figure]:
    n, days, per_group = SIZES[size]
    spans, groups, images = _history(n, days, per_group)
    end = T0 + timedelta(days=days)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'store.db'}"
        with Store.open(url) as store:
            _fill(store, spans, groups, images, to_us(end))
        params = ReportParams(T0, end)
        with Store.open(url, readonly=True) as store:
            build_s, build_cpu, report = _timed(lambda: build_report(store, params))
            html_s, html_cpu, page = _timed(lambda: to_html(report))
        # Baseline: the same spans (overlapping the range and the failure window before it)
        # read into a DataFrame by pandas, nothing else.
        engine = sa.create_engine(url)
        since = to_us(T0 - params.failure_window)
        query = ("SELECT * FROM spans WHERE start_us <= :t1 AND (end_us IS NULL OR "
                 "end_us > :t0)")
        try:
            read_s, read_cpu, frame = _timed(lambda: pd.read_sql_query(
                sa.text(query), engine, params={"t0": since, "t1": to_us(end)}))
        finally:
            engine.dispose()
    total = build_s + html_s
    m = report.metrics
    print(f"# report: {len(frame):,} spans, {len(report.rollouts)} rollouts "
          f"({m.failed} rolled back), {len(report.versions)} versions, {len(page) / 1e6:.2f} "
          f"MB of HTML", flush=True)
    return [
        Figure(f"report_with_charts_{n}_instances_{days}_days", total, "s", read_s,
               "pandas read of the spans", "under 1 s"),
        Figure("report_with_charts_cpu", build_cpu + html_cpu, "s", read_cpu,
               "pandas read of the spans, CPU", "under 1 s"),
        Figure("report_rows_and_metrics", build_s, "s", read_s, "pandas read of the spans"),
        Figure("report_html_with_svg_charts", html_s, "s"),
        Figure("report_spans_read", float(len(frame)), "spans"),
    ]
