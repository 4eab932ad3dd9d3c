"""What FleetView needs from GCP: every IAM permission it uses, for which capability, and why.

The custom role files in packaging/permissions/ are rendered from GCP_NEEDS; tests record the
Compute methods the provider calls on the emulator and fail when one is not covered here.
"""

from __future__ import annotations

import json

from fleetview.providers.base import Capability, Need, needs_for

GCP_NEEDS: tuple[Need, ...] = (
    Need("compute.instances.list", "watch", "list instances in every zone (aggregated list)"),
    Need("compute.disks.get", "watch",
         "the image of a boot disk, for instances that do not name their source image"),
    Need("compute.disks.list", "watch", "the same for many disks at once (aggregated list)"),
    Need("compute.images.get", "watch", "name, labels and creation time of each image"),
    Need("compute.images.getFromFamily", "watch",
         "the newest image of a family a template boots from: the group's desired version"),
    Need("compute.zoneOperations.list", "watch",
         "why a spot or preemptible VM stopped (GCE records a preemption as an operation)"),
    Need("compute.instanceTemplates.get", "watch",
         "the image a managed instance group's template launches (its desired version)"),
    Need("compute.instanceGroupManagers.list", "watch", "managed instance groups, every zone"),
    Need("logging.logEntries.list", "watch",
         "history before the first poll: instance inserts and deletes and group changes in "
         "Cloud Audit Logs (Admin Activity)"),
    Need("compute.instanceGroupManagers.update", "operate",
         "set a group's template (rollback) and recreate an instance (replace)"),
    Need("compute.instances.get", "operate", "follow a recreated instance until it runs"),
    Need("compute.instanceGroupManagers.get", "operate",
         "a group's current versions and instances just before and while changing it"),
    Need("compute.instanceTemplates.list", "operate",
         "find a template that launches the version to roll back to"),
    Need("compute.images.list", "operate",
         "find the image of the version to roll back to when no poll has seen it"),
    Need("compute.instanceTemplates.create", "operate",
         "a copy of a group's template with the rollback image, when no template has it"),
    Need("compute.images.useReadOnly", "operate",
         "a new template may boot only from an image the caller may use", implied=True),
    Need("compute.globalOperations.get", "operate", "follow a global operation"),
    Need("compute.zoneOperations.get", "operate", "follow a zonal group's update"),
    Need("compute.regionOperations.get", "operate", "follow a regional group's update"),
    Need("compute.instanceTemplates.useReadOnly", "operate",
         "a group may only be pointed at a template the caller may use", implied=True),
    Need("iam.serviceAccounts.actAs", "operate",
         "only if the template runs instances as a service account", implied=True),
)

# Compute API methods (as the emulator and Google's discovery document name them) -> the IAM
# permission each needs. Aggregated and regional variants share their resource's permission.
GCP_METHODS: dict[str, str] = {
    "compute.instances.aggregatedList": "compute.instances.list",
    "compute.instances.list": "compute.instances.list",
    "compute.instances.get": "compute.instances.get",
    "compute.disks.aggregatedList": "compute.disks.list",
    "compute.disks.list": "compute.disks.list",
    "compute.disks.get": "compute.disks.get",
    "compute.images.list": "compute.images.list",
    "compute.images.get": "compute.images.get",
    "compute.images.getFromFamily": "compute.images.getFromFamily",
    # Served by the emulator for seeding and the demo; FleetView itself never calls them.
    "compute.images.delete": "compute.images.delete",
    "compute.images.deprecate": "compute.images.deprecate",
    "compute.instanceTemplates.aggregatedList": "compute.instanceTemplates.list",
    "compute.instanceTemplates.list": "compute.instanceTemplates.list",
    "compute.instanceTemplates.get": "compute.instanceTemplates.get",
    "compute.regionInstanceTemplates.list": "compute.instanceTemplates.list",
    "compute.regionInstanceTemplates.get": "compute.instanceTemplates.get",
    "compute.instanceTemplates.insert": "compute.instanceTemplates.create",
    "compute.regionInstanceTemplates.insert": "compute.instanceTemplates.create",
    "compute.instanceGroupManagers.aggregatedList": "compute.instanceGroupManagers.list",
    "compute.instanceGroupManagers.list": "compute.instanceGroupManagers.list",
    "compute.regionInstanceGroupManagers.list": "compute.instanceGroupManagers.list",
    "compute.instanceGroupManagers.get": "compute.instanceGroupManagers.get",
    "compute.regionInstanceGroupManagers.get": "compute.instanceGroupManagers.get",
    "compute.instanceGroupManagers.listManagedInstances": "compute.instanceGroupManagers.get",
    "compute.regionInstanceGroupManagers.listManagedInstances":
        "compute.instanceGroupManagers.get",
    "compute.instanceGroupManagers.patch": "compute.instanceGroupManagers.update",
    "compute.regionInstanceGroupManagers.patch": "compute.instanceGroupManagers.update",
    "compute.instanceGroupManagers.recreateInstances": "compute.instanceGroupManagers.update",
    "compute.regionInstanceGroupManagers.recreateInstances":
        "compute.instanceGroupManagers.update",
    "compute.instanceGroupManagers.resize": "compute.instanceGroupManagers.update",
    "compute.regionInstanceGroupManagers.resize": "compute.instanceGroupManagers.update",
    "compute.instanceGroupManagers.listPerInstanceConfigs": "compute.instanceGroupManagers.get",
    "compute.regionInstanceGroupManagers.listPerInstanceConfigs":
        "compute.instanceGroupManagers.get",
    "compute.zoneOperations.list": "compute.zoneOperations.list",
    "compute.zoneOperations.get": "compute.zoneOperations.get",
    "compute.zoneOperations.wait": "compute.zoneOperations.get",
    "compute.regionOperations.get": "compute.regionOperations.get",
    "compute.regionOperations.wait": "compute.regionOperations.get",
    "compute.globalOperations.get": "compute.globalOperations.get",
    "compute.globalOperations.wait": "compute.globalOperations.get",
    # The Logging API, which the emulator serves beside Compute (audit log reads).
    "logging.entries.list": "logging.logEntries.list",
}


def permission(method_id: str) -> str:
    """The IAM permission a Compute API method needs; KeyError for one this table lacks."""
    try:
        return GCP_METHODS[method_id]
    except KeyError:
        raise KeyError(f"{method_id}: no permission known for this Compute method; add it to "
                       "GCP_METHODS in fleetview/providers/gcp/needs.py") from None


def needs(capability: Capability) -> tuple[Need, ...]:
    return needs_for(GCP_NEEDS, capability)


def role(capability: Capability) -> dict:
    """A custom role definition (gcloud iam roles create --file) for `capability`."""
    title = {"watch": "FleetView read-only", "operate": "FleetView operator"}[capability]
    description = {
        "watch": "Poll instances, images, templates and managed instance groups; change nothing.",
        "operate": "Read-only watching plus replace and rollback of managed instance groups.",
    }[capability]
    return {
        "title": title,
        "description": description,
        "stage": "GA",
        "includedPermissions": sorted(n.permission for n in needs(capability)),
    }


def render_gcp_role(role: dict) -> str:
    """The role as YAML (no YAML library needed: the document is flat)."""
    lines = [f"title: {json.dumps(role['title'])}",
             f"description: {json.dumps(role['description'])}",
             f"stage: {role['stage']}",
             "includedPermissions:"]
    lines += [f"- {p}" for p in role["includedPermissions"]]
    return "\n".join(lines) + "\n"




def render(capability: Capability) -> str:
    """The custom role file of a capability, as packaging/permissions/ holds it."""
    return render_gcp_role(role(capability))


def permission_of(service: str, method_id: str) -> str | None:
    """The IAM permission a recorded Compute call needs (`service` is always "compute")."""
    return permission(method_id)
