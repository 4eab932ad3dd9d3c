"""The action journal on a real SQLite store: written before a step runs, never run twice."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
import sqlalchemy as sa

from fleetview.actions.journal import Journal
from fleetview.actions.locks import OWNER, STALE_AFTER_S
from fleetview.domain.actions import ActionPlan, PlanStep
from fleetview.store.action_tables import actions
from fleetview.store.times import now_us

STEPS = ("point-group", "batch-1", "batch-2")


def plan(steps=STEPS) -> ActionPlan:
    return ActionPlan(
        kind="rollback", provider="memory", scope="lab", region="mem-1", group="web",
        instances=("m-1", "m-2"), from_versions=("1.1",), to_version="1.0",
        to_image_id="img-1.0", steps=tuple(PlanStep(k, f"do {k}", ("m-1",)) for k in steps),
        mechanism="delete-in-pool", batch_size=1, capacity_kept="2 of 3",
        irreversible=("m-1 is deleted",), notes=("a note",), params={"template": "t-1"})


def set_action(store, action_id: str, **values) -> None:
    with store.writing("test") as conn:
        conn.execute(sa.update(actions).where(actions.c.action_id == action_id).values(**values))


def test_create_journals_the_plan_and_pending_steps(store):
    journal = Journal(store)
    action_id = journal.create(plan(), "1.1 leaks memory", "ops")
    record = journal.get(action_id)
    assert record.plan == plan()  # the confirmed plan, exactly
    assert (record.reason, record.actor, record.owner) == ("1.1 leaks memory", "ops", OWNER)
    assert record.status == "running" and record.shown_status == "running"
    assert [(s.key, s.seq, s.status) for s in record.steps] == [
        (k, n, "pending") for n, k in enumerate(STEPS)]
    assert record.done_steps == frozenset() and record.progress == (0, 3)
    assert record.finished_us is None and record.time_to_recover_s is None
    assert journal.create(plan(), "r", "ops", action_id="chosen") == "chosen"
    assert record.created.tzinfo is not None and record.elapsed_s >= 0


def test_steps_move_from_pending_to_running_to_done(store):
    journal = Journal(store)
    action_id = journal.create(plan(), "r", "ops")
    journal.step(action_id, "point-group", "running")
    step = journal.get(action_id).steps[0]
    assert step.status == "running" and step.started_us and step.finished_us is None
    journal.step(action_id, "point-group", "done", "web launches 1.0")
    journal.step(action_id, "batch-1", "running")
    journal.step(action_id, "batch-1", "failed", "m-1 did not come back")
    record = journal.get(action_id)
    by_key = {s.key: s for s in record.steps}
    assert by_key["point-group"].status == "done"
    assert by_key["point-group"].message == "web launches 1.0" and by_key["point-group"].finished_us
    assert by_key["batch-1"].status == "failed" and by_key["batch-1"].message.startswith("m-1")
    assert by_key["batch-2"].status == "pending"
    assert record.done_steps == {"point-group"} and record.progress == (1, 3)


def test_a_done_step_is_never_reopened(store):
    journal = Journal(store)
    action_id = journal.create(plan(), "r", "ops")
    journal.step(action_id, "batch-1", "done", "first time")
    journal.step(action_id, "batch-1", "running")
    journal.step(action_id, "batch-1", "failed", "second time")
    step = {s.key: s for s in journal.get(action_id).steps}["batch-1"]
    assert (step.status, step.message) == ("done", "first time")


def test_a_step_the_provider_handed_back_is_journaled_so_a_resume_skips_it(store):
    # AWS hands back batch steps where the endpoint has no instance refresh: they are not in
    # the confirmed plan, and a resume after a crash must still know which of them ran.
    journal = Journal(store)
    action_id = journal.create(plan(("point-group", "refresh-start")), "why", "ops")
    journal.step(action_id, "point-group", "done")
    journal.step(action_id, "refresh-start", "done")
    journal.step(action_id, "batch-1", "running", "replace m-1")
    journal.step(action_id, "batch-1", "done")
    record = journal.get(action_id)
    assert record.done_steps == {"point-group", "refresh-start", "batch-1"}
    assert [s.key for s in record.steps][-1] == "batch-1"
    assert [s.description for s in record.steps if s.key == "batch-1"] == ["replace m-1"]


def test_a_step_beats_the_heart(store):
    journal = Journal(store)
    action_id = journal.create(plan(), "r", "ops")
    set_action(store, action_id, heartbeat_us=1)
    journal.step(action_id, "batch-1", "running")
    assert journal.get(action_id).heartbeat_us > 1
    set_action(store, action_id, heartbeat_us=1)
    journal.heartbeat(action_id)
    assert journal.get(action_id).heartbeat_us > 1


def test_finish_records_the_end_and_the_recovery(store):
    journal = Journal(store)
    action_id = journal.create(plan(), "r", "ops")
    confirmed = journal.get(action_id).confirmed_us
    journal.finish(action_id, "finished", recovered_us=confirmed + 90_000_000)
    record = journal.get(action_id)
    assert record.status == "finished" and record.message is None and record.finished_us
    assert record.time_to_recover_s == 90.0
    assert journal.unfinished() == []

    failed = journal.create(plan(), "r", "ops")
    journal.finish(failed, "failed", "batch-1 stopped: m-1 did not come back")
    assert journal.get(failed).message == "batch-1 stopped: m-1 did not come back"
    with pytest.raises(AssertionError):
        journal.finish(failed, "done")


def test_abandon_skips_the_steps_not_done(store):
    journal = Journal(store)
    action_id = journal.create(plan(), "r", "ops")
    journal.step(action_id, "point-group", "done")
    journal.step(action_id, "batch-1", "running")
    journal.finish(action_id, "abandoned", "abandoned by ops")
    record = journal.get(action_id)
    assert record.status == "abandoned"
    assert [s.status for s in record.steps] == ["done", "skipped", "skipped"]


def test_another_owner_that_stopped_beating_is_interrupted(store):
    journal = Journal(store)
    action_id = journal.create(plan(), "r", "ops")
    assert not journal.get(action_id).interrupted  # this process owns it
    set_action(store, action_id, owner="ops@elsewhere:1")
    assert not journal.get(action_id).interrupted  # a fresh heartbeat elsewhere: still running
    stale = now_us() - int((STALE_AFTER_S + 5) * 1e6)
    set_action(store, action_id, heartbeat_us=stale)
    record = journal.get(action_id)
    assert record.interrupted and record.shown_status == "interrupted"
    set_action(store, action_id, owner=OWNER)
    assert not journal.get(action_id).interrupted  # our own action is never interrupted


def test_an_owner_on_this_machine_whose_process_is_gone_is_interrupted_at_once(store):
    journal = Journal(store)
    action_id = journal.create(plan(), "r", "ops")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    set_action(store, action_id, owner=f"ops@{socket.gethostname()}:{gone.pid}")
    assert journal.get(action_id).interrupted


def test_a_finished_action_is_not_interrupted(store):
    journal = Journal(store)
    action_id = journal.create(plan(), "r", "ops")
    journal.finish(action_id, "failed", "x")
    set_action(store, action_id, owner="ops@elsewhere:1", heartbeat_us=0)
    assert not journal.get(action_id).interrupted


def test_adopt_takes_over_an_interrupted_action(store):
    journal = Journal(store)
    action_id = journal.create(plan(), "r", "ops")
    journal.step(action_id, "point-group", "done")
    set_action(store, action_id, owner="ops@elsewhere:1", heartbeat_us=0, finished_us=5)
    assert journal.get(action_id).interrupted
    journal.adopt(action_id)
    record = journal.get(action_id)
    assert record.owner == OWNER and record.status == "running"
    assert record.finished_us is None and not record.interrupted
    assert record.done_steps == {"point-group"}  # what was done stays done


def test_reading_the_journal(store):
    journal = Journal(store)
    first = journal.create(plan(), "r", "ops")
    second = journal.create(plan(("only",)), "r", "ops")
    journal.finish(first, "finished")
    set_action(store, second, created_us=journal.get(first).created_us + 1)
    assert [r.action_id for r in journal.recent()] == [second, first]
    assert [r.action_id for r in journal.recent(limit=1)] == [second]
    assert [r.action_id for r in journal.unfinished()] == [second]
    assert [s.key for s in journal.get(second).steps] == ["only"]
    empty = journal.create(plan(()), "r", "ops")
    assert journal.get(empty).steps == ()
    with pytest.raises(KeyError):
        journal.get("no-such-action")
