"""Actions as data: a plan the operator reads before anything changes, and its progress."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from fleetview.domain.errors import FleetViewError

ActionKind = Literal["replace", "rollback"]


class ActionRefused(FleetViewError):
    """An action that must not run, with the reason the operator sees."""


@dataclass(frozen=True)
class PlanStep:
    """One journaled step. `key` is stable across restarts so a done step is never repeated."""

    key: str
    description: str
    instances: tuple[str, ...] = ()


@dataclass(frozen=True)
class ActionPlan:
    """What an action will do, computed without side effects.

    `mechanism` names how the provider does it ("instance-refresh", "rolling-replacement",
    "mig-update", "terminate-in-asg", "recreate-instances"); `irreversible` lists what cannot
    be undone; `params` holds what execution needs (template ids, batch sizes) and is
    journaled with the plan.
    """

    kind: ActionKind
    provider: str
    scope: str
    region: str
    group: str | None
    instances: tuple[str, ...]
    from_versions: tuple[str, ...]
    to_version: str | None
    to_image_id: str | None
    steps: tuple[PlanStep, ...]
    mechanism: str
    batch_size: int = 1
    min_healthy_percent: int = 100
    capacity_kept: str = ""
    irreversible: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    params: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class ProgressEvent:
    """One thing that happened while executing a plan.

    `status` is "started", "done" or "failed" for a step, "progress" for tracking, and
    "finished" or "failed" with `step=None` for the action as a whole.
    """

    step: str | None
    status: Literal["started", "done", "failed", "progress", "finished"]
    message: str = ""
    done: int = 0
    total: int = 0
    at: datetime | None = None
