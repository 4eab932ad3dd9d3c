"""The facts a cloud kept about its past (launches, terminations, template versions), from
which a fresh install rebuilds the history it did not watch."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from fleetview.domain.model import Image

# Where a span came from: a poll that saw it, or the record it was inferred from.
OBSERVED = "observed"
KINDS = ("launch", "terminate", "seen", "group_version")
# Records of one launch (an Auto Scaling activity, a CloudTrail RunInstances, the instance's
# own LaunchTime) differ by seconds; further apart than this they describe different things.
AGREE = timedelta(minutes=10)
# How many gaps are named one by one; the rest are counted.
GAPS_NAMED = 5


@dataclass(frozen=True)
class Record:
    """One fact, as a cloud kept it.

    `kind`: "launch" (an instance started, on `image_id` when the record says), "terminate"
    (it ended), "seen" (a live instance's own launch time: it has run since `at`), or
    "group_version" (a group's desired image changed to `image_id` at `at`). `source` names
    the record ("cloudtrail", "asg-activity", "launch-template", "launch-time", "audit-log",
    "instance-template", "creation-time"): it is shown with every span inferred from it.
    `group_kind` ("asg", "mig") names the kind of group a "group_version" record is about.
    """

    at: datetime
    kind: str
    source: str
    region: str
    instance_id: str | None = None
    group: str | None = None
    zone: str | None = None
    image_id: str | None = None
    name: str | None = None
    group_kind: str | None = None


@dataclass
class Backfill:
    """What one scope's records say for a time range, and what could not be read (each entry
    a sentence: which record, why, what to grant), so the user knows what the gaps mean.
    `images`: the images the records name that the cloud could still describe (their tags
    give their versions)."""

    records: list[Record] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    api_calls: int = 0
    images: dict[str, Image] = field(default_factory=dict)


@dataclass(frozen=True)
class InferredSpan:
    """An instance ran `image_id` from `start` to `end`, as `source` says."""

    instance_id: str
    region: str
    zone: str | None
    group: str | None
    name: str | None
    image_id: str
    start: datetime
    end: datetime
    source: str


@dataclass(frozen=True)
class InferredGroupSpan:
    """A group's desired image from `start` to `end` (or still, when `end` is None)."""

    region: str
    group: str
    zone: str | None
    kind: str | None
    image_id: str | None
    start: datetime
    end: datetime
    source: str


@dataclass
class Inference:
    """Spans the records support, and the gaps where they are missing or disagree."""

    spans: list[InferredSpan] = field(default_factory=list)
    group_spans: list[InferredGroupSpan] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)

    def gap_summary(self) -> str:
        """One sentence for the user: how many gaps, the first few named."""
        if not self.gaps:
            return ""
        named = "; ".join(self.gaps[:GAPS_NAMED])
        more = f"; and {len(self.gaps) - GAPS_NAMED} more" if len(self.gaps) > GAPS_NAMED else ""
        return f"{len(self.gaps)} left as gaps (records missing or disagreeing): {named}{more}"


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


def _sources(records: Iterable[Record]) -> str:
    return ", ".join(sorted({r.source for r in records}))


def _group_timelines(records: Iterable[Record], gaps: list[str]
                     ) -> tuple[dict[tuple[str, str], list[Record]], dict[tuple[str, str],
                                                                          datetime]]:
    """(region, group) -> its desired-image changes in time order, one record an instant;
    and where a group's timeline stops.

    Two records of one instant naming different images disagree: from there on the group's
    desired image is not known, so its timeline stops there."""
    by_group: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for r in records:
        if r.kind == "group_version" and r.group:
            by_group[(r.region, r.group)].append(r)
    out, stops = {}, {}
    for key, found in by_group.items():
        found.sort(key=lambda r: r.at)
        timeline: list[Record] = []
        for r in found:
            if timeline and timeline[-1].at == r.at:
                if timeline[-1].image_id != r.image_id:
                    gaps.append(f"group {key[1]} ({key[0]}): records of {_when(r.at)} name "
                                f"both {timeline[-1].image_id} and {r.image_id}")
                    timeline.pop()
                    stops[key] = r.at
                    break
                continue
            if timeline and timeline[-1].image_id == r.image_id:
                continue  # no change: the earlier record holds
            timeline.append(r)
        out[key] = timeline
    return out, stops


def _desired_at(timeline: list[Record], at: datetime) -> str | None:
    found = None
    for r in timeline:
        if r.at > at:
            break
        found = r.image_id
    return found


def infer(records: Iterable[Record], since: datetime, until: datetime) -> Inference:
    """The spans `records` support between `since` and `until` (where observed history
    begins: nothing inferred reaches past it).

    An instance span needs a start (a launch, or a live instance's launch time), an image (its
    own records', or its group's desired image when it launched) and an end (a termination,
    or being alive now). What lacks one of them, or where records disagree (two images, two
    launches far apart, an end before the start), is a gap: named in `gaps`, never a span.
    """
    records = list(records)
    result = Inference()
    gaps = result.gaps
    timelines, stops = _group_timelines(records, gaps)

    for (region, group), timeline in timelines.items():
        for n, r in enumerate(timeline):
            end = timeline[n + 1].at if n + 1 < len(timeline) else \
                stops.get((region, group), until)
            start, end = max(r.at, since), min(end, until)
            if start >= end:
                continue
            kind = next((x.group_kind for x in timeline if x.group_kind), None)
            result.group_spans.append(InferredGroupSpan(
                region, group, r.zone, kind, r.image_id, start, end, r.source))

    # Past where a group's records disagree, its instances' images are not known either.
    lookup = {key: timeline + ([Record(stops[key], "group_version", "gap", key[0],
                                       group=key[1])] if key in stops else [])
              for key, timeline in timelines.items()}
    by_instance: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        if r.instance_id and r.kind in ("launch", "terminate", "seen"):
            by_instance[r.instance_id].append(r)
    for instance_id, mine in by_instance.items():
        span, gap = _instance_span(instance_id, mine, lookup, since, until)
        if gap:
            gaps.append(gap)
        elif span is not None:
            result.spans.append(span)
    result.spans.sort(key=lambda s: (s.region, s.group or "", s.instance_id))
    return result


def _instance_span(instance_id: str, mine: list[Record],
                   timelines: Mapping[tuple[str, str], list[Record]], since: datetime,
                   until: datetime) -> tuple[InferredSpan | None, str | None]:
    launches = [r for r in mine if r.kind == "launch"]
    ends = [r for r in mine if r.kind == "terminate"]
    seen = [r for r in mine if r.kind == "seen"]
    starts = launches or seen
    if not starts:
        if min(r.at for r in ends) <= since:
            return None, None  # ended before the range: nothing to say
        return None, (f"{instance_id}: ended {_when(ends[0].at)}, but no record says when it "
                      "started or what it ran")
    first = min(r.at for r in starts)
    # A live instance's launch time is its last start: after a stop and start it is later
    # than its launch, which is no disagreement; earlier than its launch record, it is.
    if max(r.at for r in launches or seen) - first > AGREE or any(
            r.at < first - AGREE for r in seen):
        return None, f"{instance_id}: its launch records disagree on when it started"
    starts = launches + seen
    images = {r.image_id for r in mine if r.image_id}
    group = next((r.group for r in mine if r.group), None)
    region = next((r.region for r in mine if r.region), "")
    if len(images) > 1:
        return None, f"{instance_id}: its records name different images ({', '.join(sorted(images))})"
    image = next(iter(images), None)
    used = list(starts)
    if image is None and group:
        timeline = timelines.get((region, group), [])
        image = _desired_at(timeline, first)
        if image is not None:
            used.append(next(r for r in reversed(timeline) if r.at <= first))
    if image is None:
        return None, (f"{instance_id}: launched {_when(first)}, but no record says which image "
                      "it ran")
    if ends:
        end = min(r.at for r in ends)
        used.extend(ends)
        if end < first:
            return None, f"{instance_id}: its records end it before it started"
    elif seen:
        end = until
    else:
        return None, (f"{instance_id}: launched {_when(first)} on {image}; no record says when "
                      "it ended")
    start, end = max(first, since), min(end, until)
    if start >= end:
        return None, None
    return InferredSpan(
        instance_id, region, next((r.zone for r in mine if r.zone), None), group,
        next((r.name for r in mine if r.name), None), image, start, end, _sources(used)), None


def versions_of(backfill: Backfill, version_of, known: Mapping[str, str | None]
                ) -> dict[str, str | None]:
    """image id -> version label for every image the records name: labelled by
    `version_of(image)` (VersionRules.version_of) where the cloud described it, else what
    the store knows, else the image id (as a poll labels an image it cannot describe)."""
    out: dict[str, str | None] = {}
    for r in backfill.records:
        image_id = r.image_id
        if image_id is None or image_id in out:
            continue
        image = backfill.images.get(image_id)
        if image is not None:
            out[image_id] = version_of(image)
        else:
            out[image_id] = known.get(image_id) or image_id
    return out
