"""Managed instance groups: versions, update policy, and the rollout engine over emulated time."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fleetview.sim.gce.clock import rfc3339
from fleetview.sim.gce.resources import (
    LINK_BASE,
    fingerprint,
    region_link,
    zone_link,
)

if TYPE_CHECKING:
    from fleetview.sim.gce.state import GceState

NONE, CREATING, RECREATING, DELETING = "NONE", "CREATING", "RECREATING", "DELETING"
_ACTIONS = ("abandoning", "creating", "creatingWithoutRetries", "deleting", "none",
            "recreating", "refreshing", "restarting", "resuming", "starting", "stopping",
            "suspending", "verifying")


@dataclass
class Version:
    template: str  # full template link
    name: str = ""
    target_size: dict[str, int] | None = None  # {"fixed": n} or {"percent": p}; None = the rest

    def to_json(self, group_size: int) -> dict[str, Any]:
        out: dict[str, Any] = {"instanceTemplate": self.template}
        if self.name:
            out["name"] = self.name
        if self.target_size is not None:
            ts = dict(self.target_size)
            ts["calculated"] = calculated(self.target_size, group_size, up=False)
            out["targetSize"] = ts
        return out


@dataclass
class Member:
    """One managed instance: the group's view of it (its action), beside the Instance itself."""

    name: str
    zone: str
    template: str
    version_name: str
    action: str = NONE
    until: float = 0.0
    replaces: str | None = None  # surge instance: the old member it will replace
    replaced_by: str | None = None  # old member: its surge replacement
    pending: tuple[str, str] | None = None  # recreate target (template, version name)
    last_error: str | None = None  # why the last create attempt failed


@dataclass
class ManagedGroup:
    project: str
    name: str
    id: int
    created: float
    zone: str | None
    region: str | None
    zones: list[str]
    base_instance_name: str
    versions: list[Version]
    target_size: int
    update_policy: dict[str, Any]
    description: str = ""
    list_results: str = "PAGELESS"
    members: dict[str, Member] = field(default_factory=dict)
    sim_t: float = 0.0
    name_counter: int = 0
    # statefulPolicy.preservedState.disks: device name -> {"autoDelete": ...}
    stateful_disks: dict[str, dict[str, Any]] = field(default_factory=dict)
    # perInstanceConfigs: instance name -> its preservedState ({"disks": {device: {...}}})
    per_instance_configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    target_shape: str = "EVEN"  # distributionPolicy.targetShape (regional groups)

    @property
    def stateful(self) -> bool:
        return bool(self.stateful_disks or self.per_instance_configs)

    def preserved_disks(self, name: str) -> set[str]:
        """The device names whose disks survive a recreate of member `name`."""
        config = self.per_instance_configs.get(name, {})
        return set(self.stateful_disks) | set(config.get("disks", {}))

    @property
    def scope(self) -> str:
        return f"zones/{self.zone}" if self.zone else f"regions/{self.region}"

    @property
    def link(self) -> str:
        if self.zone:
            return f"{zone_link(self.project, self.zone)}/instanceGroupManagers/{self.name}"
        return f"{region_link(self.project, self.region)}/instanceGroupManagers/{self.name}"

    @property
    def path(self) -> str:
        return f"projects/{self.project}/{self.scope}/instanceGroupManagers/{self.name}"

    def active(self) -> list[Member]:
        """Members that count toward the target size: not on their way out."""
        return [m for m in self.members.values()
                if m.replaced_by is None and m.action != DELETING]

    def busy(self) -> bool:
        return any(m.action != NONE for m in self.members.values())

    def version_targets(self) -> list[int]:
        """How many instances each version wants; the version without targetSize gets the rest."""
        counts = []
        for v in self.versions:
            counts.append(calculated(v.target_size, self.target_size, up=False)
                          if v.target_size is not None else -1)
        fixed = sum(c for c in counts if c >= 0)
        rest = max(self.target_size - fixed, 0)
        return [c if c >= 0 else rest for c in counts]

    def assign_targets(self) -> dict[str, Version]:
        """Which version each active member should run, keeping members already on one."""
        quota = self.version_targets()
        active = sorted(self.active(), key=lambda m: (m.action != NONE, m.name))
        out: dict[str, Version] = {}
        left = []
        for m in active:
            template = m.pending[0] if m.pending else m.template
            for i, v in enumerate(self.versions):
                if v.template == template and quota[i] > 0:
                    quota[i] -= 1
                    out[m.name] = v
                    break
            else:
                left.append(m)
        for m in left:
            i = max(range(len(quota)), key=lambda k: quota[k])
            quota[i] -= 1
            out[m.name] = self.versions[i]
        return out

    def is_reached(self) -> bool:
        if self.busy() or len(self.active()) != self.target_size:
            return False
        targets = self.assign_targets()
        return all(self.members[n].template == v.template for n, v in targets.items())

    def is_stable(self) -> bool:
        return not self.busy() and len(self.active()) == self.target_size

    def to_json(self) -> dict[str, Any]:
        counts = dict.fromkeys(_ACTIONS, 0)
        for m in self.members.values():
            counts[m.action.lower()] += 1
        # The version that takes the remainder is the one new instances default to.
        main_template = next((v.template for v in self.versions if v.target_size is None),
                             self.versions[-1].template if self.versions else "")
        out: dict[str, Any] = {
            "kind": "compute#instanceGroupManager",
            "id": str(self.id),
            "creationTimestamp": rfc3339(self.created),
            "name": self.name,
            "description": self.description,
            "instanceTemplate": main_template,
            "versions": [v.to_json(self.target_size) for v in self.versions],
            "instanceGroup": self.link.replace("/instanceGroupManagers/", "/instanceGroups/"),
            "baseInstanceName": self.base_instance_name,
            "fingerprint": fingerprint(self.name, [v.template for v in self.versions],
                                       self.target_size, self.update_policy),
            "currentActions": counts,
            "status": {
                "isStable": self.is_stable(),
                "versionTarget": {"isReached": self.is_reached()},
                "stateful": {"hasStatefulConfig": self.stateful,
                             "perInstanceConfigs": {"allEffective": True}},
                "allInstancesConfig": {"effective": True},
            },
            "targetSize": self.target_size,
            "listManagedInstancesResults": self.list_results,
            "selfLink": self.link,
            "updatePolicy": self.update_policy_json(),
            "instanceLifecyclePolicy": {"forceUpdateOnRepair": "NO",
                                        "defaultActionOnFailure": "REPAIR"},
            "satisfiesPzi": True,
        }
        if self.stateful_disks:
            out["statefulPolicy"] = {"preservedState": {"disks": {
                device: dict(d) for device, d in sorted(self.stateful_disks.items())}}}
        if self.zone:
            out["zone"] = zone_link(self.project, self.zone)
        else:
            out["region"] = region_link(self.project, self.region)
            out["distributionPolicy"] = {
                "zones": [{"zone": zone_link(self.project, z)} for z in self.zones],
                "targetShape": self.target_shape,
            }
        return out

    def preserved_state_json(self, m: Member, disks: dict[str, dict[str, Any]]
                             ) -> dict[str, Any]:
        """A PreservedState for member `m`: its disks of these device names."""
        return {"disks": {device: {
            "source": f"{zone_link(self.project, m.zone)}/disks/{m.name}"
            if device == "persistent-disk-0" else
            f"{zone_link(self.project, m.zone)}/disks/{m.name}-{device}",
            "mode": "READ_WRITE", "autoDelete": d.get("autoDelete", "NEVER")}
            for device, d in sorted(disks.items())}}

    def update_policy_json(self) -> dict[str, Any]:
        p = dict(self.update_policy)
        for key in ("maxSurge", "maxUnavailable"):
            v = dict(p[key])
            v["calculated"] = calculated(v, self.target_size, up=key == "maxSurge")
            p[key] = v
        return p

    def managed_instance_json(self, m: Member, state: GceState) -> dict[str, Any]:
        inst = state.instance_or_none(self.project, m.zone, m.name)
        out: dict[str, Any] = {
            "instance": f"{zone_link(self.project, m.zone)}/instances/{m.name}",
            "currentAction": m.action,
            "version": {"instanceTemplate": m.template,
                        **({"name": m.version_name} if m.version_name else {})},
            "lastAttempt": ({"errors": {"errors": [
                {"code": "RESOURCE_NOT_FOUND", "message": m.last_error}]}}
                if m.last_error else {}),
        }
        if self.stateful_disks:
            out["preservedStateFromPolicy"] = self.preserved_state_json(m, self.stateful_disks)
        config = self.per_instance_configs.get(m.name)
        if config and config.get("disks"):
            out["preservedStateFromConfig"] = self.preserved_state_json(m, config["disks"])
        if inst is not None and m.action != CREATING:
            out["id"] = str(inst.id)
            out["instanceStatus"] = inst.status
        elif inst is not None:
            out["instanceStatus"] = inst.status
        return out


def calculated(value: dict[str, Any] | None, group_size: int, *, up: bool) -> int:
    """A FixedOrPercent's value for a group of `group_size`: surge rounds up, the rest down."""
    if not value:
        return 0
    if "fixed" in value:
        return int(value["fixed"])
    if "percent" in value:
        exact = int(value["percent"]) * group_size / 100
        return math.ceil(exact) if up else math.floor(exact)
    return 0


def default_update_policy(zone_count: int, *, stateful: bool = False,
                          target_shape: str = "EVEN") -> dict[str, Any]:
    """GCE's defaults: a stateful group recreates its instances under their names with no
    surge; a regional group not shaped EVEN does not redistribute proactively."""
    return {
        "type": "PROACTIVE",
        "instanceRedistributionType": ("PROACTIVE" if zone_count > 1 and target_shape == "EVEN"
                                       else "NONE"),
        "minimalAction": "REPLACE",
        "maxSurge": {"fixed": 0 if stateful else zone_count},
        "maxUnavailable": {"fixed": zone_count},
        "replacementMethod": "RECREATE" if stateful else "SUBSTITUTE",
    }


def advance(group: ManagedGroup, now: float, state: GceState) -> None:
    """Play the group's actions forward to `now`, event by event, in emulated time."""
    while True:
        schedule(group, group.sim_t, state)
        due = [m.until for m in group.members.values() if m.action != NONE]
        if not due or min(due) > now:
            group.sim_t = max(group.sim_t, now)
            return
        t = min(due)
        for m in list(group.members.values()):
            if m.action != NONE and m.until <= t and m.name in group.members:
                _complete(group, m, t, state)
        group.sim_t = t


def schedule(group: ManagedGroup, t: float, state: GceState) -> None:
    """Start whatever the group should start at time t: resize, then proactive updates."""
    if not group.versions:
        return
    active = group.active()
    if len(active) < group.target_size:
        targets = group.version_targets()
        have = [0] * len(group.versions)
        for m in active:
            for i, v in enumerate(group.versions):
                if v.template == m.template:
                    have[i] += 1
                    break
        per_zone = dict.fromkeys(group.zones, 0)
        for m in active:
            if m.zone in per_zone:
                per_zone[m.zone] += 1
        for _ in range(group.target_size - len(active)):
            i = max(range(len(targets)), key=lambda k: targets[k] - have[k])
            have[i] += 1
            # ANY_SINGLE_ZONE keeps the whole group in one zone (here: its first).
            zone = group.zones[0] if group.target_shape == "ANY_SINGLE_ZONE" else min(
                group.zones, key=lambda z: per_zone[z])
            per_zone[zone] += 1
            _start_create(group, group.versions[i], zone, t, state)
    elif len(active) > group.target_size:
        surplus = len(active) - group.target_size
        targets = group.assign_targets()
        order = sorted(active, key=lambda m: (
            m.action != CREATING, m.template == targets[m.name].template, m.name))
        for m in order[:surplus]:
            m.action, m.until = DELETING, t + state.delete_seconds
            state.set_instance_status(group.project, m.zone, m.name, "STOPPING")

    policy = group.update_policy
    if policy.get("type") != "PROACTIVE":
        return
    targets = group.assign_targets()
    outdated = [group.members[n] for n, v in sorted(targets.items())
                if group.members[n].action == NONE and group.members[n].replaced_by is None
                and group.members[n].template != v.template]
    if not outdated:
        return
    size = group.target_size
    surge_limit = calculated(policy.get("maxSurge"), size, up=True)
    unavailable_limit = calculated(policy.get("maxUnavailable"), size, up=False)
    if policy.get("replacementMethod") == "RECREATE":
        surge_limit = 0
    if surge_limit == 0 and unavailable_limit == 0:
        unavailable_limit = 1  # the API refuses this combination; never stall a rollout
    # A surge slot is held from the new instance's creation until the old one is deleted.
    surging = sum(1 for m in group.members.values()
                  if (m.action == CREATING and m.replaces)
                  or (m.action == DELETING and m.replaced_by))
    unavailable = sum(1 for m in group.members.values() if m.action == RECREATING)
    for old in outdated:
        target = targets[old.name]
        if surging < surge_limit:
            new = _start_create(group, target, old.zone, t, state)
            new.replaces, old.replaced_by = old.name, new.name
            surging += 1
        elif unavailable < unavailable_limit:
            _start_recreate(group, old, target, t, state)
            unavailable += 1
        else:
            break


def recreate(group: ManagedGroup, member: Member, t: float, state: GceState) -> None:
    """recreateInstances: the same name comes back as a new instance of its target version."""
    target = group.assign_targets().get(member.name)
    if target is None:
        target = Version(member.template, member.version_name)
    _start_recreate(group, member, target, t, state)


def _start_recreate(group: ManagedGroup, m: Member, target: Version, t: float,
                    state: GceState) -> None:
    m.action, m.until = RECREATING, t + state.step_seconds
    m.pending = (target.template, target.name)
    state.set_instance_status(group.project, m.zone, m.name, "STOPPING")


def _start_create(group: ManagedGroup, version: Version, zone: str, t: float,
                  state: GceState) -> Member:
    name = _new_name(group)
    m = Member(name, zone, version.template, version.name, CREATING, t + state.step_seconds)
    group.members[name] = m
    state.make_group_instance(group, m, t, status="PROVISIONING")
    return m


def _complete(group: ManagedGroup, m: Member, t: float, state: GceState) -> None:
    if m.action in (CREATING, RECREATING):
        template = m.pending[0] if m.action == RECREATING and m.pending else m.template
        error = state.creation_error(group.project, template)
        if error:
            # As in GCE: the group keeps retrying, the attempt's error shows on the instance.
            m.last_error = error
            m.until = t + max(state.step_seconds, 1.0)
            return
        m.last_error = None
    if m.action == CREATING:
        m.action = NONE
        state.set_instance_status(group.project, m.zone, m.name, "RUNNING")
        if m.replaces:
            old = group.members.get(m.replaces)
            if old is not None:
                old.action, old.until = DELETING, t + state.delete_seconds
                state.set_instance_status(group.project, old.zone, old.name, "STOPPING")
            m.replaces = None
    elif m.action == RECREATING:
        m.action = NONE
        if m.pending:
            m.template, m.version_name = m.pending
            m.pending = None
        state.make_group_instance(group, m, t, status="RUNNING")
    elif m.action == DELETING:
        group.members.pop(m.name, None)
        state.drop_instance(group.project, m.zone, m.name, at=t, group=group)


_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def _new_name(group: ManagedGroup) -> str:
    # Compute Engine appends four random characters; a counter keeps them unique and stable.
    while True:
        n = group.name_counter = group.name_counter + 1
        n = (n * 2654435761 + group.id) % (36 ** 4)
        suffix = "".join(_ALPHABET[(n // 36 ** k) % 36] for k in range(4))
        name = f"{group.base_instance_name}-{suffix}"
        if name not in group.members:
            return name


def network_link(project: str) -> str:
    return f"{LINK_BASE}projects/{project}/global/networks/default"
