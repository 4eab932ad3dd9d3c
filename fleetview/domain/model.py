"""The fleet as one poll sees it: scopes, images, instances, groups and the inventory."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

# A cloud's registry name ("aws", "gcp", ...): the providers declare them, the domain does not.
Provider = str


class State(enum.StrEnum):
    """An instance's lifecycle state, the same words on every cloud.

    Each cloud maps its own states onto these (EC2 and GCE share most words; GCE adds
    suspending, suspended, repairing, and waiting for capacity).
    """

    PENDING = "pending"  # starting: it will run within minutes
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    TERMINATED = "terminated"
    SUSPENDING = "suspending"
    SUSPENDED = "suspended"  # memory kept, not running: it serves nothing until resumed
    REPAIRING = "repairing"  # taken out of service by the cloud until it is repaired
    WAITING = "waiting"  # asked for, not started: queued for capacity (GCE flex-start)
    UNKNOWN = "unknown"

    @classmethod
    def parse(cls, value: str | None) -> State:
        try:
            return cls(value) if value else cls.UNKNOWN
        except ValueError:
            return cls.UNKNOWN

    @property
    def live(self) -> bool:
        """Whether an instance in this state counts as a member of its group: running or
        starting. One that is stopping, stopped, suspended, in repair or still waiting for
        capacity serves nothing and may stay so for hours."""
        return self in (State.PENDING, State.RUNNING, State.UNKNOWN)


@dataclass(frozen=True)
class Scope:
    """One configured account (AWS) or project (GCP), as named in the config.

    `account` is the AWS account id or the GCP project id; `regions` the regions it covers
    (empty for a GCP scope that polls every zone through aggregated lists).
    """

    provider: Provider
    name: str
    account: str
    regions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Image:
    """A machine image: an AMI or a GCE image. `gone` is set once the cloud no longer has it."""

    provider: Provider
    id: str
    name: str
    created_at: datetime | None = None
    tags: dict[str, str] = field(default_factory=dict)
    deprecated: bool = False
    gone: bool = False
    version: str | None = None


@dataclass(frozen=True)
class Instance:
    """One virtual machine. `group` is None for a standalone instance."""

    provider: Provider
    id: str
    name: str
    scope: str
    account: str
    region: str
    zone: str | None
    group: str | None
    image_id: str | None
    state: State
    launched_at: datetime | None = None
    version: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    # What the group says of it: ASG lifecycle InService, a MIG's currentAction NONE. None:
    # the cloud did not say (a standalone instance, a poll that does not ask).
    healthy: bool | None = None
    # How it is billed and may be taken back: "spot", "preemptible" (None: on demand).
    lifecycle: str | None = None
    # The cloud's reason for its last state change, in words a reader understands
    # ("Spot interruption", "Preempted"), so an ended instance is not unexplained churn.
    state_reason: str | None = None
    # Held out of service by its group (an ASG's Standby): a member that serves nothing, which
    # plans name rather than skip.
    standby: bool = False
    # Waiting in a warm pool (stopped or hibernated, not yet in the group): never drift,
    # never a member; plans say what happens to it.
    warm: bool = False
    # The cloud's size of machine (EC2 InstanceType); not stored, read to find what it wants.
    instance_type: str | None = None
    # What its group launches for an instance like it, where that is not the group's own image
    # (a mixed instances override with its own template or AMI); None: the group's.
    desired_image_id: str | None = None
    desired_version: str | None = None

    def wanted_image(self, group: Group) -> str | None:
        """The image its group wants it to run: the one rule for drift, everywhere."""
        return self.desired_image_id or group.desired_image_id


@dataclass(frozen=True)
class Group:
    """An Auto Scaling group (kind "asg") or a managed instance group (kind "mig").

    `desired_*` is what the group launches now: its launch template version or instance
    template. `canary_*` is a MIG's second version, when it has one. `updating` is true while
    the provider reports a rollout or instance refresh in progress.
    """

    provider: Provider
    scope: str
    account: str
    region: str
    name: str
    kind: str  # the cloud's word: "asg", "mig"
    desired_image_id: str | None
    target_size: int
    desired_version: str | None = None
    zone: str | None = None
    canary_image_id: str | None = None
    canary_version: str | None = None
    updating: bool = False
    tags: dict[str, str] = field(default_factory=dict)
    extra: dict[str, object] = field(default_factory=dict)
    # The system that manages the group when it is not its own ("CloudFormation stack web",
    # "EKS node group ng-1", "GKE cluster prod"): its next deployment can undo an action.
    owner: str | None = None
    # What the reader should know about how the group's version was read ("image from SSM
    # parameter /app/ami", "AMI shared by 1234: its tags are not visible"), shown with it.
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class RegionError:
    """A region (or zone) that could not be polled, and what to do about it."""

    region: str
    message: str


@dataclass(frozen=True)
class Inventory:
    """One poll of one scope.

    `regions_ok` lists the regions that answered in full: only there may an instance that
    was not seen be taken as gone. A region listed in `errors` says nothing about its
    instances.
    """

    scope: Scope
    polled_at: datetime
    instances: tuple[Instance, ...] = ()
    groups: tuple[Group, ...] = ()
    images: dict[str, Image] = field(default_factory=dict)
    errors: tuple[RegionError, ...] = ()
    regions_ok: tuple[str, ...] = ()
    api_calls: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    def group(self, name: str, region: str | None = None) -> Group | None:
        for g in self.groups:
            if g.name == name and (region is None or g.region == region):
                return g
        return None

    def instance(self, instance_id: str) -> Instance | None:
        for i in self.instances:
            if i.id == instance_id:
                return i
        return None

    def group_of(self, instance: Instance) -> Group | None:
        """The group an instance belongs to (a zonal group only in its own zone)."""
        if instance.group is None:
            return None
        for g in self.groups:
            if g.name == instance.group and g.region == instance.region and (
                    g.zone is None or g.zone == instance.zone):
                return g
        return None

    def members(self, group: Group) -> list[Instance]:
        """The group's live instances (not stopping, stopped, terminated or warm), by id.

        The one definition of a group's members: plans, convergence and drift all use it.
        """
        return sorted((i for i in self.instances
                       if i.group == group.name and i.region == group.region
                       and (group.zone is None or i.zone == group.zone) and i.state.live
                       and not i.warm),
                      key=lambda i: i.id)
