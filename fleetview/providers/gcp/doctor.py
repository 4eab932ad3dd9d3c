"""`fleetview doctor` for a GCP scope: do the credentials work, which permissions are missing
(projects.testIamPermissions where it answers, read probes otherwise)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import requests
from google.auth import exceptions as auth_exc
from google.auth.transport.requests import AuthorizedSession

from fleetview.domain.errors import ProviderError
from fleetview.providers.base import PROBE_MARK, Need, ScopeReport, Verdict, probe_name, verdicts
from fleetview.providers.gcp.clients import account_of, load_credentials
from fleetview.providers.gcp.errors import LOGIN_HINT
from fleetview.providers.gcp.needs import needs as gcp_needs
from fleetview.providers.gcp.scope import GcpScopeConfig

_COMPUTE = "https://compute.googleapis.com"
_RESOURCE_MANAGER = "https://cloudresourcemanager.googleapis.com"
_LOGGING = "https://logging.googleapis.com"


def _gcp_probes(project: str) -> dict[str, str]:
    """Read-only GETs per permission; a name that cannot exist for the `get` permissions."""
    base = f"compute/v1/projects/{project}"
    missing = probe_name("x")
    return {
        "compute.instances.list": f"{base}/aggregated/instances?maxResults=1",
        "compute.disks.list": f"{base}/aggregated/disks?maxResults=1",
        "compute.disks.get": f"{base}/zones/us-central1-a/disks/{missing}",
        "compute.images.get": f"{base}/global/images/{missing}",
        "compute.images.getFromFamily": f"{base}/global/images/family/{missing}",
        "compute.zoneOperations.list": f"{base}/zones/us-central1-a/operations?maxResults=1",
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


def check(scope: GcpScopeConfig, report: ScopeReport) -> None:
    needs = gcp_needs(report.capability)
    # The credentials the provider polls and acts with, loaded by the same code.
    try:
        creds = load_credentials(scope)
    except ProviderError as exc:
        report.error = str(exc)
        return
    try:
        report.identity = account_of(creds, scope)
    except ProviderError as exc:
        # Actions write who acted into the audit log; watching needs no name.
        if report.capability == "operate":
            report.error = str(exc)
            return
        report.notes.append(str(exc))
    session = AuthorizedSession(creds)
    try:
        if _gcp_test_iam_permissions(session, scope, needs, report):
            return
        _gcp_probe_all(session, scope, needs, report)
    except (auth_exc.TransportError, requests.RequestException) as exc:
        report.error = f"cannot reach the Google APIs ({exc}); check the network or api_endpoint"
    except auth_exc.GoogleAuthError as exc:
        report.error = f"the credentials do not work ({exc}); {LOGIN_HINT}"
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
        if need.permission == "logging.logEntries.list":
            return _logging_probe(session, scope)
        if need.permission not in probes:
            return "unknown", "only testIamPermissions can check this without acting"
        path = probes[need.permission]
        response = first if need.permission == "compute.instances.list" else \
            session.get(f"{base}/{path}", timeout=30)
        if response.status_code == 200:
            return "present", ""
        if response.status_code == 403:
            return "missing", _gcp_message(response)
        if response.status_code == 404 and PROBE_MARK in path and \
                _gcp_reason(response) == "notFound":
            return "present", "authorized (the probe named a resource that cannot exist)"
        return "unknown", f"{response.status_code}: {_gcp_message(response)}"

    report.checks = verdicts(needs, decide)


def _logging_probe(session, scope: GcpScopeConfig) -> tuple[Verdict, str]:
    """Cloud Logging's entries.list for one entry of the last minute: the read a backfill
    makes (the emulator serves it beside Compute; Google on its own host)."""
    base = (scope.api_endpoint or _LOGGING).rstrip("/")
    since = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    response = session.post(f"{base}/v2/entries:list", timeout=30, json={
        "resourceNames": [f"projects/{scope.project}"], "pageSize": 1,
        "filter": f'timestamp>="{since}"'})
    if response.status_code == 200:
        return "present", ""
    if response.status_code == 403:
        return "missing", (f"{_gcp_message(response)}; without it a backfill reads no audit "
                           "log (grant roles/logging.viewer)")
    return "unknown", f"{response.status_code}: {_gcp_message(response)}"


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
