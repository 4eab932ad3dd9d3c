"""Backfilled history in the store: apart from observed spans, before them, never over them;
schema 4 and its migration; the instance and group fields schema 4 adds."""

import dataclasses
from datetime import timedelta

import pytest
import sqlalchemy as sa

from fleetview.actions import history
from fleetview.domain.backfill import Backfill, Record
from fleetview.domain.model import Image, State
from fleetview.store import Store
from fleetview.store import schema as store_schema
from tests.helpers.builders import at, group, instance, inventory, scope

DAY = 24 * 60


@pytest.fixture
def store(store_url):
    with Store.open(store_url) as s:
        yield s


def _version_of(image: Image) -> str:
    return image.name.rsplit("-", 1)[1]


def _records() -> Backfill:
    """web ran 1.0 on two instances, then 2.0 (a rollout on day 2): i-old-* ended, i-a and i-b
    (still running) replaced them; one instance's end is not recorded."""
    def rec(kind, minutes, iid=None, image=None, source="cloudtrail", grp="web"):
        return Record(at(minutes), kind, source, "us-east-1", instance_id=iid, group=grp,
                      image_id=image, zone="us-east-1a", group_kind="asg" if not iid else None)
    records = [
        rec("group_version", -10 * DAY, image="ami-1.0"),
        rec("group_version", -2 * DAY, image="ami-2.0"),
        rec("launch", -9 * DAY, "i-old-1", "ami-1.0"), rec("terminate", -2 * DAY + 30, "i-old-1"),
        rec("launch", -9 * DAY, "i-old-2", source="asg-activity"),
        rec("terminate", -2 * DAY + 60, "i-old-2", source="asg-activity"),
        rec("seen", -2 * DAY + 20, "i-a", "ami-2.0", source="launch-time"),
        rec("seen", -2 * DAY + 50, "i-b", "ami-2.0", source="launch-time"),
        rec("launch", -5 * DAY, "i-lost", "ami-1.0"),  # no end on record: a gap
    ]
    images = {f"ami-{v}": Image("aws", f"ami-{v}", f"web-{v}") for v in ("1.0", "2.0")}
    return Backfill(records, ["eu-west-1: CloudTrail: access denied"], 7, images)


def _observe(store: Store, minutes: float = 0) -> None:
    store.record_poll(inventory(at(minutes), [instance("i-a", "2.0"), instance("i-b", "2.0")],
                                [group("web", "2.0")]), at(minutes), at(minutes))


def test_backfill_writes_inferred_spans_before_the_first_poll(store):
    _observe(store)
    observed = store.spans(at(-30 * DAY), at(10))
    summary = store.record_backfill(scope(), _records(), at(-30 * DAY), at(60), _version_of)
    assert (summary.spans, summary.gaps, summary.until) == (4, 1, at(0))
    assert "i-lost" in summary.gap_summary and summary.skipped
    spans = store.spans(at(-30 * DAY), at(10))
    inferred = spans[spans["source"] != "observed"]
    assert set(inferred["instance_id"]) == {"i-old-1", "i-old-2", "i-a", "i-b"}
    # Nothing inferred reaches into what was observed, which is as it was.
    assert (inferred["end"] <= at(0)).all()
    mine = spans[spans["source"] == "observed"].reset_index(drop=True)
    assert mine.drop(columns=["span_id"]).equals(observed.drop(columns=["span_id"]))
    old = inferred.set_index("instance_id").loc["i-old-2"]
    # Its launch from Auto Scaling's activities, its image from the group's CloudTrail.
    assert (old["version"], old["source"], old["image_name"]) == (
        "1.0", "asg-activity, cloudtrail", "web-1.0")
    groups = store.group_spans(at(-30 * DAY), at(10))
    assert list(groups["source"]) == ["cloudtrail", "cloudtrail", "observed"]
    assert list(groups["desired_version"]) == ["1.0", "2.0", "2.0"]


def test_a_rollback_target_from_backfilled_history_says_so(store):
    _observe(store)
    store.record_backfill(scope(), _records(), at(-30 * DAY), at(60), _version_of)
    config = dataclasses.make_dataclass("C", [("actions", bool)])(True)
    ready = history.readiness(store, config, "prod", "us-east-1", "web", now=at(30))
    assert ready.target is not None and ready.target.version == "1.0"
    assert "rebuilt from cloud records" in ready.note and "cloudtrail" in ready.inferred
    assert "1.0" in ready.describe()


def test_running_a_backfill_again_replaces_what_it_inferred(store):
    _observe(store)
    for _ in range(2):
        store.record_backfill(scope(), _records(), at(-30 * DAY), at(60), _version_of)
    spans = store.spans(at(-30 * DAY), at(10))
    assert len(spans) == 6  # four inferred, two observed
    assert len(store.backfills(["prod"])) == 2


def test_the_next_poll_continues_from_the_backfill_without_touching_it(store):
    _observe(store)
    store.record_backfill(scope(), _records(), at(-30 * DAY), at(60), _version_of)
    store.record_poll(inventory(at(5), [instance("i-a", "2.0")], [group("web", "2.0")]),
                      at(5), at(5))
    spans = store.spans(at(-30 * DAY), at(10))
    inferred = spans[spans["source"] != "observed"]
    assert len(inferred) == 4 and inferred["end"].notna().all()
    closed = spans[(spans["source"] == "observed") & spans["end"].notna()]
    assert list(closed["instance_id"]) == ["i-b"]


def test_a_backfill_before_any_poll_reaches_until(store):
    summary = store.record_backfill(scope(), _records(), at(-30 * DAY), at(60), _version_of)
    assert summary.until == at(60)
    found = store.backfills()
    assert list(found["scope"]) == ["prod"] and found["skipped"].iloc[0].startswith("eu-west-1")
    # A first poll afterwards still opens its spans.
    _observe(store, 120)
    assert len(store.fleet_at()) == 2


def test_what_clouds_say_of_an_instance_is_stored_and_a_new_reason_opens_a_span(store):
    spot = dataclasses.replace(instance("i-s", "2.0"), lifecycle="spot")
    grp = dataclasses.replace(group("web", "2.0"), owner="CloudFormation stack web",
                              notes=("image from SSM parameter /app/ami", "second note"))
    store.record_poll(inventory(at(0), [spot], [grp]), at(0), at(0))
    ended = dataclasses.replace(spot, state=State.STOPPED, state_reason="Spot interruption")
    summary = store.record_poll(inventory(at(1), [ended], [grp]), at(1), at(1))
    assert summary.opened == 1 and summary.closed == 1
    assert store.record_poll(inventory(at(2), [ended], [grp]), at(2), at(2)).unchanged == 1
    row = store.fleet_at().iloc[0]
    assert (row["lifecycle"], row["state_reason"], row["standby"], row["warm"]) == (
        "spot", "Spot interruption", False, False)
    g = store.groups_at().iloc[0]
    assert g["owner"] == "CloudFormation stack web"
    assert g["notes"].splitlines() == ["image from SSM parameter /app/ami", "second note"]
    warm = dataclasses.replace(instance("i-w", "1.0"), warm=True, state=State.STOPPED)
    store.record_poll(inventory(at(3), [ended, warm], [grp]), at(3), at(3))
    spans = store.spans(at(0), at(4))
    assert bool(spans.set_index("instance_id").loc["i-w", "warm"])
    assert not store.drift().shape[0]  # a warm instance on another version is no drift


def _as_schema_3(url: str) -> None:
    """Turn a new database back into schema 3: no source, instance extras, owner, notes,
    no backfills table."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE backfills"))
        for table, columns in store_schema.V4_COLUMNS.items():
            for column in columns:
                conn.execute(sa.text(f"ALTER TABLE {table} DROP COLUMN {column}"))
        conn.execute(sa.text("UPDATE fleetview_meta SET value = '3' "
                             "WHERE key = 'schema_version'"))
    engine.dispose()


def test_schema_3_migrates_to_4_and_every_span_is_observed(store_url):
    with Store.open(store_url) as old:
        old.record_poll(inventory(at(0), [instance("i-a"), instance("i-b")], [group()]),
                        at(0), at(0))
        old.record_poll(inventory(at(1), [instance("i-a", "2.0")], [group("web", "2.0")]),
                        at(1), at(1))
    _as_schema_3(store_url)
    engine = sa.create_engine(store_url)
    with engine.connect() as conn:
        assert "source" not in {c["name"] for c in sa.inspect(conn).get_columns("spans")}
    engine.dispose()
    with Store.open(store_url) as migrated:
        spans = migrated.spans(at(-1), at(2))
        assert len(spans) == 3 and set(spans["source"]) == {"observed"}
        assert not spans["standby"].any() and spans["state_reason"].isna().all()
        assert set(migrated.group_spans(at(-1), at(2))["source"]) == {"observed"}
        assert migrated.backfills().empty
        # A migrated store takes a backfill and the next poll like a new one.
        migrated.record_backfill(scope(), _records(), at(-30 * DAY), at(60), _version_of)
        migrated.record_poll(inventory(at(2), [instance("i-a", "2.0")], [group("web", "2.0")]),
                             at(2), at(2))
        assert len(migrated.backfills()) == 1
    engine = sa.create_engine(store_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT value FROM fleetview_meta WHERE key = "
                                    "'schema_version'")).scalar_one() == "4"
    engine.dispose()


def test_backfill_spans_are_told_apart_in_version_share(store):
    _observe(store)
    store.record_backfill(scope(), _records(), at(-30 * DAY), at(60), _version_of)
    share = store.version_share("prod", "us-east-1", "web", at(-8 * DAY), at(0),
                                timedelta(days=1))
    assert share["1.0"].iloc[0] == 2 and share["2.0"].iloc[-1] == 2
