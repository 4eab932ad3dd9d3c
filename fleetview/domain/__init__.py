"""Plain data and rules of a fleet: no Qt, no cloud SDK."""

from fleetview.domain.actions import ActionPlan, ActionRefused, PlanStep, ProgressEvent
from fleetview.domain.errors import FleetViewError, ProviderError
from fleetview.domain.model import (
    Group,
    Image,
    Instance,
    Inventory,
    RegionError,
    Scope,
    State,
)
from fleetview.domain.versions import VersionRule, VersionRules, version_key

__all__ = [
    "ActionPlan",
    "ActionRefused",
    "FleetViewError",
    "Group",
    "Image",
    "Instance",
    "Inventory",
    "PlanStep",
    "ProgressEvent",
    "ProviderError",
    "RegionError",
    "Scope",
    "State",
    "VersionRule",
    "VersionRules",
    "version_key",
]
