"""Confirm, execute, track, stop, resume and abandon actions: journal first, audit always,
one action per group, and nothing called recovered before the fleet is."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from fleetview.actions import audit, locks, quarantine
from fleetview.actions.journal import ActionRecord, Journal
from fleetview.actions.steps import run_steps
from fleetview.domain.actions import ActionPlan, ActionRefused, Convergence, ProgressEvent
from fleetview.domain.errors import FleetViewError
from fleetview.domain.model import Group
from fleetview.domain.timing import TimedOut, Timing, waiting
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
    typed_version: str = ""  # a version marked bad is confirmed by typing it


def _refuse(store, actor: str, plan: ActionPlan, reason: str, why: str) -> ActionRefused:
    audit.append(store, "refused", actor, scope=plan.scope, region=plan.region, group=plan.group,
                 reason=reason or None, detail={"kind": plan.kind, "why": why,
                                                "to_version": plan.to_version,
                                                "instances": list(plan.instances)})
    return ActionRefused(why)


def check_allowed(scope_config, plan: ActionPlan, selectors: tuple[str, ...],
                  group: Group | None, confirmation: Confirmation,
                  bad: quarantine.BadMark | None = None) -> None:
    """Refuse what must not run: read-only scope, no reason, a protected group not named, a
    version marked bad not typed."""
    refuse_read_only(scope_config)
    if not confirmation.reason.strip():
        raise ActionRefused("give a reason: it is written to the audit log with the action")
    selector = protected_by(selectors, group)
    if selector and confirmation.typed_name.strip() != (plan.group or ""):
        raise ActionRefused(f"{plan.group} is protected ({selector}): type its name to confirm")
    if bad is not None and confirmation.typed_version.strip() != (plan.to_version or ""):
        raise ActionRefused(f"{bad.describe()}. To go back to it anyway, type the version "
                            f"{plan.to_version} to confirm")


def confirm(store, scope_config, plan: ActionPlan, confirmation: Confirmation, actor: str,
            *, selectors: tuple[str, ...] = (), group: Group | None = None) -> str:
    """Check, lock the group, journal the plan and audit the confirmation; nothing runs yet.

    Every refusal is audited too, with its reason.
    """
    bad = None
    if plan.kind == "rollback" and plan.to_version:
        bad = quarantine.bad_for(store, plan.scope, plan.region, plan.group).get(plan.to_version)
    try:
        check_allowed(scope_config, plan, selectors, group, confirmation, bad)
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
                         "steps": [s.key for s in plan.steps],
                         "bad_version_confirmed": bad.describe() if bad else None})
    if plan.kind == "rollback" and plan.group:
        # The versions a rollback moves the group away from are bad for it: never again the
        # default target, and choosing one means typing it.
        for version in plan.from_versions:
            if version and version != plan.to_version:
                quarantine.mark(store, version, confirmation.reason, actor, scope=plan.scope,
                                region=plan.region, group=plan.group, source="rollback",
                                action_id=action_id)
    return action_id


# After its steps, how often an action re-reads its group and how long it may take to converge
# before it is "not converged" (it is still tracked after that, where someone is watching).
CONVERGE = Timing(interval_s=10.0, timeout_s=1800.0)


def execute(store, provider, action_id: str, *, on_event: EventSink | None = None,
            timing: Timing = CONVERGE, should_stop: Callable[[], str | None] | None = None,
            keep_tracking: bool = False) -> ActionRecord:
    """Run the journaled plan's remaining steps (a step journaled done never runs again),
    then track the group until it converges: recovered, or not_converged past the deadline.

    `should_stop` (the window's interruption) and a stop asked through the journal (any
    process: `fleetview stop`) both stop the action at its next check. `keep_tracking` goes
    on after the deadline until the group converges or the action is stopped or abandoned;
    without it, a not_converged action stays open for `resume` to track.
    """
    journal = Journal(store)
    record = journal.get(action_id)
    stop_reason = _stop_check(journal, action_id, should_stop)
    if record.status == "running":
        outcome, message = _run_steps(store, journal, provider, record, stop_reason, on_event)
        if outcome == "failed":
            return _end(store, journal, record, "failed", message)
        if outcome == "stopped":
            return _stop_in_cloud(store, journal, provider, journal.get(action_id), message,
                                  on_event)
    return _track(store, journal, provider, journal.get(action_id), timing, stop_reason,
                  on_event, keep_tracking)


def _stop_check(journal: Journal, action_id: str,
                should_stop: Callable[[], str | None] | None) -> Callable[[], str | None]:
    def check() -> str | None:
        return (should_stop() if should_stop else None) or journal.stop_requested(action_id)
    return check


def _run_steps(store, journal: Journal, provider, record: ActionRecord,
               stop_reason: Callable[[], str | None], on_event: EventSink | None
               ) -> tuple[str, str]:
    """("done" | "failed" | "stopped", message), everything journaled and audited."""
    plan, action_id = record.plan, record.action_id
    try:
        for event in run_steps(provider, plan, record.done_steps, should_stop=stop_reason):
            if event.step is not None and event.status in ("started", "done", "failed",
                                                             "stopped"):
                status = {"started": "running"}.get(event.status, event.status)
                journal.step(action_id, event.step, status, event.message)
                audit.append(store, f"step_{event.status}", record.actor, action_id=action_id,
                             scope=plan.scope, region=plan.region, group=plan.group,
                             detail={"step": event.step, "message": event.message})
            else:
                journal.heartbeat(action_id)
            _beat(store, plan, action_id)
            if on_event:
                on_event(event)
            if event.step is None and event.status in ("failed", "stopped"):
                return event.status, event.message or f"the action {event.status}"
    except FleetViewError as exc:
        return "failed", str(exc)
    except Exception as exc:  # a bug or an SDK surprise: journal it, never leave it "running"
        log.exception("action %s failed", action_id)
        return "failed", f"{type(exc).__name__}: {exc}"
    return "done", ""


def _beat(store, plan: ActionPlan, action_id: str) -> None:
    if plan.group:
        locks.heartbeat(store, plan.scope, plan.region, plan.group, action_id)


def _track(store, journal: Journal, provider, record: ActionRecord, timing: Timing,
           stop_reason: Callable[[], str | None], on_event: EventSink | None,
           keep_tracking: bool) -> ActionRecord:
    """Watch the group after the steps: "converging n/m" until every member it needs runs
    the target and is healthy (recovered), "not converged" past the deadline."""
    plan, action_id = record.plan, record.action_id
    status = "not_converged" if record.status == "not_converged" else "converging"
    state: Convergence | None = None
    deadline = timing
    while True:
        try:
            for _ in waiting(deadline, f"{plan.group or plan.kind} to converge"):
                reason = stop_reason()
                if reason:
                    return _stop_in_cloud(store, journal, provider, journal.get(action_id),
                                          reason, on_event)
                try:
                    state = provider.convergence(plan)
                except FleetViewError as exc:
                    log.warning("action %s: could not read the group: %s", action_id, exc)
                    journal.heartbeat(action_id)
                    _beat(store, plan, action_id)
                    continue
                if state.converged:
                    what = f"all {state.needed} instances of {plan.group}" if plan.group \
                        else "the instance"
                    return _end(store, journal, record, "recovered",
                                f"recovered: {what} run {state.target}",
                                recovered_us=now_us(), state=state)
                text = f"{'not converged' if status == 'not_converged' else 'converging'}: "                        f"{state.describe()}"
                journal.converging(action_id, state.on_target, state.needed, text, status)
                _beat(store, plan, action_id)
                if on_event:
                    on_event(ProgressEvent(None, "progress", text, state.on_target,
                                           state.needed, None))
        except TimedOut:
            pass
        if status != "not_converged":
            status = "not_converged"
            on, need = (state.on_target, state.needed) if state else (0, 0)
            text = (f"not converged within {_within(timing.timeout_s)}: "
                    f"{state.describe() if state else 'the group could not be read'}"
                    + ("; FleetView keeps tracking it" if keep_tracking else ""))
            journal.converging(action_id, on, need, text, status)
            audit.append(store, "not_converged", record.actor, action_id=action_id,
                         scope=plan.scope, region=plan.region, group=plan.group,
                         detail={"message": text})
            if on_event:
                on_event(ProgressEvent(None, "progress", text, on, need, None))
        if not keep_tracking:
            return journal.get(action_id)
        # Past the deadline, keep watching at the same pace, with no deadline of its own.
        deadline = dataclasses.replace(timing, timeout_s=float("inf"))


def _within(seconds: float) -> str:
    """A deadline in words: "30 min", or "20 s" for one under a minute and a half (the CLI's
    --wait-s)."""
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def _stop_in_cloud(store, journal: Journal, provider, record: ActionRecord, reason: str,
                   on_event: EventSink | None) -> ActionRecord:
    """Stop what the cloud does for the action (a refresh, a MIG update), then end it."""
    plan = record.plan
    try:
        runner = provider.stop(plan, record.done_steps)
        while True:
            try:
                event = next(runner)
            except StopIteration as end:
                done = end.value or ""
                break
            journal.heartbeat(record.action_id)
            if on_event:
                on_event(event)
    except FleetViewError as exc:
        return _end(store, journal, record, "failed", f"{reason}; stopping it failed: {exc}")
    except Exception as exc:  # an SDK surprise: the action must not stay open
        log.exception("stopping action %s failed", record.action_id)
        return _end(store, journal, record, "failed",
                    f"{reason}; stopping it failed: {type(exc).__name__}: {exc}")
    return _end(store, journal, record, "stopped", f"{reason}. {done}".strip())


def _end(store, journal: Journal, record: ActionRecord, status: str, message: str,
         recovered_us: int | None = None, state: Convergence | None = None) -> ActionRecord:
    plan = record.plan
    journal.finish(record.action_id, status, message, recovered_us=recovered_us,
                   on_target=state.on_target if state else None,
                   needed=state.needed if state else None)
    final = journal.get(record.action_id)
    audit.append(store, status, record.actor, action_id=record.action_id, scope=plan.scope,
                 region=plan.region, group=plan.group,
                 detail={"message": final.message,
                         "time_to_recover_s": final.time_to_recover_s,
                         "steps_done": sorted(final.done_steps),
                         "on_target": state.on_target if state else final.on_target,
                         "needed": state.needed if state else final.needed})
    if plan.group:
        locks.release(store, plan.scope, plan.region, plan.group, record.action_id)
    return final


def request_stop(store, action_id: str, actor: str, reason: str) -> ActionRecord:
    """Ask an open action to stop: its owner stops it at its next check (any process)."""
    if not reason.strip():
        raise ActionRefused("give a reason for stopping: it goes to the audit log")
    journal = Journal(store)
    record = journal.get(action_id)
    if not record.open:
        raise ActionRefused(f"this action is {record.status}; there is nothing to stop")
    journal.request_stop(action_id, actor, reason)
    audit.append(store, "stop_requested", actor, action_id=action_id, scope=record.plan.scope,
                 region=record.plan.region, group=record.plan.group, reason=reason)
    return journal.get(action_id)


def stop(store, provider, action_id: str, actor: str, reason: str, *,
         on_event: EventSink | None = None, wait_s: float = 60.0,
         sleep: Callable[[float], None] | None = None) -> ActionRecord:
    """Stop an open action. A live owner elsewhere stops it (this waits up to `wait_s` for
    that); an action nobody runs any more (interrupted, or tracked by nobody) is stopped here:
    what the cloud does for it is stopped, and it ends "stopped"."""
    record = request_stop(store, action_id, actor, reason)
    journal = Journal(store)
    if record.owner != journal.owner and not record.interrupted:
        timing = Timing(interval_s=1.0, timeout_s=wait_s, **({"sleep": sleep} if sleep else {}))
        try:
            for _ in waiting(timing, "the action's owner to stop it"):
                record = journal.get(action_id)
                if not record.open:
                    return record
        except TimedOut:
            return journal.get(action_id)
    plan = record.plan
    if plan.group:
        locks.take_over(store, plan.scope, plan.region, plan.group, action_id)
    journal.adopt(action_id)
    return _stop_in_cloud(store, journal, provider, journal.get(action_id),
                          f"stopped by {actor}: {reason}", on_event)


def resume(store, provider, action_id: str, mode: str, actor: str, *,
           on_event: EventSink | None = None, timing: Timing = CONVERGE,
           keep_tracking: bool = False) -> ActionRecord:
    """Pick up an interrupted action: "next" runs the steps not journaled done, then tracks;
    "track" only watches until the group converges; "abandon" closes it and frees the group."""
    journal = Journal(store)
    record = journal.get(action_id)
    plan = record.plan
    if not record.open:
        raise ActionRefused(f"this action is {record.status}; only an open or interrupted "
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
    journal.adopt(action_id, status=None if mode == "next" else (
        "converging" if record.status == "running" else None))
    audit.append(store, "resumed", actor, action_id=action_id, scope=plan.scope,
                 region=plan.region, group=plan.group,
                 detail={"mode": mode, "steps_done": sorted(record.done_steps)})
    return execute(store, provider, action_id, on_event=on_event, timing=timing,
                   keep_tracking=keep_tracking)
