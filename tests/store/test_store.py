"""The store on SQLite and on a real PostgreSQL server: spans, polls, queries, schema."""

from __future__ import annotations

import threading
from datetime import timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

from fleetview.domain.model import State
from fleetview.store import Store, StoreError, StoreUnavailable
from fleetview.store import schema as store_schema
from tests.helpers.builders import T0, at, group, instance, inventory, scope

SPAN_COLUMNS = ["span_id", "provider", "scope", "account", "region", "zone", "group",
                "instance_id", "name", "image_id", "image_name", "version", "state", "start",
                "end", "source", "lifecycle", "state_reason", "standby", "warm"]


@pytest.fixture
def store(store_url):
    with Store.open(store_url) as s:
        yield s


def _count(store: Store, table: str) -> int:
    with store._engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one()


def test_first_poll_opens_a_span_per_instance(store):
    summary = store.record_poll(inventory(at(0), [instance("i-a"), instance("i-b")]),
                                at(0), at(0.1))
    assert (summary.opened, summary.closed, summary.unchanged) == (2, 0, 0)
    frame = store.spans(at(-1), at(1))
    assert list(frame.columns) == SPAN_COLUMNS
    assert list(frame["instance_id"]) == ["i-a", "i-b"]
    assert frame["end"].isna().all()
    assert str(frame["start"].dtype) == "datetime64[ns, UTC]"
    assert str(frame["end"].dtype) == "datetime64[ns, UTC]"
    assert frame["span_id"].dtype == "int64"
    assert frame["start"].iloc[0] == pd.Timestamp(at(0))
    assert list(frame["image_name"]) == ["web-1.0", "web-1.0"]


def test_unchanged_poll_writes_no_span(store):
    fleet = [instance("i-a"), instance("i-b")]
    store.record_poll(inventory(at(0), fleet), at(0), at(0))
    summary = store.record_poll(inventory(at(1), fleet), at(1), at(1))
    assert (summary.opened, summary.closed, summary.unchanged) == (0, 0, 2)
    assert _count(store, "spans") == 2
    assert _count(store, "polls") == 2


def test_change_closes_and_opens_and_gone_closes(store):
    store.record_poll(inventory(at(0), [instance("i-a"), instance("i-b")]), at(0), at(0))
    summary = store.record_poll(inventory(at(1), [instance("i-a", "2.0")]), at(1), at(1))
    assert (summary.opened, summary.closed, summary.gone) == (1, 2, 1)
    frame = store.spans(at(0), at(2))
    a = frame[frame["instance_id"] == "i-a"]
    assert list(a["version"]) == ["1.0", "2.0"]
    assert a["end"].iloc[0] == pd.Timestamp(at(1)) and pd.isna(a["end"].iloc[1])
    b = frame[frame["instance_id"] == "i-b"]
    assert b["end"].iloc[0] == pd.Timestamp(at(1))
    assert list(store.fleet_at(at(0.5))["version"]) == ["1.0", "1.0"]
    assert list(store.fleet_at(at(1))["instance_id"]) == ["i-a"]
    assert list(store.fleet_at()["version"]) == ["2.0"]


def test_region_error_changes_nothing_there(store):
    store.record_poll(inventory(at(0), [instance("i-a"), instance("i-e", region="eu-west-1")]),
                      at(0), at(0))
    inv = inventory(at(1), [], errors=[("us-east-1", "throttled; retry later")])
    summary = store.record_poll(inv, at(1), at(1))
    # eu-west-1 answered in full without i-e: gone. us-east-1 failed: i-a lasts.
    assert (summary.closed, summary.gone) == (1, 1)
    assert list(store.fleet_at()["instance_id"]) == ["i-a"]
    fresh = store.freshness().set_index("region")
    assert not fresh.loc["us-east-1", "ok"] and fresh.loc["eu-west-1", "ok"]
    assert fresh.loc["us-east-1", "error"] == "throttled; retry later"
    assert fresh.loc["us-east-1", "last_ok"] == pd.Timestamp(at(0))


def test_failed_poll_changes_no_span_and_is_recorded(store):
    store.record_poll(inventory(at(0), [instance("i-a")]), at(0), at(0))
    store.record_failed_poll("prod", "aws", None, at(1), at(1.5), "credentials expired")
    assert store.spans(at(0), at(2))["end"].isna().all()
    fresh = store.freshness()
    assert set(fresh["region"]) == {"us-east-1", "eu-west-1"}
    assert not fresh["ok"].any()
    assert (fresh["error"] == "credentials expired").all()
    assert (fresh["last_poll"] == pd.Timestamp(at(1.5))).all()
    assert (fresh["last_ok"] == pd.Timestamp(at(0))).all()
    polls = store.polls()
    assert list(polls["ok"]) == [True, False] and polls["api_calls"].iloc[0] == 1


def test_freshness_of_a_scope_that_never_answered(store):
    store.record_failed_poll("gcp-dev", "gcp", None, at(0), at(1), "no credentials")
    fresh = store.freshness()
    assert len(fresh) == 1
    row = fresh.iloc[0]
    assert (row["scope"], row["provider"], row["ok"]) == ("gcp-dev", "gcp", False)
    assert pd.isna(row["region"])
    assert pd.isna(row["last_ok"])


def test_restart_reads_open_spans_from_the_database(store_url):
    with Store.open(store_url) as first:
        first.record_poll(inventory(at(0), [instance("i-a"), instance("i-b")]), at(0), at(0))
    with Store.open(store_url) as second:
        summary = second.record_poll(inventory(at(1), [instance("i-a")]), at(1), at(1))
    assert (summary.unchanged, summary.closed, summary.opened) == (1, 1, 0)


def test_two_writers_of_one_scope_stay_correct(store_url):
    # Each store caches open spans; the generation check makes each see the other's writes.
    with Store.open(store_url) as one, Store.open(store_url) as two:
        one.record_poll(inventory(at(0), [instance("i-a")]), at(0), at(0))
        two.record_poll(inventory(at(1), [instance("i-a", "2.0")]), at(1), at(1))
        summary = one.record_poll(inventory(at(2), [instance("i-a", "2.0")]), at(2), at(2))
        assert summary.unchanged == 1
        assert len(one.spans(at(0), at(3))) == 2


def test_collectors_of_different_scopes_write_at_once(store_url):
    # Several collectors share one database, each with its own scopes.
    errors = []

    def collector(name: str) -> None:
        sc = scope(name, ("us-east-1",))
        try:
            with Store.open(store_url) as own:
                for n in range(8):
                    fleet = [instance(f"{name}-{k}", f"1.{n // 3}", scope_name=name)
                             for k in range(20)]
                    own.record_poll(inventory(at(n), fleet, sc=sc), at(n), at(n))
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=collector, args=(f"s{k}",)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with Store.open(store_url, readonly=True) as reader:
        assert len(reader.fleet_at()) == 60
        assert len(reader.spans(at(0), at(9))) == 3 * 20 * 3  # versions 1.0, 1.1, 1.2


def test_a_large_poll_round_trips(store):
    # Large enough for PostgreSQL's COPY path; odd characters and missing fields included.
    import dataclasses
    fleet = [dataclasses.replace(instance(f"i-{n:04d}", f"1.{n % 3}",
                                          group=None if n % 5 == 0 else "web"),
                                 name=f"tab\there\\ and\nnewline {n}",
                                 zone=None if n % 7 == 0 else "us-east-1b")
             for n in range(700)]
    summary = store.record_poll(inventory(at(0), fleet), at(0), at(0))
    assert summary.opened == 700
    frame = store.fleet_at().set_index("instance_id")
    for inst in fleet[::37]:
        row = frame.loc[inst.id]
        assert row["name"] == inst.name and row["version"] == inst.version
        assert (pd.isna(row["zone"]), pd.isna(row["group"])) == (inst.zone is None,
                                                                   inst.group is None)
    again = store.record_poll(inventory(at(1), fleet[:350]), at(1), at(1))
    assert (again.unchanged, again.closed) == (350, 350)


def test_stale_poll_only_adds_its_record(store):
    store.record_poll(inventory(at(5), [instance("i-a")]), at(5), at(5))
    summary = store.record_poll(inventory(at(1), []), at(1), at(1))
    assert summary.stale
    assert store.spans(at(0), at(9))["end"].isna().all()
    assert _count(store, "polls") == 2


def test_groups_over_time_and_drift(store):
    store.record_poll(inventory(at(0), [instance("i-a"), instance("i-b")], [group("web", "1.0")]),
                      at(0), at(0))
    store.record_poll(inventory(at(1), [instance("i-a"), instance("i-b")], [group("web", "2.0")]),
                      at(1), at(1))
    store.record_poll(inventory(at(2), [instance("i-a", "2.0"), instance("i-b")],
                                [group("web", "2.0")]), at(2), at(2))
    assert list(store.groups_at(at(0.5))["desired_version"]) == ["1.0"]
    groups = store.groups_at()
    assert list(groups.columns[:10]) == ["provider", "scope", "account", "region", "zone",
                                         "group", "kind", "desired_version",
                                         "desired_image_id", "canary_version"]
    assert list(groups["desired_version"]) == ["2.0"]
    assert store.drift(at(0.5)).empty
    assert list(store.drift(at(1.5))["instance_id"]) == ["i-a", "i-b"]
    drift = store.drift()
    assert list(drift["instance_id"]) == ["i-b"]
    assert drift["desired_version"].iloc[0] == "2.0"
    history = store.group_spans(at(0), at(3))
    assert list(history["desired_version"]) == ["1.0", "2.0"]


def test_canary_version_is_not_drift_and_standalone_never_drifts(store):
    fleet = [instance("i-a", "1.0"), instance("i-b", "1.1"), instance("i-c", "0.9"),
             instance("i-s", "0.1", group=None)]
    store.record_poll(inventory(at(0), fleet, [group("web", "1.0", canary="1.1")]), at(0), at(0))
    assert list(store.drift()["instance_id"]) == ["i-c"]


def test_terminated_instances_leave_the_fleet(store):
    store.record_poll(inventory(at(0), [instance("i-a")]), at(0), at(0))
    store.record_poll(inventory(at(1), [instance("i-a", state=State.TERMINATED)]), at(1), at(1))
    assert store.fleet_at().empty
    assert list(store.spans(at(0), at(2))["state"]) == ["running", "terminated"]


def test_version_share_counts_per_step(store):
    store.record_poll(inventory(at(0), [instance("i-a"), instance("i-b")]), at(0), at(0))
    store.record_poll(inventory(at(2), [instance("i-a", "1.10"), instance("i-b")]), at(2), at(2))
    store.record_poll(inventory(at(4), [instance("i-a", "1.10"), instance("i-b", "1.10")]),
                      at(4), at(4))
    share = store.version_share("prod", "us-east-1", "web", at(0), at(5), timedelta(minutes=1))
    assert list(share.columns) == ["1.0", "1.10"]
    assert share.index.name == "time" and len(share) == 6
    assert share["1.0"].tolist() == [2, 2, 1, 1, 0, 0]
    assert share["1.10"].tolist() == [0, 0, 1, 1, 2, 2]


def test_empty_results_keep_their_columns_and_types(store):
    spans = store.spans(at(0), at(1))
    assert spans.empty and list(spans.columns) == SPAN_COLUMNS
    assert str(spans["start"].dtype) == "datetime64[ns, UTC]"
    fleet = store.fleet_at()
    assert fleet.empty and fleet["drift"].dtype == bool
    assert store.freshness().empty and store.images().empty and store.groups_at().empty
    share = store.version_share("prod", "us-east-1", "web", at(0), at(2), timedelta(minutes=1))
    assert len(share) == 3 and share.columns.empty


def test_filters_on_spans(store):
    fleet = [instance("i-a"), instance("i-b", "2.0", group="api"),
             instance("i-e", region="eu-west-1")]
    store.record_poll(inventory(at(0), fleet), at(0), at(0))
    assert list(store.spans(at(0), at(1), regions=["eu-west-1"])["instance_id"]) == ["i-e"]
    assert list(store.spans(at(0), at(1), groups=["api"])["instance_id"]) == ["i-b"]
    assert list(store.spans(at(0), at(1), versions=["1.0"])["instance_id"]) == ["i-e", "i-a"]
    assert store.spans(at(0), at(1), scopes=["other"]).empty
    assert store.spans(at(-5), at(-1)).empty


def test_scopes_are_independent(store):
    other = scope("dev", ("us-east-1",))
    store.record_poll(inventory(at(0), [instance("i-a")]), at(0), at(0))
    store.record_poll(inventory(at(1), [], sc=other), at(1), at(1))
    assert list(store.fleet_at()["instance_id"]) == ["i-a"]


def test_images_are_kept_and_updated(store):
    inv = inventory(at(0), [instance("i-a")])
    store.record_poll(inv, at(0), at(0))
    import dataclasses
    gone = {k: dataclasses.replace(v, gone=True) for k, v in inv.images.items()}
    store.record_poll(dataclasses.replace(inv, polled_at=at(1), images=gone), at(1), at(1))
    frame = store.images()
    assert list(frame.columns[:7]) == ["image_id", "provider", "scope", "name", "version",
                                       "created_at", "gone"]
    assert frame["gone"].tolist() == [True]
    assert frame["created_at"].iloc[0] == pd.Timestamp(T0)


def test_prune_deletes_old_closed_spans_only(store):
    store.record_poll(inventory(at(0), [instance("i-a"), instance("i-b")]), at(0), at(0))
    store.record_poll(inventory(at(1), [instance("i-a")]), at(1), at(1))
    # T0 is in 2026-01; keeping 1 day prunes i-b's closed span, never the open one.
    assert store.prune(1) == 1
    assert list(store.spans(at(0), at(2))["instance_id"]) == ["i-a"]
    assert len(store.freshness()) == 2


def test_readonly_reads_but_never_writes(store_url):
    with Store.open(store_url) as writer:
        writer.record_poll(inventory(at(0), [instance("i-a")]), at(0), at(0))
    with Store.open(store_url, readonly=True) as reader:
        assert len(reader.fleet_at()) == 1
        with pytest.raises(StoreError, match="read-only"):
            reader.record_poll(inventory(at(1), []), at(1), at(1))


def test_queries_from_many_threads(store):
    store.record_poll(inventory(at(0), [instance(f"i-{n}") for n in range(50)]), at(0), at(0))
    errors, sizes = [], []

    def read():
        try:
            for _ in range(5):
                sizes.append(len(store.fleet_at()))
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for n in range(1, 6):
        store.record_poll(inventory(at(n), [instance(f"i-{k}") for k in range(50)]),
                          at(n), at(n))
    for t in threads:
        t.join()
    assert not errors and set(sizes) == {50}


def test_newer_schema_is_refused_and_untouched(store_url):
    Store.open(store_url).close()
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE fleetview_meta SET value = '99' "
                             "WHERE key = 'schema_version'"))
        conn.execute(sa.text("DROP TABLE scope_state"))
    with pytest.raises(StoreError, match="newer FleetView") as info:
        Store.open(store_url)
    assert "upgrade FleetView" in str(info.value)
    with engine.connect() as conn:
        assert not sa.inspect(conn).has_table("scope_state")
        assert conn.execute(sa.text("SELECT value FROM fleetview_meta "
                                    "WHERE key = 'schema_version'")).scalar_one() == "99"
    engine.dispose()


def test_a_foreign_database_is_refused_and_untouched(store_url):
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE spans (x INTEGER)"))
    with pytest.raises(StoreError, match="not a FleetView database"):
        Store.open(store_url)
    with engine.connect() as conn:
        assert sa.inspect(conn).get_table_names() == ["spans"]
    engine.dispose()


def test_migrations_run_forward_on_open(store_url, monkeypatch):
    Store.open(store_url).close()
    ran = []

    def to_next(conn):
        ran.append(1)
        conn.execute(sa.text("CREATE TABLE fv_test_marker (x INTEGER)"))

    current = store_schema.SCHEMA_VERSION
    monkeypatch.setattr(store_schema, "SCHEMA_VERSION", current + 1)
    monkeypatch.setitem(store_schema.MIGRATIONS, current, to_next)
    Store.open(store_url).close()
    Store.open(store_url).close()
    assert ran == [1]
    engine = sa.create_engine(store_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT value FROM fleetview_meta WHERE key = "
                                    "'schema_version'")).scalar_one() == str(current + 1)
        assert sa.inspect(conn).has_table("fv_test_marker")
    engine.dispose()


def test_readonly_missing_sqlite_file_says_what_to_do(tmp_path):
    with pytest.raises(StoreError, match="fleetview collect"):
        Store.open(f"sqlite:///{tmp_path / 'none.db'}", readonly=True)


def test_bad_urls_are_known_errors():
    with pytest.raises(StoreError, match="not a database URL"):
        Store.open("not a url")
    with pytest.raises(StoreError, match="SQLite or PostgreSQL"):
        Store.open("mysql://x@localhost/db")


def test_unreachable_postgres_is_unavailable():
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(StoreUnavailable, match="check that it is reachable"):
        Store.open(f"postgresql+psycopg://nobody@127.0.0.1:{port}/fleetview")


def test_sqlite_is_wal(tmp_path):
    with Store.open(f"sqlite:///{tmp_path / 'h.db'}") as store, store._engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar_one() == 1  # NORMAL
