"""`fleetview doctor` against a moto server that enforces IAM, and a stand-in Resource Manager."""

import io
import json
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from botocore.stub import Stubber

from fleetview import doctor
from fleetview.config import Config, ConfigError
from fleetview.providers.aws import doctor as aws_doctor
from fleetview.providers.aws import needs as aws_needs
from fleetview.providers.aws.scope import AwsScopeConfig
from fleetview.providers.gcp import needs as gcp_needs
from fleetview.providers.gcp.scope import GcpScopeConfig
from tests.helpers.aws import moto_server_module  # noqa: F401

REGION = "us-east-1"


def _reset_auth(url: str, count: str) -> None:
    request = urllib.request.Request(f"{url}/moto-api/reset-auth", data=count.encode(),
                                     headers={"Content-Type": "text/plain"}, method="POST")
    urllib.request.urlopen(request, timeout=10).read()


@pytest.fixture(scope="module")
def moto_iam(moto_server_module):  # noqa: F811
    """The session's moto server with three IAM users, then IAM enforcement switched on
    (and off again afterwards, since the server is shared)."""
    server = moto_server_module
    kw = dict(endpoint_url=server.url, region_name=REGION, aws_access_key_id="testing",
              aws_secret_access_key="testing")
    iam, ec2 = boto3.client("iam", **kw), boto3.client("ec2", **kw)
    # A group to read, so the read-only probes that need one find it.
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    ec2.create_launch_template(LaunchTemplateName="web",
                               LaunchTemplateData={"ImageId": ami, "InstanceType": "t3.micro"})
    boto3.client("autoscaling", **kw).create_auto_scaling_group(
        AutoScalingGroupName="web", LaunchTemplate={"LaunchTemplateName": "web"},
        MinSize=0, MaxSize=0, AvailabilityZones=[f"{REGION}a"])

    def user(name, policy):
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName="fleetview",
                            PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return key["AccessKeyId"], key["SecretAccessKey"]

    keys = {
        "ro": user("ro", aws_needs.policy("watch")),
        "op": user("op", aws_needs.policy("operate")),
        "half": user("half", {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": ["ec2:DescribeInstances"], "Resource": "*"}]}),
        "bad": ("AKIAIOSFODNN7EXAMPLE", "not-a-secret"),
    }
    _reset_auth(server.url, "0")
    try:
        yield server.url, keys
    finally:
        _reset_auth(server.url, "inf")


def aws_scope(url, actions=False):
    return AwsScopeConfig(name="prod", regions=(REGION,), endpoint_url=url, actions=actions)


def as_user(monkeypatch, keys):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", keys[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", keys[1])
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)


def verdicts(report):
    return {c.need.permission: c.verdict for c in report.checks}


def test_readonly_policy_is_enough_to_watch(moto_iam, monkeypatch):
    url, keys = moto_iam
    as_user(monkeypatch, keys["ro"])
    out = io.StringIO()
    doctor.run(Config(scopes=(aws_scope(url),)), out=out)
    text = out.getvalue()
    assert "arn:aws:iam::123456789012:user/ro" in text
    assert "dry-run calls" in text  # moto has no policy simulator, and ro may not use it
    assert "iam:SimulatePrincipalPolicy" in text
    # Plain moto has no CloudTrail LookupEvents (the local layer serves it: its probe is
    # checked in tests/providers/test_aws_backfill.py); everything else is granted.
    found = verdicts(doctor.check_scope(aws_scope(url)))
    assert {p for p, v in found.items() if v != "present"} <= {"cloudtrail:LookupEvents"}, text


def test_missing_read_permissions_are_named(moto_iam, monkeypatch):
    url, keys = moto_iam
    as_user(monkeypatch, keys["half"])
    out = io.StringIO()
    assert doctor.run(Config(scopes=(aws_scope(url),)), out=out) == 1
    report = doctor.check_scope(aws_scope(url))
    assert verdicts(report)["ec2:DescribeInstances"] == "present"
    missing = {c.need.permission for c in report.missing()}
    # moto enforces IAM on EC2 and Auto Scaling calls, not on SSM's or CloudTrail's: their
    # probes are answered, so moto cannot show them missing.
    unenforced = {"ssm:GetParameters", "cloudtrail:LookupEvents"}
    assert missing == {n.permission for n in aws_needs.needs("watch")} - {
        "ec2:DescribeInstances"} - unenforced
    assert "MISSING ec2:DescribeImages" in out.getvalue()
    assert "grant aws-readonly.json" in out.getvalue()


def test_operator_policy_covers_actions(moto_iam, monkeypatch):
    url, keys = moto_iam
    as_user(monkeypatch, keys["op"])
    report = doctor.check_scope(aws_scope(url, actions=True))
    assert report.capability == "operate"
    assert not report.missing(), report.missing()
    found = verdicts(report)
    assert found["ec2:CreateLaunchTemplateVersion"] == "present"
    assert found["autoscaling:UpdateAutoScalingGroup"] == "present"
    # Permissions the cloud checks only while acting cannot be probed without acting.
    assert found["iam:PassRole"] == "unknown"
    assert "grant aws-operator.json" not in doctor.render(report)


def test_readonly_identity_lacks_operator_permissions(moto_iam, monkeypatch):
    url, keys = moto_iam
    as_user(monkeypatch, keys["ro"])
    report = doctor.check_scope(aws_scope(url, actions=True))
    missing = {c.need.permission for c in report.missing()}
    assert {"ec2:CreateLaunchTemplateVersion", "autoscaling:StartInstanceRefresh",
            "autoscaling:UpdateAutoScalingGroup"} <= missing
    assert not missing & {n.permission for n in aws_needs.needs("watch")}
    assert "grant aws-operator.json" in doctor.render(report)


def test_invalid_credentials_fail_before_any_permission(moto_iam, monkeypatch):
    url, keys = moto_iam
    as_user(monkeypatch, keys["bad"])
    report = doctor.check_scope(aws_scope(url))
    assert "InvalidClientTokenId" in report.error
    assert not report.checks and not report.ok
    assert "FAIL: InvalidClientTokenId" in doctor.render(report)


def test_unreachable_endpoint_is_a_known_error(monkeypatch):
    as_user(monkeypatch, ("testing", "testing"))
    report = doctor.check_scope(aws_scope("http://127.0.0.1:9"))
    assert "endpoint_url" in report.error


class _StubSession:
    def __init__(self, client):
        self._client = client

    def client(self, *_args, **_kwargs):
        return self._client


def test_policy_simulator_decides_when_allowed():
    iam = boto3.client("iam", region_name=REGION, aws_access_key_id="x",
                       aws_secret_access_key="x")
    needs = aws_needs.needs("operate")
    stub = Stubber(iam)
    decision = {"ec2:RunInstances": "implicitDeny", "iam:PassRole": "explicitDeny"}
    stub.add_response(
        "simulate_principal_policy",
        {"EvaluationResults": [{"EvalActionName": n.permission,
                                "EvalDecision": decision.get(n.permission, "allowed")}
                               for n in needs], "IsTruncated": False},
        {"PolicySourceArn": "arn:aws:iam::123456789012:role/fleetview",
         "ActionNames": [n.permission for n in needs],
         "ContextEntries": [{"ContextKeyName": "iam:PassedToService",
                             "ContextKeyValues": ["ec2.amazonaws.com"],
                             "ContextKeyType": "string"}]},
    )
    report = doctor.ScopeReport("prod", "aws", "operate")
    with stub:
        assert aws_doctor._aws_simulate(_StubSession(iam), aws_scope(None, True),
                                    "arn:aws:iam::123456789012:role/fleetview", needs, report)
    assert report.method.startswith("IAM policy simulator")
    assert {c.need.permission: c.detail for c in report.missing()} == {
        "ec2:RunInstances": "implicitDeny", "iam:PassRole": "explicitDeny"}
    assert len(report.checks) == len(needs)


def test_principal_of_assumed_role_and_root():
    scope = AwsScopeConfig(name="p", regions=(REGION,),
                           role_arn="arn:aws:iam::123456789012:role/ops/fleetview")
    arn = "arn:aws:sts::123456789012:assumed-role/fleetview/fleetview-doctor"
    assert aws_doctor._aws_principal(None, scope, arn) == scope.role_arn
    user = "arn:aws:iam::123456789012:user/alice"
    assert aws_doctor._aws_principal(None, scope, user) == user
    assert aws_doctor._aws_principal(None, scope, "arn:aws:iam::123456789012:root") == "root"


def test_no_scopes_is_a_config_error():
    with pytest.raises(ConfigError, match="no scopes"):
        doctor.run(Config())


# --- GCP: a stand-in for Resource Manager and Compute on loopback ------------------------------


class _FakeGoogle(BaseHTTPRequestHandler):
    granted: set[str] = set()
    test_iam_status = 200
    forbidden_paths: tuple[str, ...] = ()
    seen: list[str] = []

    def log_message(self, *args):
        pass

    def _send(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):  # noqa: N802
        self.seen.append(f"POST {self.path}")
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path == "/v1/projects/demo:testIamPermissions" and self.test_iam_status == 200:
            self._send(200, {"permissions": sorted(set(body["permissions"]) & self.granted)})
        else:
            self._send(self.test_iam_status, {"error": {"code": self.test_iam_status,
                                                        "message": "nope"}})

    def do_GET(self):  # noqa: N802
        self.seen.append(f"GET {self.path}")
        if any(p in self.path for p in self.forbidden_paths):
            self._send(403, {"error": {"code": 403, "message": "Required permission",
                                       "errors": [{"reason": "forbidden"}]}})
        elif "fleetview-doctor" in self.path:
            self._send(404, {"error": {"code": 404, "message": "not found",
                                       "errors": [{"reason": "notFound"}]}})
        else:
            self._send(200, {"items": {}})


@pytest.fixture()
def fake_google():
    handler = type("Handler", (_FakeGoogle,), {"seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield handler, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def gcp_scope(url, actions=False):
    return GcpScopeConfig(name="g", project="demo", api_endpoint=url, credentials="anonymous",
                          actions=actions)


def test_gcp_test_iam_permissions_all_granted(fake_google):
    handler, url = fake_google
    handler.granted = {n.permission for n in gcp_needs.needs("operate")}
    out = io.StringIO()
    assert doctor.run(Config(scopes=(gcp_scope(url, actions=True),)), out=out) == 0
    assert "projects.testIamPermissions on demo" in out.getvalue()
    assert handler.seen == ["POST /v1/projects/demo:testIamPermissions"]


def test_gcp_missing_permissions_are_named(fake_google):
    handler, url = fake_google
    handler.granted = {n.permission for n in gcp_needs.needs("watch")}
    report = doctor.check_scope(gcp_scope(url, actions=True))
    assert {c.need.permission for c in report.missing()} == {
        n.permission for n in gcp_needs.needs("operate")} - handler.granted
    assert "grant gcp-operator.yaml" in doctor.render(report)


def test_gcp_forbidden_project_is_a_credentials_error(fake_google):
    handler, url = fake_google
    handler.test_iam_status = 403
    report = doctor.check_scope(gcp_scope(url))
    assert "refused this identity" in report.error and not report.ok


def test_gcp_falls_back_to_read_calls(fake_google):
    handler, url = fake_google
    handler.test_iam_status = 404
    handler.forbidden_paths = ("/aggregated/disks?",)
    report = doctor.check_scope(gcp_scope(url))
    found = verdicts(report)
    assert found["compute.disks.list"] == "missing"
    assert found["compute.instances.list"] == "present"
    assert found["compute.images.get"] == "present"  # 404 notFound: past authorization
    assert "not available" in report.notes[0]
    assert not report.ok


def test_gcp_read_probes_cannot_check_operator_permissions(fake_google):
    handler, url = fake_google
    handler.test_iam_status = 404
    report = doctor.check_scope(gcp_scope(url, actions=True))
    assert verdicts(report)["compute.instanceGroupManagers.update"] == "unknown"
    assert not report.missing()
    assert "could not be checked (reasons above)" in doctor.render(report)


def test_gcp_without_credentials_says_how_to_log_in(monkeypatch, tmp_path):
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "none.json"))
    report = doctor.check_scope(GcpScopeConfig(name="g", project="demo"))
    assert "gcloud auth application-default login" in report.error


def test_gcp_doctor_refuses_the_credentials_the_poll_refuses():
    """Doctor loads credentials with the provider's own code: no pass for a scope that
    cannot poll."""
    scope = GcpScopeConfig(name="g", project="demo", credentials="anonymous",
                           api_endpoint="https://compute.example.com")
    report = doctor.check_scope(scope)
    assert "loopback" in report.error and not report.ok and not report.checks


def test_gcp_against_the_compute_emulator():
    """The emulator has no Resource Manager: doctor falls back to read calls, which it serves."""
    from fleetview.sim.gce import EmulatedClock, GceEmulator, GceState

    with GceEmulator(GceState(EmulatedClock(1_768_478_400.0), project="demo")) as emulator:
        out = io.StringIO()
        assert doctor.run(Config(scopes=(gcp_scope(emulator.endpoint),)), out=out) == 0, \
            out.getvalue()
        report = doctor.check_scope(gcp_scope(emulator.endpoint, actions=True))
    assert {c.need.permission for c in report.unknown()} == {
        "compute.instanceGroupManagers.update", "compute.instanceTemplates.useReadOnly",
        "compute.instanceTemplates.create", "compute.images.useReadOnly",
        "iam.serviceAccounts.actAs"}
    assert not report.missing()


@pytest.mark.parametrize(("code", "status", "verdict"), [
    ("DryRunOperation", 412, "present"),
    ("UnauthorizedOperation", 403, "missing"),
    ("AccessDenied", 403, "missing"),
    ("ValidationError", 400, "present"),  # got past authorization, then failed as intended
    ("OptInRequired", 401, "unknown"),  # a region not enabled says nothing about the policy
    ("Throttling", 400, "unknown"),
    ("InternalError", 500, "unknown"),
])
def test_probe_answers_are_read_as_verdicts(code, status, verdict):
    ec2 = boto3.client("ec2", region_name=REGION, aws_access_key_id="x",
                       aws_secret_access_key="x")
    with Stubber(ec2) as stub:
        stub.add_client_error("describe_instances", service_error_code=code,
                              http_status_code=status)
        assert aws_doctor._aws_probe(ec2, "describe_instances", {"DryRun": True})[0] == verdict


def test_gcp_unknown_project_is_not_read_as_granted():
    """A project that does not exist answers 404 everywhere; that is no grant."""
    from fleetview.sim.gce import EmulatedClock, GceEmulator, GceState

    with GceEmulator(GceState(EmulatedClock(1_768_478_400.0), project="demo")) as emulator:
        scope = GcpScopeConfig(name="g", project="no-such-project", credentials="anonymous",
                               api_endpoint=emulator.endpoint)
        report = doctor.check_scope(scope)
    assert "'no-such-project' was not found" in report.error and not report.ok


def test_gcp_doctor_checks_that_the_audit_log_can_be_read():
    """A backfill reads Cloud Audit Logs: doctor asks the Logging API as the backfill does."""
    from fleetview.sim.gce import EmulatedClock, GceEmulator, GceState

    with GceEmulator(GceState(EmulatedClock(1_768_478_400.0), project="demo")) as emulator:
        assert verdicts(doctor.check_scope(gcp_scope(emulator.endpoint)))[
            "logging.logEntries.list"] == "present"
        emulator.faults.deny("logging.entries.list", "logging.logEntries.list")
        report = doctor.check_scope(gcp_scope(emulator.endpoint))
    assert [c.need.permission for c in report.missing()] == ["logging.logEntries.list"]
    assert "roles/logging.viewer" in doctor.render(report)
