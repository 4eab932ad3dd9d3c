"""`fleetview doctor`: per scope, do the credentials work and which needed permissions are missing."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal, TextIO

from fleetview import permissions
from fleetview.config import AwsScopeConfig, Config, ConfigError, GcpScopeConfig
from fleetview.permissions import Capability, Need

Verdict = Literal["present", "missing", "unknown"]


@dataclass(frozen=True)
class Check:
    """One permission's verdict, and how it was reached (or why it could not be)."""

    need: Need
    verdict: Verdict
    detail: str = ""


@dataclass
class ScopeReport:
    scope: str
    provider: str
    capability: Capability
    identity: str = ""
    method: str = ""  # how the permissions were checked
    error: str = ""  # credentials or endpoint do not work: nothing else was checked
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.error and all(c.verdict == "present" for c in self.checks)

    def missing(self) -> list[Check]:
        return [c for c in self.checks if c.verdict == "missing"]

    def unknown(self) -> list[Check]:
        return [c for c in self.checks if c.verdict == "unknown"]


def run(config: Config, out: TextIO | None = None) -> int:
    """Check every configured scope; exit 0 when every needed permission is present."""
    out = out or sys.stdout
    if not config.scopes:
        raise ConfigError(config.path or "the config file", "",
                          "no scopes configured, nothing to check; add an [[aws]] or [[gcp]] "
                          "table (see README, 'Configure')")
    reports = [check_scope(scope) for scope in config.scopes]
    for report in reports:
        out.write(render(report))
    bad = [r.scope for r in reports if not r.ok]
    if bad:
        out.write(f"\n{len(bad)} of {len(reports)} scopes need attention: {', '.join(bad)}. "
                  "Grant what is missing from the policies in packaging/permissions/ (see "
                  "README, 'Permissions'); `??` marks what could not be checked.\n")
        return 1
    out.write(f"\nAll {len(reports)} scopes have what FleetView needs.\n")
    return 0


def check_scope(scope) -> ScopeReport:
    capability: Capability = "operate" if scope.actions else "watch"
    report = ScopeReport(scope.name, scope.provider, capability)
    if isinstance(scope, AwsScopeConfig):
        check_aws(scope, report)
    elif isinstance(scope, GcpScopeConfig):
        check_gcp(scope, report)
    else:  # pragma: no cover - the config only makes the two
        report.error = f"unknown provider {scope.provider!r}"
    return report


def render(report: ScopeReport) -> str:
    role = {"watch": "read-only watching", "operate": "watching and actions (actions = true)"}
    lines = [f"{report.scope} ({report.provider}, {role[report.capability]})"]
    if report.identity:
        lines.append(f"  identity: {report.identity}")
    if report.error:
        lines.append(f"  FAIL: {report.error}")
        return "\n".join(lines) + "\n"
    if report.method:
        lines.append(f"  checked with: {report.method}")
    for check in report.checks:
        mark = {"present": "ok  ", "missing": "MISSING", "unknown": "??  "}[check.verdict]
        detail = f" ({check.detail})" if check.detail and check.verdict != "present" else ""
        lines.append(f"  {mark} {check.need.permission}: {check.need.why}{detail}")
    for note in report.notes:
        lines.append(f"  note: {note}")
    missing, unknown = report.missing(), report.unknown()
    if missing:
        policy = policy_file(report)
        lines.append(f"  => {len(missing)} missing; grant {policy} "
                     f"(packaging/permissions/) to {report.identity or 'this identity'}")
    elif unknown:
        lines.append(f"  => {len(unknown)} could not be checked (reasons above)")
    else:
        lines.append("  => everything needed is present")
    return "\n".join(lines) + "\n"


def policy_file(report: ScopeReport) -> str:
    for name, (cloud, capability) in permissions.FILES.items():
        if cloud == report.provider and capability == report.capability:
            return name
    raise KeyError(report.provider)  # pragma: no cover


def verdicts(needs: Iterable[Need], decide: Callable[[Need], tuple[Verdict, str]]) -> list[Check]:
    return [Check(need, *decide(need)) for need in needs]


_PROBE_MARK = "-fleetview-doctor-"


def probe_name(prefix: str) -> str:
    """A resource name that cannot exist, for calls that must fail after authorization."""
    return f"{prefix}{_PROBE_MARK}{uuid.uuid4().hex[:12]}"


# --- AWS -----------------------------------------------------------------------------------

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
        "autoscaling:DescribeAutoScalingGroups": (
            "autoscaling", "describe_auto_scaling_groups", {"MaxRecords": 1}),
        "autoscaling:DescribeInstanceRefreshes": (
            "autoscaling", "describe_instance_refreshes",
            {"AutoScalingGroupName": group, "MaxRecords": 1}),
        "autoscaling:DescribeLaunchConfigurations": (
            "autoscaling", "describe_launch_configurations", {"MaxRecords": 1}),
        "autoscaling:StartInstanceRefresh": (
            "autoscaling", "start_instance_refresh", {"AutoScalingGroupName": group}),
        "autoscaling:UpdateAutoScalingGroup": (
            "autoscaling", "update_auto_scaling_group", {"AutoScalingGroupName": group}),
        "autoscaling:TerminateInstanceInAutoScalingGroup": (
            "autoscaling", "terminate_instance_in_auto_scaling_group",
            {"InstanceId": _FAKE_INSTANCE, "ShouldDecrementDesiredCapacity": False}),
    }


def _aws_session(scope: AwsScopeConfig):
    import boto3

    session = boto3.Session(profile_name=scope.profile, region_name=scope.regions[0])
    if scope.role_arn:
        sts = session.client("sts", endpoint_url=scope.endpoint_url)
        creds = sts.assume_role(RoleArn=scope.role_arn,
                                RoleSessionName="fleetview-doctor")["Credentials"]
        session = boto3.Session(aws_access_key_id=creds["AccessKeyId"],
                                aws_secret_access_key=creds["SecretAccessKey"],
                                aws_session_token=creds["SessionToken"],
                                region_name=scope.regions[0])
    return session


def check_aws(scope: AwsScopeConfig, report: ScopeReport) -> None:
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        NoCredentialsError,
        PartialCredentialsError,
        ProfileNotFound,
    )

    needs = permissions.aws_needs(report.capability)
    try:
        session = _aws_session(scope)
        caller = session.client("sts", endpoint_url=scope.endpoint_url).get_caller_identity()
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
    principal = _aws_principal(session, scope, caller["Arn"])
    if principal == "root":
        report.method = "none needed"
        report.notes.append("these are the account's root credentials, which may do anything; "
                            "use an IAM role or user with the policies in packaging/permissions/")
        report.checks = [Check(n, "present", "root") for n in needs]
        return
    if principal and _aws_simulate(session, scope, principal, needs, report):
        return
    _aws_probe_all(session, scope, needs, report)


def _aws_credential_error(scope: AwsScopeConfig, exc) -> str:
    code = exc.response.get("Error", {}).get("Code", "")
    message = exc.response.get("Error", {}).get("Message", str(exc))
    if exc.operation_name == "AssumeRole":
        return (f"cannot assume {scope.role_arn} ({code}: {message}); the role's trust policy "
                "must allow your identity, and your identity needs sts:AssumeRole on it")
    return (f"{code}: {message}; the credentials are not valid here (expired session? wrong "
            "profile? run `aws sts get-caller-identity` with the same profile to see)")


def _aws_principal(session, scope: AwsScopeConfig, arn: str) -> str | None:
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
            iam = session.client("iam", endpoint_url=scope.endpoint_url)
            return iam.get_role(RoleName=role_name)["Role"]["Arn"]
        except (ClientError, BotoCoreError):
            return f"arn:{parts[1]}:iam::{parts[4]}:role/{role_name}"
    return None


def _aws_simulate(session, scope, principal: str, needs, report: ScopeReport) -> bool:
    """Ask the IAM policy simulator; False when it may not be used (then probe instead)."""
    from botocore.exceptions import BotoCoreError, ClientError

    iam = session.client("iam", endpoint_url=scope.endpoint_url)
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


def _aws_probe_all(session, scope: AwsScopeConfig, needs, report: ScopeReport) -> None:
    report.method = "dry-run calls (EC2 DryRun; Auto Scaling calls on a group that cannot exist)"
    probes = _aws_probes(probe_name("asg"))
    clients: dict[tuple[str, str], object] = {}

    def client(service: str, region: str):
        key = (service, region)
        if key not in clients:
            clients[key] = session.client(service, region_name=region,
                                          endpoint_url=scope.endpoint_url)
        return clients[key]

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
            if need.permission == "autoscaling:DescribeInstanceRefreshes":
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


# --- GCP -----------------------------------------------------------------------------------

_CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
_COMPUTE = "https://compute.googleapis.com"
_RESOURCE_MANAGER = "https://cloudresourcemanager.googleapis.com"


def _gcp_probes(project: str) -> dict[str, str]:
    """Read-only GETs per permission; a name that cannot exist for the `get` permissions."""
    base = f"compute/v1/projects/{project}"
    missing = probe_name("x")
    return {
        "compute.instances.list": f"{base}/aggregated/instances?maxResults=1",
        "compute.disks.list": f"{base}/aggregated/disks?maxResults=1",
        "compute.disks.get": f"{base}/zones/us-central1-a/disks/{missing}",
        "compute.images.get": f"{base}/global/images/{missing}",
        "compute.instanceTemplates.get": f"{base}/global/instanceTemplates/{missing}",
        "compute.instanceGroupManagers.list":
            f"{base}/aggregated/instanceGroupManagers?maxResults=1",
        # read permissions of the operator role
        "compute.instances.get": f"{base}/zones/us-central1-a/instances/{missing}",
        "compute.instanceGroupManagers.get":
            f"{base}/zones/us-central1-a/instanceGroupManagers/{missing}",
        "compute.instanceTemplates.list": f"{base}/global/instanceTemplates?maxResults=1",
        "compute.images.list": f"{base}/global/images?maxResults=1",
        "compute.zoneOperations.get": f"{base}/zones/us-central1-a/operations/{missing}",
        "compute.regionOperations.get": f"{base}/regions/us-central1/operations/{missing}",
        "compute.globalOperations.get": f"{base}/global/operations/{missing}",
    }


def _gcp_credentials(scope: GcpScopeConfig):
    """(credentials, identity) for the scope; raises google.auth exceptions."""
    if scope.credentials == "anonymous":
        from google.auth.credentials import AnonymousCredentials

        return AnonymousCredentials(), "anonymous (local emulator)"
    import google.auth
    from google.auth.transport.requests import Request

    creds, _ = google.auth.default(scopes=[_CLOUD_PLATFORM])
    if scope.impersonate_service_account:
        from google.auth import impersonated_credentials

        creds = impersonated_credentials.Credentials(
            source_credentials=creds, target_principal=scope.impersonate_service_account,
            target_scopes=[_CLOUD_PLATFORM])
    creds.refresh(Request())
    identity = (scope.impersonate_service_account
                or getattr(creds, "service_account_email", None)
                or "application default credentials (user account)")
    return creds, identity


def check_gcp(scope: GcpScopeConfig, report: ScopeReport) -> None:
    import google.auth.exceptions
    import requests
    from google.auth.transport.requests import AuthorizedSession

    needs = permissions.gcp_needs(report.capability)
    try:
        creds, report.identity = _gcp_credentials(scope)
    except google.auth.exceptions.DefaultCredentialsError:
        report.error = ("no application default credentials; run `gcloud auth "
                        "application-default login` or set GOOGLE_APPLICATION_CREDENTIALS")
        return
    except google.auth.exceptions.GoogleAuthError as exc:
        report.error = (f"the credentials do not work ({exc}); log in again with `gcloud auth "
                        "application-default login`")
        return
    session = AuthorizedSession(creds)
    try:
        if _gcp_test_iam_permissions(session, scope, needs, report):
            return
        _gcp_probe_all(session, scope, needs, report)
    except requests.RequestException as exc:
        report.error = f"cannot reach the Google APIs ({exc}); check the network or api_endpoint"
    finally:
        session.close()


def _gcp_test_iam_permissions(session, scope, needs, report: ScopeReport) -> bool:
    """projects.testIamPermissions (Resource Manager; Compute has none at project level)."""
    base = (scope.api_endpoint or _RESOURCE_MANAGER).rstrip("/")
    url = f"{base}/v1/projects/{scope.project}:testIamPermissions"
    response = session.post(url, json={"permissions": [n.permission for n in needs]},
                            timeout=30)
    if response.status_code == 200:
        granted = set(response.json().get("permissions", []))
        report.method = f"projects.testIamPermissions on {scope.project}"
        report.checks = verdicts(needs, lambda n: ("present", "") if n.permission in granted
                                 else ("missing", "not granted on the project"))
        return True
    if response.status_code == 403:
        report.error = (f"project {scope.project!r} refused this identity (403: "
                        f"{_gcp_message(response)}); check the project id and that the identity "
                        "has a role on it")
        return True
    report.notes.append(f"testIamPermissions is not available at {base} "
                        f"({response.status_code}); checked by read calls instead")
    return False


def _gcp_probe_all(session, scope: GcpScopeConfig, needs, report: ScopeReport) -> None:
    base = (scope.api_endpoint or _COMPUTE).rstrip("/")
    probes = _gcp_probes(scope.project)
    report.method = f"read calls to {base}"
    # A project that does not exist answers 404 to every call, which the `get` probes below
    # would take for "authorized"; so first make sure the project answers a list.
    first = session.get(f"{base}/{probes['compute.instances.list']}", timeout=30)
    if first.status_code == 404:
        report.error = (f"project {scope.project!r} was not found at {base} (404: "
                        f"{_gcp_message(first)}); check the project id")
        return

    def decide(need: Need) -> tuple[Verdict, str]:
        if need.permission not in probes:
            return "unknown", "only testIamPermissions can check this without acting"
        path = probes[need.permission]
        response = first if need.permission == "compute.instances.list" else \
            session.get(f"{base}/{path}", timeout=30)
        if response.status_code == 200:
            return "present", ""
        if response.status_code == 403:
            return "missing", _gcp_message(response)
        if response.status_code == 404 and _PROBE_MARK in path and \
                _gcp_reason(response) == "notFound":
            return "present", "authorized (the probe named a resource that cannot exist)"
        return "unknown", f"{response.status_code}: {_gcp_message(response)}"

    report.checks = verdicts(needs, decide)


def _gcp_error(response) -> dict:
    try:
        error = response.json().get("error", {})
    except ValueError:
        return {}
    return error if isinstance(error, dict) else {}


def _gcp_message(response) -> str:
    return _gcp_error(response).get("message") or response.reason or ""


def _gcp_reason(response) -> str:
    errors = _gcp_error(response).get("errors") or [{}]
    return errors[0].get("reason", "") if isinstance(errors[0], dict) else ""
