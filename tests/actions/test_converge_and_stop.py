"""Honest completion, stopping, and no return to a bad version, on a real SQLite store.

The provider is a boundary fake whose group converges as the test scripts it, on a fake clock;
the same flows through moto and the GCE emulator are in the provider and demo tests.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from fleetview.actions import audit, locks, quarantine, runner
from fleetview.actions.journal import Journal
from fleetview.domain.actions import (
    ActionPlan,
    ActionRefused,
    Convergence,
    PlanStep,
    ProgressEvent,
    StepResult,
)
from fleetview.domain.model import Inventory, Scope
from fleetview.domain.timing import FakeClock
from fleetview.providers.aws.scope import AwsScopeConfig
from fleetview.store.action_tables import actions
from tests.helpers.fakes import StubProvider

SCOPE = AwsScopeConfig(name="prod", regions=("us-east-1",), actions=True)
STEPS = ("point-group", "batch-1", "batch-2")


def plan(to="1.0", from_versions=("1.1",)) -> ActionPlan:
    return ActionPlan(
        kind="rollback", provider="aws", scope="prod", region="us-east-1", group="web",
        instances=("i-1", "i-2", "i-3"), from_versions=from_versions, to_version=to,
        to_image_id=f"ami-{to}", steps=tuple(PlanStep(k, f"do {k}") for k in STEPS),
        mechanism="rolling-replacement")


class Crash(BaseException):
    """The process dies here (not an error the runner may catch)."""


class Group(StubProvider):
    """A group that reaches the target as `on_target` says at each clock reading."""

    def __init__(self, clock: FakeClock, on_target=lambda now: 3, needed: int = 3):
        super().__init__(SCOPE, None)
        self.clock, self.on_target, self.needed = clock, on_target, needed
        self.ran: list[str] = []
        self.stops = 0
        self.stop_crashes = False
        self.during: dict[str, object] = {}  # step key -> called while it runs

    def run_step(self, plan, step):
        self.ran.append(step.key)
        yield ProgressEvent(step.key, "progress", "working", 0, 1)
        if step.key in self.during:
            self.during[step.key]()
            yield ProgressEvent(step.key, "progress", "still working", 0, 1)
        return StepResult("ok")

    def convergence(self, plan):
        done = min(self.on_target(self.clock()), self.needed)
        others = {"1.1": self.needed - done} if done < self.needed else {}
        return Convergence(done, self.needed, plan.to_version, others)

    def stop(self, plan, done):
        self.stops += 1
        if self.stop_crashes:
            raise Crash
        yield ProgressEvent(None, "progress", "cancelling the refresh")
        return "the instance refresh was cancelled; 1 instance already runs 1.0"

    def poll(self):
        return Inventory(Scope("aws", "prod", "1"), datetime.now(UTC))





def confirm(store, the_plan=None, **confirmation) -> str:
    confirmation.setdefault("reason", "1.1 returns 500s")
    return runner.confirm(store, SCOPE, the_plan or plan(), runner.Confirmation(**confirmation),
                          "ops")


def events_of(store) -> list[str]:
    return [e.event for e in audit.entries(store)]


def test_steps_done_is_converging_until_every_instance_runs_the_target(store):
    clock = FakeClock()
    group = Group(clock, on_target=lambda now: int(now // 60))  # one more a minute
    action_id = confirm(store)
    seen: list[tuple[str, int, int]] = []

    def watch(event):
        if event.step is None and event.status == "progress":
            record = Journal(store).get(action_id)
            seen.append((record.status, *record.progress))

    record = runner.execute(store, group, action_id, on_event=watch,
                            timing=clock.timing(interval_s=30, timeout_s=1800))
    assert record.status == "recovered", record.message
    assert record.progress == (3, 3) and record.needed == 3
    # Never "recovered" before the fleet was: converging n/3 first, counted in instances.
    assert seen[0] == ("converging", 0, 3) and ("converging", 2, 3) in seen
    assert all(status == "converging" for status, _, _ in seen)
    assert record.time_to_recover_s is not None
    assert clock() == 180  # recovered at the first check with all three on the target
    assert events_of(store)[-1] == "recovered"
    assert locks.current(store, "prod", "us-east-1", "web") is None


def test_past_the_deadline_it_is_not_converged_and_stays_open_until_tracked_to_the_end(store):
    clock = FakeClock()
    group = Group(clock, on_target=lambda now: 1)
    action_id = confirm(store)
    record = runner.execute(store, group, action_id,
                            timing=clock.timing(interval_s=60, timeout_s=600))
    assert record.status == "not_converged" and record.open
    assert record.recovered_us is None and record.time_to_recover_s is None
    assert "not converged within 10 min: 1 of 3 on 1.0; still 2 on 1.1" in record.message
    assert locks.current(store, "prod", "us-east-1", "web") is not None  # still its group's
    assert "not_converged" in events_of(store)
    # The window's process died; a later one tracks it until the group converges.
    with store.writing("test") as conn:
        conn.execute(sa.update(actions).values(owner="ops@gone:1", heartbeat_us=0))
    group.on_target = lambda now: 3
    record = runner.resume(store, group, action_id, "track", "ops",
                           timing=clock.timing(interval_s=60, timeout_s=600))
    assert record.status == "recovered" and record.time_to_recover_s is not None
    assert group.ran == list(STEPS)  # tracking ran no step again


def test_keep_tracking_goes_on_past_the_deadline(store):
    clock = FakeClock()
    group = Group(clock, on_target=lambda now: 3 if now >= 900 else 2)
    action_id = confirm(store)
    record = runner.execute(store, group, action_id, keep_tracking=True,
                            timing=clock.timing(interval_s=60, timeout_s=600))
    assert record.status == "recovered"
    assert events_of(store)[-2:] == ["not_converged", "recovered"]
    assert 900 <= clock() < 1000


def test_a_stop_asked_from_another_process_stops_at_the_batch_boundary(store):
    clock = FakeClock()
    group = Group(clock)
    action_id = confirm(store)
    group.during["batch-1"] = lambda: runner.request_stop(store, action_id, "bo",
                                                          "the rollback makes it worse")
    record = runner.execute(store, group, action_id, timing=clock.timing())
    assert record.status == "stopped"
    assert "stopped by bo: the rollback makes it worse" in record.message
    assert "the instance refresh was cancelled" in record.message
    assert group.ran == ["point-group", "batch-1"] and group.stops == 1  # batch-2 never ran
    steps = {s.key: s.status for s in record.steps}
    assert steps == {"point-group": "done", "batch-1": "stopped", "batch-2": "skipped"}
    assert locks.current(store, "prod", "us-east-1", "web") is None
    entries = events_of(store)
    assert "stop_requested" in entries and entries[-1] == "stopped"
    assert audit.verify(store).ok


def test_the_window_can_stop_its_own_action_while_it_converges(store):
    clock = FakeClock()
    group = Group(clock, on_target=lambda now: 1)
    action_id = confirm(store)
    asked = []
    record = runner.execute(store, group, action_id, timing=clock.timing(interval_s=60),
                            should_stop=lambda: "stopped from the window" if clock() >= 120
                            else asked.append(clock()))
    assert record.status == "stopped" and group.stops == 1
    assert record.done_steps == set(STEPS)


def test_stopping_an_action_nobody_runs_any_more_stops_it_here(store):
    clock = FakeClock()
    action_id = confirm(store)
    with store.writing("test") as conn:
        conn.execute(sa.update(actions).values(owner="ops@gone:1", heartbeat_us=0))
    group = Group(clock)
    record = runner.stop(store, group, action_id, "bo", "wrong group")
    assert record.status == "stopped" and group.stops == 1 and group.ran == []
    with pytest.raises(ActionRefused, match="nothing to stop"):
        runner.request_stop(store, action_id, "bo", "again")


def test_a_crash_during_a_stop_then_resume_finishes_the_stop(store):
    clock = FakeClock()
    group = Group(clock)
    group.stop_crashes = True
    action_id = confirm(store)
    group.during["batch-1"] = lambda: runner.request_stop(store, action_id, "bo", "stop it")
    with pytest.raises(Crash):
        runner.execute(store, group, action_id, timing=clock.timing())
    record = Journal(store).get(action_id)
    assert record.open and record.stop_reason == "stop it"  # the request survived the crash
    with store.writing("test") as conn:
        conn.execute(sa.update(actions).values(owner="ops@gone:1", heartbeat_us=0))
    group.stop_crashes = False
    record = runner.resume(store, group, action_id, "next", "ops", timing=clock.timing())
    assert record.status == "stopped" and group.stops == 2
    assert group.ran == ["point-group", "batch-1"]


def test_a_rollback_marks_the_versions_it_leaves_bad_for_its_group(store):
    confirm(store, plan(to="1.0", from_versions=("1.1", "1.2")))
    bad = quarantine.bad_for(store, "prod", "us-east-1", "web")
    assert set(bad) == {"1.1", "1.2"}
    assert bad["1.1"].reason == "1.1 returns 500s" and bad["1.1"].source == "rollback"
    assert quarantine.bad_for(store, "prod", "us-east-1", "api") == {}


def test_going_back_to_a_bad_version_needs_it_typed(store):
    quarantine.mark(store, "1.0", "1.0 corrupts uploads", "sec")
    with pytest.raises(ActionRefused, match="1.0 was quarantined.*type the version 1.0"):
        confirm(store)
    assert events_of(store)[-1] == "refused"
    action_id = confirm(store, typed_version="1.0")
    entry = [e for e in audit.entries(store) if e.event == "plan_confirmed"][-1]
    assert entry.action_id == action_id
    assert "1.0 corrupts uploads" in json.loads(entry.detail)["bad_version_confirmed"]


def test_a_group_already_there_at_the_first_check_records_its_counts(store):
    clock = FakeClock()
    record = runner.execute(store, Group(clock), confirm(store), timing=clock.timing())
    assert record.status == "recovered" and record.progress == (3, 3) and clock() == 0
