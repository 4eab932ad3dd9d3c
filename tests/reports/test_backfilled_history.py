"""A report over a scope whose history was partly rebuilt from cloud records (backfill) says
where that history begins and that the part before the first poll was rebuilt."""

from __future__ import annotations

import pytest

from fleetview.domain.backfill import Backfill, Record
from fleetview.domain.model import Image
from fleetview.reports.params import ReportParams
from fleetview.reports.report import build_report
from fleetview.store import Store
from tests.helpers.builders import at, group, instance, inventory, scope

DAY = 24 * 60


@pytest.fixture
def store(store_url):
    with Store.open(store_url) as s:
        # First poll at at(0): web on 2.0 (i-a, i-b).
        s.record_poll(inventory(at(0), [instance("i-a", "2.0"), instance("i-b", "2.0")],
                                [group("web", "2.0")]), at(0), at(0))
        yield s


def _backfill(store: Store) -> None:
    """web ran 1.0 from ten days before the first poll, then rolled out 2.0 two days before
    it: CloudTrail and Auto Scaling say so."""
    def rec(kind, minutes, iid=None, image=None, source="cloudtrail"):
        return Record(at(minutes), kind, source, "us-east-1", instance_id=iid, group="web",
                      image_id=image, zone="us-east-1a", group_kind=None if iid else "asg")
    records = [
        rec("group_version", -10 * DAY, image="ami-1.0"),
        rec("group_version", -2 * DAY, image="ami-2.0"),
        rec("launch", -10 * DAY, "i-old-1", "ami-1.0"), rec("terminate", -2 * DAY + 30, "i-old-1"),
        rec("launch", -10 * DAY, "i-old-2", "ami-1.0", source="asg-activity"),
        rec("terminate", -2 * DAY + 60, "i-old-2", source="asg-activity"),
        rec("seen", -2 * DAY + 20, "i-a", "ami-2.0", source="launch-time"),
        rec("seen", -2 * DAY + 50, "i-b", "ami-2.0", source="launch-time"),
    ]
    images = {f"ami-{v}": Image("aws", f"ami-{v}", f"web-{v}") for v in ("1.0", "2.0")}
    store.record_backfill(scope(), Backfill(records, [], 4, images), at(-30 * DAY), at(60),
                          lambda image: image.name.rsplit("-", 1)[1])


def _report(store: Store, start_minutes: float):
    return build_report(store, ReportParams(at(start_minutes), at(60)), now=at(60))


def test_without_backfill_the_report_says_it_watched_only_since_the_first_poll(store):
    notes = _report(store, -30 * DAY).notes()
    assert notes == ["FleetView has watched prod only since 2026-01-01 00:00 UTC: rollouts "
                     "before that are not in this report."]


def test_backfilled_history_is_said_to_begin_earlier_and_to_be_rebuilt(store):
    _backfill(store)
    report = _report(store, -30 * DAY)
    # The rollout the cloud records tell of is in the report...
    assert [(r.group, r.from_version, r.to_version) for r in report.rollouts] == [
        ("web", "1.0", "2.0")]
    # ...and the note says where history begins and how the part before the first poll is known.
    assert report.notes() == [
        "FleetView has watched prod since 2026-01-01 00:00 UTC; its history from "
        "2025-12-22 00:00 UTC until then was rebuilt from cloud records. Rollouts before "
        "2025-12-22 00:00 UTC are not in this report."]


def test_a_range_within_the_rebuilt_history_says_it_was_rebuilt_and_nothing_is_missing(store):
    _backfill(store)
    notes = _report(store, -5 * DAY).notes()
    assert notes == [
        "FleetView has watched prod since 2026-01-01 00:00 UTC; its history from "
        "2025-12-22 00:00 UTC until then was rebuilt from cloud records."]
    # A range after the first poll sees only observed history: nothing to say.
    assert _report(store, 10).notes() == []
