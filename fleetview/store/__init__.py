"""History of the fleet as spans, in SQLite (the default) or PostgreSQL."""

from fleetview.store.errors import StoreError, StoreUnavailable
from fleetview.store.store import PollSummary, Store

__all__ = ["PollSummary", "Store", "StoreError", "StoreUnavailable"]
