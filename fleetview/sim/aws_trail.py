"""CloudTrail's event history and Auto Scaling's activities, kept by the local AWS layer.

moto has no CloudTrail LookupEvents and answers DescribeScalingActivities with nothing. The
layer (`aws_refresh_server.RefreshLayer`) records here the calls it passes to moto that
CloudTrail would record (RunInstances, TerminateInstances, CreateLaunchTemplateVersion,
UpdateAutoScalingGroup, StartInstanceRefresh), and the launches and terminations Auto Scaling
makes, each with its time; it answers LookupEvents in CloudTrail's event shape (the event
itself a JSON string, newest first, 50 a page, at most 2 requests a second per account and
region) and DescribeScalingActivities from what it recorded. Tests and the demo seed past
events through `seed()` (POST /fleetview-sim/history), which also sets moto's launch and
creation times, so a local cloud can hold 30 days of history.
"""

from __future__ import annotations

import json
import threading
import time
import traceback
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

SEED_PATH = "/fleetview-sim/history"
CALLS_PATH = "/fleetview-sim/calls"
# CloudTrail's documented limit: LookupEvents, 2 requests a second per account and region.
LOOKUP_RATE = 2
PAGE = 50
SOURCES = {"RunInstances": "ec2.amazonaws.com", "TerminateInstances": "ec2.amazonaws.com",
           "CreateLaunchTemplateVersion": "ec2.amazonaws.com",
           "UpdateAutoScalingGroup": "autoscaling.amazonaws.com",
           "StartInstanceRefresh": "autoscaling.amazonaws.com"}
RECORDED = frozenset(SOURCES)
ASG_TAG = "aws:autoscaling:groupName"


class TrailFault(Exception):
    """An error CloudTrail answers (JSON protocol: `__type` and message)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- CloudTrail events, as AWS writes them (the parts FleetView reads) --------------------------

def event(name: str, at: datetime, request: dict, response: dict | None = None,
          user: str = "fleetview-sim", invoked_by: str | None = None,
          resources: Iterable[tuple[str, str]] = ()) -> dict:
    """One CloudTrail event: LookupEvents' fields, the whole record in `CloudTrailEvent`."""
    event_id = str(uuid.uuid4())
    identity: dict[str, Any] = {"type": "IAMUser", "userName": user}
    if invoked_by:
        identity = {"type": "AWSService", "invokedBy": invoked_by}
    record = {"eventVersion": "1.09", "userIdentity": identity, "eventTime": _iso(at),
              "eventSource": SOURCES.get(name, "ec2.amazonaws.com"), "eventName": name,
              "awsRegion": "", "requestParameters": request, "responseElements": response,
              "eventID": event_id, "readOnly": False, "eventType": "AwsApiCall",
              "managementEvent": True}
    return {"EventId": event_id, "EventName": name, "ReadOnly": "false",
            "EventTime": at.astimezone(UTC).timestamp(), "EventSource": record["eventSource"],
            "Username": invoked_by or user,
            "Resources": [{"ResourceType": t, "ResourceName": n} for t, n in resources],
            "CloudTrailEvent": json.dumps(record)}


def run_instances(at: datetime, instances: Iterable[dict], invoked_by: str | None = None) -> dict:
    """`instances`: dicts of instance_id, image_id, zone, group, name."""
    items = []
    for i in instances:
        tags = [{"key": "Name", "value": i["name"]}] if i.get("name") else []
        if i.get("group"):
            tags.append({"key": ASG_TAG, "value": i["group"]})
        items.append({"instanceId": i["instance_id"], "imageId": i.get("image_id"),
                      "placement": {"availabilityZone": i.get("zone")},
                      "instanceState": {"code": 0, "name": "pending"},
                      "tagSet": {"items": tags}})
    return event("RunInstances", at, {"instancesSet": {"items": [
        {"imageId": items[0]["imageId"] if items else None}]}},
        {"instancesSet": {"items": items}}, invoked_by=invoked_by,
        resources=[("AWS::EC2::Instance", i["instanceId"]) for i in items])


def terminate_instances(at: datetime, instance_ids: Iterable[str],
                        invoked_by: str | None = None) -> dict:
    ids = list(instance_ids)
    items = [{"instanceId": i, "currentState": {"code": 32, "name": "shutting-down"}}
             for i in ids]
    return event("TerminateInstances", at,
                 {"instancesSet": {"items": [{"instanceId": i} for i in ids]}},
                 {"instancesSet": {"items": items}}, invoked_by=invoked_by,
                 resources=[("AWS::EC2::Instance", i) for i in ids])


def create_template_version(at: datetime, template_id: str, template_name: str, number: int,
                            image_id: str) -> dict:
    version = {"launchTemplateId": template_id, "launchTemplateName": template_name,
               "versionNumber": number, "createTime": _iso(at),
               "launchTemplateData": {"imageId": image_id}}
    return event("CreateLaunchTemplateVersion", at,
                 {"CreateLaunchTemplateVersionRequest": {"LaunchTemplateId": template_id,
                                                         "LaunchTemplateData": {
                                                             "ImageId": image_id}}},
                 {"CreateLaunchTemplateVersionResponse": {"launchTemplateVersion": version}},
                 resources=[("AWS::EC2::LaunchTemplate", template_id)])


def update_group(at: datetime, group: str, template_id: str, version: str) -> dict:
    return event("UpdateAutoScalingGroup", at, {
        "autoScalingGroupName": group,
        "launchTemplate": {"launchTemplateId": template_id, "version": str(version)}},
        resources=[("AWS::AutoScaling::AutoScalingGroup", group)])


def start_refresh(at: datetime, group: str, template_id: str, version: str) -> dict:
    return event("StartInstanceRefresh", at, {
        "autoScalingGroupName": group,
        "desiredConfiguration": {"launchTemplate": {"launchTemplateId": template_id,
                                                    "version": str(version)}}},
        {"instanceRefreshId": str(uuid.uuid4())},
        resources=[("AWS::AutoScaling::AutoScalingGroup", group)])


def activity(group: str, instance_id: str, launch: bool, start: datetime,
             end: datetime | None = None) -> dict:
    """One Auto Scaling activity (DescribeScalingActivities' shape)."""
    verb = "Launching a new" if launch else "Terminating"
    return {"ActivityId": str(uuid.uuid4()), "AutoScalingGroupName": group,
            "Description": f"{verb} EC2 instance: {instance_id}",
            "Cause": (f"At {_iso(start)} an instance was "
                      f"{'started' if launch else 'taken out of service'} by FleetView's sim."),
            "StartTime": start.astimezone(UTC).timestamp(),
            "EndTime": (end or start).astimezone(UTC).timestamp(),
            "StatusCode": "Successful", "Progress": 100}


# -- the history the layer keeps ---------------------------------------------------------------

class Trail:
    """Events and activities per (account, region), and every request's time, for checks of
    the rate a client keeps. Thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._events: dict[tuple[str, str], list[dict]] = defaultdict(list)
        self._activities: dict[tuple[str, str], list[dict]] = defaultdict(list)
        self._calls: list[tuple[float, str, str, str]] = []
        self._lookups: dict[tuple[str, str], list[float]] = defaultdict(list)

    def forget(self) -> None:
        """Drop everything (moto's reset)."""
        with self._lock:
            self._events.clear()
            self._activities.clear()
            self._calls.clear()
            self._lookups.clear()

    def forget_place(self, account: str, region: str) -> None:
        """Drop one region's events and activities (a seed that replaces its past)."""
        with self._lock:
            self._events.pop((account, region), None)
            self._activities.pop((account, region), None)

    def add_event(self, account: str, region: str, found: dict) -> None:
        with self._lock:
            self._events[(account, region)].append(found)

    def add_activity(self, account: str, region: str, found: dict) -> None:
        with self._lock:
            self._activities[(account, region)].append(found)

    def note_call(self, service: str, action: str, region: str) -> None:
        with self._lock:
            self._calls.append((self.clock(), service, action, region))

    def calls(self) -> list[dict]:
        with self._lock:
            return [{"at": at, "service": s, "action": a, "region": r}
                    for at, s, a, r in self._calls]

    def lookup(self, account: str, region: str, params: dict) -> dict:
        """LookupEvents: filtered by one attribute and a time range, newest first, paged."""
        now = self.clock()
        with self._lock:
            recent = [t for t in self._lookups[(account, region)] if t > now - 1.0]
            if len(recent) >= LOOKUP_RATE:
                raise TrailFault("ThrottlingException", "Rate exceeded")
            recent.append(now)
            self._lookups[(account, region)] = recent
            found = list(self._events[(account, region)])
        attributes = params.get("LookupAttributes") or []
        if len(attributes) > 1:
            raise TrailFault("InvalidLookupAttributesException",
                             "You cannot specify more than one lookup attribute.")
        size = params.get("MaxResults", PAGE)
        if not isinstance(size, int) or not 1 <= size <= PAGE:
            raise TrailFault("InvalidMaxResultsException",
                             "MaxResults must be between 1 and 50.")
        start, end = params.get("StartTime"), params.get("EndTime")
        if start is not None and end is not None and start > end:
            raise TrailFault("InvalidTimeRangeException",
                             "Start time must be before end time.")
        key = {"EventName": "EventName", "EventId": "EventId", "Username": "Username",
               "EventSource": "EventSource"}
        for attribute in attributes:
            field = key.get(attribute.get("AttributeKey"))
            if field:
                found = [e for e in found if e.get(field) == attribute.get("AttributeValue")]
        if start is not None:
            found = [e for e in found if e["EventTime"] >= float(start)]
        if end is not None:
            found = [e for e in found if e["EventTime"] <= float(end)]
        found.sort(key=lambda e: e["EventTime"], reverse=True)
        offset = 0
        token = params.get("NextToken")
        if token:
            if not str(token).isdigit() or int(token) > len(found):
                raise TrailFault("InvalidNextTokenException", "Invalid NextToken.")
            offset = int(token)
        page: dict[str, Any] = {"Events": found[offset:offset + size]}
        if offset + size < len(found):
            page["NextToken"] = str(offset + size)
        return page

    def activities(self, account: str, region: str, params: dict) -> dict:
        """DescribeScalingActivities: one group's (or all groups') activities, newest first."""
        with self._lock:
            found = list(self._activities[(account, region)])
        group = params.get("AutoScalingGroupName")
        if group:
            found = [a for a in found if a["AutoScalingGroupName"] == group]
        wanted = params.get("ActivityIds")
        if wanted:
            found = [a for a in found if a["ActivityId"] in wanted]
        found.sort(key=lambda a: a["StartTime"], reverse=True)
        size = params.get("MaxRecords") or 100
        offset = int(params["NextToken"]) if str(params.get("NextToken") or "").isdigit() else 0
        page: dict[str, Any] = {"Activities": [
            {**a, "StartTime": datetime.fromtimestamp(a["StartTime"], UTC),
             "EndTime": datetime.fromtimestamp(a["EndTime"], UTC)}
            for a in found[offset:offset + size]]}
        if offset + size < len(found):
            page["NextToken"] = str(offset + size)
        return page


# -- what moto holds: launch and creation times, group members ---------------------------------

def set_times(account: str, region: str, times: dict) -> None:
    """Move moto's own clocks back: instances' LaunchTime, template versions' and groups'
    CreateTime, as they would be in a cloud that ran for weeks. `times` holds "instances"
    {id: iso}, "template_versions" [[template id, number, iso]], "groups" {name: iso}."""
    from moto.autoscaling.models import autoscaling_backends
    from moto.ec2.models import ec2_backends

    ec2 = ec2_backends[account][region]
    for instance_id, at in (times.get("instances") or {}).items():
        ec2.get_instance_by_id(instance_id).launch_time = _naive(at)
    for template_id, number, at in times.get("template_versions") or []:
        template = ec2.launch_templates[template_id]
        for version in template.versions:
            if version.number == int(number):
                version.create_time = _naive(at)
    asg = autoscaling_backends[account][region]
    for name, at in (times.get("groups") or {}).items():
        asg.autoscaling_groups[name].created_time = _naive(at).isoformat()


def _naive(text: str) -> datetime:
    # moto keeps naive UTC datetimes.
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).replace(
        tzinfo=None)


def members(account: str, region: str) -> dict[str, dict[str, dict]]:
    """group -> instance id -> what a RunInstances record says of it, as moto holds them."""
    from moto.autoscaling.models import autoscaling_backends

    out: dict[str, dict[str, dict]] = {}
    backend = autoscaling_backends[account][region]
    for name, group in backend.autoscaling_groups.items():
        found = {}
        for state in group.instance_states:
            inst = state.instance
            placement = getattr(inst, "placement", None)
            zone = getattr(placement, "zone", placement)
            found[inst.id] = {"instance_id": inst.id, "image_id": inst.image_id,
                              "zone": zone if isinstance(zone, str) else None, "group": name}
        out[name] = found
    return out


def record_changes(trail: Trail, account: str, region: str,
                   before: dict[str, dict[str, dict]], after: dict[str, dict[str, dict]],
                   at: datetime) -> None:
    """What Auto Scaling launched and terminated between two looks at its groups: activities
    and the RunInstances / TerminateInstances events AWS records for them."""
    for group in set(before) | set(after):
        old, new = before.get(group, {}), after.get(group, {})
        launched = [new[i] for i in new if i not in old]
        ended = [i for i in old if i not in new]
        if launched:
            trail.add_event(account, region, run_instances(
                at, launched, invoked_by="autoscaling.amazonaws.com"))
            for inst in launched:
                trail.add_activity(account, region, activity(group, inst["instance_id"], True,
                                                              at))
        if ended:
            trail.add_event(account, region, terminate_instances(
                at, ended, invoked_by="autoscaling.amazonaws.com"))
            for instance_id in ended:
                trail.add_activity(account, region, activity(group, instance_id, False, at))


# -- seeding, from a test or the demo ----------------------------------------------------------

def seed(url: str, region: str, *, events: Iterable[dict] = (), activities: Iterable[dict] = (),
         times: dict | None = None, account: str | None = None, replace: bool = False) -> None:
    """Add past events and activities to the local layer at `url`, and set moto's times.
    `replace`: first drop what the region recorded so far (the calls that built the fleet
    now, which the seeded past stands for)."""
    body = json.dumps({"region": region, "account": account, "events": list(events),
                       "activities": list(activities), "times": times or {},
                       "replace": replace}).encode()
    request = urllib.request.Request(url.rstrip("/") + SEED_PATH, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()


def calls(url: str) -> list[dict]:
    """Every request the local layer at `url` saw: at (epoch seconds), service, action,
    region."""
    with urllib.request.urlopen(url.rstrip("/") + CALLS_PATH, timeout=30) as response:
        return json.loads(response.read())


def peak_rate(found: list[dict], action: str) -> int:
    """The most requests of `action` in any one second (per region)."""
    by_region: dict[str, list[float]] = defaultdict(list)
    for c in found:
        if c["action"] == action:
            by_region[c["region"]].append(c["at"])
    peak = 0
    for times in by_region.values():
        times.sort()
        start = 0
        for end, at in enumerate(times):
            while at - times[start] >= 1.0:
                start += 1
            peak = max(peak, end - start + 1)
    return peak


# -- the layer's half: what it serves, what it records -----------------------------------------

class HistoryDesk:
    """The local AWS layer's CloudTrail and Auto Scaling activities: `before` answers
    LookupEvents, DescribeScalingActivities and the sim's own paths, and takes what `after`
    needs to record a call moto served; `look`/`changed` record what Auto Scaling itself
    launched and terminated meanwhile (an instance refresh's batches)."""

    def __init__(self, protocol: Any, account_of: Callable[[dict, str], str],
                 form_of: Callable[[dict], dict[str, str]]) -> None:
        self.trail = Trail()
        self.protocol = protocol  # Auto Scaling's Query protocol (XML answers)
        self.account_of = account_of
        self.form_of = form_of
        self.places: set[tuple[str, str]] = set()

    # requests

    def sim_path(self, path: str, method: str, environ: dict, start_response: Callable
                 ) -> list[bytes] | None:
        if path == SEED_PATH and method == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            payload = json.loads(environ["wsgi.input"].read(length) or b"{}")
            try:
                self._seed(payload)
            except Exception as exc:  # noqa: BLE001 - a test's mistake: say it, keep serving
                return _plain(start_response, "400 Bad Request",
                              f"{type(exc).__name__}: {exc}")
            return _plain(start_response, "200 OK", "seeded")
        if path == CALLS_PATH and method == "GET":
            return _plain(start_response, "200 OK", json.dumps(self.trail.calls()),
                          "application/json")
        return None

    def _seed(self, payload: dict) -> None:
        from moto.core import DEFAULT_ACCOUNT_ID

        account = payload.get("account") or DEFAULT_ACCOUNT_ID
        region = payload["region"]
        if payload.get("replace"):
            self.trail.forget_place(account, region)
        for found in payload.get("events") or []:
            self.trail.add_event(account, region, found)
        for found in payload.get("activities") or []:
            self.trail.add_activity(account, region, found)
        if payload.get("times"):
            set_times(account, region, payload["times"])

    def before(self, environ: dict, service: str, access_key: str, region: str,
               start_response: Callable) -> tuple[list[bytes] | None, Any]:
        """(an answer, or None to pass the request on; what `after` needs)."""
        if not service:
            return None, None
        if service == "cloudtrail":
            action = environ.get("HTTP_X_AMZ_TARGET", "").rpartition(".")[2]
            self.trail.note_call(service, action, region)
            if action == "LookupEvents":
                return self._lookup(environ, access_key, region, start_response), None
            return None, None
        form = self.form_of(environ) if service in ("ec2", "autoscaling") else {}
        action = form.get("Action", "")
        self.trail.note_call(service, action, region)
        if service == "autoscaling" and action == "DescribeScalingActivities":
            account = self.account_of(environ, access_key)
            params = self.protocol.parse(action, form)
            body = self.protocol.answer(action, self.trail.activities(account, region, params))
            return _plain(start_response, "200 OK", body, "text/xml"), None
        if service == "autoscaling" and not action.startswith("Describe"):
            account = self.account_of(environ, access_key)
            self.places.add((account, region))
            return None, ("asg", account, region, action, form, self._members(account, region))
        if service == "ec2" and action in RECORDED:
            return None, ("ec2", self.account_of(environ, access_key), region, action, form,
                          None)
        return None, None

    def after(self, pending: Any, answer: list[bytes], status: str = "200") -> None:
        """Record what a call moto served did (called holding the layer's lock). A failure
        to record is the sim's bug: said in its log, the call's answer stands."""
        if pending is None or not status.startswith("2"):
            return
        try:
            self._record(pending, answer)
        except Exception:  # noqa: BLE001
            traceback.print_exc()

    def _record(self, pending: Any, answer: list[bytes]) -> None:
        kind, account, region, action, form, before = pending
        at = datetime.now(UTC)
        if kind == "asg":
            record_changes(self.trail, account, region, before, self._members(account, region),
                           at)
            if action == "UpdateAutoScalingGroup" and (
                    form.get("LaunchTemplate.LaunchTemplateId")
                    or form.get("LaunchTemplate.LaunchTemplateName")):
                template = form.get("LaunchTemplate.LaunchTemplateId") or \
                    self._template_id(account, region, form["LaunchTemplate.LaunchTemplateName"])
                self.trail.add_event(account, region, update_group(
                    at, form["AutoScalingGroupName"], template,
                    form.get("LaunchTemplate.Version") or "$Default"))
            return
        xml = b"".join(answer)
        if action == "RunInstances":
            items = _items(xml, "instancesSet")
            self.trail.add_event(account, region, run_instances(at, [
                {"instance_id": i.get("instanceId"), "image_id": i.get("imageId"),
                 "zone": i.get("availabilityZone")} for i in items]))
        elif action == "TerminateInstances":
            ids = [i.get("instanceId") for i in _items(xml, "instancesSet")]
            self.trail.add_event(account, region, terminate_instances(at, [i for i in ids if i]))
        elif action == "CreateLaunchTemplateVersion":
            version = _first(xml, "launchTemplateVersion")
            if version.get("launchTemplateId"):
                self.trail.add_event(account, region, create_template_version(
                    at, version["launchTemplateId"], version.get("launchTemplateName", ""),
                    int(version.get("versionNumber") or 0), version.get("imageId") or ""))

    def served(self, action: str, params: dict, account: str, region: str) -> None:
        """A call the layer itself served (StartInstanceRefresh) succeeded."""
        if action != "StartInstanceRefresh":
            return
        spec = (params.get("DesiredConfiguration") or {}).get("LaunchTemplate") or {}
        template = spec.get("LaunchTemplateId") or (
            self._template_id(account, region, spec["LaunchTemplateName"])
            if spec.get("LaunchTemplateName") else None)
        if template:
            self.trail.add_event(account, region, start_refresh(
                datetime.now(UTC), params["AutoScalingGroupName"], template,
                spec.get("Version") or "$Default"))
        self.places.add((account, region))

    def look(self) -> dict:
        """Every known place's group members (before the refresh thread's batch)."""
        return {place: self._members(*place) for place in list(self.places)}

    def changed(self, before: dict) -> None:
        at = datetime.now(UTC)
        for (account, region), old in before.items():
            record_changes(self.trail, account, region, old, self._members(account, region),
                           at)

    def forget(self) -> None:
        self.trail.forget()
        self.places.clear()

    # helpers

    def _lookup(self, environ: dict, access_key: str, region: str, start_response: Callable
                ) -> list[bytes]:
        account = self.account_of(environ, access_key)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        try:
            params = json.loads(environ["wsgi.input"].read(length) or b"{}")
            body, status = json.dumps(self.trail.lookup(account, region, params)), "200 OK"
        except TrailFault as fault:
            body = json.dumps({"__type": fault.code, "message": fault.message})
            status = f"{fault.status} Bad Request"
        except ValueError:
            body = json.dumps({"__type": "SerializationException",
                               "message": "the request is not JSON"})
            status = "400 Bad Request"
        return _plain(start_response, status, body, "application/x-amz-json-1.1")

    @staticmethod
    def _members(account: str, region: str) -> dict:
        try:
            return members(account, region)
        except Exception:  # noqa: BLE001 - a region moto has not made yet holds no groups
            return {}

    @staticmethod
    def _template_id(account: str, region: str, name: str) -> str:
        from moto.ec2.models import ec2_backends

        for template in ec2_backends[account][region].launch_templates.values():
            if template.name == name:
                return template.id
        return name


def _plain(start_response: Callable, status: str, body: str | bytes,
           kind: str = "text/plain") -> list[bytes]:
    data = body.encode() if isinstance(body, str) else body
    start_response(status, [("Content-Type", kind), ("Content-Length", str(len(data))),
                            ("x-amzn-RequestId", str(uuid.uuid4()))])
    return [data]


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _flat(element: Any) -> dict[str, str]:
    """Every leaf below `element` by its local name (the first of each name wins)."""
    out: dict[str, str] = {}
    for node in element.iter():
        if len(node) == 0 and node.text is not None:
            out.setdefault(_local(node.tag), node.text)
    return out


def _items(xml: bytes, container: str) -> list[dict[str, str]]:
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return []
    for node in root.iter():
        if _local(node.tag) == container:
            return [_flat(item) for item in node]
    return []


def _first(xml: bytes, container: str) -> dict[str, str]:
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return {}
    for node in root.iter():
        if _local(node.tag) == container:
            return _flat(node)
    return {}
