"""Confirm, execute, resume and abandon actions: journal first, audit always, one per group."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from fleetview.actions import audit, locks
from fleetview.actions.journal import ActionRecord, Journal
from fleetview.actions.steps import run_steps
from fleetview.domain.actions import ActionPlan, ActionRefused, ProgressEvent, convergence
from fleetview.domain.errors import FleetViewError
from fleetview.domain.model import Group
from fleetview.domain.timing import TimedOut, Timing, wait_until
from fleetview.providers.base import refuse_read_only
from fleetview.store.times import now_us

log = logging.getLogger(__name__)

EventSink = Callable[[ProgressEvent], None]


def protected_by(selectors: tuple[str, ...], group: Group | None) -> str | None:
    """The first `key=value` selector that matches the group's tags or labels, if any."""
    if group is None:
        return None
    tags = {k.lower(): v for k, v in group.tags.items()}
    for selector in selectors:
        key, _, value = selector.partition("=")
        if tags.get(key.strip().lower()) == value.strip():
            return selector
    return None


@dataclass(frozen=True)
class Confirmation:
    """What the operator gave: a reason, and the group's name typed for a protected group."""

    reason: str
    typed_name: str = ""


def _refuse(store, actor: str, plan: ActionPlan, reason: str, why: str) -> ActionRefused:
    audit.append(store, "refused", actor, scope=plan.scope, region=plan.region, group=plan.group,
                 reason=reason or None, detail={"kind": plan.kind, "why": why,
                                                "to_version": plan.to_version,
                                                "instances": list(plan.instances)})
    return ActionRefused(why)


def check_allowed(scope_config, plan: ActionPlan, selectors: tuple[str, ...],
                  group: Group | None, confirmation: Confirmation) -> None:
    """Refuse what must not run: read-only scope, no reason, a protected group not named."""
    refuse_read_only(scope_config)
    if not confirmation.reason.strip():
        raise ActionRefused("give a reason: it is written to the audit log with the action")
    selector = protected_by(selectors, group)
    if selector and confirmation.typed_name.strip() != (plan.group or ""):
        raise ActionRefused(f"{plan.group} is protected ({selector}): type its name to confirm")


def confirm(store, scope_config, plan: ActionPlan, confirmation: Confirmation, actor: str,
            *, selectors: tuple[str, ...] = (), group: Group | None = None) -> str:
    """Check, lock the group, journal the plan and audit the confirmation; nothing runs yet.

    Every refusal is audited too, with its reason.
    """
    try:
        check_allowed(scope_config, plan, selectors, group, confirmation)
    except ActionRefused as exc:
        raise _refuse(store, actor, plan, confirmation.reason, str(exc)) from None
    action_id = str(uuid.uuid4())
    if plan.group:
        try:
            locks.acquire(store, plan.scope, plan.region, plan.group, action_id)
        except ActionRefused as exc:
            raise _refuse(store, actor, plan, confirmation.reason, str(exc)) from None
    Journal(store).create(plan, confirmation.reason, actor, action_id)
    audit.append(store, "plan_confirmed", actor, action_id=action_id, scope=plan.scope,
                 region=plan.region, group=plan.group, reason=confirmation.reason,
                 detail={"kind": plan.kind, "mechanism": plan.mechanism,
                         "to_version": plan.to_version, "to_image_id": plan.to_image_id,
                         "from_versions": list(plan.from_versions),
                         "instances": list(plan.instances),
                         "steps": [s.key for s in plan.steps]})
    return action_id


# How long `execute` watches a fresh poll for the group to converge after the last step.
RECOVERY = Timing(interval_s=2.0, timeout_s=60.0)
# ... and `resume` in "track" mode, which has nothing else to do.
TRACKING = Timing(interval_s=2.0, timeout_s=600.0)


def execute(store, provider, action_id: str, *, on_event: EventSink | None = None,
            timing: Timing = RECOVERY) -> ActionRecord:
    """Run the journaled plan's remaining steps; a step journaled done is never run again."""
    journal = Journal(store)
    record = journal.get(action_id)
    plan = record.plan
    actor = record.actor
    failed: str | None = None
    try:
        for event in run_steps(provider, plan, record.done_steps):
            if event.step is not None and event.status in ("started", "done", "failed"):
                status = {"started": "running", "done": "done", "failed": "failed"}[event.status]
                journal.step(action_id, event.step, status, event.message)
                audit.append(store, f"step_{event.status}", actor, action_id=action_id,
                             scope=plan.scope, region=plan.region, group=plan.group,
                             detail={"step": event.step, "message": event.message})
                if event.status == "failed":
                    failed = event.message or f"step {event.step} failed"
            else:
                journal.heartbeat(action_id)
            if plan.group:
                locks.heartbeat(store, plan.scope, plan.region, plan.group, action_id)
            if event.step is None and event.status == "failed":
                failed = event.message or "the action failed"
            if on_event:
                on_event(event)
    except FleetViewError as exc:
        failed = str(exc)
    except Exception as exc:  # a bug or an SDK surprise: journal it, never leave it "running"
        log.exception("action %s failed", action_id)
        failed = f"{type(exc).__name__}: {exc}"
    recovered = None if failed else _await_recovery(provider, plan, timing)
    return _finish(store, journal, record, failed, recovered)


def _await_recovery(provider, plan: ActionPlan, timing: Timing) -> int | None:
    """The moment every target instance runs the target version, read from a fresh poll;
    None if the group has not converged by the deadline."""

    def check() -> int | None:
        try:
            done, total = convergence(provider.poll(), plan)
        except FleetViewError:
            return None
        return now_us() if total and done >= total else None

    try:
        return wait_until(check, timing, f"waiting for {plan.group} to converge")
    except TimedOut:
        return None


def _finish(store, journal: Journal, record: ActionRecord, failed: str | None,
            recovered: int | None) -> ActionRecord:
    plan = record.plan
    if failed:
        journal.finish(record.action_id, "failed", failed)
    else:
        message = "" if recovered else ("the steps finished, but not every instance runs "
                                        "the target version yet")
        journal.finish(record.action_id, "finished", message, recovered_us=recovered)
    final = journal.get(record.action_id)
    audit.append(store, "failed" if failed else "finished", record.actor,
                 action_id=record.action_id, scope=plan.scope, region=plan.region,
                 group=plan.group, detail={"message": final.message,
                                           "time_to_recover_s": final.time_to_recover_s,
                                           "steps_done": sorted(final.done_steps)})
    if plan.group:
        locks.release(store, plan.scope, plan.region, plan.group, record.action_id)
    return final


def resume(store, provider, action_id: str, mode: str, actor: str, *,
           on_event: EventSink | None = None,
           timing: Timing = TRACKING) -> ActionRecord:
    """Pick up an interrupted action: "next" runs the steps not journaled done, "track" only
    watches until the group converges, "abandon" closes it and frees the group."""
    journal = Journal(store)
    record = journal.get(action_id)
    plan = record.plan
    if record.status != "running":
        raise ActionRefused(f"this action is {record.status}; only a running or interrupted "
                            "action can be resumed or abandoned")
    if record.owner != journal.owner and not record.interrupted:
        raise ActionRefused(f"this action is still running under {record.owner}; it can be "
                            "resumed only once that owner has stopped")
    if mode == "abandon":
        journal.finish(action_id, "abandoned", f"abandoned by {actor}")
        audit.append(store, "abandoned", actor, action_id=action_id, scope=plan.scope,
                     region=plan.region, group=plan.group,
                     detail={"steps_done": sorted(record.done_steps)})
        if plan.group:
            locks.release(store, plan.scope, plan.region, plan.group, action_id)
        return journal.get(action_id)
    if mode not in ("next", "track"):
        raise ValueError(mode)
    if plan.group:
        locks.take_over(store, plan.scope, plan.region, plan.group, action_id)
    journal.adopt(action_id)
    audit.append(store, "resumed", actor, action_id=action_id, scope=plan.scope,
                 region=plan.region, group=plan.group,
                 detail={"mode": mode, "steps_done": sorted(record.done_steps)})
    if mode == "next":
        return execute(store, provider, action_id, on_event=on_event, timing=timing)
    recovered = _await_recovery(provider, plan, timing)
    failed = None if recovered else "tracking timed out before every instance ran the target"
    return _finish(store, journal, journal.get(action_id), failed, recovered)
