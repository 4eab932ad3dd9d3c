"""Fault injection: unreachable zones, throttling, and denied methods."""

from __future__ import annotations

import threading

from fleetview.sim.gce import errors


class Faults:
    """Faults the emulator applies to the calls it serves; safe to change from any thread.

    Method names are the API's method ids, e.g. "compute.instances.aggregatedList".
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._unreachable: set[str] = set()
        self._throttle_left = 0
        self._throttle_methods: frozenset[str] | None = None
        self._denied: dict[tuple[str, str | None], str] = {}

    def zone_unreachable(self, zone: str, unreachable: bool = True) -> None:
        """Make a zone unreachable: aggregated lists report it, zonal calls fail with 503."""
        with self._lock:
            if unreachable:
                self._unreachable.add(zone)
            else:
                self._unreachable.discard(zone)

    def unreachable_zones(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._unreachable)

    def throttle(self, calls: int, methods: list[str] | None = None) -> None:
        """Answer the next `calls` calls (of `methods`, or any) with 403 rateLimitExceeded."""
        with self._lock:
            self._throttle_left = calls
            self._throttle_methods = frozenset(methods) if methods else None

    def deny(self, method: str, permission: str | None = None, *,
             project: str | None = None) -> None:
        """Answer every call of `method` (in `project`, or any) with 403, as if the caller
        lacked `permission` there: e.g. images of another project it may not read."""
        with self._lock:
            self._denied[(method, project)] = permission or method

    def allow(self, method: str, *, project: str | None = None) -> None:
        with self._lock:
            self._denied.pop((method, project), None)

    def clear(self) -> None:
        with self._lock:
            self._unreachable.clear()
            self._throttle_left = 0
            self._throttle_methods = None
            self._denied.clear()

    def check(self, method: str, project: str) -> None:
        """Raise the error a call of `method` must get now, if any (consumes throttling)."""
        with self._lock:
            for key in ((method, None), (method, project)):
                if key in self._denied:
                    raise errors.forbidden(self._denied[key], f"projects/{project}")
            if self._throttle_left > 0 and (
                    self._throttle_methods is None or method in self._throttle_methods):
                self._throttle_left -= 1
                raise errors.rate_limited(method)
