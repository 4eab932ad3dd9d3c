"""Ingest of one large poll into the SQLite store, beside a bare executemany of the same rows."""

from __future__ import annotations

import dataclasses
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fleetview.domain.model import Group, Image, Instance, Inventory, Scope, State
from fleetview.store import Store
from fleetview.store.spans import instance_observation
from tests.benchmarks import Figure

SIZES = {"tiny": 5_000, "full": 50_000}
REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2")


def _instance_id(i: int) -> str:
    # Scrambled like real ids: sequential ids would flatter every index on them.
    return f"i-{(i * 0x9E3779B97F4A7C15) % (1 << 68):017x}"


def make_inventory(n: int, when: datetime, version_of=lambda i: f"1.{i % 7}") -> Inventory:
    scope = Scope("aws", "bench", "123456789012", REGIONS)
    instances = []
    for i in range(n):
        region = REGIONS[i % len(REGIONS)]
        version = version_of(i)
        instances.append(Instance(
            "aws", _instance_id(i), f"web-{i}", "bench", "123456789012", region, f"{region}a",
            f"group-{i % 200}", f"ami-{version}", State.RUNNING, version=version))
    images = {f"ami-1.{v}": Image("aws", f"ami-1.{v}", f"web-1.{v}", version=f"1.{v}")
              for v in range(8)}
    groups = tuple(Group("aws", "bench", "123456789012", REGIONS[g % len(REGIONS)],
                         f"group-{g}", "asg", "ami-1.0", 250, desired_version="1.0")
                   for g in range(200))
    return Inventory(scope, when, tuple(instances), groups, images, (), REGIONS, 10)


def _bare_executemany(path: Path, inventory: Inventory, at: int) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE spans (span_id INTEGER PRIMARY KEY, provider TEXT, scope TEXT, "
                 "account TEXT, region TEXT, zone TEXT, group_name TEXT, instance_id TEXT, "
                 "name TEXT, image_id TEXT, version TEXT, state TEXT, lifecycle TEXT, "
                 "state_reason TEXT, standby INTEGER, warm INTEGER, desired_image_id TEXT, "
                 "desired_version TEXT, start_us INTEGER, end_us INTEGER)")
    started = time.perf_counter()
    rows = [("aws", "bench", i.id, *instance_observation(i), at) for i in inventory.instances]
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO spans (provider, scope, instance_id, account, region, zone, "
                     "group_name, name, image_id, version, state, lifecycle, state_reason, "
                     "standby, warm, desired_image_id, desired_version, start_us) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def run(size: str) -> list[Figure]:
    n = SIZES[size]
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    first = make_inventory(n, t0)
    with tempfile.TemporaryDirectory() as tmp:
        bare = _bare_executemany(Path(tmp) / "bare.db", first, 0)
        store = Store.open(f"sqlite:///{Path(tmp) / 'store.db'}")
        try:
            started = time.perf_counter()
            summary = store.record_poll(first, t0, t0)
            ingest = time.perf_counter() - started
            assert summary.opened == n

            same = make_inventory(n, t0 + timedelta(minutes=1))
            started = time.perf_counter()
            store.record_poll(same, same.polled_at, same.polled_at)
            unchanged = time.perf_counter() - started

            # 1% of the fleet moves to a new version.
            churn = make_inventory(n, t0 + timedelta(minutes=2),
                                   lambda i: "1.7" if i % 100 == 0 else f"1.{i % 7}")
            started = time.perf_counter()
            summary = store.record_poll(churn, churn.polled_at, churn.polled_at)
            churned = time.perf_counter() - started
            assert summary.closed == summary.opened == n // 100
        finally:
            store.close()
    figures = [
        Figure(f"store ingest, first poll of {n} instances (SQLite)", n / ingest, "instances/s",
               baseline=n / bare, baseline_name="bare sqlite3 executemany of the same rows",
               target=">= 100,000 instances/s"),
        Figure(f"store, unchanged poll of {n} instances", unchanged * 1000, "ms"),
        Figure(f"store, poll of {n} instances with 1% changed", churned * 1000, "ms"),
    ]
    if size == "full":  # a local PostgreSQL takes seconds to start: not for the smoke test
        figures += _postgres(n, first)
    return figures


def _postgres(n: int, first: Inventory) -> list[Figure]:
    from tests.helpers.pg import start_server

    try:
        server = start_server()
    except Exception as exc:  # no server here: say so, report the SQLite figures only
        print(f"# PostgreSQL figures skipped: {exc}", file=sys.stderr)
        return []
    url = server.create_database()
    try:
        store = Store.open(url)
        try:
            started = time.perf_counter()
            store.record_poll(first, first.polled_at, first.polled_at)
            ingest = time.perf_counter() - started
            same = dataclasses.replace(first, polled_at=first.polled_at + timedelta(minutes=1))
            started = time.perf_counter()
            store.record_poll(same, same.polled_at, same.polled_at)
            unchanged = time.perf_counter() - started
        finally:
            store.close()
    finally:
        server.drop_database(url)
        if server.cluster is not None:
            server.cluster.destroy()
    return [
        Figure(f"store ingest, first poll of {n} instances (PostgreSQL, local)", n / ingest,
               "instances/s"),
        Figure(f"store, unchanged poll of {n} instances (PostgreSQL)", unchanged * 1000, "ms"),
    ]
