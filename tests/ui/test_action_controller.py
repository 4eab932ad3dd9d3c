"""The actions part of the window, on a seeded store without a cloud: what it offers, what it
knows before anyone asks, what it refuses, and how a running action shows."""

from __future__ import annotations

import dataclasses
import threading
from types import SimpleNamespace

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMessageBox

import fleetview.ui.action_controller as action_controller
from fleetview.actions import audit
from fleetview.config import Config, PollConfig, StoreConfig
from fleetview.domain.actions import ActionPlan, ProgressEvent
from fleetview.ui.action_controller import ActionController
from fleetview.ui.main_window import MainWindow

WEB = ("prod", "us-east-1", "web")


@pytest.fixture
def window(qtbot, seeded_store, store_url, tmp_path, monkeypatch):
    monkeypatch.setattr(action_controller, "READINESS_DELAY_MS", 50)
    config = Config(store=StoreConfig(url=store_url), poll=PollConfig(interval_s=60))
    w = MainWindow(seeded_store, config,
                   settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    w.action_controller = ActionController(w)
    qtbot.addWidget(w)
    seen: set[str] = set()
    w.loaded.connect(seen.add)
    w.show()
    w.start()
    qtbot.waitUntil(lambda: {"fleet", "history", "freshness"} <= seen, timeout=10000)
    yield w
    w.shutdown()


def test_the_palette_offers_a_rollback_per_group_and_a_replace_per_member(window):
    entries = {e.title: e for e in window.action_controller.palette_entries()}
    assert {"Roll back web", "Roll back api"} <= entries.keys()
    assert entries["Roll back web"].detail.startswith("prod / us-east-1")
    assert {"Replace w2-name", "Replace w4-name", "Replace a3-name"} <= entries.keys()
    assert "Replace b1-name" not in entries  # standalone: nothing to replace it from


def test_readiness_is_known_before_anyone_asks(qtbot, window):
    controller = window.action_controller
    qtbot.waitUntil(lambda: WEB in controller.readiness, timeout=10000)
    ready = controller.readiness[WEB]
    assert not ready.ready and "read-only" in ready.why  # the config enables no actions
    tooltip = window.tree.item_for(("group", *WEB)).toolTip(0)
    assert "wants 1.1" in tooltip  # the group's own words stay
    assert f"Rollback: not ready: {ready.why}" in tooltip
    entry = next(e for e in controller.palette_entries() if e.title == "Roll back web")
    assert "not ready: scope prod is read-only" in entry.detail


def test_a_group_that_starts_a_rollout_gets_its_readiness_again_at_once(qtbot, window):
    """Readiness is re-read at most once a minute, except when a poll shows a group start or
    end a rollout: its rollback target changes then, and a stale one points the wrong way."""
    controller, state = window.action_controller, window.state
    qtbot.waitUntil(lambda: WEB in controller.readiness, timeout=10000)
    checks = []
    state.readiness_changed.connect(lambda r: checks.append(r))
    frame = state.frame
    state.set_frame(dataclasses.replace(frame))  # the same fleet again: nothing to re-read
    qtbot.wait(300)
    assert checks == []
    groups = frame.groups.copy()
    groups.loc[groups["group"] == "web", "updating"] = True
    state.set_frame(dataclasses.replace(frame, groups=groups))
    qtbot.waitUntil(lambda: len(checks) == 1, timeout=5000)


def test_actions_are_marked_on_the_timeline(qtbot, seeded_store, window):
    audit.append(seeded_store, "plan_confirmed", "ana", scope="prod", region="us-east-1",
                 group="web", detail={"kind": "rollback", "to_version": "1.0"})
    window.refresh()
    plot = window.timeline.plot
    qtbot.waitUntil(lambda: len(plot._marker_items) == 1, timeout=10000)
    assert plot._marker_items[0].label.format == "▶ rollback web → 1.0"


def test_replacing_an_instance_not_shown_is_explained(qtbot, window):
    window.action_controller.replace("i-gone")
    box = window.findChild(QMessageBox, "actionMessage")
    assert box is not None and box.isVisible()
    assert box.text() == "i-gone is not in the fleet shown now."


def test_a_rollback_outside_the_config_is_previewed_as_refused(qtbot, window):
    controller = window.action_controller
    with qtbot.waitSignal(controller.dialog_opened, timeout=10000) as opened:
        controller.rollback(*WEB)
    dialog = opened.args[0]
    assert dialog.refusal.text() == "Cannot run: scope prod is not in the config"
    assert dialog.title.text() == "Roll back group web (prod · us-east-1)"
    assert not dialog.run_button.isEnabled()
    dialog.reject()


def test_a_running_action_shows_its_progress_and_its_end(qtbot, window):
    controller = window.action_controller
    plan = ActionPlan("rollback", "aws", *WEB, ("w2", "w3"), ("1.1",), "1.0", "ami-1.0", (),
                      "rolling-replacement")
    record = SimpleNamespace(plan=plan, status="recovered", message="")
    go_on, where = threading.Event(), {}

    def work(state):
        where["thread"] = threading.current_thread().name
        state.report(ProgressEvent("batch-1", "progress", "Replacing w2", done=1, total=2))
        go_on.wait(10)
        return record

    controller._start("act-1", work)
    assert controller.running()
    qtbot.waitUntil(lambda: "Replacing w2" in window.statusBar().currentMessage(),
                    timeout=5000)
    assert where["thread"].startswith("fleetview-long-action:act-1")  # the task runner's
    assert window.tasks.running_long() == ["action:act-1"]
    with qtbot.waitSignal(controller.action_finished, timeout=10000) as finished:
        go_on.set()
    assert finished.args == ["act-1", record]
    assert not controller.running()
    assert window.statusBar().currentMessage() == "Roll back web to 1.0: recovered"


def test_a_failing_action_says_so(qtbot, window):
    controller = window.action_controller

    def work(state):
        raise RuntimeError("the provider went away")

    controller._start("act-2", work)
    qtbot.waitUntil(lambda: not controller.running(), timeout=5000)
    assert window.statusBar().currentMessage() == "Action failed: the provider went away"


def test_the_fleet_keeps_loading_while_a_rollback_is_planned(qtbot, window, monkeypatch):
    # Planning a large group takes long (its scope's poll): the tree and the table must go on
    # reading the fleet meanwhile. The cloud's slowness is stood in for by a plan that waits.
    planning, release = threading.Event(), threading.Event()
    real_prepare = action_controller.prepare_rollback

    def slow_prepare(*args, **kwargs):
        planning.set()
        release.wait(20)
        return real_prepare(*args, **kwargs)

    monkeypatch.setattr(action_controller, "prepare_rollback", slow_prepare)
    controller = window.action_controller
    try:
        controller.rollback(*WEB)
        qtbot.waitUntil(planning.is_set, timeout=10000)
        loaded: list[str] = []
        window.loaded.connect(loaded.append)
        window.refresh()
        qtbot.waitUntil(lambda: {"fleet", "freshness"} <= set(loaded), timeout=10000)
        assert controller.plan_tasks.is_running("plan")  # the plan is still under way
    finally:
        release.set()
    qtbot.waitUntil(lambda: not controller.plan_tasks.busy, timeout=10000)
