"""Incident actions in the window, on a real SQLite store: an action converges before it is
recovered, it can be stopped from the panel, the palette or a menu, bad versions are flagged
and quarantined, and the operator hears of the end when the window is not in front.

The provider is a boundary fake whose group converges as the test hands out readings; the
rollout-in-flight case runs against the in-memory cloud (tests/helpers/memory_cloud.py).
"""

from __future__ import annotations

import queue
import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from PySide6.QtCore import QSettings, Qt

import fleetview.ui.action_controller as action_controller
from fleetview import providers
from fleetview.actions import audit, quarantine, runner
from fleetview.actions.journal import Journal
from fleetview.actions.prepare import Prepared
from fleetview.config import Config, PollConfig, StoreConfig
from fleetview.domain.actions import ActionPlan, Convergence, PlanStep, ProgressEvent, StepResult
from fleetview.domain.model import Inventory, Scope
from fleetview.domain.timing import Timing
from fleetview.providers.aws.scope import AwsScopeConfig
from fleetview.store.action_tables import actions
from fleetview.ui.action_controller import ActionController
from fleetview.ui.fleet_table import COLUMNS
from fleetview.ui.main_window import MainWindow
from fleetview.ui.reason_dialog import ReasonDialog
from fleetview.ui.scope_tree import BAD_ROLE, COL_NAME
from tests.helpers.fakes import StubProvider

WEB = ("prod", "us-east-1", "web")
PROD = AwsScopeConfig(name="prod", regions=("us-east-1", "eu-west-1"), actions=True)


def web_rollback(steps=("point-group", "batch-1")) -> ActionPlan:
    return ActionPlan("rollback", "aws", *WEB, ("w4",), ("1.1",), "1.0", "ami-1.0",
                      tuple(PlanStep(k, f"do {k}") for k in steps), "rolling-replacement")


class ScriptedGroup(StubProvider):
    """Group web, converging as the test says: each convergence reading is taken from
    `readings` (waiting for the test to hand one out), or is `always` when that is set."""

    actor = "ana@prod"

    def __init__(self):
        super().__init__(PROD, None)
        self.readings: queue.Queue[Convergence] = queue.Queue()
        self.always: Convergence | None = None
        self.ran: list[str] = []
        self.stops = 0

    def run_step(self, plan, step):
        self.ran.append(step.key)
        yield ProgressEvent(step.key, "progress", f"doing {step.key}", 50, 100)
        return StepResult("ok")

    def convergence(self, plan):
        if self.always is not None:
            return self.always
        return self.readings.get(timeout=20)

    def stop(self, plan, done):
        self.stops += 1
        yield ProgressEvent(None, "progress", "cancelling the refresh")
        return "the refresh was cancelled; 1 instance already runs 1.0"

    def poll(self):
        return Inventory(Scope("aws", "prod", "1"), datetime.now(UTC))





@pytest.fixture
def group() -> ScriptedGroup:
    return ScriptedGroup()


@pytest.fixture
def window(qtbot, seeded_store, store_url, tmp_path, monkeypatch, group):
    monkeypatch.setattr(action_controller, "READINESS_DELAY_MS", 50)
    config = Config(store=StoreConfig(url=store_url), poll=PollConfig(interval_s=60),
                    scopes=(PROD,))
    w = MainWindow(seeded_store, config,
                   settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    w.action_controller = ActionController(w, providers=lambda scope: group)
    w.action_controller.converge_timing = Timing(interval_s=0.02, timeout_s=60)
    qtbot.addWidget(w)
    seen: set[str] = set()
    w.loaded.connect(seen.add)
    w.show()
    w.start()
    qtbot.waitUntil(lambda: {"fleet", "history", "freshness"} <= seen, timeout=10000)
    yield w
    # pytest-qt has closed the window by now; an action a failed test left tracking ends.
    group.always = Convergence(3, 3, "1.0")
    qtbot.waitUntil(lambda: not any(t.name.startswith("fleetview-long")
                                    for t in threading.enumerate()), timeout=10000)
    w.shutdown()


@pytest.fixture(autouse=True)
def _close_without_asking(monkeypatch):
    """A test that fails with an action running must not hang on "Close?" at teardown."""
    from PySide6.QtWidgets import QMessageBox

    monkeypatch.setattr(QMessageBox, "question",
                        staticmethod(lambda *a, **k: QMessageBox.StandardButton.Yes))


def run_rollback(window, group, plan=None) -> str:
    """Confirm a rollback of web as the plan dialog does, and start it."""
    controller = window.action_controller
    prepared = Prepared("rollback", "prod", "us-east-1", "web", plan=plan or web_rollback(),
                        identity="ana@prod", provider=group)
    controller._confirm(prepared, "1.1 returns 500s", "")
    [action_id] = controller._running
    return action_id


def test_the_panel_shows_converging_then_recovered_with_the_time_to_recover(
        qtbot, window, group, monkeypatch):
    controller = window.action_controller
    panel = controller.panel
    heard: list = []
    controller.notified.connect(lambda text, level: heard.append((level, text)))
    monkeypatch.setattr(window, "isActiveWindow", lambda: False)
    action_id = run_rollback(window, group)
    group.readings.put(Convergence(1, 3, "1.0", {"1.1": 2}))
    qtbot.waitUntil(lambda: panel.status_of(action_id) == "converging 1/3", timeout=10000)
    assert panel.bar_text(action_id) == "1/3 instances"  # instances, not steps
    assert group.ran == ["point-group", "batch-1"]
    assert Journal(window.store).get(action_id).status == "converging"
    assert heard == []  # nothing has ended
    group.readings.put(Convergence(2, 3, "1.0", {"1.1": 1}))
    qtbot.waitUntil(lambda: panel.status_of(action_id) == "converging 2/3", timeout=10000)
    with qtbot.waitSignal(controller.action_finished, timeout=10000) as finished:
        group.readings.put(Convergence(3, 3, "1.0"))
    record = finished.args[1]
    assert record.status == "recovered" and record.time_to_recover_s is not None
    qtbot.waitUntil(lambda: panel.status_of(action_id) == "recovered", timeout=10000)
    assert panel.bar_text(action_id) == "3/3 instances"
    item = panel.tree.topLevelItem(0)
    assert item.text(5) != "—"  # the time to recover
    assert window.statusBar().currentMessage().startswith("Roll back web to 1.0: recovered in")
    assert [level for level, _ in heard] == ["info"]
    assert "recovered" in heard[0][1]
    # The timeline marks its end in the words of its confirmation.
    qtbot.waitUntil(lambda: "✔ rollback web → 1.0" in [
        m.label.format for m in window.timeline.plot._marker_items], timeout=10000)


def test_not_converging_by_the_deadline_warns_and_tracking_goes_on(
        qtbot, window, group, monkeypatch):
    controller = window.action_controller
    heard: list = []
    controller.notified.connect(lambda text, level: heard.append((level, text)))
    monkeypatch.setattr(window, "isActiveWindow", lambda: False)
    controller.converge_timing = Timing(interval_s=0.02, timeout_s=0.3)
    group.always = Convergence(1, 3, "1.0", {"1.1": 2})
    action_id = run_rollback(window, group)
    qtbot.waitUntil(lambda: controller.panel.status_of(action_id) == "not converged",
                    timeout=10000)
    record = Journal(window.store).get(action_id)
    assert record.status == "not_converged" and "still 2 on 1.1" in record.message
    assert [level for level, _ in heard] == ["warning"]
    assert "1 of 3 on 1.0; still 2 on 1.1" in heard[0][1]
    assert controller.running()  # still tracked
    with qtbot.waitSignal(controller.action_finished, timeout=10000) as finished:
        group.always = Convergence(3, 3, "1.0")
    assert finished.args[1].status == "recovered"
    assert [level for level, _ in heard] == ["warning", "info"]


def test_a_failed_action_is_notified_as_critical(qtbot, window, group, monkeypatch):
    controller = window.action_controller
    heard: list = []
    controller.notified.connect(lambda text, level: heard.append((level, text)))
    monkeypatch.setattr(window, "isActiveWindow", lambda: False)

    def broken(plan, step):
        raise RuntimeError("quota exceeded")
        yield

    group.run_step = broken
    with qtbot.waitSignal(controller.action_finished, timeout=10000) as finished:
        run_rollback(window, group)
    assert finished.args[1].status == "failed"
    assert [level for level, _ in heard] == ["critical"]
    assert "quota exceeded" in heard[0][1]


def test_in_front_nobody_is_notified(qtbot, window, group, monkeypatch):
    controller = window.action_controller
    heard: list = []
    controller.notified.connect(lambda text, level: heard.append(level))
    monkeypatch.setattr(window, "isActiveWindow", lambda: True)
    group.always = Convergence(3, 3, "1.0")
    with qtbot.waitSignal(controller.action_finished, timeout=10000):
        run_rollback(window, group)
    assert heard == []


def wait_reason_dialog(controller, qtbot) -> ReasonDialog:
    qtbot.waitUntil(lambda: controller.reason_dialog is not None
                    and controller.reason_dialog.isVisible(), timeout=5000)
    return controller.reason_dialog


def test_stop_from_the_panel_asks_a_reason_and_stops_at_the_next_check(qtbot, window, group):
    controller = window.action_controller
    panel = controller.panel
    group.always = Convergence(1, 3, "1.0", {"1.1": 2})
    action_id = run_rollback(window, group)
    qtbot.waitUntil(lambda: panel.status_of(action_id) == "converging 1/3", timeout=10000)
    panel.select(action_id)
    assert panel.stop.isEnabled()
    qtbot.mouseClick(panel.stop, Qt.MouseButton.LeftButton)
    dialog = wait_reason_dialog(controller, qtbot)
    assert "Roll back web to 1.0" in dialog.text.text()
    assert not dialog.confirm_button.isEnabled()  # a reason is required
    qtbot.keyClicks(dialog.reason, "the rollback makes it worse")
    with qtbot.waitSignal(controller.action_finished, timeout=10000) as finished:
        qtbot.keyClick(dialog.reason, Qt.Key.Key_Return)
    record = finished.args[1]
    assert record.status == "stopped" and group.stops == 1
    assert "stopped by ana@prod: the rollback makes it worse" in record.message
    assert "the refresh was cancelled" in record.message
    qtbot.waitUntil(lambda: panel.status_of(action_id) == "stopped", timeout=10000)
    item = panel.tree.topLevelItem(0)
    assert "the rollback makes it worse" in item.text(8)  # its message, shown
    events = [e.event for e in audit.entries(window.store)]
    assert "stop_requested" in events and events[-1] == "stopped"


def test_stop_from_the_palette_and_the_tree(qtbot, window, group):
    controller = window.action_controller
    group.always = Convergence(1, 3, "1.0", {"1.1": 2})
    action_id = run_rollback(window, group)
    qtbot.waitUntil(lambda: controller.panel.status_of(action_id) == "converging 1/3",
                    timeout=10000)
    entries = {e.title: e for e in window.palette_entries()}
    entry = entries["Stop Roll back web to 1.0"]
    assert entry.detail.startswith("converging 1/3")
    menu = window.tree.context_menu(("group", *WEB))
    assert "Stop the action on this group…" in [a.text() for a in menu.actions()]
    entry.run()
    dialog = wait_reason_dialog(controller, qtbot)
    dialog.reject()  # no reason, no stop
    assert Journal(window.store).get(action_id).stop_reason is None
    next(a for a in menu.actions() if a.text() == "Stop the action on this group…").trigger()
    dialog = wait_reason_dialog(controller, qtbot)
    qtbot.keyClicks(dialog.reason, "wrong group")
    with qtbot.waitSignal(controller.action_finished, timeout=10000) as finished:
        dialog.confirm_button.click()
    assert finished.args[1].status == "stopped"


def test_an_interrupted_action_is_stopped_here_on_the_task_runner(qtbot, window, group):
    controller = window.action_controller
    action_id = runner.confirm(window.store, PROD, web_rollback(),
                               runner.Confirmation("1.1 returns 500s"), "ana@prod")
    with window.store.writing("test") as conn:  # its window crashed long ago
        conn.execute(sa.update(actions).values(owner="ana@gone-host:1", heartbeat_us=0))
    controller.refresh()
    panel = controller.panel
    qtbot.waitUntil(lambda: panel.status_of(action_id) == "interrupted", timeout=10000)
    controller.ask_stop(action_id)
    dialog = wait_reason_dialog(controller, qtbot)
    qtbot.keyClicks(dialog.reason, "nobody watches it")
    with qtbot.waitSignal(controller.action_finished, timeout=10000) as finished:
        qtbot.keyClick(dialog.reason, Qt.Key.Key_Return)
    record = finished.args[1]
    assert record.status == "stopped" and group.stops == 1 and group.ran == []
    assert "nobody watches it" in record.message


def test_rollback_readiness_is_said_in_the_palette_and_the_tree(qtbot, window):
    controller = window.action_controller
    qtbot.waitUntil(lambda: WEB in controller.readiness, timeout=10000)
    ready = controller.readiness[WEB]
    entry = next(e for e in controller.palette_entries() if e.title == "Roll back web")
    assert entry.detail == f"prod / us-east-1 · {ready.describe()}"
    tooltip = window.tree.item_for(("group", *WEB)).toolTip(0)
    assert f"Rollback: {ready.describe()}" in tooltip


# -- bad versions -------------------------------------------------------------------------------

def test_instances_on_a_bad_version_are_flagged_in_the_tree_table_and_timeline(
        qtbot, window, seeded_store):
    quarantine.mark(seeded_store, "1.1", "1.1 corrupts uploads", "sec")
    quarantine.mark(seeded_store, "1.9", "rolled back: 1.9 leaks", "ana", scope="prod",
                    region="eu-west-1", group="api", source="rollback")
    state = window.state
    with qtbot.waitSignal(window.loaded, timeout=10000,
                          check_params_cb=lambda what: what == "fleet"):
        window.refresh()
    qtbot.waitUntil(lambda: len(state.bad_marks) == 2 and bool(window.timeline.plot._bad_why),
                    timeout=10000)
    # The model carries the marks; the widgets read them from it.
    assert {m.version for m in state.bad_marks} == {"1.1", "1.9"}
    assert "1.1 corrupts uploads" in state.bad_reason("prod", "us-east-1", "web", "1.1")
    assert state.bad_reason("prod", "us-east-1", "web", "1.9") is None  # api's mark only
    assert set(state.quarantined()) == {"1.1"}

    tree = window.tree
    web = tree.item_for(("group", *WEB))
    assert web.data(COL_NAME, BAD_ROLE) == 1 and not web.icon(COL_NAME).isNull()
    assert "⚠ 1 instance runs a version marked bad" in web.toolTip(COL_NAME)
    assert "1.1 (1): 1.1 was quarantined on every group by sec" in web.toolTip(COL_NAME)
    api = tree.item_for(("group", "prod", "eu-west-1", "api"))
    assert api.data(COL_NAME, BAD_ROLE) == 1 and "1.9 leaks" in api.toolTip(COL_NAME)
    assert tree.item_for(("scope", "prod")).data(COL_NAME, BAD_ROLE) == 2
    assert not tree.item_for(("instance", "prod", "us-east-1", "b1")).data(COL_NAME, BAD_ROLE)

    model = window.table.model
    row = model.row_of("w4")
    version = model.index(row, [c for _, c in COLUMNS].index("version"))
    assert model.data(version) == "1.1  ⚠"
    assert "1.1 corrupts uploads" in model.data(version, Qt.ItemDataRole.ToolTipRole)
    assert model.data(model.index(model.row_of("w2"), version.column())) == "1.0"
    window.table.set_filter_text("bad:yes")
    assert sorted(model.visible_frame()["instance_id"]) == ["a3", "w4"]
    window.table.set_filter_text("")

    plot = window.timeline.plot
    w4 = list(plot.data.inst_id).index("w4")
    row = int(plot.layout.inst_row[w4])
    assert plot.row_label(row).endswith("⚠")
    plot.getViewBox().setRange(xRange=(plot.now - 4 * 3600, plot.now), yRange=(0, 12),
                               padding=0)
    assert len(plot._bad_item.opts["x0"]) >= 2  # w4's bar and a3's, hatched
    text = plot.hover_text(plot.now - 60, row + 0.5)
    assert "⚠ marked bad: 1.1 was quarantined" in text
    window.select_instance("w4")
    assert "1.1 corrupts uploads" in window.details.label.text()


def test_quarantine_and_lift_from_the_palette_are_audited_and_flag_at_once(qtbot, window):
    controller = window.action_controller
    window.open_palette()
    qtbot.keyClicks(window.palette_popup.search, "quarantine version 1.0")
    assert window.palette_popup.shown_titles()[0] == "Quarantine version 1.0"
    qtbot.keyClick(window.palette_popup.search, Qt.Key.Key_Return)
    dialog = wait_reason_dialog(controller, qtbot)
    assert dialog.chosen_version() == "1.0"
    qtbot.keyClicks(dialog.reason, "1.0 leaks tokens")
    qtbot.keyClick(dialog.reason, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "1.0" in window.state.quarantined(), timeout=10000)
    qtbot.waitUntil(lambda: window.tree.item_for(("group", *WEB)).data(COL_NAME, BAD_ROLE)
                    == 2, timeout=10000)
    entry = {e.title: e for e in window.palette_entries()}["Lift quarantine of 1.0"]
    assert "1.0 leaks tokens" in entry.detail
    entry.run()
    dialog = wait_reason_dialog(controller, qtbot)
    assert "1.0 leaks tokens" in dialog.warning.text()
    qtbot.keyClicks(dialog.reason, "fixed in the image")
    qtbot.keyClick(dialog.reason, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "1.0" not in window.state.quarantined(), timeout=10000)
    entries = [e for e in audit.entries(window.store) if e.event in ("quarantined",
                                                                    "quarantine_lifted")]
    assert [(e.event, e.reason) for e in entries] == [
        ("quarantined", "1.0 leaks tokens"), ("quarantine_lifted", "fixed in the image")]


def test_quarantine_is_offered_on_a_group_an_instance_and_a_version(qtbot, window):
    texts = [a.text() for a in window.tree.context_menu(("group", *WEB)).actions()]
    assert "Quarantine a version…" in texts
    menu = window.table.context_menu(window.table.model.index(
        window.table.model.row_of("w4"), 0))
    assert "Quarantine version 1.1…" in [a.text() for a in menu.actions()]
    legend = window.timeline.legend
    assert [a.text() for a in legend.context_menu("1.1").actions()] == \
        ["Quarantine version 1.1…"]
    next(a for a in window.tree.context_menu(("group", *WEB)).actions()
         if a.text() == "Quarantine a version…").trigger()
    dialog = wait_reason_dialog(window.action_controller, qtbot)
    assert dialog.chosen_version() == "1.1"  # what the group is rolling out
    assert [dialog.version.itemText(i) for i in range(dialog.version.count())] == ["1.1", "1.0"]


def test_a_group_name_is_escaped_in_the_rollout_title(window):
    from fleetview.ui.loads import RolloutShare

    key = ("<b>prod</b>", "us-east-1", "<img src=x>")
    window.state.selected_group = key
    window._on_share(RolloutShare(None, None, None, None), key)
    assert "&lt;img src=x&gt;" in window.rollout.title.text()
    assert "<img" not in window.rollout.title.text()


# -- a rollout in flight, stopped and rolled back from the keyboard -----------------------------

@pytest.fixture
def in_flight(monkeypatch, tmp_path):
    """The in-memory cloud: group web ran 1.0 in full, then a rollout of 1.1 started and is
    under way (one instance of three on 1.1), recorded in a real store."""
    from fleetview.store import Store
    from tests.helpers import memory_cloud as mem

    monkeypatch.setitem(providers.REGISTRY, "memory", "tests.helpers.memory_cloud")
    world = mem.MemoryCloud("lab")
    monkeypatch.setitem(mem.WORLDS, "lab", world)
    for version in ("1.0", "1.1"):
        world.add_image(version)
    world.add_group("web", "1.0", size=3)
    scope = mem.MemoryScopeConfig("lab-mem", "lab", ("mem-1",), actions=True)
    config = Config(store=StoreConfig(url=f"sqlite:///{tmp_path / 'history.db'}"),
                    poll=PollConfig(interval_s=60), scopes=(scope,), versions=mem.RULES)

    class RollsBackInFlight(mem.MemoryProvider):
        """The memory cloud with a rollback that stops the update under way first."""

        rolls_back_in_flight = True

        def run_step(self, plan, step):
            if step.key == "point-group":
                world.groups[(plan.region, plan.group)].updating = False
            return (yield from super().run_step(plan, step))

    acting = RollsBackInFlight(scope, mem.RULES)
    store = Store.open(config.store.url)
    now = datetime.now(UTC)

    def record(at):
        store.record_poll(acting.poll(), at, at)

    record(now - timedelta(hours=3))
    web = world.groups[("mem-1", "web")]
    web.image_id, web.updating = "img-1.1", True
    world.delete_instance(world.members("mem-1", "web")[0].id)
    world.list_instances("mem-1")  # the group launches a replacement, on 1.1
    world.clock.sleep(60)  # which boots; the memory cloud rolls no further by itself
    record(now - timedelta(minutes=5))
    assert sorted(i.image_id for i in world.members("mem-1", "web")) == \
        ["img-1.0", "img-1.0", "img-1.1"]
    yield config, store, world, acting
    store.close()


def test_stop_and_roll_back_a_rollout_in_flight_in_five_keystrokes(
        qtbot, in_flight, tmp_path, monkeypatch):
    config, store, world, acting = in_flight
    monkeypatch.setattr(action_controller, "READINESS_DELAY_MS", 50)
    window = MainWindow(store, config, settings=QSettings(str(tmp_path / "s.ini"),
                                                          QSettings.Format.IniFormat))
    controller = window.action_controller = ActionController(window,
                                                             providers=lambda scope: acting)
    controller.converge_timing = world.clock.timing(interval_s=10, timeout_s=1800)
    qtbot.addWidget(window)
    window.show()
    window.start()
    key = ("lab-mem", "mem-1", "web")
    qtbot.waitUntil(lambda: key in controller.readiness, timeout=15000)
    ready = controller.readiness[key]
    assert ready.describe() == "ready: back to 1.0 (will stop the update under way)"

    # 1. open the palette  2. type  3. Enter
    qtbot.keyClick(window, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(window.palette_popup.search, "rollback web")
    assert window.palette_popup.shown_titles()[0] == "Roll back web"
    qtbot.keyClick(window.palette_popup.search, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: controller.dialog is not None and controller.dialog.isVisible(),
                    timeout=15000)
    dialog = controller.dialog
    assert dialog.prepared.ok, dialog.prepared.refusal
    assert dialog.note.isVisible()
    assert dialog.note.text() == ("Rollout in flight: this rollback will stop the update "
                                  "under way, then roll back")
    assert dialog.prepared.plan.to_version == "1.0"
    # 4. the reason  5. Enter
    qtbot.keyClicks(dialog.reason, "1.1 returns 500s")
    with qtbot.waitSignal(controller.action_finished, timeout=60000) as finished:
        qtbot.keyClick(dialog.reason, Qt.Key.Key_Return)
    record = finished.args[1]
    assert record.status == "recovered", record.message
    web = world.groups[("mem-1", "web")]
    assert web.image_id == "img-1.0" and not web.updating
    assert {i.image_id for i in world.members("mem-1", "web")} == {"img-1.0"}
    assert set(quarantine.bad_for(store, *key)) == {"1.1"}  # never the default again
