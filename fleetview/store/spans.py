"""The diff of one poll against the open spans of its scope: what opens, closes, lasts.

Pure functions, no database: the store feeds them the open spans (from its cache or the
database) and writes what they return.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field

from fleetview.domain.model import Group, Instance, Inventory, State

# What an instance span holds besides its id and times; any change opens a new span. A new
# state reason (a Spot interruption), a move into Standby or a warm pool is a change a reader
# wants to see when it happened.
INSTANCE_FIELDS = ("account", "region", "zone", "group_name", "name", "image_id", "version",
                   "state", "lifecycle", "state_reason", "standby", "warm", "desired_image_id",
                   "desired_version")
# target_size and updating stay last: the store reads them back in their own types.
GROUP_FIELDS = ("account", "zone", "kind", "desired_image_id", "desired_version",
                "canary_image_id", "canary_version", "owner", "notes", "target_size",
                "updating")

# Enum .value is a descriptor call; a poll of 50,000 instances notices.
_STATE_TEXT = {state: state.value for state in State}

InstanceKey = str  # instance id, unique within a scope
GroupKey = tuple[str, str]  # (region, group name)


_INSTANCE_ATTRS = operator.attrgetter("account", "region", "zone", "group", "name",
                                      "image_id", "version")


_INSTANCE_EXTRA = operator.attrgetter("lifecycle", "state_reason")
_INSTANCE_WANTS = operator.attrgetter("desired_image_id", "desired_version")


def instance_observation(inst: Instance) -> tuple:
    # The state goes in as plain text: a database driver may write an enum by its name.
    state = inst.state
    return (*_INSTANCE_ATTRS(inst), _STATE_TEXT.get(state) or str(state),
            *_INSTANCE_EXTRA(inst), bool(inst.standby), bool(inst.warm),
            *_INSTANCE_WANTS(inst))


def notes_text(notes) -> str | None:
    """A group's notes as the store keeps them: one a line (None: none)."""
    return "\n".join(notes) if notes else None


def group_observation(group: Group) -> tuple:
    return (group.account, group.zone, group.kind, group.desired_image_id,
            group.desired_version, group.canary_image_id, group.canary_version, group.owner,
            notes_text(group.notes), int(group.target_size), bool(group.updating))


@dataclass(frozen=True)
class Coverage:
    """Which places a poll speaks for: `failed` ones say nothing, `complete` ones say that
    an instance not seen is gone. A place is a region or a zone (a RegionError may name
    either)."""

    failed: frozenset[str]
    complete: frozenset[str]

    @classmethod
    def of(cls, inventory: Inventory) -> Coverage:
        failed = frozenset(e.region for e in inventory.errors)
        return cls(failed, frozenset(inventory.regions_ok) - failed)

    def is_failed(self, region: str | None, zone: str | None) -> bool:
        return region in self.failed or (zone is not None and zone in self.failed)

    def is_complete(self, region: str | None, zone: str | None) -> bool:
        if self.is_failed(region, zone):
            return False
        return region in self.complete or (zone is not None and zone in self.complete)


@dataclass
class Diff:
    """`opened` maps key -> observation; `closed` lists keys whose open span ends now
    (changed ones are in both); `gone` counts the closed keys that were not seen at all."""

    opened: dict[Hashable, tuple] = field(default_factory=dict)
    closed: list[Hashable] = field(default_factory=list)
    unchanged: int = 0
    gone: int = 0
    ignored: int = 0  # seen in a failed region: says nothing

    def apply(self, open_spans: dict[Hashable, tuple]) -> None:
        """Make `open_spans` what it is after this poll (for the in-memory cache)."""
        for key in self.closed:
            open_spans.pop(key, None)
        open_spans.update(self.opened)


def diff(
    open_spans: Mapping[Hashable, tuple],
    seen: Iterable[tuple[Hashable, tuple, str | None, str | None]],
    coverage: Coverage,
    place_of: Callable[[Hashable, tuple], tuple[str | None, str | None]],
) -> Diff:
    """`seen` yields (key, observation, region, zone); `place_of(key, observation)` gives the
    (region, zone) of an open span, to decide whether its absence means it is gone."""
    result = Diff()
    observed: dict[Hashable, tuple] = {}
    failed = coverage.failed
    for key, observation, region, zone in seen:
        if failed and coverage.is_failed(region, zone):
            result.ignored += 1
            continue
        observed[key] = observation  # a duplicate in one poll: the last one wins
    opened, closed = result.opened, result.closed
    get = open_spans.get
    unchanged = 0
    for key, observation in observed.items():
        old = get(key)
        if old is None:
            opened[key] = observation
        elif old == observation:
            unchanged += 1
        else:
            closed.append(key)
            opened[key] = observation
    result.unchanged = unchanged
    if len(observed) - len(opened) + len(closed) < len(open_spans):  # some were not seen
        for key, old in open_spans.items():
            if key not in observed and coverage.is_complete(*place_of(key, old)):
                closed.append(key)
                result.gone += 1
    return result


def diff_instances(open_spans: Mapping[InstanceKey, tuple], inventory: Inventory,
                   coverage: Coverage) -> Diff:
    return diff(
        open_spans,
        ((i.id, instance_observation(i), i.region, i.zone) for i in inventory.instances),
        coverage,
        lambda _key, obs: (obs[1], obs[2]),
    )


def diff_groups(open_spans: Mapping[GroupKey, tuple], inventory: Inventory,
                coverage: Coverage) -> Diff:
    # A group's key carries its region; its zone (a zonal MIG) sits in the observation.
    return diff(
        open_spans,
        (((g.region, g.name), group_observation(g), g.region, g.zone) for g in inventory.groups),
        coverage,
        lambda key, obs: (key[0], obs[1]),
    )
