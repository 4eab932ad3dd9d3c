"""Actions as data: a plan the operator reads before anything changes, and its progress."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from fleetview.domain.errors import FleetViewError
from fleetview.domain.model import Group, Instance, Inventory, State

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

    `status` is "started", "done", "failed" or "stopped" for a step, "progress" for tracking,
    and "finished" (every step done), "failed" or "stopped" with `step=None` for the steps as
    a whole. `done`/`total` count what the event measures (instances, or percent).
    """

    step: str | None
    status: Literal["started", "done", "failed", "progress", "finished", "stopped"]
    message: str = ""
    done: int = 0
    total: int = 0
    at: datetime | None = None


@dataclass(frozen=True)
class StepResult:
    """What a step asks of the step loop besides "done": `message` for the journal, and
    `instead`, steps that replace the rest of the plan's steps whose key starts with
    `drop_prefix` (AWS: batches where the endpoint has no instance refresh)."""

    message: str = ""
    instead: tuple[PlanStep, ...] = ()
    drop_prefix: str = ""


# -- action kinds ---------------------------------------------------------------------------
# Every kind is declared here once: its words for the panel and the dialog and the version its
# group must reach. Code that needs a kind asks KINDS, so a new kind cannot fall into an else.

@dataclass(frozen=True)
class Kind:
    """One kind of action: how it is named and when its group has converged."""

    name: str
    title: str  # the plan dialog's title, e.g. "Roll back group"
    confirm: str  # the confirm button
    describe: Callable[[ActionPlan], str]  # one line for the Actions panel
    target_version: Callable[[ActionPlan, Group | None], str | None]
    # Whether an instance of the group counts as done (e.g. not the instance being replaced).
    counts: Callable[[ActionPlan, Instance], bool]
    # Whether each instance is done on what its group launches for its type (a mixed instances
    # override's own image) rather than on the one target version.
    per_type: bool = False


def _first(values: Sequence[str]) -> str:
    return values[0] if values else "?"


KINDS: dict[str, Kind] = {
    "rollback": Kind(
        "rollback", "Roll back group", "Roll back",
        describe=lambda plan: f"Roll back {plan.group} to {plan.to_version}",
        target_version=lambda plan, group: plan.to_version,
        counts=lambda plan, instance: True,
    ),
    "replace": Kind(
        "replace", "Replace instance", "Replace",
        describe=lambda plan: f"Replace {_first(plan.instances)} in {plan.group}",
        # A replacement runs whatever its group launches now.
        target_version=lambda plan, group: group.desired_version if group else None,
        counts=lambda plan, instance: instance.id not in plan.instances,
        per_type=True,
    ),
}


def kind_of(plan_or_name: ActionPlan | str) -> Kind:
    name = plan_or_name if isinstance(plan_or_name, str) else plan_or_name.kind
    try:
        return KINDS[name]
    except KeyError:
        raise ActionRefused(f"actions of kind {name!r} are unknown to this version of "
                            "FleetView; upgrade it, or abandon the action") from None


@dataclass(frozen=True)
class Convergence:
    """Where a plan's group stands: `on_target` of `needed` members run the target version
    and are healthy; `others` counts the rest by version ("?" unknown, "starting" not yet
    running or healthy). Surge instances beyond the group's size do not count."""

    on_target: int
    needed: int
    target: str | None
    others: dict[str, int] = field(default_factory=dict)

    @property
    def converged(self) -> bool:
        return self.needed > 0 and self.on_target >= self.needed

    def describe(self) -> str:
        text = f"{self.on_target} of {self.needed} on {self.target or '?'}"
        if self.others:
            text += "; still " + ", ".join(f"{n} on {v}" if v != "starting" else f"{n} starting"
                                           for v, n in sorted(self.others.items()))
        return text


def converge_state(inventory: Inventory, plan: ActionPlan) -> Convergence:
    """How far the plan's group is from running the plan's target everywhere."""
    kind = kind_of(plan)
    if plan.group is None:
        return Convergence(0, len(plan.instances), plan.to_version)
    group = inventory.group(plan.group, plan.region)
    members = inventory.members(group) if group else []
    wanted = kind.target_version(plan, group)
    needed = group.target_size if group and group.target_size else len(members)
    done = 0
    others: dict[str, int] = {}
    for i in members:
        if not kind.counts(plan, i):
            continue
        ready = i.state == State.RUNNING and i.healthy is not False
        goal = (i.desired_version or wanted) if kind.per_type else wanted
        if i.version == goal and ready:
            done += 1
        else:
            key = (i.version or "?") if i.version != goal else "starting"
            others[key] = others.get(key, 0) + 1
    return Convergence(min(done, needed), needed, wanted, others)


def convergence(inventory: Inventory, plan: ActionPlan) -> tuple[int, int]:
    """(members on the target version, running and healthy; members the group needs)."""
    state = converge_state(inventory, plan)
    return state.on_target, state.needed
