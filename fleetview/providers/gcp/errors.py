"""GCP's known errors: what a Compute or Google auth failure means and what the operator does."""

from __future__ import annotations

import os

import requests
from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exc

from fleetview.domain.errors import FleetViewError, ProviderError

LOGIN_HINT = "run `gcloud auth application-default login` (or point " \
    "GOOGLE_APPLICATION_CREDENTIALS at a service account key) and try again"
# Compute answers throttling with 403 + one of these reasons (and sometimes 429).
THROTTLE_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})
# What a network failure looks like from the REST transport and from google.auth.
UNREACHABLE = (requests.ConnectionError, requests.Timeout, auth_exc.TransportError)


class TransientError(ProviderError):
    """A failure that retries did not cure but time may: throttling, 5xx, no connection."""


class ThrottledError(TransientError):
    """Compute kept throttling after every retry."""


class NotFoundError(ProviderError):
    """The resource does not exist (HTTP 404)."""


def reasons(exc: gexc.GoogleAPICallError) -> set[str]:
    found = {e.get("reason", "") for e in (exc.errors or ()) if isinstance(e, dict)}
    if getattr(exc, "reason", None):
        found.add(exc.reason)
    return found


def is_transient(exc: gexc.GoogleAPICallError) -> bool:
    """Whether trying the same call again later may succeed: throttling or a server error."""
    return exc.code in TRANSIENT_STATUS or (
        exc.code == 403 and bool(reasons(exc) & THROTTLE_REASONS))


def short(exc: Exception) -> str:
    message = getattr(exc, "message", None) or str(exc)
    # The REST error text starts with "GET http://...: "; the URL says nothing to a user.
    if ": " in message and message.split(" ", 1)[0] in {"GET", "POST", "PATCH", "PUT", "DELETE"}:
        message = message.split(": ", 1)[1]
    return message


def translate(exc: gexc.GoogleAPICallError, config, permission: str, what: str,
              retries: int) -> ProviderError:
    """A failed Compute call as an error that says what to do; `retries` were made already."""
    scope, detail = config.name, short(exc)
    if exc.code == 401:
        return ProviderError(f"scope {scope}: Google rejected the credentials while {what} "
                             f"(401: {detail}); {LOGIN_HINT}")
    if exc.code == 403 and reasons(exc) & THROTTLE_REASONS or exc.code == 429:
        return ThrottledError(f"scope {scope}: the Compute API kept throttling while {what} "
                              f"after {retries} retries ({detail}); FleetView will try again "
                              "at the next poll, or ask for a higher quota")
    if exc.code == 403:
        return ProviderError(f"scope {scope}: permission denied while {what} (403: {detail}); "
                             f"grant the account the {permission} permission on project "
                             f"{config.project} (e.g. roles/compute.viewer to poll, "
                             "roles/compute.instanceAdmin.v1 to act)")
    if exc.code == 404:
        return NotFoundError(f"scope {scope}: not found while {what} (404: {detail}); check "
                             f"that it (and project {config.project}) exists")
    error = TransientError if exc.code in TRANSIENT_STATUS else ProviderError
    return error(f"scope {scope}: the Compute API failed while {what} ({exc.code}: {detail}); "
                 "try again later")


def unreachable(config, what: str, exc: BaseException) -> TransientError:
    return TransientError(f"scope {config.name}: cannot reach the Compute API at "
                          f"{config.api_endpoint or 'compute.googleapis.com'} while {what} "
                          f"({type(exc).__name__}); check the network or api_endpoint")


def no_answer(config, endpoint: str, what: str, seconds: float) -> TransientError:
    return TransientError(f"scope {config.name}: no answer from {endpoint} in {seconds:.0f} s "
                          f"while {what}; its regions keep their last known state. Check the "
                          "network, a proxy or api_endpoint, then poll again (a project that "
                          "takes longer to list needs a longer poll.deadline_s)")


def foreign_answer(config, endpoint: str, what: str, detail: str) -> ProviderError:
    """An HTTP 200 answer that is not the Compute API's (a proxy's or captive portal's page,
    a wrong api_endpoint): a failed poll, never an empty project."""
    return ProviderError(f"scope {config.name}: {endpoint} answered with a page that is not "
                         f"the Compute API's while {what} ({detail}): a proxy, a captive "
                         "portal or a wrong api_endpoint; its regions keep their last known "
                         "state. Check api_endpoint and any proxy between FleetView and "
                         "Google, then poll again")


def bad_credentials_file(config, path: str, exc: BaseException) -> ProviderError:
    # google.auth raises ("what", cause): say both, not a tuple's repr.
    parts = [str(a).strip().rstrip(".") for a in exc.args if str(a).strip()]
    reason = ": ".join(parts) or type(exc).__name__
    if not os.path.exists(path):
        why = "there is no such file"
    elif not os.access(path, os.R_OK):
        why = "it cannot be read (check its permissions)"
    else:
        why = f"it is not usable credentials ({reason})"
    return ProviderError(f"scope {config.name}: GOOGLE_APPLICATION_CREDENTIALS names {path}, "
                         f"but {why}; point it at a service account key file (JSON) or an "
                         "application default credentials file, or unset it to use "
                         "`gcloud auth application-default login`")


def refresh_failed(config, exc: BaseException) -> ProviderError:
    sa = config.impersonate_service_account
    hint = (f"check that your account may impersonate {sa} (it needs "
            "roles/iam.serviceAccountTokenCreator on it), or " if sa else "")
    return ProviderError(f"scope {config.name}: the Google credentials could not be refreshed "
                         f"({exc}); {hint}{LOGIN_HINT}")


def explain(exc: BaseException, config, what: str) -> str:
    """What the operator reads for a failure that no call wrapper turned into a known error."""
    if isinstance(exc, FleetViewError):
        return str(exc)
    if isinstance(exc, gexc.GoogleAPICallError):
        return str(translate(exc, config, "needed", what, 0))
    if isinstance(exc, auth_exc.RefreshError):
        return str(refresh_failed(config, exc))
    if isinstance(exc, UNREACHABLE):
        return str(unreachable(config, what, exc))
    if isinstance(exc, auth_exc.GoogleAuthError):
        return f"scope {config.name}: the Google credentials do not work ({exc}); {LOGIN_HINT}"
    return f"{type(exc).__name__}: {exc}"
