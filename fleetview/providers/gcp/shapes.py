"""Compute Engine's messages as FleetView's domain objects: instances, groups, images, templates.

Conversions read raw protobuf messages (`type(reply).pb(reply)`): proto-plus wrapping per
field costs more than the parse. Resource ids are paths, "projects/P/...", whatever form the
API gave them in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from fleetview.domain.model import Group, Image, Instance, State
from fleetview.domain.timestamps import parse_time

STATE_MAP = {
    "PROVISIONING": State.PENDING,
    "STAGING": State.PENDING,
    # Flex-start: queued until capacity frees up, which may take hours; it serves nothing.
    "PENDING": State.WAITING,
    "RUNNING": State.RUNNING,
    "PENDING_STOP": State.STOPPING,
    "STOPPING": State.STOPPING,
    "DEPROVISIONING": State.STOPPING,
    "SUSPENDING": State.SUSPENDING,
    "SUSPENDED": State.SUSPENDED,
    "STOPPED": State.STOPPED,
    # GCE's TERMINATED is a stopped instance that still exists, not a deleted one.
    "TERMINATED": State.STOPPED,
    "REPAIRING": State.REPAIRING,
}
# How GCE bills and may take back an instance (Instance.lifecycle); on demand is None.
SPOT, PREEMPTIBLE = "spot", "preemptible"
PREEMPTED = "Preempted"
# Labels GKE puts on its node pools' templates and instances.
GKE_NODE_LABEL = "goog-gke-node"
GKE_CLUSTER_LABEL = "goog-k8s-cluster-name"
DEFAULT_BOOT_DEVICE = "persistent-disk-0"
DEPRECATED_STATES = frozenset({"DEPRECATED", "OBSOLETE", "DELETED"})
UNUSABLE_IMAGE_STATES = frozenset({"OBSOLETE", "DELETED"})


# -- paths ------------------------------------------------------------------------------------

def region_of_zone(zone: str) -> str:
    return zone.rsplit("-", 1)[0]


def last(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def resource_path(url: str, project: str) -> str:
    """"projects/P/..." for a full URL, a path, or a project-relative path."""
    index = url.find("projects/")
    if index >= 0:
        return url[index:]
    return f"projects/{project}/{url.lstrip('/')}"


def template_path(url: str, project: str) -> str:
    """A template's path; GCE names the project by number in MIG instances' metadata."""
    path = resource_path(url, project)
    parts = path.split("/")
    if len(parts) > 1 and parts[1].isdigit():
        parts[1] = project
    return "/".join(parts)


# -- images and templates -----------------------------------------------------------------------

@dataclass(frozen=True)
class Template:
    """What FleetView needs of an instance template: the image its boot disk starts from.

    `image_id` is None when the template names an image family (`family` holds the family's
    path, "projects/P/global/images/family/F", resolved by the poll to its newest image) or no
    image at all; then an instance's own disk is the truth.
    """

    path: str
    name: str
    image_id: str | None
    source_image: str | None
    created_at: datetime | None = None
    labels: dict[str, str] = field(default_factory=dict)  # what its instances are labelled
    family: str | None = None
    boot_device: str = DEFAULT_BOOT_DEVICE  # the device name a stateful policy preserves


def template_from_pb(pb, project: str) -> Template:
    """A Template from a raw InstanceTemplate message."""
    source = None
    boot_device = DEFAULT_BOOT_DEVICE
    for disk in pb.properties.disks:
        if disk.boot or len(pb.properties.disks) == 1:
            source = disk.initialize_params.source_image or None
            boot_device = disk.device_name or DEFAULT_BOOT_DEVICE
            break
    image_id = family = None
    if source:
        path = resource_path(source, project)
        if "/images/family/" in path:
            family = path
        else:
            image_id = path
    return Template(path=resource_path(pb.self_link, project) if pb.self_link else "",
                    name=pb.name, image_id=image_id, source_image=source,
                    created_at=parse_time(pb.creation_timestamp),
                    labels=dict(pb.properties.labels), family=family, boot_device=boot_device)


def image_from_pb(pb, project: str) -> tuple[Image, str]:
    """An Image (id in path form) and its deprecation state from a raw Image message."""
    state = pb.deprecated.state if pb.HasField("deprecated") else ""
    image_id = resource_path(pb.self_link, project) if pb.self_link else \
        f"projects/{project}/global/images/{pb.name}"
    return Image("gcp", image_id, pb.name, created_at=parse_time(pb.creation_timestamp),
                 tags=dict(pb.labels), deprecated=state in DEPRECATED_STATES), state


# -- instances ----------------------------------------------------------------------------------

def instance_origin(pb) -> tuple[str | None, str | None]:
    """(the MIG that made an instance, the template URL it was made from), from its metadata:
    `created-by` names the MIG, `instance-template` the template."""
    creator = template = None
    for item in pb.metadata.items:
        if item.key == "created-by":
            creator = item.value
        elif item.key == "instance-template":
            template = item.value
    group = last(creator) if creator and "/instanceGroupManagers/" in creator else None
    return group, template


def boot_disk(pb) -> str:
    """The URL of an instance's boot disk ("" when it has none)."""
    return next((d.source for d in pb.disks if d.boot), "")


def lifecycle_of(pb) -> str | None:
    """"spot" or "preemptible" from an instance's scheduling; None for on demand."""
    if not pb.HasField("scheduling"):
        return None
    if pb.scheduling.provisioning_model == "SPOT":
        return SPOT
    return PREEMPTIBLE if pb.scheduling.preemptible else None


def instance_from_pb(pb, scope: str, project: str, zone: str, region: str, group: str | None,
                     image_id: str | None, state_reason: str | None = None) -> Instance:
    return Instance(
        provider="gcp", id=str(pb.id), name=pb.name, scope=scope, account=project,
        region=region, zone=zone, group=group, image_id=image_id,
        state=STATE_MAP.get(pb.status, State.UNKNOWN),
        launched_at=parse_time(pb.creation_timestamp),
        tags=dict(pb.labels) if pb.labels else {},
        lifecycle=lifecycle_of(pb), state_reason=state_reason,
    )


# -- managed instance groups --------------------------------------------------------------------

MigVersion = tuple[str, str, object]  # (name, template path, targetSize message or None)


def mig_versions(pb, project: str) -> list[MigVersion]:
    """A MIG's versions, the main one first: the version without a targetSize takes the rest
    of the group, wherever it is listed; another version is the canary."""
    versions = [(v.name, template_path(v.instance_template, project),
                 v.target_size if v.HasField("target_size") else None)
                for v in pb.versions if v.instance_template]
    if not versions and pb.instance_template:
        versions = [("", template_path(pb.instance_template, project), None)]
    versions.sort(key=lambda v: v[2] is not None)
    return versions


def gke_owner(name: str, labels: Mapping[str, str]) -> str | None:
    """"GKE cluster <name>" for a node pool's group: GKE labels its templates and instances
    goog-gke-node and names its groups gke-<cluster>-<pool>-<hash>-grp."""
    if GKE_NODE_LABEL not in labels and GKE_CLUSTER_LABEL not in labels and not (
            name.startswith("gke-") and name.endswith("-grp")):
        return None
    cluster = labels.get(GKE_CLUSTER_LABEL)
    if not cluster:
        # Cluster and pool names may hold dashes: without the label, name the group instead.
        return f"GKE cluster (unnamed: node pool group {name})"
    return f"GKE cluster {cluster}"


def stateful_of(pb, main: Template | None) -> dict[str, object] | None:
    """What a stateful group preserves: the disks its policy keeps, whether the boot disk is
    one of them, and whether per-instance configs may keep more; None when nothing is."""
    if not pb.status.stateful.has_stateful_config and not pb.stateful_policy.preserved_state.disks:
        return None
    disks = sorted(pb.stateful_policy.preserved_state.disks)
    boot = main.boot_device if main is not None else DEFAULT_BOOT_DEVICE
    return {"disks": disks, "boot_device": boot, "boot_preserved": boot in disks,
            "per_instance_configs": bool(pb.status.stateful.has_stateful_config)}


def group_notes(zone: str | None, extra: Mapping[str, object]) -> tuple[str, ...]:
    """Sentences on the group's shape that change what an update does."""
    notes = []
    if zone is None and extra.get("zones"):
        zones = list(extra["zones"])  # type: ignore[call-overload]
        notes.append(f"regional group over {len(zones)} zone{'s' if len(zones) != 1 else ''} "
                     f"({', '.join(zones)}), target shape {extra.get('target_shape') or 'EVEN'}")
    stateful = extra.get("stateful")
    if isinstance(stateful, Mapping):
        if stateful["boot_preserved"]:
            notes.append(f"stateful: its policy preserves the boot disk ({stateful['boot_device']}"
                         "), so its instances keep the image they were created with across "
                         "updates")
        elif stateful["disks"]:
            notes.append(f"stateful: its policy preserves disks {', '.join(stateful['disks'])}; "
                         "updates recreate its instances under the same names")
        else:
            notes.append("stateful: per-instance configs preserve some instances' state; "
                         "updates recreate its instances under the same names")
    return tuple(notes)


def group_from_pb(pb, scope: str, project: str, zone: str | None, region: str,
                  versions: list[MigVersion], templates: Mapping[str, Template | None],
                  images: list[str | None] | None = None, notes: tuple[str, ...] = (),
                  member_labels: Mapping[str, str] | None = None) -> Group:
    """A Group from a raw InstanceGroupManager message, its versions' templates read.

    `images` are the versions' images where the poll resolved them (an image family), else
    the templates' own; `notes` what the poll found about how they were read.
    """
    if images is None:
        images = [templates[p].image_id if templates.get(p) else None for _, p, _ in versions]
    main = templates.get(versions[0][1]) if versions else None
    policy = pb.update_policy
    labels = dict(main.labels) if main is not None else {}
    extra: dict[str, object] = {
        "self_link": resource_path(pb.self_link, project) if pb.self_link else "",
        "versions": [
            {"name": name, "template": path,
             "target_size": fixed_or_percent(size) if size is not None else None}
            for name, path, size in versions],
        "zones": [last(z.zone) for z in pb.distribution_policy.zones],
        "update_policy": {
            "type": policy.type_, "minimal_action": policy.minimal_action,
            "replacement_method": policy.replacement_method or "SUBSTITUTE",
            "max_surge": fixed_or_percent(policy.max_surge),
            "max_unavailable": fixed_or_percent(policy.max_unavailable)},
    }
    if zone is None:
        extra["target_shape"] = pb.distribution_policy.target_shape or "EVEN"
    stateful = stateful_of(pb, main)
    if stateful is not None:
        extra["stateful"] = stateful
    return Group(
        provider="gcp", scope=scope, account=project, region=region, name=pb.name,
        kind="mig", zone=zone, target_size=pb.target_size,
        desired_image_id=images[0] if images else None,
        canary_image_id=images[1] if len(images) > 1 else None,
        updating=not pb.status.is_stable or not pb.status.version_target.is_reached,
        # MIGs have no labels: the labels their instances get stand for the group's.
        tags=labels,
        extra=extra,
        owner=gke_owner(pb.name, {**(member_labels or {}), **labels}),
        notes=group_notes(zone, extra) + tuple(notes),
    )


def fixed_or_percent(value) -> dict[str, int] | None:
    if value is None:
        return None
    if value.HasField("fixed"):
        return {"fixed": value.fixed}
    if value.HasField("percent"):
        return {"percent": value.percent}
    return None
