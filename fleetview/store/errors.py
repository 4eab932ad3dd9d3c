"""The store's known errors: what went wrong with the database and what to do about it."""

from __future__ import annotations

from fleetview.domain.errors import FleetViewError


class StoreError(FleetViewError):
    """A database problem the user can act on (newer schema, bad URL, no permission)."""


class StoreUnavailable(StoreError):
    """The database cannot be reached right now; the same call may work later."""
