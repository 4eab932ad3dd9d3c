"""Records -> spans: what a backfill may infer, and where it must leave a gap."""

from datetime import UTC, datetime, timedelta

from fleetview.domain.backfill import Backfill, Record, infer, versions_of
from fleetview.domain.model import Image

T0 = datetime(2026, 11, 1, tzinfo=UTC)
SINCE, UNTIL = T0, T0 + timedelta(days=30)


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def launch(iid, at, image=None, group="web", source="cloudtrail"):
    return Record(at, "launch", source, "us-east-1", instance_id=iid, group=group,
                  image_id=image, zone="us-east-1a")


def end(iid, at, source="cloudtrail"):
    return Record(at, "terminate", source, "us-east-1", instance_id=iid)


def wants(group, at, image, source="cloudtrail"):
    return Record(at, "group_version", source, "us-east-1", group=group, image_id=image,
                  group_kind="asg")


def test_a_launch_and_its_end_make_one_span_named_by_its_records():
    found = infer([launch("i-1", day(2), "ami-a"), end("i-1", day(5), "asg-activity"),
                   launch("i-1", day(2) + timedelta(seconds=20), source="asg-activity")],
                  SINCE, UNTIL)
    assert not found.gaps
    [span] = found.spans
    assert (span.instance_id, span.image_id, span.start, span.end) == ("i-1", "ami-a", day(2),
                                                                      day(5))
    assert span.source == "asg-activity, cloudtrail" and span.group == "web"


def test_a_live_instance_runs_until_observed_history_begins():
    seen = Record(day(10), "seen", "launch-time", "us-east-1", instance_id="i-2",
                  image_id="ami-b", group="web")
    [span] = infer([seen], SINCE, UNTIL).spans
    assert (span.start, span.end, span.source) == (day(10), UNTIL, "launch-time")


def test_an_instance_without_an_end_is_a_gap_not_a_span():
    found = infer([launch("i-3", day(4), "ami-a")], SINCE, UNTIL)
    assert not found.spans
    assert "i-3" in found.gaps[0] and "no record says when it ended" in found.gaps[0]


def test_an_end_without_a_start_is_a_gap_unless_it_was_before_the_range():
    found = infer([end("i-4", day(3)), end("i-5", day(-3))], SINCE, UNTIL)
    assert not found.spans
    assert len(found.gaps) == 1 and "i-4" in found.gaps[0]


def test_records_that_disagree_leave_a_gap():
    two_images = [launch("i-6", day(1), "ami-a"), Record(
        day(1), "seen", "launch-time", "us-east-1", instance_id="i-6", image_id="ami-b")]
    two_starts = [launch("i-7", day(1), "ami-a"), launch("i-7", day(3), "ami-a",
                                                         source="asg-activity"),
                  end("i-7", day(4))]
    backwards = [launch("i-8", day(5), "ami-a"), end("i-8", day(4))]
    found = infer(two_images + two_starts + backwards, SINCE, UNTIL)
    assert not found.spans
    assert [g.split(":")[0] for g in found.gaps] == ["i-6", "i-7", "i-8"]


def test_an_image_comes_from_the_group_when_the_launch_does_not_name_it():
    records = [wants("web", day(-5), "ami-a"), wants("web", day(10), "ami-b"),
               launch("i-9", day(3), source="asg-activity"), end("i-9", day(6)),
               launch("i-10", day(12), source="asg-activity"), end("i-10", day(13))]
    found = infer(records, SINCE, UNTIL)
    images = {s.instance_id: s.image_id for s in found.spans}
    assert images == {"i-9": "ami-a", "i-10": "ami-b"}
    # The group's desired image, from the range's start (a change before it holds at it).
    assert [(g.image_id, g.start, g.end) for g in found.group_spans] == [
        ("ami-a", SINCE, day(10)), ("ami-b", day(10), UNTIL)]


def test_without_the_group_s_version_an_unnamed_launch_is_a_gap():
    found = infer([launch("i-11", day(3), source="asg-activity"), end("i-11", day(4))],
                  SINCE, UNTIL)
    assert not found.spans and "which image" in found.gaps[0]


def test_a_group_whose_records_disagree_stops_where_they_do():
    records = [wants("web", day(1), "ami-a"), wants("web", day(5), "ami-b"),
               wants("web", day(5), "ami-c", source="launch-template")]
    found = infer(records, SINCE, UNTIL)
    assert [(g.image_id, g.end) for g in found.group_spans] == [("ami-a", day(5))]
    assert "both" in found.gaps[0]


def test_nothing_reaches_past_until_or_before_since():
    records = [launch("i-12", day(-3), "ami-a"), end("i-12", day(40)),
               launch("i-13", day(31), "ami-a"), end("i-13", day(32))]
    [span] = infer(records, SINCE, UNTIL).spans
    assert (span.instance_id, span.start, span.end) == ("i-12", SINCE, UNTIL)


def test_versions_of_images_the_cloud_no_longer_has_are_their_ids():
    backfill = Backfill(records=[launch("i-1", day(1), "ami-a"), launch("i-2", day(1), "ami-b"),
                                 launch("i-3", day(1), "ami-c")],
                        images={"ami-a": Image("aws", "ami-a", "app-2.0")})
    found = versions_of(backfill, lambda image: image.name.split("-")[1], {"ami-b": "1.9"})
    assert found == {"ami-a": "2.0", "ami-b": "1.9", "ami-c": "ami-c"}


def test_gap_summary_names_a_few_and_counts_the_rest():
    found = infer([end(f"i-{n}", day(2)) for n in range(8)], SINCE, UNTIL)
    text = found.gap_summary()
    assert text.startswith("8 left as gaps") and "and 3 more" in text


def test_past_a_group_s_disagreement_its_launches_get_no_image():
    records = [wants("web", day(1), "ami-a"), wants("web", day(5), "ami-b"),
               wants("web", day(5), "ami-c", source="launch-template"),
               launch("i-20", day(6), source="asg-activity"), end("i-20", day(7))]
    found = infer(records, SINCE, UNTIL)
    assert not found.spans and any("i-20" in g for g in found.gaps)


def test_a_restarted_instance_s_launch_time_after_its_launch_is_no_disagreement():
    # EC2's LaunchTime is the last start: stopped and started on day 9, launched on day 2.
    records = [launch("i-30", day(2), "ami-a"), Record(
        day(9), "seen", "launch-time", "us-east-1", instance_id="i-30", image_id="ami-a")]
    [span] = infer(records, SINCE, UNTIL).spans
    assert (span.start, span.end, span.source) == (day(2), UNTIL, "cloudtrail, launch-time")
