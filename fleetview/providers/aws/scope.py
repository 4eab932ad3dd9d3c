"""An [[aws]] scope in the config: its keys, their checks, and the scope config they make."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlparse

from fleetview.providers.base import STR, STR_LIST, KeySpec


@dataclass(frozen=True)
class AwsScopeConfig:
    name: str
    regions: tuple[str, ...]
    profile: str | None = None
    role_arn: str | None = None
    endpoint_url: str | None = None
    actions: bool = False
    protect: tuple[str, ...] = ()
    provider: str = "aws"


KEYS: dict[str, KeySpec] = {
    "regions": STR_LIST,
    "profile": STR,
    "role_arn": (str, 'an IAM role ARN, e.g. "arn:aws:iam::123456789012:role/fleetview"'),
    "endpoint_url": (str, 'a URL, e.g. "http://127.0.0.1:5000"'),
}

EXAMPLE = '''[[aws]]
name = "prod-aws"
regions = ["us-east-1", "eu-west-1"]
profile = "prod"          # or leave it out for the default credentials
# role_arn = "arn:aws:iam::123456789012:role/fleetview"
actions = false           # true allows replace and rollback
'''


def parse(entry: dict, fail: Callable[[str, str], None]) -> AwsScopeConfig:
    """A checked [[aws]] table (types already match KEYS) as a scope config."""
    regions = entry.get("regions")
    if not regions:
        fail("regions", 'needs at least one region, e.g. regions = ["us-east-1"]')
    for region in regions:
        if not re.match(r"^[a-z]{2}(-[a-z]+)+-\d+$", region):
            fail("regions", f"{region!r} is not an AWS region name, e.g. \"us-east-1\"")
    role_arn = entry.get("role_arn")
    if role_arn is not None and not re.match(r"^arn:aws[\w-]*:iam::\d{12}:role/.+$", role_arn):
        fail("role_arn", "must be an IAM role ARN, e.g. "
             '"arn:aws:iam::123456789012:role/fleetview"')
    endpoint = entry.get("endpoint_url")
    if endpoint is not None and urlparse(endpoint).scheme not in ("http", "https"):
        fail("endpoint_url", 'must be a URL with its scheme, e.g. "http://127.0.0.1:5000"')
    return AwsScopeConfig(
        name=entry["name"], regions=tuple(dict.fromkeys(regions)), profile=entry.get("profile"),
        role_arn=role_arn, endpoint_url=endpoint, actions=entry.get("actions", False),
        protect=tuple(entry.get("protect", [])),
    )
