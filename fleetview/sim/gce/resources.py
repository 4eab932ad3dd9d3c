"""The emulator's resources (images, templates, instances, disks, operations) and their JSON."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from fleetview.sim.gce.clock import rfc3339

LINK_BASE = "https://www.googleapis.com/compute/v1/"

# Machine-type details are not modelled; the disk size every boot disk gets.
BOOT_DISK_GB = 10


def region_of(zone: str) -> str:
    return zone.rsplit("-", 1)[0]


def zone_link(project: str, zone: str) -> str:
    return f"{LINK_BASE}projects/{project}/zones/{zone}"


def region_link(project: str, region: str) -> str:
    return f"{LINK_BASE}projects/{project}/regions/{region}"


def image_link(project: str, name: str) -> str:
    return f"{LINK_BASE}projects/{project}/global/images/{name}"


def template_link(project: str, name: str, region: str | None = None) -> str:
    if region:
        return f"{LINK_BASE}projects/{project}/regions/{region}/instanceTemplates/{name}"
    return f"{LINK_BASE}projects/{project}/global/instanceTemplates/{name}"


def instance_link(project: str, zone: str, name: str) -> str:
    return f"{zone_link(project, zone)}/instances/{name}"


def disk_link(project: str, zone: str, name: str) -> str:
    return f"{zone_link(project, zone)}/disks/{name}"


def strip_base(link: str) -> str:
    """'https://.../compute/v1/projects/p/...' -> 'projects/p/...' (partial paths unchanged)."""
    marker = "/compute/v1/"
    i = link.find(marker)
    return link[i + len(marker):] if i >= 0 else link.lstrip("/")


class RawJson(str):
    """Already-serialized JSON that `encode` splices in as is (cached instance bodies)."""


def encode(value: Any) -> str:
    """json.dumps that splices RawJson values in without re-encoding them."""
    if isinstance(value, RawJson):
        return value
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{encode(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list) and value and isinstance(value[0], RawJson):
        return "[" + ",".join(value) + "]"
    if isinstance(value, list):
        return "[" + ",".join(encode(v) for v in value) + "]"
    return json.dumps(value, separators=(",", ":"))


def fingerprint(*parts: Any) -> str:
    """An opaque fingerprint that changes when `parts` change, like the API's."""
    digest = hashlib.sha1(repr(parts).encode()).digest()[:8]
    return base64.b64encode(digest).decode()


def id_fingerprint(n: int) -> str:
    """A cheap fingerprint derived from an integer (instances: thousands per page)."""
    return base64.b64encode(((n * 0x9E3779B97F4A7C15) & (2**64 - 1)).to_bytes(8, "big")
                            ).decode()


_EMPTY_FINGERPRINT = fingerprint({})
# An on-demand VM's scheduling; spot and preemptible ones override some of it.
DEFAULT_SCHEDULING = {"onHostMaintenance": "MIGRATE", "automaticRestart": True,
                      "preemptible": False, "provisioningModel": "STANDARD"}


def scheduling_json(change: dict[str, Any] | None) -> dict[str, Any]:
    """Scheduling as GCE answers it: a spot VM cannot migrate or restart automatically."""
    out = {**DEFAULT_SCHEDULING, **(change or {})}
    if out.get("provisioningModel") == "SPOT" or out.get("preemptible"):
        out.update(onHostMaintenance="TERMINATE", automaticRestart=False)
        if out.get("provisioningModel") == "SPOT":
            out.setdefault("instanceTerminationAction", "STOP")
    return out


@dataclass
class Image:
    project: str
    name: str
    id: int
    created: float
    family: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    description: str = ""
    deprecated: dict[str, str] | None = None
    disk_size_gb: int = BOOT_DISK_GB

    @property
    def link(self) -> str:
        return image_link(self.project, self.name)

    @property
    def is_deprecated(self) -> bool:
        return bool(self.deprecated) and self.deprecated.get("state") in (
            "DEPRECATED", "OBSOLETE", "DELETED")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "compute#image",
            "id": str(self.id),
            "creationTimestamp": rfc3339(self.created),
            "name": self.name,
            "description": self.description,
            "sourceType": "RAW",
            "status": "READY",
            "archiveSizeBytes": str(self.disk_size_gb * 180_000_000),
            "diskSizeGb": str(self.disk_size_gb),
            "selfLink": self.link,
            "labelFingerprint": fingerprint(self.labels),
            "storageLocations": ["us"],
            "architecture": "X86_64",
        }
        if self.labels:
            out["labels"] = dict(self.labels)
        if self.family:
            out["family"] = self.family
        if self.deprecated:
            out["deprecated"] = dict(self.deprecated)
        return out


@dataclass
class InstanceTemplate:
    project: str
    name: str
    id: int
    created: float
    source_image: str  # a full image link, or a family link resolved when an instance is made
    machine_type: str = "e2-medium"
    region: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    description: str = ""
    # The properties an insert call gave, answered back as given; seeded templates have none.
    properties: dict[str, Any] | None = None
    scheduling: dict[str, Any] | None = None  # seeded spot or preemptible scheduling

    @property
    def link(self) -> str:
        return template_link(self.project, self.name, self.region)

    @property
    def instance_scheduling(self) -> dict[str, Any] | None:
        """The scheduling its instances get (an inserted template's own, else the seeded)."""
        if self.properties is not None:
            return self.properties.get("scheduling")
        return self.scheduling

    @property
    def boot_device(self) -> str:
        disks = (self.properties or {}).get("disks") or []
        boot = next((d for d in disks if d.get("boot")), disks[0] if disks else {})
        return boot.get("deviceName") or "persistent-disk-0"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "compute#instanceTemplate",
            "id": str(self.id),
            "creationTimestamp": rfc3339(self.created),
            "name": self.name,
            "description": self.description,
            "properties": copy.deepcopy(self.properties) if self.properties is not None else {
                "machineType": self.machine_type,
                "disks": [{
                    "kind": "compute#attachedDisk",
                    "type": "PERSISTENT",
                    "mode": "READ_WRITE",
                    "deviceName": "persistent-disk-0",
                    "boot": True,
                    "autoDelete": True,
                    "initializeParams": {
                        "sourceImage": self.source_image,
                        "diskSizeGb": str(BOOT_DISK_GB),
                        "diskType": "pd-balanced",
                    },
                }],
                "networkInterfaces": [{
                    "kind": "compute#networkInterface",
                    "network": f"{LINK_BASE}projects/{self.project}/global/networks/default",
                }],
                "scheduling": scheduling_json(self.scheduling) if self.scheduling else {
                    "onHostMaintenance": "MIGRATE", "automaticRestart": True},
                **({"labels": dict(self.labels)} if self.labels else {}),
            },
            "selfLink": self.link,
        }
        if self.region:
            out["region"] = region_link(self.project, self.region)
        return out


@dataclass
class Instance:
    project: str
    zone: str
    name: str
    id: int
    created: float
    image: str  # link of the image its boot disk was made from
    image_id: int | None = None
    machine_type: str = "e2-medium"
    status: str = "RUNNING"
    labels: dict[str, str] = field(default_factory=dict)
    template: str | None = None  # template link, for MIG instances
    created_by: str | None = None  # MIG link, for MIG instances
    scheduling: dict[str, Any] | None = None  # what differs from on demand (spot, preemptible)
    last_stop: float | None = None  # when it last stopped (lastStopTimestamp)
    _json: dict[str, Any] | None = field(default=None, repr=False)
    _raw: RawJson | None = field(default=None, repr=False)
    _disk_json: dict[str, Any] | None = field(default=None, repr=False)
    _disk_raw: RawJson | None = field(default=None, repr=False)

    @property
    def link(self) -> str:
        return instance_link(self.project, self.zone, self.name)

    @property
    def disk_link(self) -> str:
        return disk_link(self.project, self.zone, self.name)

    def touch(self) -> None:
        self._json = self._raw = self._disk_json = self._disk_raw = None

    def raw_json(self) -> RawJson:
        if self._raw is None:
            self._raw = RawJson(json.dumps(self.to_json(), separators=(",", ":")))
        return self._raw

    def disk_raw_json(self) -> RawJson:
        if self._disk_raw is None:
            self._disk_raw = RawJson(json.dumps(self.disk_json(), separators=(",", ":")))
        return self._disk_raw

    def to_json(self) -> dict[str, Any]:
        # Cached because aggregated lists of thousands of instances are the hot path; every
        # change goes through touch(), and a cached dict is replaced, never mutated.
        if self._json is None:
            self._json = self._build_json()
        return self._json

    def _build_json(self) -> dict[str, Any]:
        zl = zone_link(self.project, self.zone)
        items = []
        if self.template:
            items.append({"key": "instance-template", "value": strip_base(self.template)})
        if self.created_by:
            items.append({"key": "created-by", "value": strip_base(self.created_by)})
        out: dict[str, Any] = {
            "kind": "compute#instance",
            "id": str(self.id),
            "creationTimestamp": rfc3339(self.created),
            "name": self.name,
            "tags": {"fingerprint": _EMPTY_FINGERPRINT},
            "machineType": f"{zl}/machineTypes/{self.machine_type}",
            "status": self.status,
            "zone": zl,
            "canIpForward": False,
            "networkInterfaces": [{
                "kind": "compute#networkInterface",
                "network": f"{LINK_BASE}projects/{self.project}/global/networks/default",
                "networkIP": f"10.{(self.id >> 16) % 250}.{(self.id >> 8) % 250}.{self.id % 250 + 2}",
                "name": "nic0",
                "fingerprint": id_fingerprint(self.id + 1),
                "stackType": "IPV4_ONLY",
            }],
            "disks": [{
                "kind": "compute#attachedDisk",
                "type": "PERSISTENT",
                "mode": "READ_WRITE",
                "source": self.disk_link,
                "deviceName": "persistent-disk-0",
                "index": 0,
                "boot": True,
                "autoDelete": True,
                "interface": "SCSI",
                "diskSizeGb": str(BOOT_DISK_GB),
                "architecture": "X86_64",
            }],
            "metadata": {"kind": "compute#metadata", "fingerprint": id_fingerprint(self.id + 2),
                         "items": items},
            "selfLink": self.link,
            "scheduling": scheduling_json(self.scheduling),
            "cpuPlatform": "Intel Broadwell",
            "labelFingerprint": (fingerprint(sorted(self.labels.items())) if self.labels
                                 else _EMPTY_FINGERPRINT),
            "startRestricted": False,
            "deletionProtection": False,
            "fingerprint": id_fingerprint(self.id + len(self.status)),
            "lastStartTimestamp": rfc3339(self.created + 20),
            "satisfiesPzi": True,
        }
        if self.labels:
            out["labels"] = dict(self.labels)
        if self.last_stop is not None:
            out["lastStopTimestamp"] = rfc3339(self.last_stop)
        return out

    def disk_json(self) -> dict[str, Any]:
        if self._disk_json is None:
            zl = zone_link(self.project, self.zone)
            self._disk_json = {
                "kind": "compute#disk",
                "id": str(self.id + 7),
                "creationTimestamp": rfc3339(self.created),
                "name": self.name,
                "sizeGb": str(BOOT_DISK_GB),
                "zone": zl,
                "status": "READY",
                "selfLink": self.disk_link,
                "sourceImage": self.image,
                **({"sourceImageId": str(self.image_id)} if self.image_id else {}),
                "type": f"{zl}/diskTypes/pd-balanced",
                "lastAttachTimestamp": rfc3339(self.created + 5),
                "users": [self.link],
                "labelFingerprint": _EMPTY_FINGERPRINT,
                "physicalBlockSizeBytes": "4096",
                "architecture": "X86_64",
            }
        return self._disk_json


@dataclass
class Operation:
    project: str
    name: str
    id: int
    operation_type: str
    target_link: str
    target_id: int | None
    inserted: float
    done_at: float
    zone: str | None = None
    region: str | None = None
    request_id: str | None = None
    user: str = "fleetview-emulator@example.com"
    status_message: str | None = None  # what a system event says ("Instance was preempted.")

    @property
    def link(self) -> str:
        if self.zone:
            return f"{zone_link(self.project, self.zone)}/operations/{self.name}"
        if self.region:
            return f"{region_link(self.project, self.region)}/operations/{self.name}"
        return f"{LINK_BASE}projects/{self.project}/global/operations/{self.name}"

    def to_json(self, now: float) -> dict[str, Any]:
        done = now >= self.done_at
        out: dict[str, Any] = {
            "kind": "compute#operation",
            "id": str(self.id),
            "name": self.name,
            "operationType": self.operation_type,
            "targetLink": self.target_link,
            "status": "DONE" if done else "RUNNING",
            "user": self.user,
            "progress": 100 if done else 0,
            "insertTime": rfc3339(self.inserted),
            "startTime": rfc3339(self.inserted),
            "selfLink": self.link,
        }
        if self.target_id is not None:
            out["targetId"] = str(self.target_id)
        if self.status_message:
            out["statusMessage"] = self.status_message
        if done:
            out["endTime"] = rfc3339(self.done_at)
        if self.zone:
            out["zone"] = zone_link(self.project, self.zone)
        if self.region:
            out["region"] = region_link(self.project, self.region)
        return out
