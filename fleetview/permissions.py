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

# Calls that need no IAM permission (AWS documents sts:GetCallerIdentity as always allowed),
# and sts:AssumeRole, which the identity *starting* FleetView needs on the scope's role_arn (the
# role's trust policy must allow it too); it belongs to that identity, not to FleetView's role.
AWS_UNGATED: frozenset[str] = frozenset({"sts:GetCallerIdentity", "sts:AssumeRole"})


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
    Need("compute.disks.get", "watch",
         "the image of a boot disk, for instances that do not name their source image"),
    Need("compute.disks.list", "watch", "the same for many disks at once (aggregated list)"),
    Need("compute.images.get", "watch", "name, labels and creation time of each image"),
    Need("compute.instanceTemplates.get", "watch",
         "the image a managed instance group's template launches (its desired version)"),
    Need("compute.instanceGroupManagers.list", "watch", "managed instance groups, every zone"),
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
    "compute.zoneOperations.get": "compute.zoneOperations.get",
    "compute.zoneOperations.wait": "compute.zoneOperations.get",
    "compute.regionOperations.get": "compute.regionOperations.get",
    "compute.regionOperations.wait": "compute.regionOperations.get",
    "compute.globalOperations.get": "compute.globalOperations.get",
    "compute.globalOperations.wait": "compute.globalOperations.get",
}


def gcp_permission(method_id: str) -> str:
    """The IAM permission a Compute API method needs; KeyError for one this table lacks."""
    try:
        return GCP_METHODS[method_id]
    except KeyError:
        raise KeyError(f"{method_id}: no permission known for this Compute method; add it to "
                       "GCP_METHODS in fleetview/permissions.py") from None


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
