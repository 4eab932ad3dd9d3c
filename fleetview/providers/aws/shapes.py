"""AWS API shapes -> FleetView's domain objects: instances, images, templates, refresh states."""

from __future__ import annotations

from datetime import UTC, datetime

from fleetview.domain.model import Image, Instance, State
from fleetview.domain.timestamps import parse_time

ASG_TAG = "aws:autoscaling:groupName"

# Instance refresh states during which a group must not be touched by another action.
REFRESH_ACTIVE = frozenset({"Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking"})
REFRESH_FAILED = frozenset({"Failed", "Cancelled", "RollbackSuccessful", "RollbackFailed"})
# States RollbackInstanceRefresh acts on; CancelInstanceRefresh also stops a rollback.
REFRESH_REVERSIBLE = frozenset({"Pending", "InProgress", "Baking"})
REFRESH_CANCELLABLE = REFRESH_REVERSIBLE | {"RollbackInProgress"}

# EC2's lifecycle words -> FleetView's; "shutting-down" is on its way out, like stopping.
STATE_MAP: dict[str, State] = {
    "pending": State.PENDING,
    "running": State.RUNNING,
    "shutting-down": State.STOPPING,
    "stopping": State.STOPPING,
    "stopped": State.STOPPED,
    "terminated": State.TERMINATED,
}


def instance_of(raw: dict, scope: str, account: str, region: str) -> Instance:
    tags = {t["Key"]: t.get("Value", "") for t in raw.get("Tags", []) or []}
    return Instance(
        provider="aws", id=raw["InstanceId"], name=tags.get("Name") or raw["InstanceId"],
        scope=scope, account=account, region=region,
        zone=(raw.get("Placement") or {}).get("AvailabilityZone"),
        group=tags.get(ASG_TAG) or None, image_id=raw.get("ImageId"),
        state=STATE_MAP.get((raw.get("State") or {}).get("Name", ""), State.UNKNOWN),
        launched_at=raw.get("LaunchTime"), tags=tags,
    )


def image_of(raw: dict) -> Image:
    created = raw.get("CreationDate")
    deprecation = raw.get("DeprecationTime")
    return Image(
        provider="aws", id=raw["ImageId"], name=raw.get("Name") or "",
        created_at=parse_time(created),
        tags={t["Key"]: t.get("Value", "") for t in raw.get("Tags", []) or []},
        deprecated=bool(deprecation and (parse_time(deprecation) or datetime.max.replace(
            tzinfo=UTC)) <= datetime.now(UTC)),
    )


def template_spec(raw: dict) -> dict | None:
    """The group's launch template: id, name, version pointer, and whether it is mixed."""
    mixed = False
    spec = raw.get("LaunchTemplate")
    if not spec and raw.get("MixedInstancesPolicy"):
        spec = raw["MixedInstancesPolicy"].get("LaunchTemplate", {}).get(
            "LaunchTemplateSpecification")
        mixed = True
    if not spec or not spec.get("LaunchTemplateId"):
        return None
    # No version means the template's default, as AWS launches it.
    return {"id": spec["LaunchTemplateId"], "name": spec.get("LaunchTemplateName"),
            "version": str(spec.get("Version") or "$Default"), "mixed": mixed}
