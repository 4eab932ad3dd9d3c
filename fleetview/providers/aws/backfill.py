"""What AWS kept about a scope's past, read for a backfill: launch template versions, Auto
Scaling activities, CloudTrail events and live instances' launch times, as domain Records."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from botocore.exceptions import BotoCoreError, ClientError

from fleetview.domain.backfill import Backfill, Record
from fleetview.domain.model import Image
from fleetview.domain.timestamps import parse_time
from fleetview.providers.aws.clients import CallCounter, Clients, counting
from fleetview.providers.aws.errors import explain
from fleetview.providers.aws.shapes import ASG_TAG, image_of

# CloudTrail answers LookupEvents at most 2 times a second per account and region; FleetView
# keeps a margin under it, so network jitter never bunches three requests into one second.
TRAIL_LIMIT_PER_S = 2.0
TRAIL_RATE_PER_S = 1.8
# The events whose records say which instance ran what, and which version a group wanted.
TRAIL_EVENTS = ("RunInstances", "TerminateInstances", "CreateLaunchTemplateVersion",
                "UpdateAutoScalingGroup", "StartInstanceRefresh")
# Auto Scaling keeps its activities six weeks; CloudTrail its event history 90 days.
ACTIVITY_KEPT = timedelta(weeks=6)
TRAIL_KEPT = timedelta(days=90)
# Records are read from this long before the range too: the launches of instances that were
# running when it began, and the group changes that say what each group wanted then.
LOOK_BEFORE = timedelta(days=14)
IMAGE_BATCH = 200
_LIVE_STATES = ("pending", "running", "stopping", "stopped", "shutting-down")
_ACTIVITY = re.compile(r"^(Launching a new|Terminating) EC2 instance:\s*(i-[0-9a-zA-Z]+)")


class Pace:
    """At most `rate` requests a second, per key (an account's region): a caller waits its
    turn. Shared by the threads of one provider."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.clock, self.sleep = clock, sleep
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait(self, key: str) -> None:
        with self._lock:
            now = self.clock()
            due = max(now, self._next.get(key, now))
            self._next[key] = due + self.interval
        if due > now:
            self.sleep(due - now)


@dataclass
class _Region:
    """What one region's records hold, before they become Records."""

    records: list[Record] = field(default_factory=list)
    # (template id, version number) -> (image id, create time)
    versions: dict[tuple[str, int], tuple[str | None, datetime | None]] = field(
        default_factory=dict)
    template_names: dict[str, str] = field(default_factory=dict)  # name -> id
    image_ids: set[str] = field(default_factory=set)


class History:
    """Reads one [[aws]] scope's records for a time range (`read`)."""

    def __init__(self, config, clients: Clients, *, trail_rate: float = TRAIL_RATE_PER_S,
                 pace: Pace | None = None) -> None:
        self.config = config
        self.clients = clients
        self.pace = pace or Pace(trail_rate)

    def read(self, since: datetime, until: datetime) -> Backfill:
        counter = CallCounter()
        out = Backfill()
        with counting(counter):
            for region in self.config.regions:
                self._region(region, since, until, out)
        out.api_calls = counter.value
        return out

    # -- one region ----------------------------------------------------------------------

    def _region(self, region: str, since: datetime, until: datetime, out: Backfill) -> None:
        state = _Region()
        skipped = out.skipped
        try:
            self._instances(region, state)
            groups = self._groups(region)
        except (ClientError, BotoCoreError) as exc:
            skipped.append(f"{region}: {explain(exc, self.config.profile, region)}; nothing "
                           "was rebuilt for this region")
            return
        self._template_versions(region, groups, state, skipped)
        changes, trail_read = self._trail(region, since, until, state, skipped)
        self._activities(region, since, groups, state, skipped)
        self._group_versions(region, groups, state, changes, trail_read)
        self._images(region, state, out, skipped)
        out.records.extend(state.records)

    def _instances(self, region: str, state: _Region) -> int:
        """Each live instance: it has run its image since its LaunchTime."""
        ec2 = self.clients.client("ec2", region)
        count = 0
        for page in ec2.get_paginator("describe_instances").paginate(
                PaginationConfig={"PageSize": 1000}):
            for reservation in page.get("Reservations", []):
                for raw in reservation.get("Instances", []):
                    if (raw.get("State") or {}).get("Name") not in _LIVE_STATES:
                        continue
                    launched = raw.get("LaunchTime")
                    if not isinstance(launched, datetime):
                        continue
                    tags = {t["Key"]: t.get("Value", "") for t in raw.get("Tags", []) or []}
                    image = raw.get("ImageId")
                    state.records.append(Record(
                        launched.astimezone(UTC), "seen", "launch-time", region,
                        instance_id=raw["InstanceId"], group=tags.get(ASG_TAG) or None,
                        zone=(raw.get("Placement") or {}).get("AvailabilityZone"),
                        image_id=image, name=tags.get("Name") or None))
                    if image:
                        state.image_ids.add(image)
                    count += 1
        return count

    def _groups(self, region: str) -> list[dict]:
        asg = self.clients.client("autoscaling", region)
        groups = []
        for page in asg.get_paginator("describe_auto_scaling_groups").paginate(
                PaginationConfig={"PageSize": 100}):
            groups.extend(page.get("AutoScalingGroups", []))
        return groups

    def _template_versions(self, region: str, groups: list[dict], state: _Region,
                           skipped: list[str]) -> None:
        """Every version of every template a group launches from: its image and CreateTime."""
        ec2 = self.clients.client("ec2", region)
        wanted = {}
        for g in groups:
            spec = _template_of(g)
            if spec and spec.get("LaunchTemplateId"):
                wanted[spec["LaunchTemplateId"]] = g["AutoScalingGroupName"]
        for template_id in wanted:
            try:
                pages = ec2.get_paginator("describe_launch_template_versions").paginate(
                    LaunchTemplateId=template_id, PaginationConfig={"PageSize": 200})
                for page in pages:
                    for v in page.get("LaunchTemplateVersions", []):
                        image = (v.get("LaunchTemplateData") or {}).get("ImageId")
                        if image and image.startswith("resolve:ssm:"):
                            image = None  # resolved at launch: the launch records say
                        created = v.get("CreateTime")
                        state.versions[(template_id, int(v["VersionNumber"]))] = (
                            image, created.astimezone(UTC) if created else None)
                        state.template_names[v.get("LaunchTemplateName", "")] = template_id
                        if image:
                            state.image_ids.add(image)
            except (ClientError, BotoCoreError) as exc:
                skipped.append(f"{region}: launch template {template_id}: "
                               f"{explain(exc, self.config.profile, region)}")

    def _activities(self, region: str, since: datetime, groups: list[dict], state: _Region,
                    skipped: list[str]) -> None:
        """Auto Scaling's launches and terminations of instances (kept six weeks)."""
        asg = self.clients.client("autoscaling", region)
        for g in groups:
            name = g["AutoScalingGroupName"]
            try:
                for page in asg.get_paginator("describe_scaling_activities").paginate(
                        AutoScalingGroupName=name, PaginationConfig={"PageSize": 100}):
                    done = False
                    for activity in page.get("Activities", []):
                        start = activity.get("StartTime")
                        if not isinstance(start, datetime):
                            continue
                        if start < since - LOOK_BEFORE:
                            done = True  # newest first: the rest are older still
                            continue
                        self._activity(region, name, activity, state)
                    if done:
                        break
            except (ClientError, BotoCoreError) as exc:
                skipped.append(f"{region}: Auto Scaling activities of {name}: "
                               f"{explain(exc, self.config.profile, region, 'autoscaling')}")

    @staticmethod
    def _activity(region: str, group: str, activity: dict, state: _Region) -> None:
        if activity.get("StatusCode") != "Successful":
            return
        found = _ACTIVITY.match(activity.get("Description") or "")
        if not found:
            return
        start = activity["StartTime"].astimezone(UTC)
        end = activity.get("EndTime")
        if found.group(1) == "Terminating":
            at = end.astimezone(UTC) if isinstance(end, datetime) else start
            state.records.append(Record(at, "terminate", "asg-activity", region,
                                        instance_id=found.group(2), group=group))
        else:
            state.records.append(Record(start, "launch", "asg-activity", region,
                                        instance_id=found.group(2), group=group))

    def _trail(self, region: str, since: datetime, until: datetime, state: _Region,
               skipped: list[str]) -> tuple[list[tuple[datetime, str, dict]], bool]:
        """CloudTrail's events of the kinds that matter, paced under its rate limit; returns
        the group changes (time, event name, request parameters) for `_group_versions`, and
        whether CloudTrail could be read."""
        trail = self.clients.client("cloudtrail", region)
        changes = []
        key = f"{self.clients.config.name}:{region}"
        start = max(since - LOOK_BEFORE, datetime.now(UTC) - TRAIL_KEPT)
        for name in TRAIL_EVENTS:
            try:
                for event in self._lookup(trail, key, name, start, until):
                    at = event.get("EventTime")
                    if not isinstance(at, datetime):
                        continue
                    try:
                        body = json.loads(event.get("CloudTrailEvent") or "{}")
                    except ValueError:
                        continue
                    if body.get("errorCode"):
                        continue  # a refused call changed nothing
                    changes.extend(_trail_records(region, name, at.astimezone(UTC), body,
                                                  state))
            except (ClientError, BotoCoreError) as exc:
                why = explain(exc, self.config.profile, f"{region} CloudTrail", "cloudtrail")
                skipped.append(
                    f"{why}. Without CloudTrail, instances that ended more than six weeks ago "
                    "and version changes of groups pinned to a template version are left as "
                    "gaps")
                return [], False
        return changes, True

    def _lookup(self, trail, key: str, name: str, start: datetime, until: datetime
                ) -> Iterator[dict]:
        token = None
        while True:
            self.pace.wait(key)
            params = {"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": name}],
                      "StartTime": start, "EndTime": until, "MaxResults": 50}
            if token:
                params["NextToken"] = token
            page = trail.lookup_events(**params)
            yield from page.get("Events", [])
            token = page.get("NextToken")
            if not token:
                return

    def _group_versions(self, region: str, groups: list[dict], state: _Region,
                        changes: list[tuple[datetime, str, dict]], trail_read: bool) -> None:
        """When each group's desired image changed.

        A group on $Latest wants each new template version from its CreateTime. A group
        pinned to a version (or a launch configuration) changes only when someone updates it:
        CloudTrail says when. With no recorded change and CloudTrail read, the group's current
        version has held since it was created (within CloudTrail's 90 days). Before a group's
        first recorded change, what it wanted is not known: a gap."""
        for g in groups:
            name = g["AutoScalingGroupName"]
            created = g.get("CreatedTime")
            created = created.astimezone(UTC) if isinstance(created, datetime) else None
            spec = _template_of(g)
            mine = sorted((c for c in changes if c[2].get("autoScalingGroupName") == name),
                          key=lambda c: c[0])
            if spec and spec.get("Version") == "$Latest" and not mine:
                self._latest(region, name, spec.get("LaunchTemplateId"), created, state)
                continue
            for at, _event, params in mine:
                state.records.append(Record(at, "group_version", "cloudtrail", region,
                                            group=name, image_id=self._image_of_change(
                                                params, at, state), group_kind="asg"))
            if not mine and trail_read and created is not None:
                image = self._current_image(g, state)
                if image:
                    state.records.append(Record(created, "group_version", "launch-template",
                                                region, group=name, image_id=image,
                                                group_kind="asg"))

    def _latest(self, region: str, name: str, template: str | None,
                created: datetime | None, state: _Region) -> None:
        versions = sorted((n, img, at) for (t, n), (img, at) in state.versions.items()
                          if t == template and at is not None)
        before = [v for v in versions if created is not None and v[2] <= created]
        if before:  # the version the group launched when it was created
            state.records.append(Record(created, "group_version", "launch-template", region,
                                        group=name, image_id=before[-1][1], group_kind="asg"))
        for _number, image, at in versions[len(before):]:
            state.records.append(Record(at, "group_version", "launch-template", region,
                                        group=name, image_id=image, group_kind="asg"))

    def _current_image(self, group: dict, state: _Region) -> str | None:
        spec = _template_of(group)
        if not spec:
            return None
        version = spec.get("Version") or "$Default"
        template = spec.get("LaunchTemplateId")
        numbers = [n for (t, n) in state.versions if t == template]
        if not numbers:
            return None
        if version.isdigit():
            number = int(version)
        elif version == "$Latest":
            number = max(numbers)
        else:
            return None  # $Default: which version is default is not in these records
        return state.versions.get((template, number), (None, None))[0]

    def _image_of_change(self, params: dict, at: datetime, state: _Region) -> str | None:
        """The image a group update or refresh asked for, resolved through the template's
        versions as they were at `at`."""
        spec = ((params.get("desiredConfiguration") or {}).get("launchTemplate")
                or params.get("launchTemplate")
                or ((params.get("mixedInstancesPolicy") or {}).get("launchTemplate") or {})
                .get("launchTemplateSpecification"))
        if not spec:
            return None
        template = spec.get("launchTemplateId") or state.template_names.get(
            spec.get("launchTemplateName") or "")
        version = str(spec.get("version") or "$Default")
        if template is None:
            return None
        if version.isdigit():
            return state.versions.get((template, int(version)), (None, None))[0]
        if version == "$Latest":
            existing = [(n, img) for (t, n), (img, created) in state.versions.items()
                        if t == template and created is not None and created <= at]
            return max(existing)[1] if existing else None
        return None

    def _images(self, region: str, state: _Region, out: Backfill, skipped: list[str]) -> None:
        """The images the records name, described where AWS still has them (their tags
        give their versions); a deregistered one keeps its id as its version."""
        for r in state.records:
            if r.image_id:
                state.image_ids.add(r.image_id)
        wanted = sorted(i for i in state.image_ids if i not in out.images)
        ec2 = self.clients.client("ec2", region)
        for n in range(0, len(wanted), IMAGE_BATCH):
            try:
                answer = ec2.describe_images(
                    Filters=[{"Name": "image-id", "Values": wanted[n:n + IMAGE_BATCH]}])
            except (ClientError, BotoCoreError) as exc:
                skipped.append(f"{region}: image names and versions: "
                               f"{explain(exc, self.config.profile, region)}")
                return
            for raw in answer.get("Images", []):
                image: Image = image_of(raw)
                out.images[image.id] = image


def _template_of(group: dict) -> dict | None:
    spec = group.get("LaunchTemplate")
    if spec:
        return spec
    mixed = group.get("MixedInstancesPolicy") or {}
    return (mixed.get("LaunchTemplate") or {}).get("LaunchTemplateSpecification")


def _trail_records(region: str, name: str, at: datetime, body: dict, state: _Region
                   ) -> list[tuple[datetime, str, dict]]:
    """Records from one CloudTrail event; a group change is returned instead, to be resolved
    once every template version is known."""
    params = body.get("requestParameters") or {}
    response = body.get("responseElements") or {}
    if name == "RunInstances":
        for item in ((response.get("instancesSet") or {}).get("items") or []):
            tags = {t.get("key"): t.get("value") for t in
                    ((item.get("tagSet") or {}).get("items") or [])}
            state.records.append(Record(
                at, "launch", "cloudtrail", region, instance_id=item.get("instanceId"),
                group=tags.get(ASG_TAG) or None, image_id=item.get("imageId"),
                zone=(item.get("placement") or {}).get("availabilityZone"),
                name=tags.get("Name") or None))
    elif name == "TerminateInstances":
        items = ((response.get("instancesSet") or {}).get("items")
                 or (params.get("instancesSet") or {}).get("items") or [])
        for item in items:
            if item.get("instanceId"):
                state.records.append(Record(at, "terminate", "cloudtrail", region,
                                            instance_id=item["instanceId"]))
    elif name == "CreateLaunchTemplateVersion":
        version = ((response.get("CreateLaunchTemplateVersionResponse") or {})
                   .get("launchTemplateVersion") or {})
        template, number = version.get("launchTemplateId"), version.get("versionNumber")
        if template and number is not None:
            image = (version.get("launchTemplateData") or {}).get("imageId")
            created = parse_time(version.get("createTime")) or at
            # A version since deleted is known only from here.
            state.versions.setdefault((template, int(number)), (image, created))
            if version.get("launchTemplateName"):
                state.template_names[version["launchTemplateName"]] = template
    elif name in ("UpdateAutoScalingGroup", "StartInstanceRefresh") and \
            params.get("autoScalingGroupName"):
        return [(at, name, params)]
    return []
