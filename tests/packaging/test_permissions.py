"""The least-privilege policies cover every call the providers make, and nothing else.

The calls are recorded, not listed by hand: botocore's before-call event while the AWS provider
polls and acts against moto, and the Compute emulator's own per-method call counts while the
GCP provider polls and acts against it.
"""

import ast
import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from fleetview import permissions
from fleetview.actions.steps import run_steps
from fleetview.domain.timing import FakeClock
from fleetview.domain.versions import VersionRules
from fleetview.providers.aws import needs as aws_needs
from fleetview.providers.aws.scope import AwsScopeConfig
from fleetview.providers.gcp import needs as gcp_needs
from fleetview.sim.aws_fleet import seed_aws_fleet
from tests.helpers.aws import moto_server_module  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "packaging" / "permissions"
REGION = "us-east-1"


def policy(name: str) -> dict:
    return json.loads((POLICIES / name).read_text(encoding="utf-8"))


def role_permissions(name: str) -> set[str]:
    lines = (POLICIES / name).read_text(encoding="utf-8").splitlines()
    return {line[2:].strip() for line in lines if line.startswith("- ")}


@pytest.mark.parametrize("filename", sorted(permissions.files()))
def test_policy_files_are_rendered_from_the_permission_lists(filename):
    assert (POLICIES / filename).read_text(encoding="utf-8") == permissions.render(filename), (
        f"packaging/permissions/{filename} is stale: run "
        "`python -m fleetview.permissions packaging/permissions`")


def test_readonly_policies_hold_no_write_permission():
    for action in aws_needs.policy_actions(policy("aws-readonly.json")):
        # CloudTrail's LookupEvents only reads the event history (AWS lists it as Read).
        assert action.split(":")[1].startswith(("Describe", "List", "Get", "Lookup")), action
    for permission in role_permissions("gcp-readonly.yaml"):
        assert permission.rsplit(".", 1)[1] in ("get", "list", "getFromFamily"), permission


def test_operator_policies_extend_the_readonly_ones():
    assert aws_needs.policy_actions(policy("aws-readonly.json")) < aws_needs.policy_actions(
        policy("aws-operator.json"))
    assert role_permissions("gcp-readonly.yaml") < role_permissions("gcp-operator.yaml")


# --- AWS -----------------------------------------------------------------------------------


class CallRecorder:
    """IAM actions of every API call made through a boto3 session's clients."""

    def __init__(self):
        self.calls: Counter[str] = Counter()

    def __call__(self, model, **_kwargs):
        self.calls[aws_needs.aws_action(model.service_model.signing_name, model.name)] += 1

    def take(self) -> set[str]:
        seen, self.calls = set(self.calls), Counter()
        return seen - aws_needs.AWS_UNGATED


@pytest.fixture(scope="module")
def aws_recorded(moto_server_module):  # noqa: F811
    """(calls while polling, calls while replacing and rolling back) of the AWS provider."""
    from fleetview.providers.aws.provider import AwsProvider

    seed_aws_fleet(moto_server_module.url, (REGION,))
    scope = AwsScopeConfig(name="prod", regions=(REGION,), endpoint_url=moto_server_module.url,
                           actions=True)
    provider = AwsProvider(scope, VersionRules(), timing=FakeClock().timing(interval_s=15.0))
    recorder = CallRecorder()
    provider.clients.session().events.register("before-call", recorder)
    try:
        inventory = provider.poll()
        assert inventory.ok and inventory.instances, inventory.errors
        provider.identity()
        # A backfill is watching too: CloudTrail, Auto Scaling activities, templates.
        now = datetime.now(UTC)
        provider.history(now - timedelta(days=30), now)
        watch = recorder.take()

        web = [i for i in inventory.instances if i.group == "web"]
        for plan in (
            provider.plan_replace(inventory, web[0].id),
            provider.plan_rollback(inventory, "web", REGION, "1.3.0"),
        ):
            # Whether moto lets the action finish is the provider tests' concern; here only
            # the calls it makes count.
            list(run_steps(provider, plan))
        operate = recorder.take()
    finally:
        provider.close()
    return watch, operate


def test_aws_readonly_policy_covers_every_polling_call(aws_recorded):
    watch, _ = aws_recorded
    readonly = policy("aws-readonly.json")
    assert {"ec2:DescribeInstances", "autoscaling:DescribeAutoScalingGroups"} <= watch
    missing = sorted(a for a in watch if not aws_needs.action_allowed(a, readonly))
    assert not missing, f"polling calls {missing}: add them to AWS_NEEDS as 'watch'"


def test_aws_operator_policy_covers_every_action_call(aws_recorded):
    watch, operate = aws_recorded
    operator = policy("aws-operator.json")
    assert any(":Describe" not in a for a in operate), operate  # the actions did write
    missing = sorted(a for a in watch | operate if not aws_needs.action_allowed(a, operator))
    assert not missing, f"action calls {missing}: add them to AWS_NEEDS as 'operate'"


def _aws_calls_in_source() -> set[str]:
    """IAM actions of every boto3 method the AWS provider's code names, run or not.

    moto has no instance refresh, so those calls never run here; reading the code covers them.
    """
    session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x",
                            region_name=REGION)
    services = {}
    for service in ("ec2", "autoscaling", "sts", "iam", "ssm", "cloudtrail"):
        client = session.client(service)
        services[service] = (client.meta.service_model.signing_name,
                             client.meta.method_to_api_mapping)
    names: set[str] = set()
    # The provider's own modules; doctor's probes are not calls the provider makes.
    for path in (ROOT / "fleetview" / "providers" / "aws").glob("*.py"):
        if path.name == "doctor.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                names.add(node.attr)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                names.add(node.value)  # get_paginator("describe_instances")
    found = set()
    for signing_name, mapping in services.values():
        found |= {aws_needs.aws_action(signing_name, mapping[n]) for n in names & set(mapping)}
    return found - aws_needs.AWS_UNGATED


def test_aws_operator_policy_covers_every_call_in_the_code():
    calls = _aws_calls_in_source()
    assert "autoscaling:StartInstanceRefresh" in calls
    operator = policy("aws-operator.json")
    missing = sorted(a for a in calls if not aws_needs.action_allowed(a, operator))
    assert not missing, f"the AWS provider calls {missing}: add them to AWS_NEEDS"


def test_aws_policies_grant_nothing_the_code_does_not_use(aws_recorded):
    watch, operate = aws_recorded
    used = watch | operate | _aws_calls_in_source()
    implied = {n.permission for n in aws_needs.AWS_NEEDS if n.implied}
    unused = sorted(aws_needs.policy_actions(policy("aws-operator.json")) - used - implied)
    assert not unused, f"{unused} are granted but never called: remove them from AWS_NEEDS"
    unused_ro = sorted(aws_needs.policy_actions(policy("aws-readonly.json")) - used)
    assert not unused_ro, f"{unused_ro} are granted read-only but never called"


# --- GCP -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gcp_recorded():
    """(methods while polling, methods while replacing and rolling back) of the GCP provider."""
    gce_fixtures = pytest.importorskip("tests.helpers.gce")
    make, seed_fleet = gce_fixtures.make, gce_fixtures.seed_fleet

    emulator = gce_fixtures.GceEmulator(gce_fixtures.GceState(
        gce_fixtures.EmulatedClock(gce_fixtures.CLOCK_START), project=gce_fixtures.PROJECT))
    emulator.start()
    try:
        seed_fleet(emulator.state)
        provider = make(emulator, actions=True, interval_s=10.0)
        try:
            emulator.state.calls.clear()
            inventory = provider.poll()
            assert inventory.ok and inventory.instances, inventory.errors
            # A backfill is watching too: it reads the audit log and the templates.
            now = emulator.clock.now_datetime()
            backfill = provider.history(now - timedelta(days=30), now)
            assert backfill.records and not backfill.skipped, backfill.skipped
            watch = set(emulator.state.calls)
            emulator.state.calls.clear()
            web = sorted((i for i in inventory.instances if i.group == "web"),
                         key=lambda i: i.name)
            for plan in (provider.plan_replace(inventory, web[0].id),
                         provider.plan_rollback(inventory, "api", "us-central1", "1.8.0")):
                list(run_steps(provider, plan))
            operate = set(emulator.state.calls)
        finally:
            provider.close()
    finally:
        emulator.stop()
    return watch, operate


def test_gcp_readonly_role_covers_every_polling_call(gcp_recorded):
    watch, _ = gcp_recorded
    assert "compute.instances.aggregatedList" in watch
    role = role_permissions("gcp-readonly.yaml")
    missing = sorted(f"{m} ({gcp_needs.permission(m)})" for m in watch
                     if gcp_needs.permission(m) not in role)
    assert not missing, f"polling calls {missing}: add them to GCP_NEEDS as 'watch'"


def test_gcp_operator_role_covers_every_action_call(gcp_recorded):
    watch, operate = gcp_recorded
    assert any(m.endswith((".patch", ".recreateInstances")) for m in operate), operate
    role = role_permissions("gcp-operator.yaml")
    missing = sorted(f"{m} ({gcp_needs.permission(m)})" for m in watch | operate
                     if gcp_needs.permission(m) not in role)
    assert not missing, f"action calls {missing}: add them to GCP_NEEDS as 'operate'"


def test_gcp_roles_grant_nothing_the_code_does_not_use(gcp_recorded):
    watch, operate = gcp_recorded
    used = {gcp_needs.permission(m) for m in watch | operate}
    used |= _gcp_permissions_in_source()
    implied = {n.permission for n in gcp_needs.GCP_NEEDS if n.implied}
    unused = sorted(role_permissions("gcp-operator.yaml") - used - implied)
    assert not unused, f"{unused} are granted but never called: remove them from GCP_NEEDS"
    polling = {gcp_needs.permission(m) for m in watch}
    polling |= _gcp_permissions_in_source(actions=False)
    unused_ro = sorted(role_permissions("gcp-readonly.yaml") - polling)
    assert not unused_ro, f"{unused_ro} are granted read-only but polling never calls them"


def _gcp_permissions_in_source(actions: bool = True) -> set[str]:
    """Permissions the GCP provider's code names at its call sites (it passes them along for
    its error messages), so branches the emulator run does not reach are covered too."""
    found = set()
    # The modules that make calls: needs.py lists every permission, doctor.py probes them.
    for path in (ROOT / "fleetview" / "providers" / "gcp").glob("*.py"):
        if path.name in ("needs.py", "doctor.py") or not actions and path.name == "actions.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                    re.fullmatch(r"compute\.[a-zA-Z]+\.[a-zA-Z]+", node.value) and \
                    not node.value.endswith(".com"):
                found.add(gcp_needs.GCP_METHODS.get(node.value, node.value))
    return found


def test_gcp_operator_role_covers_every_permission_named_in_the_code():
    named = _gcp_permissions_in_source()
    assert "compute.instances.list" in named
    missing = sorted(named - role_permissions("gcp-operator.yaml"))
    assert not missing, f"the GCP provider names {missing}: add them to GCP_NEEDS"


def test_every_method_the_emulator_serves_has_a_permission():
    api = pytest.importorskip("fleetview.sim.gce.api")
    unknown = sorted(mid for _, _, mid, _ in api.ROUTES if mid not in gcp_needs.GCP_METHODS)
    assert not unknown, f"add {unknown} to GCP_METHODS in fleetview/providers/gcp/needs.py"
