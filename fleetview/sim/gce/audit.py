"""Cloud Audit Logs (Admin Activity) of the emulated Compute Engine: the entries its operations
write, in the real LogEntry shape, and the seeding of a group's past rollouts."""

from __future__ import annotations

import bisect
import hashlib
import itertools
import json
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fleetview.sim.gce.resources import Instance, RawJson, strip_base

if TYPE_CHECKING:
    from fleetview.sim.gce.migs import ManagedGroup
    from fleetview.sim.gce.state import GceState

ACTIVITY_LOG = "cloudaudit.googleapis.com%2Factivity"
AUDIT_TYPE = "type.googleapis.com/google.cloud.audit.AuditLog"
# Who GCE names as the caller: a MIG acts as the project's Google APIs service agent.
MIG_AGENT = "GCE Managed Instance Group"
OPERATOR = "operator@example.com"
OPERATOR_AGENT = "google-cloud-sdk gcloud/475.0.0"
OPERATOR_IP = "203.0.113.10"


def project_number(project: str) -> str:
    """A stable project number for a project id (GCE names MIG callers by number)."""
    return str(100_000_000_000 + int(hashlib.sha1(project.encode()).hexdigest()[:8], 16))


def log_time(epoch: float) -> str:
    """A timestamp as Cloud Logging writes it: UTC, microseconds, 'Z'."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, order=True)
class Stored:
    """One entry, kept in (time, sequence) order; `instance_id`/`group` find it again. An
    entry never changes once written: `raw` is its JSON, serialized once for every list."""

    at: float
    seq: int
    entry: dict[str, Any] = field(compare=False)
    instance_id: str = field(default="", compare=False)
    group: str = field(default="", compare=False)
    raw: RawJson = field(default=RawJson(""), compare=False, repr=False)

    @classmethod
    def of(cls, at: float, seq: int, entry: dict[str, Any], instance_id: str = "",
           group: str = "") -> Stored:
        return cls(at, seq, entry, instance_id, group,
                   RawJson(json.dumps(entry, separators=(",", ":"))))


class AuditLog:
    """The Admin Activity log of every project, in time order. Thread-safe.

    Every operation writes two entries, as GCE does: the `first` (with the request and the
    operation it returned) and the `last` (when the change is done; here at the same moment,
    since the emulator changes resources at once). A failed seed is refused, never logged.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, list[Stored]] = {}
        self._seq = itertools.count(1)

    # ---- reading ---------------------------------------------------------------------------

    def entries(self, project: str) -> list[Stored]:
        """A snapshot of a project's entries in time order."""
        with self._lock:
            return list(self._entries.get(project, ()))

    def __len__(self) -> int:
        with self._lock:
            return sum(len(v) for v in self._entries.values())

    # ---- what the emulator's operations write ------------------------------------------------

    def instance_inserted(self, inst: Instance, at: float, *, group: ManagedGroup | None = None,
                          source_image: str | None = None) -> None:
        """instances.insert: by a MIG (`group`) or by an operator (seeding a standalone VM).
        `source_image` is what the request named (a MIG's template may name a family)."""
        project = inst.project
        request: dict[str, Any] = {
            "@type": "type.googleapis.com/compute.instances.insert",
            "name": inst.name,
            "machineType": f"projects/{project}/zones/{inst.zone}/machineTypes/"
                           f"{inst.machine_type}",
            "disks": [{"boot": True, "autoDelete": True, "initializeParams": {
                "sourceImage": strip_base(source_image or inst.image)}}],
            "networkInterfaces": [{"network": f"projects/{project}/global/networks/default"}],
            "requestId": _request_id(inst.id, "insert"),
        }
        if group is not None:
            request["metadata"] = {"items": [
                {"key": "instance-template", "value": strip_base(inst.template or "")},
                {"key": "created-by", "value": strip_base(group.link)}]}
        self._instance_operation(inst.project, inst.zone, inst.name, inst.id, "insert",
                                 "compute.instances.create", at, request, group)

    def instance_deleted(self, inst: Instance, at: float, *,
                         group: ManagedGroup | None = None) -> None:
        request = {"@type": "type.googleapis.com/compute.instances.delete",
                   "requestId": _request_id(inst.id, "delete")}
        self._instance_operation(inst.project, inst.zone, inst.name, inst.id, "delete",
                                 "compute.instances.delete", at, request, group)

    def group_called(self, group: ManagedGroup, verb: str, body: dict[str, Any],
                     at: float) -> None:
        """An instanceGroupManagers call by an operator: insert, patch, applyUpdatesToInstances."""
        service = "instanceGroupManagers" if group.zone else "regionInstanceGroupManagers"
        location = group.zone or group.region or ""
        request = {"@type": f"type.googleapis.com/compute.{service}.{verb}", **body}
        permission = {"insert": "compute.instanceGroupManagers.create"}.get(
            verb, "compute.instanceGroupManagers.update")
        resource = {"type": "gce_instance_group_manager", "labels": {
            "project_id": group.project, "location": location,
            "instance_group_manager_id": str(group.id),
            "instance_group_manager_name": group.name}}
        self._operation(group.project, at, resource, f"v1.compute.{service}.{verb}",
                        f"projects/{group.project}/{group.scope}/instanceGroupManagers/"
                        f"{group.name}", permission, request, verb, group.link, group.id,
                        location, None, group=group.name)

    def _instance_operation(self, project: str, zone: str, name: str, instance_id: int,
                            verb: str, permission: str, at: float, request: dict[str, Any],
                            group: ManagedGroup | None) -> None:
        # GCE names the project by number in what a MIG does on its own.
        owner = project_number(project) if group is not None else project
        resource = {"type": "gce_instance", "labels": {
            "project_id": project, "zone": zone, "instance_id": str(instance_id)}}
        self._operation(project, at, resource, f"v1.compute.instances.{verb}",
                        f"projects/{owner}/zones/{zone}/instances/{name}", permission, request,
                        verb, f"https://www.googleapis.com/compute/v1/projects/{project}/zones/"
                        f"{zone}/instances/{name}", instance_id, zone, group,
                        instance_id=str(instance_id),
                        group=group.name if group is not None else "")

    def _operation(self, project: str, at: float, resource: dict[str, Any], method: str,
                   resource_name: str, permission: str, request: dict[str, Any], verb: str,
                   target_link: str, target_id: int, location: str,
                   mig: ManagedGroup | None, *, instance_id: str = "", group: str = "") -> None:
        seq = next(self._seq)
        op_name = f"operation-{int(at * 1000)}-{seq:013x}"
        if mig is not None:
            principal, agent, ip = (f"{project_number(project)}@cloudservices.gserviceaccount."
                                    "com", MIG_AGENT, None)
        else:
            principal, agent, ip = OPERATOR, OPERATOR_AGENT, OPERATOR_IP
        metadata: dict[str, Any] = {"callerSuppliedUserAgent": agent,
                                    "requestAttributes": {}, "destinationAttributes": {}}
        if ip:
            metadata["callerIp"] = ip
        payload: dict[str, Any] = {
            "@type": AUDIT_TYPE,
            "authenticationInfo": {"principalEmail": principal},
            "requestMetadata": metadata,
            "serviceName": "compute.googleapis.com",
            "methodName": method,
            "authorizationInfo": [{"permission": permission, "granted": True,
                                   "resourceAttributes": {"service": "compute",
                                                          "name": resource_name}}],
            "resourceName": resource_name,
            "resourceLocation": {"currentLocations": [location]},
        }
        response = {"@type": "type.googleapis.com/operation", "id": str(seq), "name": op_name,
                    "operationType": verb, "targetLink": target_link,
                    "targetId": str(target_id), "status": "RUNNING", "user": principal,
                    "insertTime": log_time(at), "startTime": log_time(at)}
        first = {**_envelope(project, resource, at, op_name, seq, "first"),
                 "protoPayload": {**payload, "request": request, "response": response}}
        last = {**_envelope(project, resource, at, op_name, seq, "last"),
                "protoPayload": payload}
        self._add(project, [Stored.of(at, seq * 2, first, instance_id, group),
                            Stored.of(at, seq * 2 + 1, last, instance_id, group)])

    def _add(self, project: str, stored: Iterable[Stored]) -> None:
        with self._lock:
            entries = self._entries.setdefault(project, [])
            for item in stored:
                if not entries or entries[-1] < item:
                    entries.append(item)
                else:  # a seeded past entry
                    bisect.insort(entries, item)

    # ---- rewriting history (seeding) ---------------------------------------------------------

    def forget(self, project: str, *, instance_ids: Iterable[str] = (),
               group: str | None = None) -> None:
        """Drop the entries of these instances (and of the group's own calls)."""
        ids = set(instance_ids)
        with self._lock:
            entries = self._entries.get(project, [])
            self._entries[project] = [
                s for s in entries if s.instance_id not in ids and not (
                    group is not None and s.group == group and not s.instance_id)]

    def move_instance(self, project: str, instance_id: str, at: float) -> None:
        """An instance back-dated by seeding: its insert entries move with it."""
        with self._lock:
            entries = self._entries.get(project, [])
            moved = []
            for s in entries:
                if s.instance_id == instance_id and \
                        s.entry["protoPayload"]["methodName"].endswith(".insert"):
                    moved.append(_retimed(s, at))
            if not moved:
                return
            kept = [s for s in entries if not (
                s.instance_id == instance_id and
                s.entry["protoPayload"]["methodName"].endswith(".insert"))]
            self._entries[project] = sorted(kept + moved)


def _envelope(project: str, resource: dict[str, Any], at: float, op_name: str, seq: int,
              position: str) -> dict[str, Any]:
    return {
        "logName": f"projects/{project}/logs/{ACTIVITY_LOG}",
        "resource": resource,
        "insertId": f"{seq:x}{position[0]}",
        "timestamp": log_time(at),
        "severity": "NOTICE",
        "receiveTimestamp": log_time(at + 0.7),
        "operation": {"id": op_name, "producer": "compute.googleapis.com", position: True},
    }


def _retimed(s: Stored, at: float) -> Stored:
    entry = {**s.entry, "timestamp": log_time(at), "receiveTimestamp": log_time(at + 0.7)}
    return Stored.of(at, s.seq, entry, s.instance_id, s.group)


def _request_id(instance_id: int, verb: str) -> str:
    digest = hashlib.sha1(f"{instance_id}/{verb}".encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


# ---- seeding a group's past rollouts ----------------------------------------------------------

Moment = float | datetime | timedelta
_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def seed_rollouts(state: GceState, group_name: str,
                  rollouts: Sequence[tuple[Moment, str]], *, spread: float = 60.0,
                  project: str | None = None) -> None:
    """Give an existing MIG a past: created on the first template at the first moment, then
    patched to each next template at its moment, each rollout replacing every member (new
    instance first, then the old one deleted, `spread` seconds apart per instance).

    `rollouts` are (when, template name) in time order, when as an epoch, a datetime or a
    timedelta ago; the last template must be the one the group runs now. The group's live
    instances become the last rollout's (their creationTimestamp moved to match); earlier
    instances exist only in the log. The audit entries the group and its members had are
    replaced. Raises ValueError for a history GCE could not have written (a template used
    before it existed, moments out of order, a rollout still running at the next one).
    """
    with state.lock:
        state.tick()
        group = state.find_group(group_name, project=project)
        project = group.project
        times = [state._when(when) for when, _ in rollouts]  # noqa: SLF001 - same package
        templates = [state.resolve_template(project, name) for _, name in rollouts]
        _check_rollouts(group, times, templates, spread, state.clock.now())
        members = sorted(group.members.values(), key=lambda m: m.name)
        live = [state.instance(project, m.zone, m.name) for m in members]
        log: AuditLog = state.audit
        log.forget(project, instance_ids=[str(i.id) for i in live], group=group.name)

        first_body = {"name": group.name, "baseInstanceName": group.base_instance_name,
                      "instanceTemplate": strip_base(templates[0].link),
                      "targetSize": group.target_size}
        log.group_called(group, "insert", first_body, times[0])
        group.created = times[0]
        previous: list[Instance] = []
        for k, (at, template) in enumerate(zip(times, templates, strict=True)):
            if k:
                log.group_called(group, "patch", {"versions": [
                    {"instanceTemplate": strip_base(template.link)}]}, at)
            last = k == len(times) - 1
            current = live if last else [
                _past_instance(state, group, m.zone, template, i)
                for i, m in enumerate(members)]
            for i, inst in enumerate(current):
                born = at + i * spread
                if last:
                    inst.created = born
                    inst.touch()
                log.instance_inserted(inst, born, group=group,
                                      source_image=template.source_image)
                if i < len(previous):
                    # SUBSTITUTE: the old instance goes once its replacement exists.
                    log.instance_deleted(previous[i], born + spread / 2, group=group)
            for inst in previous[len(current):]:
                log.instance_deleted(inst, at + len(current) * spread, group=group)
            previous = current


def _check_rollouts(group: ManagedGroup, times: list[float], templates: list,
                    spread: float, now: float) -> None:
    if not times:
        raise ValueError("give at least one (when, template) for the group's creation")
    if len(group.versions) != 1:
        raise ValueError(f"group {group.name} runs {len(group.versions)} versions; seed the "
                         "past of a group on one version (add a canary after seeding)")
    if templates[-1].link not in [v.template for v in group.versions]:
        raise ValueError(f"the last rollout must be to the template group {group.name} runs "
                         f"now, not {templates[-1].name}")
    width = spread * max(group.target_size, 1)
    for k, (at, template) in enumerate(zip(times, templates, strict=True)):
        if template.created > at:
            raise ValueError(f"template {template.name} was created after it was rolled out "
                             f"at {log_time(at)}")
        following = times[k + 1] if k + 1 < len(times) else now
        if following < at + width:
            raise ValueError(f"the rollout at {log_time(at)} (to {template.name}) is still "
                             f"replacing instances at the next moment ({log_time(following)})")


def _past_instance(state: GceState, group: ManagedGroup, zone: str, template,
                   index: int) -> Instance:
    """An instance that existed only in the past: it has an id and a name, never a resource."""
    link, image_id = state._image_at_creation(group.project,  # noqa: SLF001
                                              template.source_image)
    instance_id = state.new_id()
    suffix = "".join(_ALPHABET[(instance_id // 36 ** k) % 36] for k in range(4))
    return Instance(group.project, zone, f"{group.base_instance_name}-{suffix}", instance_id,
                    0.0, link, image_id,
                    template.machine_type, "RUNNING", dict(template.labels),
                    template=template.link, created_by=group.link)
