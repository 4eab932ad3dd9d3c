"""Replace and rollback in the window: palette entries and menus -> plan preview -> confirm ->
a worker runs it while the Actions panel shows progress; audit log and readiness beside it."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

import pandas as pd
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QApplication, QDockWidget, QMessageBox, QSystemTrayIcon

from fleetview.actions import audit, history, runner
from fleetview.actions.journal import Journal
from fleetview.actions.prepare import Prepared, prepare_replace, prepare_rollback
from fleetview.domain.actions import ActionRefused, ProgressEvent
from fleetview.domain.errors import FleetViewError
from fleetview.ui.actions_panel import ActionsPanel, describe
from fleetview.ui.audit_view import AuditView
from fleetview.ui.palette import PaletteEntry
from fleetview.ui.plan_dialog import PlanDialog
from fleetview.ui.state import FleetFrame, WindowState
from fleetview.ui.tasks import TaskState

log = logging.getLogger(__name__)


def run_action(state: TaskState, work: Callable[[Callable[[ProgressEvent], None]], object]):
    """An action to its end, on the task runner's long-task thread: each ProgressEvent goes to
    the window as progress; the journal is written as it goes.

    An interruption (the window closes) does not cut a step short: the runner has no safe
    point to stop at, so the thread, a daemon one, ends with the process. An action cut short
    that way is journaled as running and shows as interrupted on the next start.
    """
    return work(state.report)


READINESS_DELAY_MS = 2500
READINESS_EVERY_S = 60.0
_MARKED = {"plan_confirmed": "▶", "finished": "✔", "failed": "✘", "abandoned": "■"}


def audit_markers(store) -> pd.DataFrame:
    """Timeline marks for actions from the audit log: when each was confirmed and ended."""
    log = audit.frame(store)
    log = log[log["event"].isin(list(_MARKED))]
    if log.empty:
        return pd.DataFrame({"time": pd.Series([], dtype="datetime64[ns, UTC]"), "label": []})
    labels = []
    for row in log.itertuples(index=False):
        detail = json.loads(row.detail or "{}")
        what = detail.get("kind", "action")
        target = detail.get("to_version")
        text = f"{_MARKED[row.event]} {what} {row.group or ''}"
        labels.append(f"{text} → {target}" if target else text)
    return pd.DataFrame({"time": log["at"].to_numpy(), "label": labels})


def _readiness_table(store, config, groups: pd.DataFrame) -> dict[tuple, history.Readiness]:
    out = {}
    images = store.images()  # once for every group, not once each
    for row in groups.itertuples(index=False):
        try:
            scope_config = config.scope(row.scope)
        except KeyError:
            scope_config = None
        try:
            out[(row.scope, row.region, row.group)] = history.readiness(
                store, scope_config, row.scope, row.region, row.group, images=images)
        except FleetViewError as exc:
            out[(row.scope, row.region, row.group)] = history.Readiness(False, None, str(exc))
    return out


class ActionController(QObject):
    """Owns the Actions and Audit docks of a MainWindow and every action started from it.

    It reads what the window shows from the window's state (fleet, groups) and puts what it
    learns there (rollback readiness, the timeline's action markers, status messages); of the
    window it uses only its extension points (commands, menus, palette, docks) and its task
    runner, on which each action runs as a long task.
    """

    action_finished = Signal(str, object)
    dialog_opened = Signal(object)  # the PlanDialog, for tests and screenshots

    def __init__(self, window, providers: Callable | None = None):
        super().__init__(window)
        self.window = window  # the docks' and dialogs' parent
        self.state: WindowState = window.state
        self.tasks = window.tasks
        self.store, self.config = window.store, window.config
        # scope name -> provider, for tests; None: a fresh provider per action from config.
        self._providers = providers
        self._running: set[str] = set()
        self._closed = False
        self.dialog: PlanDialog | None = None
        self._tray: QSystemTrayIcon | None = None

        self.panel = ActionsPanel()
        self.panel.resume_requested.connect(self.resume)
        self.audit_view = AuditView()
        self.audit_view.verify_button.clicked.connect(self.verify_audit)
        self.actions_dock = self._dock("Actions", self.panel, "actionsDock")
        self.audit_dock = self._dock("Audit log", self.audit_view, "auditDock")
        window.tabifyDockWidget(self.actions_dock, self.audit_dock)
        self.actions_dock.raise_()
        # A strip, not half the window: the fleet is what the window is for.
        window.resizeDocks([self.actions_dock], [150], Qt.Orientation.Vertical)

        window.add_node_action("Roll back…", self._rollback_node)
        window.add_node_action("Rollback readiness", self._show_readiness_node)
        window.add_instance_action("Replace instance…", self.replace)
        window.add_palette_source(self.palette_entries)
        window.add_command("Show actions", self.show_actions)
        window.add_command("Show audit log", self.show_audit)
        window.add_command("Verify audit log", self.verify_audit)
        self.state.history_changed.connect(self._on_history_changed)
        self.state.fleet_changed.connect(self._on_fleet_changed)
        self._readiness_at = -READINESS_EVERY_S
        self._readiness_timer = QTimer(self)
        self._readiness_timer.setSingleShot(True)
        self._readiness_timer.setInterval(READINESS_DELAY_MS)
        self._readiness_timer.timeout.connect(self._check_readiness)

        self._timer = QTimer(self)
        self._timer.setInterval(2000)
        self._timer.timeout.connect(self.refresh)
        self._timer.start()  # the first read waits for it: the fleet is painted first

    def _dock(self, title: str, widget, name: str) -> QDockWidget:
        dock = QDockWidget(title, self.window)
        dock.setObjectName(name)
        dock.setWidget(widget)
        dock.setAllowedAreas(Qt.DockWidgetArea.BottomDockWidgetArea
                             | Qt.DockWidgetArea.RightDockWidgetArea)
        self.window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock)
        return dock

    @property
    def readiness(self) -> dict[tuple, history.Readiness]:
        """Rollback readiness by (scope, region, group), as last checked."""
        return self.state.readiness

    # -- what the window offers ---------------------------------------------------------------
    def palette_entries(self) -> list[PaletteEntry]:
        entries = []
        for scope, region, group in self.state.group_keys():
            ready = self.readiness.get((scope, region, group))
            detail = f"{scope} / {region}"
            if ready is not None:
                detail += (f" · ready: back to {ready.target.version}" if ready.ready
                           else f" · not ready: {ready.why}")
            entries.append(PaletteEntry(
                f"Roll back {group}", "command",
                lambda s=scope, r=region, g=group: self.rollback(s, r, g), detail=detail))
        for row in self.state.grouped_instances().itertuples(index=False):
            entries.append(PaletteEntry(
                f"Replace {row.name or row.instance_id}", "command",
                lambda i=row.instance_id: self.replace(i),
                detail=f"{row.instance_id} · {row.group} · {row.scope}"))
        return entries

    def _rollback_node(self, key) -> None:
        if key and key[0] == "group":
            _, scope, region, group = key
            self.rollback(scope, region, group)
        else:
            self._tell("Roll back", "Choose a group: rollback acts on a whole group.")

    def _show_readiness_node(self, key) -> None:
        if not key or key[0] != "group":
            return
        ready = self.readiness.get(tuple(key[1:]))
        if ready is None:
            text = "Readiness is being checked; try again in a moment."
        elif ready.ready:
            text = f"Ready: {key[3]} can roll back to {ready.target.version} now."
        else:
            text = f"Not ready: {ready.why}."
        self._tell("Rollback readiness", text)

    def show_actions(self) -> None:
        self.actions_dock.show()
        self.actions_dock.raise_()

    def show_audit(self) -> None:
        self.audit_dock.show()
        self.audit_dock.raise_()
        self.tasks.start("audit", audit.frame, self.store,
                         on_done=self.audit_view.set_log, on_error=self._on_error)

    def verify_audit(self) -> None:
        self.show_audit()
        self.tasks.start("audit-verify", audit.verify, self.store,
                         on_done=self.audit_view.set_chain, on_error=self._on_error)

    # -- planning -----------------------------------------------------------------------------
    def _provider(self, scope: str):
        return self._providers(scope) if self._providers else None

    def rollback(self, scope: str, region: str, group: str, version: str | None = None) -> None:
        self.state.say(f"Planning the rollback of {group}…")

        def replan(to_version: str) -> None:  # the operator chose another target
            self.rollback(scope, region, group, to_version)

        self.tasks.start("plan", prepare_rollback, self.config, self.store, scope, region,
                         group, version, self._provider(scope),
                         on_done=lambda prepared: self._show_plan(prepared, replan),
                         on_error=self._on_error)

    def replace(self, instance_id: str) -> None:
        scope = self.state.scope_of(instance_id)
        if scope is None:
            self._tell("Replace", f"{instance_id} is not in the fleet shown now.")
            return
        self.state.say(f"Planning the replacement of {instance_id}…")
        self.tasks.start("plan", prepare_replace, self.config, self.store, scope,
                         instance_id, self._provider(scope),
                         on_done=self._show_plan, on_error=self._on_error)

    def _show_plan(self, prepared: Prepared,
                   replan: Callable[[str], None] | None = None) -> None:
        """The plan preview; `replan(version)` plans again for another target version."""
        self.state.say("")
        if self.dialog is not None and self.dialog.isVisible():
            if self.dialog.prepared.kind == prepared.kind \
                    and self.dialog.prepared.group == prepared.group:
                self.dialog.show_prepared(prepared)
                return
            self.dialog.reject()
        self.dialog = PlanDialog(prepared, self.window, replan=replan)
        self.dialog.confirmed.connect(
            lambda reason, typed, d=self.dialog: self._confirm(d.prepared, reason, typed))
        self.dialog.open()
        self.dialog_opened.emit(self.dialog)

    # -- running ------------------------------------------------------------------------------
    def _confirm(self, prepared: Prepared, reason: str, typed: str) -> None:
        plan = prepared.plan
        scope_config = self.config.scope(prepared.scope)
        selectors = tuple(self.config.protect) + tuple(getattr(scope_config, "protect", ()))
        try:
            action_id = runner.confirm(
                self.store, scope_config, plan, runner.Confirmation(reason, typed),
                prepared.identity or "unknown", selectors=selectors, group=prepared.group_info)
        except (ActionRefused, FleetViewError) as exc:
            self._tell("Refused", str(exc), warn=True)
            self.refresh()
            return
        provider = prepared.provider

        def work(emit, provider=provider, action_id=action_id):
            return runner.execute(self.store, provider, action_id, on_event=emit)

        self._start(action_id, work)

    def resume(self, action_id: str, mode: str) -> None:
        record = Journal(self.store).get(action_id)
        scope = record.plan.scope
        if mode == "abandon":
            answer = QMessageBox.question(
                self.window, "Abandon action",
                f"Abandon “{describe(record)}”? The steps done stay done; the rest will not "
                "run, and the group is freed for another action.")
            if answer != QMessageBox.StandardButton.Yes:
                return
        try:
            scope_config = self.config.scope(scope)
        except KeyError:
            self._tell("Resume", f"scope {scope} is no longer in the config", warn=True)
            return
        provider = self._provider(scope)

        def work(emit, mode=mode):
            from fleetview.providers import make_provider

            p = provider or make_provider(scope_config, self.config.versions)
            actor = p.identity() if mode != "abandon" else record.actor
            return runner.resume(self.store, p, action_id, mode, actor, on_event=emit)

        self._start(action_id, work)

    def _start(self, action_id: str, work) -> None:
        self._running.add(action_id)
        self.tasks.start_long(
            f"action:{action_id}", run_action, work,
            on_done=lambda record, a=action_id: self._on_finished(a, record),
            on_error=lambda exc, a=action_id: self._on_failed(a, exc),
            on_progress=lambda event, a=action_id: self._on_progress(a, event))
        self.show_actions()
        self.refresh()
        self.panel.select(action_id)

    def _on_progress(self, action_id: str, event: ProgressEvent) -> None:
        if event.total:
            self.panel.set_live_progress(action_id, event.done, event.total)
        if event.message:
            self.state.say(event.message, 5000)

    def _on_finished(self, action_id: str, record) -> None:
        self._running.discard(action_id)
        if self._closed:
            return
        self._readiness_at = -READINESS_EVERY_S  # the group's history just changed
        self.refresh()
        self.window.refresh()
        text = f"{describe(record)}: {record.status}"
        if record.message:
            text += f" ({record.message})"
        self._notify(text, failed=record.status != "finished")
        self.action_finished.emit(action_id, record)

    def _on_failed(self, action_id: str, exc: BaseException) -> None:
        # Shown to the user; the journal already says failed.
        log.error("action %s", action_id, exc_info=exc)
        self._running.discard(action_id)
        self.refresh()
        self._notify(f"Action failed: {exc}", failed=True)

    def _notify(self, text: str, failed: bool) -> None:
        """A desktop notification when the window is not in front; the status bar always."""
        self.state.say(text, 15000)
        if self.window.isActiveWindow():
            return
        if QSystemTrayIcon.isSystemTrayAvailable():
            tray = self._tray
            if tray is None:
                tray = self._tray = QSystemTrayIcon(self.window.windowIcon(), self)
                tray.show()
            icon = (QSystemTrayIcon.MessageIcon.Critical if failed
                    else QSystemTrayIcon.MessageIcon.Information)
            tray.showMessage("FleetView", text, icon, 10000)
        QApplication.alert(self.window)

    # -- refreshing ---------------------------------------------------------------------------
    def refresh(self) -> None:
        if self._closed:
            return
        self.tasks.start("actions", lambda: Journal(self.store).recent(50),
                         on_done=self.panel.set_records, on_error=self._on_error)

    def _on_history_changed(self, _history, _first: bool) -> None:
        if self._closed:
            return
        self.tasks.start("markers", audit_markers, self.store,
                         on_done=self.state.set_markers, on_error=self._on_error)

    def _on_fleet_changed(self, _frame: FleetFrame) -> None:
        # Readiness reads each group's history: worth having before anyone needs it, not
        # worth slowing the first paint or every poll for. A few seconds after the fleet
        # shows, and again at most once a minute.
        if self._closed:
            return
        stale = time.monotonic() - self._readiness_at > READINESS_EVERY_S
        if stale and not self._readiness_timer.isActive():
            self._readiness_timer.start()

    def _check_readiness(self) -> None:
        if self._closed:
            return
        groups = self.state.groups
        if not len(groups):
            return
        self._readiness_at = time.monotonic()
        self.tasks.start("readiness", _readiness_table, self.store, self.config, groups,
                         on_done=self.state.set_readiness, on_error=self._on_error)

    def running(self) -> bool:
        return bool(self._running)

    def shutdown(self) -> None:
        self._closed = True
        self._timer.stop()
        self._readiness_timer.stop()

    def _on_error(self, exc: BaseException) -> None:
        log.warning("action view: %s", exc)
        self.state.say(str(exc), 10000)

    def _tell(self, title: str, text: str, warn: bool = False) -> None:
        box = QMessageBox(QMessageBox.Icon.Warning if warn else QMessageBox.Icon.Information,
                          title, text, QMessageBox.StandardButton.Ok, self.window)
        box.setObjectName("actionMessage")
        box.open()
