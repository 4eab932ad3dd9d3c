"""No credential reaches a log: `-v` logs FleetView only; `--debug-sdk` logs the SDKs'
requests and answers with every credential redacted (issue #19, "Secrets stay out of logs")."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys

import pytest

from fleetview import logs
from tests.helpers.aws import moto_server  # noqa: F401

# Distinctive values, so a grep for them cannot match anything else.
ACCESS_KEY = "AKIAFVCANARY7Q2XW9ZL"
SECRET_KEY = "fvSecretCanary/Zq8+Wm3Tt5Rr7Yy9Uu1Ii3Oo5Pp7Aa9"
SESSION_TOKEN = "fvSessionCanaryTokenXYZ0123456789abcdefFVCANARYEND"
CANARIES = (ACCESS_KEY, SECRET_KEY, SESSION_TOKEN)
# Credentials moto makes up for the assumed role, as they would appear unredacted.
UNREDACTED = re.compile(r"<(SecretAccessKey|SessionToken|AccessKeyId)>(?!<redacted>)")


def _run(tmp_path, moto_url: str, *flags: str) -> subprocess.CompletedProcess:
    config = tmp_path / "config.toml"
    config.write_text(f"""
[store]
url = "sqlite:///{tmp_path / 'history.db'}"
[[aws]]
name = "canary"
regions = ["us-east-1"]
endpoint_url = "{moto_url}"
role_arn = "arn:aws:iam::123456789012:role/fleetview-canary"
""")
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
           "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_SESSION_TOKEN": SESSION_TOKEN,
           "FLEETVIEW_AUDIT_WITNESS": str(tmp_path / "witness.jsonl")}
    return subprocess.run(
        [sys.executable, "-m", "fleetview", *flags, "collect", "--once", "--config",
         str(config)], capture_output=True, text=True, timeout=120, env=env)


def _assert_clean(done: subprocess.CompletedProcess) -> None:
    output = done.stdout + done.stderr
    for canary in CANARIES:
        assert canary not in output, f"{canary} leaked:\n{output[:4000]}"
    assert not UNREDACTED.search(output), output[:4000]


def test_verbose_logs_fleetview_only_and_no_credential(moto_server, tmp_path):  # noqa: F811
    done = _run(tmp_path, moto_server.url, "-v")
    assert done.returncode == 0, done.stderr[-3000:]
    _assert_clean(done)
    assert " fleetview." in done.stderr  # FleetView's own debug lines are there
    assert not re.search(r" (botocore|urllib3|boto3)[.\w]* DEBUG ", done.stderr)


def test_debug_sdk_logs_the_wire_with_credentials_redacted(moto_server, tmp_path):  # noqa: F811
    done = _run(tmp_path, moto_server.url, "-v", "--debug-sdk")
    assert done.returncode == 0, done.stderr[-3000:]
    _assert_clean(done)
    # The switch really shows the wire, including the answers that held credentials.
    assert re.search(r" botocore[.\w]* DEBUG ", done.stderr)
    assert "AssumeRole" in done.stderr
    assert "<SecretAccessKey><redacted></SecretAccessKey>" in done.stderr
    assert "Authorization" in done.stderr and "<redacted>" in done.stderr


@pytest.mark.parametrize("text, secret", [
    ("headers={'Authorization': b'AWS4-HMAC-SHA256 Credential=AKIAX/2026/us-east-1/ec2/"
     "aws4_request, SignedHeaders=host, Signature=0a1b2c'}", "AKIAX"),
    ("x-amz-security-token:IQoJb3JpZ2luX2VjEXAMPLE\nhost:ec2", "IQoJb3JpZ2luX2VjEXAMPLE"),
    ('{"access_token": "ya29.a0AfH6SMBEXAMPLE", "expires_in": 3599}', "a0AfH6SMBEXAMPLE"),
    ('{"private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkq\\n-----END PRIVATE '
     'KEY-----\\n"}', "MIIEvQIBADANBgkq"),
    ("POST /token grant_type=refresh_token&refresh_token=1//0gEXAMPLE&client_secret=shh",
     "1//0gEXAMPLE"),
    ("Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.EXAMPLE", "eyJhbGciOiJSUzI1NiJ9"),
])
def test_redact_covers_the_credential_shapes(text, secret):
    assert secret not in logs.redact(text)
    assert "<redacted>" in logs.redact(text)


def test_the_filter_redacts_records_of_any_logger_and_their_tracebacks():
    record = logging.LogRecord("botocore.endpoint", logging.DEBUG, __file__, 1,
                               "Response body:\n%s", (b"<SessionToken>tok123</SessionToken>",),
                               None)
    logs.RedactSecrets().filter(record)
    assert "tok123" not in record.getMessage()
    try:
        raise RuntimeError("Authorization: Bearer tok456")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (),
                                   sys.exc_info())
    logs.RedactSecrets().filter(record)
    assert "tok456" not in (record.exc_text or "")
