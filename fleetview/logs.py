"""Logging for the `fleetview` command: FleetView's own messages on stderr, and the cloud
SDKs' wire logs only when asked for by name (`--debug-sdk`), with credentials redacted.

`-v` used to set the root logger to DEBUG, which also turned on botocore's wire log: the
session token, the Authorization header and the whole AssumeRole answer with its secret key
went to stderr. Now `-v` raises only the `fleetview` loggers, and every line that reaches
the handler passes `RedactSecrets` first, whichever logger wrote it.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import TextIO

REDACTED = "<redacted>"

# The loggers of the SDKs and their HTTP stacks; `--debug-sdk` turns them to DEBUG.
SDK_LOGGERS = ("botocore", "boto3", "s3transfer", "urllib3", "requests", "google",
               "google_auth_httplib2", "grpc")

FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"

# Header and field names whose values are credentials (compared case-insensitively).
_SECRET_KEYS = (
    "authorization", "proxy-authorization", "x-amz-security-token", "x-amz-credential",
    "x-amz-signature", "x-goog-iam-authorization-token", "x-goog-api-key", "cookie",
    "set-cookie", "secretaccesskey", "sessiontoken", "accesskeyid", "secret_access_key",
    "session_token", "access_key_id", "aws_secret_access_key", "aws_session_token",
    "aws_access_key_id", "access_token", "refresh_token", "id_token", "client_secret",
    "private_key", "private_key_id", "assertion", "password", "token",
)
_KEYS = "|".join(re.escape(k) for k in sorted(_SECRET_KEYS, key=len, reverse=True))

_RULES: list[tuple[re.Pattern[str], str]] = [
    # PEM private keys, whole (also with escaped newlines inside a repr or JSON) or cut off.
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----",
                re.DOTALL), REDACTED),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[^'\"]*"), REDACTED),
    # XML elements (STS answers): <SecretAccessKey>...</SecretAccessKey>
    (re.compile(rf"<({_KEYS})>[^<]*</\1>", re.IGNORECASE), rf"<\1>{REDACTED}</\1>"),
    # Quoted keys with quoted values: dict reprs of headers ('Authorization': b'...') and JSON.
    (re.compile(rf"""(["'])({_KEYS})\1(\s*:\s*)b?(["'])(?:\\.|(?!\4).)*\4""", re.IGNORECASE),
     rf"\1\2\1\3'{REDACTED}'"),
    # Header lines (botocore's canonical request: "x-amz-security-token:...").
    (re.compile(rf"(?m)^(\s*)({_KEYS})(\s*:).*$", re.IGNORECASE), rf"\1\2\3{REDACTED}"),
    # key=value in query strings and form bodies.
    (re.compile(rf"(?<![\w-])({_KEYS})=[^&\s'\",;]+", re.IGNORECASE), rf"\1={REDACTED}"),
    # What is left of a SigV4 signature or a bearer token anywhere else.
    (re.compile(r"\bCredential=[^,\s&'\"]+"), f"Credential={REDACTED}"),
    (re.compile(r"\bSignature=[0-9a-fA-F]+"), f"Signature={REDACTED}"),
    (re.compile(r"\bBearer\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE), f"Bearer {REDACTED}"),
    (re.compile(r"\bya29\.[A-Za-z0-9._-]+"), REDACTED),  # Google OAuth access tokens
]


def redact(text: str) -> str:
    """`text` with every credential this module knows the shape of replaced."""
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text


class RedactSecrets(logging.Filter):
    """A handler filter: the record's message (and traceback) with credentials redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: let the handler report it as it would
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class _FleetViewHandler(logging.StreamHandler):
    """The one handler `setup` installs (found again and replaced on the next call)."""


def setup(verbose: bool = False, debug_sdk: bool = False, stream: TextIO | None = None
          ) -> None:
    """stderr gets warnings from everyone; `verbose`: FleetView's own debug messages too;
    `debug_sdk`: the SDKs' wire logs too (redacted). Leaves logging alone when someone
    else (pytest, an embedding program) has configured the root logger already."""
    root = logging.getLogger()
    ours = [h for h in root.handlers if isinstance(h, _FleetViewHandler)]
    if root.handlers and not ours:
        return
    for handler in ours:
        root.removeHandler(handler)
    handler = _FleetViewHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(RedactSecrets())
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("fleetview").setLevel(logging.DEBUG if verbose else logging.NOTSET)
    for name in SDK_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if debug_sdk else logging.NOTSET)
