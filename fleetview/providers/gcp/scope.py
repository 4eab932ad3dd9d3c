"""A [[gcp]] scope in the config: its keys, their checks, and the scope config they make."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlparse

from fleetview.providers.base import (
    BACKFILL_DAYS_DEFAULT,
    STR_LIST,
    KeySpec,
    is_loopback_url,
    parse_backfill_days,
)


@dataclass(frozen=True)
class GcpScopeConfig:
    name: str
    project: str
    api_endpoint: str | None = None
    credentials: str | None = None  # None: application default credentials
    impersonate_service_account: str | None = None
    regions: tuple[str, ...] = ()  # empty: every region the project has
    actions: bool = False
    protect: tuple[str, ...] = ()
    provider: str = "gcp"
    # A group GKE deploys (Group.owner) is acted on only when this is true.
    act_on_owned_groups: bool = False
    backfill_days: int = BACKFILL_DAYS_DEFAULT  # how far back the first poll reads history


KEYS: dict[str, KeySpec] = {
    "project": (str, 'a project id, e.g. "my-project"'),
    "api_endpoint": (str, 'a URL with its scheme, e.g. "http://127.0.0.1:8085"'),
    "credentials": (str, '"anonymous" (loopback endpoints only) or leave it out for ADC'),
    "impersonate_service_account": (str, 'a service account email'),
    "regions": STR_LIST,
}

EXAMPLE = '''[[gcp]]
name = "prod-gcp"
project = "my-project"    # application default credentials (gcloud auth application-default login)
actions = false           # true allows replace and rollback
'''


def parse(entry: dict, fail: Callable[[str, str], None]) -> GcpScopeConfig:
    """A checked [[gcp]] table (types already match KEYS) as a scope config."""
    project = entry.get("project")
    if not project:
        fail("project", 'is missing; name the GCP project, e.g. project = "my-project"')
    endpoint = entry.get("api_endpoint")
    if endpoint is not None and urlparse(endpoint).scheme not in ("http", "https"):
        fail("api_endpoint", 'must include its scheme, e.g. "http://127.0.0.1:8085"')
    credentials = entry.get("credentials")
    if credentials is not None:
        if credentials != "anonymous":
            fail("credentials", 'the only value is "anonymous"; leave it out to use '
                 "application default credentials")
        if endpoint is None or not is_loopback_url(endpoint):
            fail("credentials", 'anonymous is allowed only with a loopback api_endpoint such '
                 'as "http://127.0.0.1:8085"; remove credentials to use application default '
                 "credentials")
    return GcpScopeConfig(
        name=entry["name"], project=project, api_endpoint=endpoint, credentials=credentials,
        impersonate_service_account=entry.get("impersonate_service_account"),
        regions=tuple(entry.get("regions", [])), actions=entry.get("actions", False),
        protect=tuple(entry.get("protect", [])),
        act_on_owned_groups=entry.get("act_on_owned_groups", False),
        backfill_days=parse_backfill_days(entry, fail),
    )
