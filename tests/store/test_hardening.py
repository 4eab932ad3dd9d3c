"""Issue #19 "Hardening", store side: no poll lost to a race, a long value, a far keep_days
or a clock behind the store; history migrated forward without loss; private files."""

from __future__ import annotations

import dataclasses
import os
import stat
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from fleetview.actions import audit
from fleetview.store import Store
from fleetview.store import schema as store_schema
from tests.helpers.builders import at, group, instance, inventory, scope


@pytest.fixture
def store(store_url):
    with Store.open(store_url) as s:
        yield s


def _count(store: Store, table: str) -> int:
    with store._engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one()


# -- two collectors, one new scope ------------------------------------------------------------
def _wait_until_blocked(url: str, timeout: float = 10.0) -> None:
    """Until a PostgreSQL session waits on a lock (the second writer's claim); on SQLite the
    second writer waits for the write lock, which no view shows: give it a moment."""
    if not url.startswith("postgresql"):
        time.sleep(0.5)
        return
    engine = sa.create_engine(url)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                waiting = conn.execute(sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()")).scalar_one()
            if waiting:
                return
            time.sleep(0.05)
        raise AssertionError("the second writer never waited for the first")
    finally:
        engine.dispose()


def test_first_polls_of_a_new_scope_by_two_writers_both_land(store_url):
    # The first writer holds its transaction open right after claiming the new scope; the
    # second claims it meanwhile. An UPDATE-then-INSERT claim lets both insert, and
    # PostgreSQL refuses the second with a duplicate scope_state_pkey: a poll dropped.
    one, two = Store.open(store_url), Store.open(store_url)
    claimed, release = threading.Event(), threading.Event()
    real_open_state = one._open_state

    def held_open_state(*args, **kwargs):
        claimed.set()
        assert release.wait(30)
        return real_open_state(*args, **kwargs)

    one._open_state = held_open_state
    errors: list[BaseException] = []

    def write(store, inv):
        try:
            store.record_poll(inv, inv.polled_at, inv.polled_at)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    first = threading.Thread(target=write, args=(one, inventory(at(0), [instance("i-a")])))
    second = threading.Thread(target=write, args=(
        two, inventory(at(1), [instance("i-a"), instance("i-b")])))
    try:
        first.start()
        assert claimed.wait(30)
        second.start()
        _wait_until_blocked(store_url)
        release.set()
        first.join(30)
        second.join(30)
    finally:
        release.set()
        one.close()
        two.close()
    assert not errors, errors
    with Store.open(store_url, readonly=True) as reader:
        assert len(reader.polls()) == 2
        assert sorted(reader.fleet_at()["instance_id"]) == ["i-a", "i-b"]


# -- long values --------------------------------------------------------------------------------
LONG_SCOPE = "s" * 200
LONG_VERSION = "1." + "9" * 299  # 301 characters


def test_long_provider_values_are_stored_whole(store):
    sc = scope(LONG_SCOPE, ("us-east-1",))
    inst = dataclasses.replace(
        instance("i-" + "x" * 300, LONG_VERSION, group="g" * 400, scope_name=LONG_SCOPE),
        name="n" * 1000, account="a" * 300, zone="z" * 100, image_id="ami-" + "i" * 400)
    grp = dataclasses.replace(group("g" * 400, LONG_VERSION, scope_name=LONG_SCOPE),
                              zone="z" * 100)
    inv = inventory(at(0), [inst], [grp], sc=sc)
    summary = store.record_poll(inv, at(0), at(0))
    assert summary.opened == 1
    row = store.fleet_at().iloc[0]
    assert (row["scope"], row["version"], row["instance_id"], row["name"]) == (
        LONG_SCOPE, LONG_VERSION, inst.id, inst.name)
    assert row["group"] == "g" * 400 and row["account"] == "a" * 300
    assert store.groups_at().iloc[0]["desired_version"] == LONG_VERSION
    assert LONG_VERSION in set(store.images()["version"])
    assert store.freshness().iloc[0]["scope"] == LONG_SCOPE
    entry = audit.append(store, "refused", "arn:" + "r" * 600, scope=LONG_SCOPE,
                         region="r" * 100, group="g" * 400, reason="why")
    assert list(audit.entries(store))[0] == entry


def _as_schema_1(url: str, store_id: bool = True) -> None:
    """Turn a new database back into schema 1: bounded columns, no store id."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            for table, columns in store_schema.V1_BOUNDED.items():
                for column, length in columns.items():
                    conn.execute(sa.text(f"ALTER TABLE {table} ALTER COLUMN {column} "
                                         f"TYPE VARCHAR({length})"))
        if not store_id:
            conn.execute(sa.text("DELETE FROM fleetview_meta WHERE key = 'store_id'"))
        conn.execute(sa.text("UPDATE fleetview_meta SET value = '1' "
                             "WHERE key = 'schema_version'"))
    engine.dispose()


def test_schema_1_migrates_to_text_columns_without_losing_history(store_url):
    with Store.open(store_url) as old:
        old.record_poll(inventory(at(0), [instance("i-a"), instance("i-b")]), at(0), at(0))
        old.record_poll(inventory(at(1), [instance("i-a", "2.0")]), at(1), at(1))
        audit.append(old, "refused", "ops", scope="prod", reason="test")
        before = old.spans(at(-1), at(2))
    _as_schema_1(store_url, store_id=False)
    if store_url.startswith("postgresql"):  # what schema 1 did with a long value
        with Store.open(store_url) as probe, probe._engine.connect() as conn:
            kind = conn.execute(sa.text(
                "SELECT data_type FROM information_schema.columns WHERE table_name = 'spans' "
                "AND column_name = 'version'")).scalar_one()
        assert kind == "text"  # opening it migrated it
    else:
        Store.open(store_url).close()
    with Store.open(store_url) as migrated:
        assert migrated.store_id  # schema 2 gives an old database its id
        after = migrated.spans(at(-1), at(2))
        assert before.drop(columns=["span_id"]).equals(after.drop(columns=["span_id"]))
        assert audit.verify(migrated, witnesses=[]).ok
        migrated.record_poll(inventory(at(2), [instance("i-a", LONG_VERSION)]), at(2), at(2))
        assert migrated.fleet_at().iloc[0]["version"] == LONG_VERSION
    engine = sa.create_engine(store_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT value FROM fleetview_meta WHERE key = "
                                    "'schema_version'")).scalar_one() == str(store_schema.SCHEMA_VERSION)
    engine.dispose()


def test_a_migrated_store_keeps_its_id(store_url):
    with Store.open(store_url) as first:
        kept = first.store_id
    _as_schema_1(store_url, store_id=True)
    with Store.open(store_url) as again:
        assert again.store_id == kept


# -- pruning ------------------------------------------------------------------------------------
@pytest.mark.parametrize("keep_days", [1_000_000_000, 10**30, float("inf"), 999_999_999])
def test_prune_with_a_far_keep_days_keeps_everything(store, keep_days):
    store.record_poll(inventory(at(0), [instance("i-a")]), at(0), at(0))
    store.record_poll(inventory(at(1), []), at(1), at(1))
    assert store.prune(keep_days) == 0
    assert len(store.spans(at(-1), at(2))) == 1


@pytest.mark.parametrize("keep_days", [0, -5, float("nan")])
def test_prune_refuses_a_keep_days_that_is_no_retention(store, keep_days):
    with pytest.raises(ValueError, match="keep_days"):
        store.prune(keep_days)


# -- clocks -------------------------------------------------------------------------------------
def test_a_clock_behind_the_store_keeps_the_changes_and_says_so(store):
    # Another collector, its clock an hour ahead, wrote the last poll; this one's clock is
    # right, so each of its polls looks an hour old.
    now = datetime.now(UTC)
    ahead = now + timedelta(hours=1)
    sc = scope("prod", ("us-east-1",))
    store.record_poll(inventory(ahead, [instance("i-a")], sc=sc), ahead, ahead)
    summary = store.record_poll(
        inventory(now, [instance("i-a", "2.0"), instance("i-b")], sc=sc), now, now)
    assert not summary.stale
    assert (summary.opened, summary.closed) == (2, 1)  # nothing observed was thrown away
    assert summary.clock_skew and "clock skew" in summary.clock_skew
    assert f"{now:%Y-%m-%d %H:%M:%S}" in summary.clock_skew  # this collector's clock
    assert f"{ahead:%Y-%m-%d %H:%M:%S}" in summary.clock_skew  # the store's last poll
    fleet = store.fleet_at().set_index("instance_id")
    assert fleet.loc["i-a", "version"] == "2.0" and "i-b" in fleet.index
    spans = store.spans(now - timedelta(days=1), ahead + timedelta(days=1))
    assert (spans["start"] > ahead).sum() == 2  # written after the last poll, in order
    fresh = store.freshness().set_index("region").loc["us-east-1"]
    assert not fresh["ok"] and "clock skew" in fresh["error"]
    # A later poll (still behind) goes on in order, and still says so.
    later = now + timedelta(seconds=30)
    again = store.record_poll(inventory(later, [instance("i-b")], sc=sc), later, later)
    assert again.clock_skew and again.closed == 1
    assert list(store.fleet_at()["instance_id"]) == ["i-b"]


def test_clocks_a_moment_apart_write_in_order_without_an_error(store):
    # Two collectors whose clocks NTP keeps within milliseconds: no error, nothing lost.
    now = datetime.now(UTC)
    ahead = now + timedelta(milliseconds=300)
    store.record_poll(inventory(ahead, [instance("i-a")]), ahead, ahead)
    summary = store.record_poll(inventory(now, [instance("i-a", "2.0")]), now, now)
    assert not summary.stale and not summary.clock_skew and summary.opened == 1
    assert list(store.fleet_at()["version"]) == ["2.0"]
    assert store.freshness()["ok"].all()


def test_a_late_poll_from_a_right_clock_is_still_only_recorded(store):
    # A poll that is older than the last one while this machine's clock is past it was
    # simply written late (another collector got there first): its record, nothing else.
    store.record_poll(inventory(at(5), [instance("i-a")]), at(5), at(5))
    summary = store.record_poll(inventory(at(1), [instance("i-a", "0.9")]), at(1), at(1),
                                now=at(6))
    assert summary.stale and not summary.clock_skew
    assert list(store.fleet_at()["version"]) == ["1.0"]


# -- files --------------------------------------------------------------------------------------
@pytest.mark.skipif(os.name != "posix", reason="POSIX modes")
@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_the_store_folder_and_files_are_private_whatever_the_umask(tmp_path, umask):
    folder = tmp_path / "data" / "fleetview"
    old = os.umask(umask)
    try:
        with Store.open(f"sqlite:///{folder / 'history.db'}") as store:
            store.record_poll(inventory(at(0), [instance("i-a")]), at(0), at(0))
            made = sorted(p.name for p in folder.iterdir())
            assert {"history.db", "history.db-wal", "history.db-shm"} <= set(made)
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()}
    finally:
        os.umask(old)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert modes == dict.fromkeys(made, 0o600), modes
