"""What each capability needs from each cloud: the API calls FleetView makes and their permissions.

Two capabilities: "watch" (polling, read-only) and "operate" (watch plus replace and rollback).
The policy files in packaging/permissions/ are rendered from these lists
(`python -m fleetview.permissions packaging/permissions`), `fleetview doctor` checks them, and
tests/packaging/test_permissions.py records the calls the providers really make against the
local clouds and fails when one is not covered here, so code and policies cannot drift apart.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Capability = Literal["watch", "operate"]
CAPABILITIES: tuple[Capability, ...] = ("watch", "operate")


@dataclass(frozen=True)
class Need:
    """One permission, the capability that needs it, and why.

    `implied` marks a permission the cloud checks on the caller although FleetView never
    calls that API itself (e.g. iam:PassRole when an Auto Scaling group launches from a
    template with an instance profile); the recorded calls cannot show those.
    """

    permission: str
    capability: Capability
    why: str
    implied: bool = False


# --- AWS -----------------------------------------------------------------------------------

AWS_NEEDS: tuple[Need, ...] = (
    Need("ec2:DescribeInstances", "watch", "list instances and the image each runs"),
    Need("ec2:DescribeImages", "watch", "name, tags and creation time of each AMI"),
    Need("ec2:DescribeLaunchTemplateVersions", "watch",
         "the AMI a group's launch template launches (its desired version)"),
    Need("autoscaling:DescribeAutoScalingGroups", "watch", "groups, sizes and launch templates"),
    Need("autoscaling:DescribeInstanceRefreshes", "watch", "whether a rollout is under way"),
    Need("autoscaling:DescribeLaunchConfigurations", "watch",
         "the AMI of groups that still use launch configurations"),
    Need("autoscaling:StartInstanceRefresh", "operate", "roll a group to another version"),
    Need("autoscaling:UpdateAutoScalingGroup", "operate",
         "point a group at the launch template version being rolled back to"),
    Need("autoscaling:TerminateInstanceInAutoScalingGroup", "operate",
         "replace one instance (its group launches a new one)"),
    Need("ec2:CreateLaunchTemplateVersion", "operate",
         "a launch template version with the rollback AMI"),
    Need("ec2:RunInstances", "operate",
         "Auto Scaling checks that the caller may launch from the template it is given",
         implied=True),
    Need("ec2:CreateTags", "operate", "tags the template puts on launched instances",
         implied=True),
    Need("iam:PassRole", "operate", "only if the launch template has an instance profile",
         implied=True),
)

# Calls that need no IAM permission (AWS documents sts:GetCallerIdentity as always allowed).
AWS_UNGATED: frozenset[str] = frozenset({"sts:GetCallerIdentity"})


def aws_action(signing_name: str, operation: str) -> str:
    """The IAM action of a botocore operation: "autoscaling", "DescribeAutoScalingGroups" ->
    "autoscaling:DescribeAutoScalingGroups" (IAM names actions after the API operation)."""
    return f"{signing_name}:{operation}"


def aws_needs(capability: Capability) -> tuple[Need, ...]:
    return _for(AWS_NEEDS, capability)


def aws_policy(capability: Capability) -> dict:
    """An IAM policy document granting what `capability` needs, nothing more."""
    needs = aws_needs(capability)
    statements = [{
        "Sid": "FleetViewWatch",
        "Effect": "Allow",
        "Action": sorted(n.permission for n in needs if n.capability == "watch"),
        "Resource": "*",
    }]
    if capability == "operate":
        statements.append({
            "Sid": "FleetViewOperate",
            "Effect": "Allow",
            "Action": sorted(n.permission for n in needs
                             if n.capability == "operate" and n.permission != "iam:PassRole"),
            "Resource": "*",
        })
        # PassRole is scoped to EC2 so the operator cannot hand roles to other services.
        statements.append({
            "Sid": "FleetViewPassInstanceRole",
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": "*",
            "Condition": {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
        })
    return {"Version": "2012-10-17", "Statement": statements}


def policy_actions(policy: dict) -> set[str]:
    actions: set[str] = set()
    for statement in policy["Statement"]:
        if statement.get("Effect") == "Allow":
            value = statement["Action"]
            actions.update([value] if isinstance(value, str) else value)
    return actions


def action_allowed(action: str, policy: dict) -> bool:
    """Whether an Allow statement's Action (wildcards included) names `action`."""
    for pattern in policy_actions(policy):
        regex = "^" + re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".") + "$"
        if re.match(regex, action, re.IGNORECASE):
            return True
    return False


# --- GCP -----------------------------------------------------------------------------------

GCP_NEEDS: tuple[Need, ...] = (
    Need("compute.instances.list", "watch", "list instances in every zone (aggregated list)"),
    Need("compute.images.get", "watch", "name, labels and creation time of each image"),
    Need("compute.images.list", "watch", "the project's images, labelled by version rules"),
    Need("compute.instanceTemplates.get", "watch",
         "the image a managed instance group's template launches (its desired version)"),
    Need("compute.instanceTemplates.list", "watch", "templates known for rollback"),
    Need("compute.instanceGroupManagers.list", "watch", "managed instance groups, every zone"),
    Need("compute.instanceGroupManagers.get", "watch", "a group's versions and update status"),
    Need("compute.instanceGroupManagers.update", "operate",
         "set a group's template (rollback) and recreate an instance (replace)"),
    Need("compute.zoneOperations.get", "operate", "follow a zonal group's update"),
    Need("compute.regionOperations.get", "operate", "follow a regional group's update"),
    Need("compute.globalOperations.get", "operate", "follow a template change"),
    Need("compute.instanceTemplates.useReadOnly", "operate",
         "a group may only be pointed at a template the caller may use", implied=True),
    Need("iam.serviceAccounts.actAs", "operate",
         "only if the template runs instances as a service account", implied=True),
)

# Compute Engine REST calls (what google-cloud-compute's REST transport sends) -> permission.
# Paths are relative to /compute/v1/; regional and zonal groups share one permission family.
_P = r"projects/[^/]+"
_LOC = r"(?:zones|regions)/[^/]+"
GCP_ROUTES: tuple[tuple[str, str, str], ...] = (
    ("GET", rf"{_P}/aggregated/instances", "compute.instances.list"),
    ("GET", rf"{_P}/zones/[^/]+/instances", "compute.instances.list"),
    ("GET", rf"{_P}/zones/[^/]+/instances/[^/]+", "compute.instances.get"),
    ("GET", rf"{_P}/global/images", "compute.images.list"),
    ("GET", rf"{_P}/global/images/[^/]+", "compute.images.get"),
    ("GET", rf"{_P}/global/images/family/[^/]+", "compute.images.getFromFamily"),
    ("GET", rf"{_P}/global/instanceTemplates", "compute.instanceTemplates.list"),
    ("GET", rf"{_P}/global/instanceTemplates/[^/]+", "compute.instanceTemplates.get"),
    ("GET", rf"{_P}/regions/[^/]+/instanceTemplates", "compute.instanceTemplates.list"),
    ("GET", rf"{_P}/regions/[^/]+/instanceTemplates/[^/]+", "compute.instanceTemplates.get"),
    ("GET", rf"{_P}/aggregated/instanceGroupManagers", "compute.instanceGroupManagers.list"),
    ("GET", rf"{_P}/{_LOC}/instanceGroupManagers", "compute.instanceGroupManagers.list"),
    ("GET", rf"{_P}/{_LOC}/instanceGroupManagers/[^/]+", "compute.instanceGroupManagers.get"),
    ("POST", rf"{_P}/{_LOC}/instanceGroupManagers/[^/]+/listManagedInstances",
     "compute.instanceGroupManagers.get"),
    ("GET", rf"{_P}/{_LOC}/instanceGroupManagers/[^/]+/listManagedInstances",
     "compute.instanceGroupManagers.get"),
    ("POST", rf"{_P}/{_LOC}/instanceGroupManagers/[^/]+/listErrors",
     "compute.instanceGroupManagers.get"),
    ("GET", rf"{_P}/{_LOC}/instanceGroupManagers/[^/]+/listErrors",
     "compute.instanceGroupManagers.get"),
    ("PATCH", rf"{_P}/{_LOC}/instanceGroupManagers/[^/]+", "compute.instanceGroupManagers.update"),
    ("POST", rf"{_P}/{_LOC}/instanceGroupManagers/[^/]+/"
     r"(?:recreateInstances|applyUpdatesToInstances|setInstanceTemplate|deleteInstances)",
     "compute.instanceGroupManagers.update"),
    ("GET", rf"{_P}/zones/[^/]+/operations/[^/]+", "compute.zoneOperations.get"),
    ("POST", rf"{_P}/zones/[^/]+/operations/[^/]+/wait", "compute.zoneOperations.get"),
    ("GET", rf"{_P}/regions/[^/]+/operations/[^/]+", "compute.regionOperations.get"),
    ("POST", rf"{_P}/regions/[^/]+/operations/[^/]+/wait", "compute.regionOperations.get"),
    ("GET", rf"{_P}/global/operations/[^/]+", "compute.globalOperations.get"),
    ("POST", rf"{_P}/global/operations/[^/]+/wait", "compute.globalOperations.get"),
    ("GET", rf"{_P}/zones", "compute.zones.list"),
    ("GET", rf"{_P}/regions", "compute.regions.list"),
    ("GET", rf"{_P}", "compute.projects.get"),
)
_GCP_COMPILED = tuple((m, re.compile(rf"^{p}$"), perm) for m, p, perm in GCP_ROUTES)


def gcp_permission(method: str, path: str) -> str:
    """The IAM permission a Compute REST call needs; KeyError for a call this table lacks."""
    path = path.split("?", 1)[0]
    path = re.sub(r"^.*?/compute/v1/", "", path).strip("/")
    for route_method, pattern, permission in _GCP_COMPILED:
        if route_method == method.upper() and pattern.match(path):
            return permission
    raise KeyError(f"{method.upper()} {path}: no permission known for this Compute call; "
                   "add it to GCP_ROUTES in fleetview/permissions.py")


def gcp_needs(capability: Capability) -> tuple[Need, ...]:
    return _for(GCP_NEEDS, capability)


def gcp_role(capability: Capability) -> dict:
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
        "includedPermissions": sorted(n.permission for n in gcp_needs(capability)),
    }


def render_gcp_role(role: dict) -> str:
    """The role as YAML (no YAML library needed: the document is flat)."""
    lines = [f"title: {json.dumps(role['title'])}",
             f"description: {json.dumps(role['description'])}",
             f"stage: {role['stage']}",
             "includedPermissions:"]
    lines += [f"- {p}" for p in role["includedPermissions"]]
    return "\n".join(lines) + "\n"


# --- files -----------------------------------------------------------------------------------

FILES = {
    "aws-readonly.json": ("aws", "watch"),
    "aws-operator.json": ("aws", "operate"),
    "gcp-readonly.yaml": ("gcp", "watch"),
    "gcp-operator.yaml": ("gcp", "operate"),
}


def render(filename: str) -> str:
    cloud, capability = FILES[filename]
    if cloud == "aws":
        return json.dumps(aws_policy(capability), indent=2) + "\n"
    return render_gcp_role(gcp_role(capability))


def _for(needs: tuple[Need, ...], capability: Capability) -> tuple[Need, ...]:
    wanted = {"watch"} if capability == "watch" else {"watch", "operate"}
    return tuple(n for n in needs if n.capability in wanted)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m fleetview.permissions DIR  (writes the policy files)",
              file=sys.stderr)
        return 2
    out = Path(args[0])
    out.mkdir(parents=True, exist_ok=True)
    for filename in FILES:
        (out / filename).write_text(render(filename), encoding="utf-8")
        print(out / filename)
    return 0


if __name__ == "__main__":
    sys.exit(main())
