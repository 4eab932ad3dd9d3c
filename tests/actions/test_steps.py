"""The step loop: every cloud's plan runs through run_steps, one step at a time, once each."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

import pytest

from fleetview.actions.steps import run_steps
from fleetview.domain.actions import ActionPlan, ActionRefused, PlanStep, ProgressEvent, StepResult
from fleetview.domain.errors import ProviderError
from fleetview.domain.model import Inventory
from tests.helpers.fakes import StubProvider

STEPS = ("point-group", "refresh-start", "refresh-wait", "verify")


def plan(*keys: str, kind: str = "rollback") -> ActionPlan:
    return ActionPlan(
        kind=kind, provider="fake", scope="prod", region="r-1", group="web",  # type: ignore[arg-type]
        instances=("i-1",), from_versions=("2.0",), to_version="1.9", to_image_id="img-19",
        steps=tuple(PlanStep(k, f"do {k}") for k in keys or STEPS), mechanism="scripted")


class ScriptedProvider(StubProvider):
    """Runs each step by its script (a generator function of the step), recording the order."""

    actor = "tester"

    def __init__(self, scripts: dict[str, Callable] | None = None) -> None:
        super().__init__(config=None, rules=None)
        self.scripts = scripts or {}
        self.ran: list[str] = []
        self.checked = 0
        self.refuse_before_run = ""

    def poll(self) -> Inventory:  # pragma: no cover - the loop never polls
        raise AssertionError("the step loop does not poll")

    def check_before_run(self, plan):
        self.checked += 1
        if self.refuse_before_run:
            raise ActionRefused(self.refuse_before_run)

    def run_step(self, plan, step):
        self.ran.append(step.key)
        script = self.scripts.get(step.key)
        if script is None:
            return None
        return (yield from script(step))

    def what_is_left(self, plan, reason):
        return f"left: {reason}; group web is on 1.9 and 2.0"


def statuses(events: list[ProgressEvent]) -> list[tuple[str | None, str]]:
    return [(e.step, e.status) for e in events]


def test_every_step_runs_in_order_then_the_action_finishes():
    provider = ScriptedProvider()
    events = list(run_steps(provider, plan()))
    assert provider.ran == list(STEPS)
    assert statuses(events) == [(k, s) for k in STEPS for s in ("started", "done")] + [
        (None, "finished")]
    assert events[0].message == "do point-group" and events[1].message == "do point-group"
    assert events[-1].message == "rollback of web: every step done"
    assert all(e.at is not None for e in events)


def test_progress_and_the_step_message_pass_through():
    def wait(step):
        for n in (1, 2):
            yield ProgressEvent(step.key, "progress", f"{n} of 2", n, 2)
        return StepResult("2 of 2 instances run 1.9")

    events = list(run_steps(ScriptedProvider({"verify": wait}), plan("verify")))
    assert statuses(events) == [("verify", "started"), ("verify", "progress"),
                                ("verify", "progress"), ("verify", "done"), (None, "finished")]
    assert (events[2].done, events[2].total) == (2, 2)
    assert events[3].message == "2 of 2 instances run 1.9"


def test_steps_journaled_done_are_never_run_again():
    provider = ScriptedProvider()
    events = list(run_steps(provider, plan(), done={"point-group", "refresh-start"}))
    assert provider.ran == ["refresh-wait", "verify"]
    assert [e.step for e in events if e.status == "started"] == ["refresh-wait", "verify"]
    everything = ScriptedProvider()
    assert statuses(list(run_steps(everything, plan(), done=set(STEPS)))) == [
        (None, "finished")]
    assert everything.ran == []


def _fall_back(step):
    """What AWS does where the endpoint has no instance refresh: batches instead."""
    return StepResult("no instance refresh here: replacing in batches",
                      instead=(PlanStep("batch-1", "replace i-1"),
                               PlanStep("batch-2", "replace i-2")),
                      drop_prefix="refresh-")
    yield  # pragma: no cover - a generator without progress


def test_instead_replaces_the_remaining_steps_with_the_prefix():
    provider = ScriptedProvider({"refresh-start": _fall_back})
    events = list(run_steps(provider, plan()))
    # refresh-wait is dropped and the batches take its place; verify still runs last
    assert provider.ran == ["point-group", "refresh-start", "batch-1", "batch-2", "verify"]
    done = [e for e in events if e.status == "done"]
    assert done[1].message == "no instance refresh here: replacing in batches"
    assert events[-1].status == "finished"


def test_instead_without_a_prefix_replaces_everything_left():
    def instead(step):
        return StepResult(instead=(PlanStep("only", "the one step left"),))
        yield  # pragma: no cover

    provider = ScriptedProvider({"point-group": instead})
    list(run_steps(provider, plan()))
    assert provider.ran == ["point-group", "only"]


def test_instead_skips_steps_already_done():
    provider = ScriptedProvider({"refresh-start": _fall_back})
    list(run_steps(provider, plan(), done={"point-group", "batch-1"}))
    assert provider.ran == ["refresh-start", "batch-2", "verify"]


def test_a_failing_step_fails_the_action_with_what_is_left(caplog):
    def boom(step):
        raise RuntimeError("the API said no")
        yield  # pragma: no cover

    provider = ScriptedProvider({"refresh-start": boom})
    with caplog.at_level(logging.WARNING, logger="fleetview.actions.steps"):
        events = list(run_steps(provider, plan()))
    assert provider.ran == ["point-group", "refresh-start"]  # nothing after the failure
    assert statuses(events)[-3:] == [("refresh-start", "started"), ("refresh-start", "failed"),
                                     (None, "failed")]
    assert events[-2].message == "RuntimeError: the API said no"
    assert events[-1].message == "left: RuntimeError: the API said no; group web is on 1.9 and 2.0"
    assert "step refresh-start of rollback failed" in caplog.text  # a bug keeps its traceback
    assert caplog.records[0].exc_info is not None


def test_a_known_error_fails_the_step_with_its_own_words_and_no_traceback(caplog):
    def denied(step):
        yield ProgressEvent(step.key, "progress", "half way", 1, 2)
        raise ProviderError("permission autoscaling:StartInstanceRefresh is missing")

    provider = ScriptedProvider({"point-group": denied})
    with caplog.at_level(logging.WARNING, logger="fleetview.actions.steps"):
        events = list(run_steps(provider, plan()))
    assert statuses(events) == [("point-group", "started"), ("point-group", "progress"),
                                ("point-group", "failed"), (None, "failed")]
    assert events[2].message == "permission autoscaling:StartInstanceRefresh is missing"
    assert caplog.records == []


def test_explain_gives_the_operator_words_for_a_failure():
    class Explaining(ScriptedProvider):
        def explain(self, exc, plan, step):
            return f"{step.key}: the cloud refused ({exc})"

    def boom(step):
        raise KeyError("x")
        yield  # pragma: no cover

    events = list(run_steps(Explaining({"verify": boom}), plan("verify")))
    assert events[-2].message == "verify: the cloud refused ('x')"
    assert events[-1].message.startswith("left: verify: the cloud refused")


def test_an_unknown_kind_is_refused_before_anything_runs():
    provider = ScriptedProvider()
    with pytest.raises(ActionRefused, match="kind 'resize' are unknown"):
        list(run_steps(provider, plan(kind="resize")))
    assert provider.ran == [] and provider.checked == 0


def test_check_before_run_only_when_nothing_is_done():
    fresh = ScriptedProvider()
    list(run_steps(fresh, plan()))
    assert fresh.checked == 1
    resumed = ScriptedProvider()
    list(run_steps(resumed, plan(), done={"point-group"}))
    assert resumed.checked == 0 and resumed.ran == list(STEPS[1:])


def test_a_refusal_before_the_run_changes_nothing():
    provider = ScriptedProvider()
    provider.refuse_before_run = "group web changed since the plan; plan again"
    with pytest.raises(ActionRefused, match="changed since the plan"):
        list(run_steps(provider, plan()))
    assert provider.ran == []


def test_a_replace_names_its_instance_when_done():
    replace = dataclasses.replace(plan("terminate"), kind="replace", group=None)
    events = list(run_steps(ScriptedProvider(), replace))
    assert events[-1].message == "replace of i-1: every step done"
