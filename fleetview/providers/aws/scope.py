"""An [[aws]] scope in the config: its keys, their checks, and the scope config they make."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlparse

from fleetview.providers.base import (
    BACKFILL_DAYS_DEFAULT,
    STR,
    STR_LIST,
    KeySpec,
    parse_backfill_days,
)


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
    act_on_owned_groups: bool = False
    # Where the tags of AMIs shared from another account are read: a profile or role ARN of
    # the owner account (the consumer account cannot see an owner's tags).
    image_tags_from: str | None = None
    backfill_days: int = BACKFILL_DAYS_DEFAULT


KEYS: dict[str, KeySpec] = {
    "regions": STR_LIST,
    "profile": STR,
    "role_arn": (str, 'an IAM role ARN, e.g. "arn:aws:iam::123456789012:role/fleetview"'),
    "endpoint_url": (str, 'a URL, e.g. "http://127.0.0.1:5000"'),
    "image_tags_from": (str, 'a profile name or IAM role ARN of the account that owns shared '
                        'AMIs, e.g. "arn:aws:iam::123456789012:role/fleetview-images"'),
}

EXAMPLE = '''[[aws]]
name = "prod-aws"
regions = ["us-east-1", "eu-west-1"]
profile = "prod"          # or leave it out for the default credentials
# role_arn = "arn:aws:iam::123456789012:role/fleetview"
actions = false           # true allows replace and rollback
# image_tags_from = "arn:aws:iam::123456789012:role/fleetview-images"  # shared AMIs' tags
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
    tags_from = entry.get("image_tags_from")
    if tags_from is not None and tags_from.startswith("arn:") and not re.match(
            r"^arn:aws[\w-]*:iam::\d{12}:role/.+$", tags_from):
        fail("image_tags_from", "must be a profile name or an IAM role ARN, e.g. "
             '"arn:aws:iam::123456789012:role/fleetview-images"')
    return AwsScopeConfig(
        name=entry["name"], regions=tuple(dict.fromkeys(regions)), profile=entry.get("profile"),
        role_arn=role_arn, endpoint_url=endpoint, actions=entry.get("actions", False),
        protect=tuple(entry.get("protect", [])),
        act_on_owned_groups=entry.get("act_on_owned_groups", False),
        image_tags_from=tags_from,
        backfill_days=parse_backfill_days(entry, fail),
    )
