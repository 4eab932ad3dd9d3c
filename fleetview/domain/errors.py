"""Errors a user can cause and act on, as opposed to bugs (which keep their tracebacks)."""


class FleetViewError(Exception):
    """A known error: its message says what happened and what to do."""


class ProviderError(FleetViewError):
    """A cloud call failed in a way the user can fix (credentials, permission, endpoint)."""
