"""30 days of synthetic history for the demo, written into the store as the polls that saw it.

Each change of the story (a rollout batch, a desired version moved, an instance launched) is
one recorded poll of the whole scope, so the store keeps spans exactly as a collector would
have written them. The last poll of each scope is a real poll of the live clouds: the
instances of each group's last rollout carry their live ids, and the first poll of the real
collector finds nothing to change.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import cycle

from fleetview.domain.model import Group, Image, Instance, Inventory, Scope, State
from fleetview.sim.demo_story import (
    FAILING,
    FAILING_SCOPE,
    HISTORY_DAYS,
    RELEASED_DAYS_AGO,
    FailingStory,
    GroupStory,
    StandaloneStory,
)

# How a historical rollout went: in BATCHES equal batches over ROLLOUT_MINUTES.
BATCHES = 5
ROLLOUT_MINUTES = {"small": 40.0, "large": 120.0}
# A failing scope is retried this often; each failure is one poll record.
FAILED_POLL_EVERY = timedelta(minutes=15)

ImageOf = Callable[[str, str], str]  # (region, version) -> image id


@dataclass
class ScopeHistory:
    """What one scope's history is made from: its live poll, the images of every version
    (labelled, by id), where each version's image is, and the story of its groups."""

    live: Inventory
    images: dict[str, Image]
    image_of: ImageOf
    groups: list[GroupStory]
    standalone: list[StandaloneStory]
    live_started: datetime | None = None
    live_finished: datetime | None = None


@dataclass
class HistoryStats:
    polls: int = 0
    spans_opened: int = 0
    by_scope: dict[str, int] = field(default_factory=dict)


class _Ids:
    """Made-up ids for the instances that earlier rollouts replaced, never a live one's."""

    def __init__(self, seed: int = 8) -> None:
        self._random = random.Random(seed)
        self._gcp = 3_000_000_000_000_000_000

    def aws(self) -> str:
        return "i-" + "".join(self._random.choices("0123456789abcdef", k=17))

    def gcp(self) -> str:
        self._gcp += self._random.randint(1, 999)
        return str(self._gcp)

    def suffix(self) -> str:
        return "".join(self._random.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=4))


# An event: ("add", Instance) | ("remove", instance id) | ("group", (region, name), Group)
Event = tuple


class _Timeline:
    def __init__(self) -> None:
        self.events: dict[datetime, list[Event]] = {}

    def at(self, when: datetime, *event: object) -> None:
        self.events.setdefault(when, []).append(tuple(event))


def _made_up(proto: Instance, ids: _Ids, zone: str | None, version: str, image_id: str,
             when: datetime) -> Instance:
    if proto.provider == "aws":
        new_id = ids.aws()
        name = new_id
    else:
        new_id = ids.gcp()
        name = f"{proto.group}-{ids.suffix()}"
    return dataclasses.replace(proto, id=new_id, name=name, zone=zone, image_id=image_id,
                               version=version, state=State.RUNNING, launched_at=when, tags={})


def _group_events(timeline: _Timeline, story: GroupStory, history: ScopeHistory,
                  end: datetime, rollout: timedelta, ids: _Ids) -> None:
    live = history.live
    group = live.group(story.name, story.region)
    if group is None:
        raise ValueError(f"the live poll of {live.scope.name} has no group {story.name} in "
                         f"{story.region}; the seeding did not make it")
    members = sorted((i for i in live.instances
                      if i.group == story.name and i.region == story.region),
                     key=lambda i: (i.launched_at or end, i.name))
    size = group.target_size
    proto = members[0] if members else Instance(
        story.provider, "", "", live.scope.name, live.scope.account, story.region,
        group.zone, story.name, None, State.RUNNING)
    zones = cycle([i.zone for i in members] or [group.zone])

    def state(version: str, updating: bool) -> Group:
        return dataclasses.replace(
            group, desired_image_id=history.image_of(story.region, version),
            desired_version=version, canary_image_id=None, canary_version=None,
            updating=updating)

    key = (story.region, story.name)
    eras: list[list[Instance]] = []
    last = len(story.rollouts) - 1
    for n, (days, version) in enumerate(story.rollouts):
        when = end - timedelta(days=days)
        image_id = history.image_of(story.region, version)
        if n == last:
            slots = [i for i in members if i.version == version][:size]
        else:
            slots = []
        while len(slots) < size:
            slots.append(_made_up(proto, ids, next(zones), version, image_id, when))
        eras.append(slots)
        if n == 0:
            timeline.at(when, "group", key, state(version, False))
            for inst in slots:
                timeline.at(when, "add", inst)
            continue
        timeline.at(when, "group", key, state(version, True))
        old = eras[n - 1]
        for batch in range(BATCHES):
            lo, hi = size * batch // BATCHES, size * (batch + 1) // BATCHES
            at = when + rollout * (batch + 1) / BATCHES
            for inst in old[lo:hi]:
                timeline.at(at, "remove", inst.id)
            for inst in slots[lo:hi]:
                timeline.at(at, "add", dataclasses.replace(inst, launched_at=at)
                            if n != last else inst)
        timeline.at(when + rollout, "group", key, state(version, False))
    for days, version in story.template_moves:
        timeline.at(end - timedelta(days=days), "group", key, state(version, False))


def _standalone_events(timeline: _Timeline, story: StandaloneStory, history: ScopeHistory,
                       end: datetime) -> None:
    for inst in history.live.instances:
        if inst.group is None and inst.name == story.name and inst.region == story.region:
            timeline.at(end - timedelta(days=story.days_ago), "add", inst)
            return
    raise ValueError(f"the live poll of {history.live.scope.name} has no standalone instance "
                     f"{story.name} in {story.region}; the seeding did not make it")


def _released(image: Image, end: datetime) -> datetime:
    days = RELEASED_DAYS_AGO.get(image.version or "", HISTORY_DAYS)
    return end - timedelta(days=days)


def _replay(store, scope: Scope, timeline: _Timeline, images: dict[str, Image],
            regions_ok: tuple[str, ...], end: datetime, stats: HistoryStats) -> None:
    """Record one poll per moment of change, in time order."""
    current: dict[str, Instance] = {}
    groups: dict[tuple[str, str], Group] = {}
    released = sorted(((_released(img, end), key, img) for key, img in images.items()),
                      key=lambda r: r[0])
    for when in sorted(timeline.events):
        for event in timeline.events[when]:
            if event[0] == "add":
                current[event[1].id] = event[1]
            elif event[0] == "remove":
                current.pop(event[1], None)
            else:
                groups[event[1]] = event[2]
        known = {key: img for at, key, img in released if at <= when}
        inventory = Inventory(scope=scope, polled_at=when, instances=tuple(current.values()),
                              groups=tuple(groups.values()), images=known,
                              regions_ok=regions_ok, api_calls=3 + len(regions_ok) * 4)
        summary = store.record_poll(inventory, when - timedelta(seconds=2),
                                    when + timedelta(seconds=1))
        stats.polls += 1
        stats.spans_opened += summary.opened
        stats.by_scope[scope.name] = stats.by_scope.get(scope.name, 0) + 1


def write_scope_history(store, history: ScopeHistory, size: str, stats: HistoryStats,
                        ids: _Ids | None = None) -> None:
    """The scope's 30 days, then its live poll as the last one."""
    live = history.live
    end = live.polled_at
    ids = ids or _Ids()
    timeline = _Timeline()
    rollout = timedelta(minutes=ROLLOUT_MINUTES[size])
    for story in history.groups:
        _group_events(timeline, story, history, end, rollout, ids)
    for story in history.standalone:
        _standalone_events(timeline, story, history, end)
    images = {**history.images, **live.images}
    _replay(store, live.scope, timeline, images, live.regions_ok, end, stats)
    started = history.live_started or end
    finished = history.live_finished or end
    summary = store.record_poll(live, started, finished)
    stats.polls += 1
    stats.spans_opened += summary.opened
    stats.by_scope[live.scope.name] = stats.by_scope.get(live.scope.name, 0) + 1


def _failing_image(version: str) -> Image:
    digits = "".join(c for c in version if c.isdigit())
    return Image("aws", f"ami-0{digits.rjust(16, '0')}", f"legacy-app-{version}-20260901",
                 tags={"version": version}, version=version)


def write_failing_history(store, live: Inventory, end: datetime, stats: HistoryStats,
                          story: FailingStory = FAILING, ids: _Ids | None = None,
                          live_started: datetime | None = None) -> None:
    """A scope that ran a few instances for weeks and whose polls have failed for the last
    hours: its spans stay open (a failed poll changes none), its freshness turns red."""
    ids = ids or _Ids(seed=13)
    scope = Scope("aws", FAILING_SCOPE, story.account, (story.region,))
    timeline = _Timeline()
    images = {}
    zones = cycle([f"{story.region}a", f"{story.region}b"])
    for name, version, days in story.instances:
        image = _failing_image(version)
        images[image.id] = image
        when = end - timedelta(days=days)
        timeline.at(when, "add", Instance("aws", ids.aws(), name, FAILING_SCOPE, story.account,
                                          story.region, next(zones), None, image.id,
                                          State.RUNNING, launched_at=when, version=version))
    outage = end - timedelta(hours=story.outage_hours)
    # The last good poll saw the same as the one before: it only says "seen until then".
    timeline.events.setdefault(outage, [])
    _replay(store, scope, timeline, images, (story.region,), end, stats)
    message = "; ".join(e.message for e in live.errors) or "the endpoint did not answer"
    at = outage + FAILED_POLL_EVERY
    while at < live.polled_at:
        store.record_failed_poll(FAILING_SCOPE, "aws", story.region, at, at + timedelta(
            seconds=4), message)
        stats.polls += 1
        at += FAILED_POLL_EVERY
    store.record_poll(live, live_started or live.polled_at, live.polled_at)
    stats.polls += 1
