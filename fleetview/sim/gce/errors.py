"""Errors the emulator answers with, in Google's error JSON."""

from __future__ import annotations

from typing import Any


class GceError(Exception):
    """An API error: HTTP status, Google's `reason` and `domain`, and a message."""

    def __init__(self, status: int, reason: str, message: str, domain: str = "global") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.domain = domain

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "code": self.status,
                "message": self.message,
                "errors": [{"message": self.message, "domain": self.domain,
                            "reason": self.reason}],
            }
        }


def not_found(resource_path: str) -> GceError:
    return GceError(404, "notFound", f"The resource '{resource_path}' was not found")


def invalid(message: str) -> GceError:
    return GceError(400, "invalid", message)


def resource_in_use(message: str) -> GceError:
    return GceError(409, "resourceInUse", message)


def already_exists(resource_path: str) -> GceError:
    return GceError(409, "alreadyExists", f"The resource '{resource_path}' already exists")


def rate_limited(method: str) -> GceError:
    return GceError(
        403, "rateLimitExceeded",
        f"Quota exceeded for quota metric 'Queries' and limit 'Queries per minute' of service "
        f"'compute.googleapis.com' (method {method}). Rate Limit Exceeded",
        domain="usageLimits")


def forbidden(permission: str, resource_path: str) -> GceError:
    return GceError(403, "forbidden",
                    f"Required '{permission}' permission for '{resource_path}'")


def zone_unavailable(scope: str) -> GceError:
    return GceError(503, "backendError",
                    f"The scope '{scope}' is currently unreachable. Try again later.")
