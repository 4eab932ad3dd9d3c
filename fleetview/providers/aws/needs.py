"""What FleetView needs from AWS: every IAM action it uses, for which capability, and why.

The policy files in packaging/permissions/ are rendered from AWS_NEEDS; tests record the calls
the provider makes against moto and fail when one is not covered here.
"""

from __future__ import annotations

import json
import re

from fleetview.providers.base import Capability, Need, needs_for

AWS_NEEDS: tuple[Need, ...] = (
    Need("ec2:DescribeInstances", "watch", "list instances and the image each runs"),
    Need("ec2:DescribeImages", "watch", "name, tags and creation time of each AMI"),
    Need("ec2:DescribeLaunchTemplateVersions", "watch",
         "the AMI a group's launch template launches (its desired version)"),
    Need("autoscaling:DescribeAutoScalingGroups", "watch", "groups, sizes and launch templates"),
    Need("autoscaling:DescribeInstanceRefreshes", "watch", "whether a rollout is under way"),
    Need("autoscaling:DescribeLaunchConfigurations", "watch",
         "the AMI of groups that still use launch configurations"),
    Need("autoscaling:DescribeWarmPool", "watch",
         "the instances waiting in a group's warm pool (not members, not drift)"),
    Need("ssm:GetParameters", "watch",
         "the AMI a launch template names through an SSM parameter (resolve:ssm:)"),
    Need("autoscaling:DescribeScalingActivities", "watch",
         "history before FleetView watched: the launches and terminations of each group's "
         "instances in the last six weeks (backfill)"),
    Need("cloudtrail:LookupEvents", "watch",
         "history before FleetView watched: launches, terminations, template versions and "
         "group updates of the last 90 days (backfill; without it, backfill uses the rest "
         "and leaves gaps)"),
    Need("autoscaling:StartInstanceRefresh", "operate", "roll a group to another version"),
    Need("autoscaling:CancelInstanceRefresh", "operate",
         "stop a rollout under way before a rollback, or stop an action"),
    Need("autoscaling:RollbackInstanceRefresh", "operate",
         "roll back a rollout under way where AWS can"),
    Need("autoscaling:UpdateAutoScalingGroup", "operate",
         "point a group at the launch template version being rolled back to"),
    Need("autoscaling:TerminateInstanceInAutoScalingGroup", "operate",
         "replace one instance (its group launches a new one)"),
    Need("ec2:CreateLaunchTemplateVersion", "operate",
         "a launch template version with the rollback AMI"),
    Need("ec2:EnableImage", "operate",
         "re-enable a disabled AMI a rollback or replacement boots from"),
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


def needs(capability: Capability) -> tuple[Need, ...]:
    return needs_for(AWS_NEEDS, capability)


def policy(capability: Capability) -> dict:
    """An IAM policy document granting what `capability` needs, nothing more."""
    wanted = needs(capability)
    statements = [{
        "Sid": "FleetViewWatch",
        "Effect": "Allow",
        "Action": sorted(n.permission for n in wanted if n.capability == "watch"),
        "Resource": "*",
    }]
    if capability == "operate":
        statements.append({
            "Sid": "FleetViewOperate",
            "Effect": "Allow",
            "Action": sorted(n.permission for n in wanted
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




def render(capability: Capability) -> str:
    """The IAM policy file of a capability, as packaging/permissions/ holds it."""
    return json.dumps(policy(capability), indent=2) + "\n"


def permission_of(service: str, operation: str) -> str | None:
    """The IAM action a recorded call needs (None: one AWS lets everyone make)."""
    action = aws_action(service, operation)
    return None if action in AWS_UNGATED else action
