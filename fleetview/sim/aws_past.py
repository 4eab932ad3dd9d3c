"""A month of an AWS fleet's past, played into the local cloud: today's fleet in moto, and the
CloudTrail events, Auto Scaling activities and launch times that tell how it got there.

`play_past` builds it; `Past.inventories()` are the polls a collector watching all along would
have made, so a test can compare a store that watched with one rebuilt by backfill.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from fleetview.domain.model import Group, Instance, Inventory, Scope, State
from fleetview.sim import aws_trail as trail
from fleetview.sim.aws_fleet import clients, register_version

VERSIONS: tuple[str, ...] = ("1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0")
# Days (after `since`) of each rollout after the first, which happens before the range; and
# of the days one instance of each group is replaced on the same version (churn).
ROLLOUT_DAYS: tuple[int, ...] = (8, 16, 24)
CHURN_DAYS: tuple[int, ...] = (3, 12, 20)
ACCOUNT = "123456789012"  # moto's default account


@dataclass
class PastInstance:
    instance_id: str
    group: str
    version: str
    zone: str
    start: datetime
    end: datetime | None = None  # None: runs now (in moto)


@dataclass
class Past:
    """What was played: the range, images, templates, every instance, every desired change."""

    endpoint_url: str
    region: str
    since: datetime
    now: datetime
    images: dict[str, str] = field(default_factory=dict)  # version -> AMI id
    templates: dict[str, str] = field(default_factory=dict)  # group -> template id
    instances: list[PastInstance] = field(default_factory=list)
    desired: dict[str, list[tuple[datetime, str]]] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)

    def desired_at(self, group: str, at: datetime) -> str | None:
        found = None
        for when, version in self.desired[group]:
            if when <= at:
                found = version
        return found

    def inventories(self, scope: str, every: timedelta = timedelta(hours=1),
                    until: datetime | None = None) -> Iterator[Inventory]:
        """The polls of a collector that watched from `since` (every `every`) up to `until`
        (default: now)."""
        until = until or self.now
        sc = Scope("aws", scope, ACCOUNT, (self.region,))
        moment = self.since
        while moment <= until:
            live = [i for i in self.instances
                    if i.start <= moment and (i.end is None or i.end > moment)]
            instances = tuple(Instance(
                provider="aws", id=i.instance_id, name=i.instance_id, scope=scope,
                account=ACCOUNT, region=self.region, zone=i.zone, group=i.group,
                image_id=self.images[i.version], state=State.RUNNING, launched_at=i.start,
                version=i.version) for i in live)
            groups = []
            for name in self.desired:
                version = self.desired_at(name, moment)
                if version is None:
                    continue
                groups.append(Group(
                    provider="aws", scope=scope, account=ACCOUNT, region=self.region,
                    name=name, kind="asg", desired_image_id=self.images[version],
                    target_size=self.sizes[name], desired_version=version))
            yield Inventory(sc, moment, instances, tuple(groups), regions_ok=(self.region,))
            moment += every


def _fake_id(*parts: object) -> str:
    return "i-" + hashlib.sha256(repr(parts).encode()).hexdigest()[:17]


def play_past(endpoint_url: str, region: str = "us-east-1", *, now: datetime | None = None,
              days: int = 30, groups: Sequence[str] = ("web", "api"), size: int = 3,
              rollout_days: Sequence[int] = ROLLOUT_DAYS, churn_days: Sequence[int] = CHURN_DAYS,
              versions: Sequence[str] = VERSIONS, every: timedelta = timedelta(hours=1)
              ) -> Past:
    """Build today's fleet in moto at `endpoint_url` (behind FleetView's local AWS layer)
    and seed its past: each group ran `versions[0]`, rolled to `versions[1]` three days
    before the range began, then to the next version on each of `rollout_days`, replacing
    one instance every `every` (at half past), the old one ending 20 minutes after its
    replacement started. Groups are pinned to a template version number, so CloudTrail's
    UpdateAutoScalingGroup events are what say when their desired version changed."""
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    since = now - timedelta(days=days)
    midnight = since.replace(hour=0, minute=0, second=0)
    past = Past(endpoint_url, region, since, now)
    ec2, asg = clients(endpoint_url, region)
    for version in versions[:len(rollout_days) + 2]:
        past.images[version] = register_version(ec2, version, "tag")
    used = list(past.images)
    zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]][:2]
    events: list[dict] = []
    activities: list[dict] = []
    times: dict = {"instances": {}, "template_versions": [], "groups": {}}
    rollouts = [midnight - timedelta(days=3) + timedelta(hours=10)] + [
        midnight + timedelta(days=d, hours=10) for d in rollout_days]
    created = midnight - timedelta(days=10)
    for name in groups:
        template = ec2.create_launch_template(
            LaunchTemplateName=f"{name}-{region}",
            LaunchTemplateData={"ImageId": past.images[used[0]], "InstanceType": "t3.micro"},
        )["LaunchTemplate"]["LaunchTemplateId"]
        past.templates[name] = template
        stamps = [created - timedelta(days=2)]
        for n, version in enumerate(used[1:], start=2):
            ec2.create_launch_template_version(
                LaunchTemplateId=template, SourceVersion="1",
                LaunchTemplateData={"ImageId": past.images[version]})
            stamps.append(rollouts[n - 2] - timedelta(hours=1))
        for n, stamp in enumerate(stamps, start=1):
            times["template_versions"].append([template, n, stamp.isoformat()])
            if n > 1:
                events.append(trail.create_template_version(
                    stamp, template, f"{name}-{region}", n, past.images[used[n - 1]]))
        asg.create_auto_scaling_group(
            AutoScalingGroupName=name, MinSize=0, MaxSize=size * 2, DesiredCapacity=size,
            AvailabilityZones=zones,
            LaunchTemplate={"LaunchTemplateId": template, "Version": str(len(used))})
        times["groups"][name] = created.isoformat()
        past.sizes[name] = size
        past.desired[name] = [(created, used[0])]
        live = [i["InstanceId"] for i in asg.describe_auto_scaling_groups(
            AutoScalingGroupNames=[name])["AutoScalingGroups"][0]["Instances"]]
        _play_group(past, name, template, size, zones, used, rollouts, created, churn_days,
                    midnight, every, live, events, activities, times)
    trail.seed(endpoint_url, region, events=events, activities=activities, times=times,
               replace=True)
    return past


def _play_group(past: Past, name: str, template: str, size: int, zones: list[str],
                used: list[str], rollouts: list[datetime], created: datetime,
                churn_days: Sequence[int], midnight: datetime, every: timedelta,
                live: list[str], events: list[dict], activities: list[dict], times: dict
                ) -> None:
    """One group's instances over time; the last generation takes moto's live ids."""
    current: list[PastInstance] = []

    def launch(at: datetime, version: str, slot: int) -> PastInstance:
        inst = PastInstance(_fake_id(name, at, slot), name, version, zones[slot % len(zones)],
                            at)
        past.instances.append(inst)
        return inst

    for slot in range(size):
        current.append(launch(created + timedelta(minutes=5 * slot), used[0], slot))
    changes: list[tuple[datetime, str, int, str]] = []  # (at, kind, slot, version)
    for n, at in enumerate(rollouts, start=1):
        past.desired[name].append((at, used[n]))
        events.append(trail.update_group(at, name, template, str(n + 1)))
        for slot in range(size):
            changes.append((at + every * slot + timedelta(minutes=30), "replace", slot, used[n]))
    for day in churn_days:
        at = midnight + timedelta(days=day, hours=13, minutes=30)
        changes.append((at, "churn", day % size, ""))
    changes.sort(key=lambda c: c[0])
    for at, _kind, slot, version in changes:
        if at > past.now:
            continue
        old = current[slot]
        new = launch(at, version or old.version, slot)
        old.end = at + timedelta(minutes=20)
        current[slot] = new
    # Today's instances are moto's: give them the ids of the last generation.
    for slot, inst in enumerate(current):
        if slot < len(live):
            inst.instance_id = live[slot]
            times["instances"][inst.instance_id] = inst.start.isoformat()
    for inst in (i for i in past.instances if i.group == name):
        record = {"instance_id": inst.instance_id, "image_id": past.images[inst.version],
                  "zone": inst.zone, "group": name}
        events.append(trail.run_instances(inst.start, [record],
                                          invoked_by="autoscaling.amazonaws.com"))
        activities.append(trail.activity(name, inst.instance_id, True, inst.start))
        if inst.end is not None:
            events.append(trail.terminate_instances(inst.end, [inst.instance_id],
                                                    invoked_by="autoscaling.amazonaws.com"))
            activities.append(trail.activity(name, inst.instance_id, False, inst.end))
