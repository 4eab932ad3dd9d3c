"""The step loop: runs a plan's steps through its provider's `run_step`, one way for every cloud."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime

from fleetview.domain.actions import ActionPlan, ProgressEvent, kind_of
from fleetview.domain.errors import FleetViewError

log = logging.getLogger(__name__)


def _event(step: str | None, status: str, message: str = "", done: int = 0,
           total: int = 0) -> ProgressEvent:
    return ProgressEvent(step, status, message, done, total, datetime.now(UTC))  # type: ignore[arg-type]


def run_steps(provider, plan: ActionPlan, done: Iterable[str] = (),
              should_stop: Callable[[], str | None] | None = None) -> Iterator[ProgressEvent]:
    """Yield "started", progress and "done" for each step not in `done`, then "finished"; on
    the first failure, the step's "failed" and the action's "failed", and stop.

    A step journaled done is never run again. A step may hand back steps to run instead of
    the rest of the plan's (AWS falls back to batches where instance refresh is missing).
    `should_stop` is asked before each step and after each progress event; a reason from it
    ends the loop with a "stopped" event (the step in flight is closed: FleetView's own batches
    stop at their boundary; the runner then asks the provider to stop what the cloud does).
    """
    kind_of(plan)  # an unknown kind is refused before anything runs
    done = set(done)
    if not done:
        provider.check_before_run(plan)
    queue = list(plan.steps)
    while queue:
        step = queue.pop(0)
        if step.key in done:
            continue
        reason = should_stop() if should_stop else None
        if reason:
            yield _event(None, "stopped", reason)
            return
        yield _event(step.key, "started", step.description)
        runner = provider.run_step(plan, step)
        try:
            while True:
                try:
                    event = next(runner)
                except StopIteration as end:
                    result = end.value
                    break
                yield event
                reason = should_stop() if should_stop else None
                if reason:
                    runner.close()
                    yield _event(step.key, "stopped", reason)
                    yield _event(None, "stopped", reason)
                    return
        except Exception as exc:  # any failure ends the action, journaled with its reason
            message = provider.explain(exc, plan, step)
            if not isinstance(exc, FleetViewError):
                log.warning("step %s of %s failed", step.key, plan.kind, exc_info=True)
            yield _event(step.key, "failed", message)
            yield _event(None, "failed", provider.what_is_left(plan, message))
            return
        if result is not None and result.instead:
            # The handed-back steps take the place of the dropped ones, before what follows.
            queue = [s for s in result.instead if s.key not in done] + [
                s for s in queue if not s.key.startswith(result.drop_prefix)]
        yield _event(step.key, "done", (result.message if result else "") or step.description)
    target = plan.group or (plan.instances[0] if plan.instances else "?")
    yield _event(None, "finished", f"{plan.kind} of {target}: every step done")
