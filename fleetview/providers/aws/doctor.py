"""`fleetview doctor` for an AWS scope: do the credentials work, which permissions are missing
(the IAM policy simulator where allowed, dry-run probes otherwise)."""

from __future__ import annotations

from fleetview.providers.aws.clients import Clients
from fleetview.providers.aws.needs import needs as aws_needs
from fleetview.providers.aws.scope import AwsScopeConfig
from fleetview.providers.base import Check, Need, ScopeReport, Verdict, probe_name, verdicts

_AWS_DENIED = ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation",
               "UnauthorizedAccess", "Forbidden")
# Errors that come before authorization (a region not enabled, a token the region rejects):
# they say nothing about the policy.
_AWS_NOT_ANSWERED = ("OptInRequired", "AuthFailure", "InvalidClientTokenId", "ExpiredToken",
                     "UnrecognizedClientException", "SignatureDoesNotMatch")
_FAKE_INSTANCE = "i-00000000000000000"
_FAKE_TEMPLATE = "lt-00000000000000000"


def _aws_probes(group: str) -> dict[str, tuple[str, str, dict]]:
    """Calls that show whether an action is allowed without changing anything.

    EC2 takes DryRun; Auto Scaling has none, so its actions are called on a group that cannot
    exist: authorization is checked before the group is looked up, and the call then fails.
    """
    return {
        "ec2:DescribeInstances": ("ec2", "describe_instances", {"DryRun": True, "MaxResults": 5}),
        "ec2:DescribeImages": ("ec2", "describe_images", {"DryRun": True, "Owners": ["self"]}),
        "ec2:DescribeLaunchTemplateVersions": (
            "ec2", "describe_launch_template_versions",
            {"DryRun": True, "LaunchTemplateId": _FAKE_TEMPLATE}),
        "ec2:CreateLaunchTemplateVersion": (
            "ec2", "create_launch_template_version",
            {"DryRun": True, "LaunchTemplateId": _FAKE_TEMPLATE,
             "LaunchTemplateData": {"ImageId": "ami-00000000000000000"}}),
        "ec2:EnableImage": ("ec2", "enable_image",
                            {"DryRun": True, "ImageId": "ami-00000000000000000"}),
        "ssm:GetParameters": ("ssm", "get_parameters", {"Names": [f"/{group}"]}),
        "autoscaling:DescribeWarmPool": (
            "autoscaling", "describe_warm_pool", {"AutoScalingGroupName": group}),
        "autoscaling:DescribeAutoScalingGroups": (
            "autoscaling", "describe_auto_scaling_groups", {"MaxRecords": 1}),
        "autoscaling:DescribeScalingActivities": (
            "autoscaling", "describe_scaling_activities", {"MaxRecords": 1}),
        "cloudtrail:LookupEvents": ("cloudtrail", "lookup_events", {"MaxResults": 1}),
        "autoscaling:DescribeInstanceRefreshes": (
            "autoscaling", "describe_instance_refreshes",
            {"AutoScalingGroupName": group, "MaxRecords": 1}),
        "autoscaling:DescribeLaunchConfigurations": (
            "autoscaling", "describe_launch_configurations", {"MaxRecords": 1}),
        "autoscaling:StartInstanceRefresh": (
            "autoscaling", "start_instance_refresh", {"AutoScalingGroupName": group}),
        "autoscaling:CancelInstanceRefresh": (
            "autoscaling", "cancel_instance_refresh", {"AutoScalingGroupName": group}),
        "autoscaling:RollbackInstanceRefresh": (
            "autoscaling", "rollback_instance_refresh", {"AutoScalingGroupName": group}),
        "autoscaling:UpdateAutoScalingGroup": (
            "autoscaling", "update_auto_scaling_group", {"AutoScalingGroupName": group}),
        "autoscaling:TerminateInstanceInAutoScalingGroup": (
            "autoscaling", "terminate_instance_in_auto_scaling_group",
            {"InstanceId": _FAKE_INSTANCE, "ShouldDecrementDesiredCapacity": False}),
    }


def check(scope: AwsScopeConfig, report: ScopeReport) -> None:
    """Fill in `report`. The session, endpoints and retries are the provider's own
    (aws/clients): credentials that pass here are the ones a poll uses."""
    clients = Clients(scope)
    try:
        _check(clients, scope, report)
        if scope.image_tags_from and not report.error:
            report.notes.append(_tag_source_note(scope))
    finally:
        clients.close()


def _tag_source_note(scope: AwsScopeConfig) -> str:
    """Whether image_tags_from (a profile or role of the account that owns shared AMIs) may
    describe that account's images: FleetView reads shared AMIs' tags through it."""
    from dataclasses import replace

    source = scope.image_tags_from or ""
    as_role = source.startswith("arn:")
    owner = Clients(replace(scope, role_arn=source if as_role else None,
                            profile=scope.profile if as_role else source))
    try:
        verdict, detail = _aws_probe(owner.client("ec2", scope.regions[0]), "describe_images",
                                     {"DryRun": True, "Owners": ["self"]})
    except Exception as exc:  # noqa: BLE001 - the profile or role itself does not work
        verdict, detail = "missing", f"{type(exc).__name__}: {_first_line(str(exc))}"
    finally:
        owner.close()
    if verdict == "present":
        return f"image_tags_from {source}: may read the owner account's AMI tags"
    return (f"image_tags_from {source}: cannot read the owner account's AMI tags ({verdict}: "
            f"{detail}); shared AMIs' versions fall back to their names until it can "
            "(it needs ec2:DescribeImages in that account)")


def _check(clients: Clients, scope: AwsScopeConfig, report: ScopeReport) -> None:
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        NoCredentialsError,
        PartialCredentialsError,
        ProfileNotFound,
    )

    needs = aws_needs(report.capability)
    try:
        caller = clients.caller()
    except ClientError as exc:
        report.error = _aws_credential_error(scope, exc)
        return
    except (NoCredentialsError, PartialCredentialsError, ProfileNotFound) as exc:
        report.error = (f"{exc}; configure credentials (aws configure, AWS_PROFILE, or "
                        "profile = \"...\" in this scope)")
        return
    except BotoCoreError as exc:
        report.error = f"{exc}; check the network, the regions and endpoint_url of this scope"
        return
    report.identity = caller["Arn"]
    principal = _aws_principal(clients, scope, caller["Arn"])
    if principal == "root":
        report.method = "none needed"
        report.notes.append("these are the account's root credentials, which may do anything; "
                            "use an IAM role or user with the policies in packaging/permissions/")
        report.checks = [Check(n, "present", "root") for n in needs]
        return
    if principal and _aws_simulate(clients, scope, principal, needs, report):
        return
    _aws_probe_all(clients, scope, needs, report)


def _aws_credential_error(scope: AwsScopeConfig, exc) -> str:
    code = exc.response.get("Error", {}).get("Code", "")
    message = exc.response.get("Error", {}).get("Message", str(exc))
    if exc.operation_name == "AssumeRole":
        return (f"cannot assume {scope.role_arn} ({code}: {message}); the role's trust policy "
                "must allow your identity, and your identity needs sts:AssumeRole on it")
    return (f"{code}: {message}; the credentials are not valid here (expired session? wrong "
            "profile? run `aws sts get-caller-identity` with the same profile to see)")


def _aws_principal(clients: Clients, scope: AwsScopeConfig, arn: str) -> str | None:
    """The IAM ARN the policy simulator evaluates, "root", or None when it cannot be known."""
    from botocore.exceptions import BotoCoreError, ClientError

    parts = arn.split(":", 5)
    if len(parts) < 6:
        return None
    kind, _, rest = parts[5].partition("/")
    if parts[5] == "root":
        return "root"
    if parts[2] == "iam" and kind in ("user", "role"):
        return arn
    if parts[2] == "sts" and kind == "assumed-role":
        if scope.role_arn:
            return scope.role_arn
        role_name = rest.split("/", 1)[0]
        try:  # the role's path is not in the session ARN; GetRole knows it
            iam = clients.client("iam")
            return iam.get_role(RoleName=role_name)["Role"]["Arn"]
        except (ClientError, BotoCoreError):
            return f"arn:{parts[1]}:iam::{parts[4]}:role/{role_name}"
    return None


def _aws_simulate(clients: Clients, scope, principal: str, needs, report: ScopeReport) -> bool:
    """Ask the IAM policy simulator; False when it may not be used (then probe instead)."""
    from botocore.exceptions import BotoCoreError, ClientError

    iam = clients.client("iam")
    decisions: dict[str, str] = {}
    try:
        pages = iam.get_paginator("simulate_principal_policy").paginate(
            PolicySourceArn=principal,
            ActionNames=[n.permission for n in needs],
            ContextEntries=[{"ContextKeyName": "iam:PassedToService",
                             "ContextKeyValues": ["ec2.amazonaws.com"],
                             "ContextKeyType": "string"}],
        )
        for page in pages:
            for result in page["EvaluationResults"]:
                decisions[result["EvalActionName"]] = result["EvalDecision"]
    except (ClientError, BotoCoreError) as exc:
        code = exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) \
            else type(exc).__name__
        report.notes.append(f"the IAM policy simulator was not usable ({code}); checked by "
                            "dry-run calls instead. Grant iam:SimulatePrincipalPolicy on "
                            f"{principal} for an exact check")
        return False
    report.method = f"IAM policy simulator on {principal}"
    report.checks = verdicts(needs, lambda n: _simulated(decisions.get(n.permission)))
    return True


def _simulated(decision: str | None) -> tuple[Verdict, str]:
    if decision == "allowed":
        return "present", ""
    if decision is None:
        return "unknown", "the simulator did not answer for this action"
    return "missing", decision


def _aws_probe_all(clients: Clients, scope: AwsScopeConfig, needs, report: ScopeReport) -> None:
    report.method = "dry-run calls (EC2 DryRun; Auto Scaling calls on a group that cannot exist)"
    probes = _aws_probes(probe_name("asg"))
    client = clients.client

    def decide(need: Need) -> tuple[Verdict, str]:
        if need.permission not in probes:
            return "unknown", "only the IAM policy simulator can check this without acting"
        service, method, params = probes[need.permission]
        # Read permissions are probed in every region (an SCP may deny some regions);
        # write permissions once, since IAM itself is global.
        regions = scope.regions if need.capability == "watch" else scope.regions[:1]
        results = {}
        for region in regions:
            args = dict(params)
            if need.permission in ("autoscaling:DescribeInstanceRefreshes",
                                   "autoscaling:DescribeWarmPool"):
                args["AutoScalingGroupName"] = _some_group(client("autoscaling", region)) \
                    or args["AutoScalingGroupName"]
            results[region] = _aws_probe(client(service, region), method, args)
        for verdict in ("missing", "unknown"):
            bad = {r: d for r, (v, d) in results.items() if v == verdict}
            if bad:
                return verdict, "; ".join(f"{r}: {d}" for r, d in bad.items())
        return "present", ""

    report.checks = verdicts(needs, decide)


def _some_group(autoscaling) -> str | None:
    """A real group's name for read-only probes that need one (reading it changes nothing)."""
    try:
        groups = autoscaling.describe_auto_scaling_groups(MaxRecords=1)["AutoScalingGroups"]
    except Exception:  # noqa: BLE001 - the probe itself will say what is wrong
        return None
    return groups[0]["AutoScalingGroupName"] if groups else None


def _first_line(text: str, limit: int = 120) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _aws_probe(client, method: str, params: dict) -> tuple[Verdict, str]:
    from botocore.exceptions import BotoCoreError, ClientError
    from botocore.parsers import ResponseParserError

    try:
        getattr(client, method)(**params)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code, status = error.get("Code", ""), exc.response.get("ResponseMetadata", {}).get(
            "HTTPStatusCode", 0)
        if code == "DryRunOperation":
            return "present", ""
        if code in _AWS_DENIED or "AccessDenied" in code or "Unauthorized" in code:
            return "missing", code
        if code in _AWS_NOT_ANSWERED:
            return "unknown", f"{code}: {_first_line(error.get('Message', ''))}"
        if 400 <= status < 500 and "Throttl" not in code:
            return "present", f"authorized (the call then failed with {code}, as intended)"
        return "unknown", f"{code or status}: {_first_line(error.get('Message', ''))}"
    except ResponseParserError:
        # An endpoint without this API answers an error page (moto does); there is nothing to
        # grant, and the provider does without such an API.
        return "present", "the endpoint does not implement this API"
    except BotoCoreError as exc:
        return "unknown", _first_line(str(exc))
    except Exception as exc:  # noqa: BLE001 - a probe that breaks says nothing about the grant
        return "unknown", f"{type(exc).__name__}: {_first_line(str(exc))}"
    return "present", ""


