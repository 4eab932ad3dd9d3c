"""The Actions panel on its own: how each status of an action reads, what its progress bar
counts, and what it offers (stop an open action, resume an interrupted one)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from fleetview.actions.journal import ActionRecord, StepRecord
from fleetview.actions.locks import OWNER
from fleetview.domain.actions import ActionPlan, PlanStep
from fleetview.store.times import now_us
from fleetview.ui.actions_panel import ActionsPanel, progress_text, status_text

STEPS = ("point-group", "batch-1", "batch-2")


def record(status: str, *, done: int = 3, on_target: int | None = None,
           needed: int | None = None, message: str | None = None, owner: str = OWNER,
           recovered_after_s: float | None = None, action_id: str = "a-1",
           stop_reason: str | None = None) -> ActionRecord:
    plan = ActionPlan("rollback", "aws", "prod", "us-east-1", "api", ("i-1", "i-2", "i-3"),
                      ("2.4.0",), "2.3.0", "ami-230",
                      tuple(PlanStep(k, f"do {k}") for k in STEPS), "rolling-replacement")
    now = now_us()
    start = now - 300_000_000
    steps = tuple(StepRecord(k, n, f"do {k}", "done" if n < done else "pending", None,
                             start, start) for n, k in enumerate(STEPS))
    final = status not in ("running", "converging", "not_converged")
    return ActionRecord(
        action_id=action_id, plan=plan, reason="2.4.0 returns 500s", actor="ana@prod",
        owner=owner, status=status, message=message, created_us=start, confirmed_us=start,
        finished_us=now if final else None,
        heartbeat_us=now if owner == OWNER else start,
        recovered_us=start + int(recovered_after_s * 1e6) if recovered_after_s else None,
        steps=steps, on_target=on_target, needed=needed,
        stop_requested_us=now if stop_reason else None, stop_reason=stop_reason,
        stop_actor="bo@prod" if stop_reason else None)


@pytest.mark.parametrize(("the_record", "status", "bar"), [
    (record("running", done=1), "running", "step 1/3"),
    (record("converging", on_target=1, needed=3), "converging 1/3", "1/3 instances"),
    (record("recovered", on_target=3, needed=3, recovered_after_s=200), "recovered",
     "3/3 instances"),
    (record("not_converged", on_target=1, needed=3,
            message="not converged within 30 min: 1 of 3 on 2.3.0; still 2 on 2.4.0"),
     "not converged", "1/3 instances"),
    (record("failed", done=1, message="batch-2 failed: quota"), "failed", "steps 1/3"),
    (record("stopped", on_target=1, needed=3, message="stopped by bo: wrong target"),
     "stopped", "1/3 instances"),
    (record("abandoned", done=2), "abandoned", "steps 2/3"),
    # A database from before convergence tracking: the steps ended, the fleet was unchecked.
    (record("finished", recovered_after_s=27), "steps finished", "steps 3/3"),
    (record("converging", on_target=0, needed=3, owner="ops@gone-host:1"), "interrupted",
     "0/3 instances"),
])
def test_each_status_reads_honestly(qtbot, the_record, status, bar):
    assert status_text(the_record) == status
    assert progress_text(the_record)[2] == bar
    panel = ActionsPanel()
    qtbot.addWidget(panel)
    panel.set_records([the_record])
    assert panel.status_of("a-1") == status
    assert panel.bar_text("a-1") == bar
    item = panel.tree.topLevelItem(0)
    assert item.text(2) not in ("done", "finished")
    assert item.text(8) == (the_record.message or "")
    # A time to recover is shown for a recovered action only.
    assert item.text(5) == ("3 min 20 s" if status == "recovered" else "—")


def test_live_convergence_moves_the_bar_in_instances_not_steps(qtbot):
    panel = ActionsPanel()
    qtbot.addWidget(panel)
    panel.set_records([record("running", done=3)])
    assert panel.bar_text("a-1") == "step 3/3"  # every step done: the bar is not "done"
    panel.set_live_progress("a-1", 2, 5)
    assert panel.status_of("a-1") == "converging 2/5"
    assert panel.bar_text("a-1") == "2/5 instances"
    panel.set_records([record("converging", on_target=2, needed=5)])  # the journal, later
    assert panel.bar_text("a-1") == "2/5 instances"
    panel.set_records([record("recovered", on_target=5, needed=5, recovered_after_s=60)])
    assert panel.status_of("a-1") == "recovered" and panel.bar_text("a-1") == "5/5 instances"


def test_an_open_action_offers_stop_an_interrupted_one_resume(qtbot):
    panel = ActionsPanel()
    qtbot.addWidget(panel)
    asked: list = []
    panel.stop_requested.connect(asked.append)
    panel.set_records([record("converging", on_target=1, needed=3),
                       record("recovered", on_target=3, needed=3, action_id="a-2"),
                       record("converging", owner="ops@gone-host:1", action_id="a-3")])
    panel.select("a-2")
    assert not panel.stop.isEnabled()
    panel.select("a-1")
    assert panel.stop.isEnabled() and not panel.resume_track.isEnabled()
    qtbot.mouseClick(panel.stop, Qt.MouseButton.LeftButton)
    assert asked == ["a-1"]
    menu = panel.context_menu()
    assert [a.text() for a in menu.actions() if a.isEnabled()] == ["Stop…"]
    panel.select("a-3")
    assert panel.stop.isEnabled() and panel.resume_track.isEnabled()
    assert "Interrupted after" in panel.hint.text()


def test_a_stop_asked_is_said_until_the_action_ends(qtbot):
    panel = ActionsPanel()
    qtbot.addWidget(panel)
    panel.set_records([record("converging", on_target=1, needed=3,
                              stop_reason="the rollback makes it worse")])
    panel.select("a-1")
    assert panel.hint.text() == "Stopping: asked by bo@prod: the rollback makes it worse"


def test_status_colours_and_tips(qtbot):
    panel = ActionsPanel()
    qtbot.addWidget(panel)
    panel.set_records([record("not_converged", on_target=1, needed=3,
                              message="not converged within 30 min: 1 of 3 on 2.3.0")])
    item = panel.tree.topLevelItem(0)
    assert item.foreground(2).color().name() != panel.palette().text().color().name()
    assert "keeps tracking" in item.toolTip(2) and "1 of 3 on 2.3.0" in item.toolTip(2)
    panel.set_records([record("finished", recovered_after_s=27)])
    item = panel.tree.topLevelItem(0)
    assert "never checked" in item.toolTip(2) and "never checked" in item.toolTip(5)


def test_an_action_just_started_is_selected_once_the_journal_brings_it(qtbot):
    panel = ActionsPanel()
    qtbot.addWidget(panel)
    panel.select("a-1")  # started: not read from the journal yet
    panel.set_records([record("running", done=0)])
    assert panel.selected().action_id == "a-1" and panel.stop.isEnabled()
