"""Every figure of a report on a store with a known history equals the one worked out by hand
(tests/helpers/report_history.py says what happened when)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from fleetview.reports.params import ReportParams
from fleetview.reports.report import build_report
from tests.helpers import report_history as known
from tests.helpers.report_history import us

HOUR = 3600.0


def _by(report, group: str, to_version: str):
    found = [r for r in report.rollouts if r.group == group and r.to_version == to_version
             and r.kind == "rollout"]
    assert len(found) == 1, found
    return found[0]


def test_every_rollout_is_found_in_order(report):
    assert [(r.group, r.from_version, r.to_version, r.kind, r.status) for r in report.rollouts] \
        == [("web", "1.0", "1.1", "rollout", "completed"),
            ("api", "2.0", "2.1", "rollout", "completed"),
            ("web", "1.1", "1.2", "rollout", "rolled back"),
            ("api", "2.1", "2.2", "rollout", "completed"),
            ("api", "2.2", "2.1", "rollback", "completed"),
            ("web", "1.1", "1.3", "rollout", "in progress")]


def test_a_smooth_rollout_starts_when_the_group_names_the_version(report):
    r = _by(report, "web", "1.1")
    assert (r.start, r.end) == (us(10), us(13))
    assert r.duration_s == 3 * HOUR
    assert (r.instances, r.group_size) == (3, 3)
    assert r.longest_wait_s == 1 * HOUR
    assert not (r.stalled or r.paused or r.rolled_back)
    assert r.image_id == "ami-1.1" and r.image_created == us(8)
    assert r.lead_time_s == 5 * HOUR


def test_a_stall_and_a_pause(report):
    r = _by(report, "api", "2.1")
    assert (r.start, r.end, r.duration_s) == (us(20), us(26), 6 * HOUR)
    assert r.longest_wait_s == 6 * HOUR and r.stalled
    assert r.paused  # updating on at h20, off at h22, on again at h24
    assert r.lead_time_s == 8 * HOUR


def test_a_rollout_rolled_back_through_the_journal(report):
    r = _by(report, "web", "1.2")
    assert r.start == us(30) and r.end is None
    assert r.rolled_back and r.rollback_by == "alice"
    assert r.restored == us(32) and r.time_to_restore_s == 2 * HOUR
    assert (r.instances, r.group_size) == (1, 3)
    assert r.longest_wait_s == 2 * HOUR and not r.stalled  # the threshold is 3 h


def test_a_rollback_nobody_journaled_is_observed(report):
    r = _by(report, "api", "2.2")
    assert (r.start, r.end) == (us(40), us(41))
    assert r.rolled_back and r.rollback_by == "observed"
    assert r.restored == us(46) and r.time_to_restore_s == 6 * HOUR
    back = [x for x in report.rollouts if x.kind == "rollback"]
    assert [(x.group, x.to_version, x.start, x.end, x.rollback_by) for x in back] == \
        [("api", "2.1", us(45), us(46), "observed")]
    assert back[0].lead_time_s is None  # its image is an old one


def test_a_rollout_under_way_at_the_end_of_the_range(report):
    r = _by(report, "web", "1.3")
    assert r.start == us(50) and r.end is None and r.duration_s is None
    assert (r.instances, r.group_size) == (1, 3)
    assert r.longest_wait_s == 10 * HOUR and r.stalled


def test_the_earlier_rollout_is_not_blamed_for_a_later_ones_rollback(report):
    # alice's rollback (h31) is within 24 h of web's 1.1 rollout (h10), but after 1.2 began.
    assert not _by(report, "web", "1.1").rolled_back


def test_rollbacks_and_replaces_with_who_why_and_recovery(report):
    rows = [(a.kind, a.group, a.from_versions, a.to_version, a.actor, a.reason, a.status,
             a.confirmed, a.time_to_recover_s, a.instances) for a in report.actions]
    assert rows == [
        ("rollback", "web", ("1.2",), "1.1", "alice", "1.2 returns 500s", "recovered", us(31),
         1 * HOUR, 1),
        ("replace", "web", ("1.1",), "1.1", "bob", "disk errors", "recovered", us(35),
         0.5 * HOUR, 1)]
    assert [a.audit_seq for a in report.actions] == [1, 3]


def test_delivery_metrics(report):
    m = report.metrics
    assert m.days == 2.5
    assert (m.rollouts, m.deployments) == (5, 3)
    assert m.deployments_per_week == pytest.approx(3 / (2.5 / 7))
    # Lead times 5 h, 8 h, 2 h.
    assert (m.lead_time_median_s, m.lead_time_measured) == (5 * HOUR, 3)
    # 2 rolled back (web 1.2, api 2.2) of 4 with a known outcome (web 1.3 is under way).
    assert (m.failed, m.changes, m.change_failure_rate) == (2, 4, 0.5)
    # Restored after 2 h and 6 h.
    assert (m.time_to_restore_median_s, m.restores_measured) == (4 * HOUR, 2)
    assert (m.rollback_recovery_median_s, m.rollbacks_measured) == (1 * HOUR, 1)
    assert (m.stalled, m.paused) == (2, 1)


def test_weeks(report):
    # 2026-01-01 is a Thursday: one week, from Monday 2025-12-29.
    assert [(w.start, w.rollouts, w.rolled_back, w.rollbacks) for w in report.weeks] == \
        [(us(-72), 5, 2, 1)]


def test_versions_where_how_long_and_who_still_runs_them(report):
    rows = {v.version: v for v in report.versions}
    assert list(rows) == ["1.0", "2.0", "1.1", "2.1", "1.2", "2.2", "1.3"]
    hours = {v: round(r.instance_hours, 6) for v, r in rows.items()}
    # 1.1: w4 11-30, w5 12-50, w6 13-35.5, w8 32-60, w10 35.5-60.
    assert hours == {"1.0": 36, "2.0": 46, "1.1": 132, "2.1": 64, "1.2": 2, "2.2": 10,
                     "1.3": 10}
    assert (rows["1.0"].first_seen, rows["1.0"].last_seen) == (us(0), us(13))
    assert rows["1.1"].last_seen is None
    assert rows["1.1"].running_in == (("prod/us-east-1/web", 2),)
    assert rows["2.1"].running_in == (("prod/us-east-1/api", 2),)
    assert rows["1.2"].running_in == () and rows["1.2"].instances == 1
    assert rows["2.2"].groups == ("prod/us-east-1/api",)


def test_lanes_of_versions(report):
    web = [(s.start, s.version) for s in report.lanes["prod/us-east-1/web"]]
    assert web == [(us(0), "1.0"), (us(11), None), (us(13), "1.1"), (us(30), None),
                   (us(32), "1.1"), (us(50), None)]
    assert report.lanes["prod/us-east-1/web"][-1].end == us(60)


def test_a_narrower_range_and_selection(seeded):
    params = ReportParams(known.h(25), known.h(44), groups=("api",),
                          stall_after=known.STALL_AFTER, failure_window=known.FAILURE_WINDOW)
    report = build_report(seeded, params)
    # api 2.0 -> 2.1 started at h20, before the range: only 2.1 -> 2.2 and its rollback.
    assert [(r.to_version, r.kind) for r in report.rollouts] == [("2.2", "rollout")]
    assert report.actions == []
    assert {v.version for v in report.versions} == {"2.0", "2.1", "2.2"}
    # The rollback at h45 is after the range: what the report cannot see, it does not count.
    assert report.metrics.failed == 0


def test_a_shorter_failure_window_does_not_count_a_late_rollback(seeded):
    params = ReportParams(known.h(0), known.h(known.END_H), stall_after=known.STALL_AFTER,
                          failure_window=timedelta(hours=4))
    report = build_report(seeded, params)
    # api 2.2 started at h40; it was rolled back at h45, 5 h later.
    assert not _by(report, "api", "2.2").rolled_back
    assert _by(report, "web", "1.2").rolled_back  # it never completed: rolled back anyway
    assert report.metrics.change_failure_rate == 0.25


def test_a_range_before_fleetview_watched_says_so(seeded):
    params = ReportParams(known.h(-100), known.h(5))
    report = build_report(seeded, params)
    assert report.rollouts == []
    assert any("only since 2025-12-31 23:59" in note for note in report.notes())
