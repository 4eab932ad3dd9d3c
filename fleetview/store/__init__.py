"""History of the fleet as spans, in SQLite (the default) or PostgreSQL."""

from fleetview.store import action_tables  # noqa: F401  (registers the actions' tables)
from fleetview.store.errors import StoreError, StoreUnavailable
from fleetview.store.store import PollSummary, Store

__all__ = ["PollSummary", "Store", "StoreError", "StoreUnavailable"]
