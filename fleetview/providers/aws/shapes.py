"""AWS API shapes -> FleetView's domain objects: instances, images, templates, refresh states."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime

from fleetview.domain.model import Group, Image, Instance, State
from fleetview.domain.timestamps import parse_time

ASG_TAG = "aws:autoscaling:groupName"

# Instance refresh states during which a group must not be touched by another action.
REFRESH_ACTIVE = frozenset({"Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking"})
REFRESH_FAILED = frozenset({"Failed", "Cancelled", "RollbackSuccessful", "RollbackFailed"})
# States RollbackInstanceRefresh acts on; CancelInstanceRefresh also stops a rollback.
REFRESH_REVERSIBLE = frozenset({"Pending", "InProgress", "Baking"})
REFRESH_CANCELLABLE = REFRESH_REVERSIBLE | {"RollbackInProgress"}
# States in which a refresh with a DesiredConfiguration deploys it, though the group names its
# old launch template until the refresh succeeds; a rollback restores the group's own setting.
REFRESH_DEPLOYING = REFRESH_ACTIVE - {"RollbackInProgress"}


def refresh_deploys(detail: dict | None, own: str | None) -> str | None:
    """The image a group is being moved to: a refresh's DesiredConfiguration while it deploys
    it (`detail` from `Poller.refresh_detail`), else the group's own setting (`own`), which is
    also what a RollbackInProgress goes back to."""
    if not detail or not detail.get("desired") or detail.get("status") not in REFRESH_DEPLOYING:
        return own
    return detail.get("desired_image") or own

# EC2's lifecycle words -> FleetView's; "shutting-down" is on its way out, like stopping.
STATE_MAP: dict[str, State] = {
    "pending": State.PENDING,
    "running": State.RUNNING,
    "shutting-down": State.STOPPING,
    "stopping": State.STOPPING,
    "stopped": State.STOPPED,
    "terminated": State.TERMINATED,
}


# EC2's StateReason codes (DescribeInstances) in a reader's words: why an instance stopped or
# ended, so a spot interruption is not taken for unexplained churn. Others show their message.
STATE_REASONS: dict[str, str] = {
    "Server.SpotInstanceTermination": "Spot interruption",
    "Server.SpotInstanceShutdown": "Spot interruption (stopped)",
    "Server.InsufficientInstanceCapacity": "No capacity for its instance type",
    "Server.ScheduledStop": "Stopped for scheduled maintenance",
    "Server.InternalError": "Failed to start (an AWS internal error)",
    # Auto Scaling's own terminations (scale-in, replacement) carry this code too.
    "Client.UserInitiatedShutdown": "Shut down through the API (a user, a deploy or its group)",
    "Client.InstanceInitiatedShutdown": "Shut down from inside the instance",
    "Client.UserInitiatedHibernate": "Hibernated through the API",
    "Client.VolumeLimitExceeded": "Volume limit exceeded",
    "Client.InvalidSnapshot.NotFound": "A snapshot of its volumes is missing",
    "Client.InternalError": "Failed to start (a client error)",
}

# Tags AWS puts on a group that another service deploys -> how the owner is named.
OWNER_TAGS: tuple[tuple[str, str], ...] = (
    ("aws:cloudformation:stack-name", "CloudFormation stack {}"),
    ("eks:nodegroup-name", "EKS node group {}"),
    ("elasticbeanstalk:environment-name", "Elastic Beanstalk environment {}"),
)


def owner_of(tags: dict[str, str]) -> str | None:
    """The system that deploys a group, from the tags its owner puts on it (None: its own)."""
    for key, words in OWNER_TAGS:
        if tags.get(key):
            owner = words.format(tags[key])
            cluster = tags.get("eks:cluster-name")
            return f"{owner} of cluster {cluster}" if key.startswith("eks:") and cluster \
                else owner
    if tags.get("eks:cluster-name"):
        return f"EKS cluster {tags['eks:cluster-name']}"
    return None


def state_reason_of(raw: dict) -> str | None:
    """An instance's StateReason in words; None for one that has none (a running instance)."""
    reason = raw.get("StateReason") or {}
    code = reason.get("Code") or ""
    if not code:
        return None
    return STATE_REASONS.get(code) or (reason.get("Message") or code)


def instance_of(raw: dict, scope: str, account: str, region: str) -> Instance:
    tags = {t["Key"]: t.get("Value", "") for t in raw.get("Tags", []) or []}
    return Instance(
        provider="aws", id=raw["InstanceId"], name=tags.get("Name") or raw["InstanceId"],
        scope=scope, account=account, region=region,
        zone=(raw.get("Placement") or {}).get("AvailabilityZone"),
        group=tags.get(ASG_TAG) or None, image_id=raw.get("ImageId"),
        state=STATE_MAP.get((raw.get("State") or {}).get("Name", ""), State.UNKNOWN),
        launched_at=raw.get("LaunchTime"), tags=tags,
        # "spot" or "scheduled"; EC2 leaves it out for on-demand instances.
        lifecycle=raw.get("InstanceLifecycle") or None, state_reason=state_reason_of(raw),
        instance_type=raw.get("InstanceType") or None,
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


# A launch template's ImageId that names an SSM parameter, which AWS resolves at each launch.
SSM_PREFIX = "resolve:ssm:"


def images_by_type(overrides) -> dict[str, str | None]:
    """Instance type -> the AMI its override launches (None: one FleetView cannot read), for
    a group's overrides as the poll read them (`Group.extra["overrides"]`)."""
    return {o["instance_type"]: o.get("image") for o in overrides or ()
            if o.get("instance_type")}


def wanted_image_of(instance: Instance, desired: str | None,
                    by_type: dict[str, str | None]) -> str | None:
    """The AMI a member should run: its type's override's, else the group's (`desired`).
    An override whose AMI cannot be read wants nothing known: its instances are not drift."""
    if instance.instance_type in by_type:
        return by_type[instance.instance_type] or instance.image_id
    return desired


def with_override_images(instances: list[Instance], groups: Iterable[Group]
                         ) -> list[Instance]:
    """The instances with `desired_image_id` set where their group launches their type from
    an override's own template or AMI (drift per instance type)."""
    by_group = {g.name: by for g in groups if (by := images_by_type(g.extra.get("overrides")))}
    if not by_group:
        return instances
    out = []
    for i in instances:
        by_type = by_group.get(i.group or "")
        if by_type and i.instance_type in by_type:
            i = replace(i, desired_image_id=by_type[i.instance_type] or i.image_id)
        out.append(i)
    return out


def override_specs(raw: dict) -> list[dict]:
    """A mixed instances policy's overrides that launch something of their own: an override's
    own launch template (id, name, version pointer) or its own AMI, with its instance type."""
    policy = (raw.get("MixedInstancesPolicy") or {}).get("LaunchTemplate") or {}
    out = []
    for override in policy.get("Overrides") or ():
        spec = override.get("LaunchTemplateSpecification") or {}
        if spec.get("LaunchTemplateId"):
            out.append({"instance_type": override.get("InstanceType"),
                        "id": spec["LaunchTemplateId"], "name": spec.get("LaunchTemplateName"),
                        "version": str(spec.get("Version") or "$Default"), "image": None})
        elif override.get("ImageId"):
            out.append({"instance_type": override.get("InstanceType"), "id": None,
                        "name": None, "version": None, "image": override["ImageId"]})
    return out


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
