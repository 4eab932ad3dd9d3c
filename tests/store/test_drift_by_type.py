"""What a group wants of each instance type (a mixed instances override's own image) in the
store: kept with the span, read as the fleet's Desired and Drift, added by the migration to 4."""

import dataclasses

import pytest
import sqlalchemy as sa

from fleetview.store import Store
from fleetview.store import schema as store_schema
from tests.helpers.builders import at, group, instance, inventory


def _override(iid: str, version: str, wants: str):
    """An instance of a type the group's override launches from its own image (`wants`)."""
    return dataclasses.replace(instance(iid, version), desired_image_id=f"ami-{wants}",
                               desired_version=wants)


def _poll(store: Store, minutes: float, *instances) -> None:
    store.record_poll(inventory(at(minutes), instances, [group("web", "2.0", size=3)]),
                      at(minutes), at(minutes))


def _drift_of(store: Store, minutes: float) -> dict[str, tuple[str, bool]]:
    fleet = store.fleet_at(at(minutes))
    return {row.instance_id: (row.desired_version, bool(row.drift))
            for row in fleet.itertuples()}


@pytest.fixture
def store(store_url):
    with Store.open(store_url) as s:
        yield s


def test_an_override_instance_on_its_overrides_version_is_not_drift(store):
    _poll(store, 0, instance("i-main", "2.0"), _override("i-big", "1.0", wants="1.0"),
          _override("i-wrong", "2.0", wants="1.0"))
    assert _drift_of(store, 1) == {"i-main": ("2.0", False), "i-big": ("1.0", False),
                                   "i-wrong": ("1.0", True)}
    spans = store.spans(at(-1), at(1))
    assert len(spans) == 3


def test_what_an_instance_is_wanted_to_run_is_kept_across_a_reopened_store(store_url):
    with Store.open(store_url) as first:
        _poll(first, 0, _override("i-big", "1.0", wants="1.0"))
    with Store.open(store_url) as again:
        # Same observation read back from the database: the span goes on, no new one.
        _poll(again, 1, _override("i-big", "1.0", wants="1.0"))
        assert len(again.spans(at(-1), at(2))) == 1
        # The override now launches 2.0: the instance, still on 1.0, is drift from then on.
        _poll(again, 2, _override("i-big", "1.0", wants="2.0"))
        assert len(again.spans(at(-1), at(3))) == 2
        assert _drift_of(again, 1)["i-big"] == ("1.0", False)
        assert _drift_of(again, 3)["i-big"] == ("2.0", True)


def test_the_migration_from_3_adds_the_columns_and_keeps_the_spans(store_url):
    with Store.open(store_url) as old:
        _poll(old, 0, instance("i-main", "2.0"), instance("i-big", "1.0"))
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE backfills"))
        for table, columns in store_schema.V4_COLUMNS.items():
            for column in columns:
                conn.execute(sa.text(f"ALTER TABLE {table} DROP COLUMN {column}"))
        conn.execute(sa.text("UPDATE fleetview_meta SET value = '3' "
                             "WHERE key = 'schema_version'"))
    engine.dispose()

    with Store.open(store_url) as migrated:
        # Spans from before: what the group wants, as they always were.
        assert _drift_of(migrated, 1) == {"i-main": ("2.0", False), "i-big": ("2.0", True)}
        _poll(migrated, 2, instance("i-main", "2.0"), _override("i-big", "1.0", wants="1.0"))
        assert _drift_of(migrated, 3) == {"i-main": ("2.0", False), "i-big": ("1.0", False)}
    engine = sa.create_engine(store_url)
    with engine.connect() as conn:
        have = {c["name"] for c in sa.inspect(conn).get_columns("spans")}
    engine.dispose()
    assert {"desired_image_id", "desired_version"} <= have
