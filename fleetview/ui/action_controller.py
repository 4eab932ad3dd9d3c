"""Replace and rollback in the window: palette entries and menus -> plan preview -> confirm ->
a worker runs it while the Actions panel shows progress; audit log and readiness beside it."""

from __future__ import annotations

import json
import logging
import threading
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

log = logging.getLogger(__name__)


class _Signals(QObject):
    progress = Signal(str, object)   # action_id, ProgressEvent
    finished = Signal(str, object)   # action_id, ActionRecord
    failed = Signal(str, str)        # action_id, message


class _ActionJob(threading.Thread):
    """Runs one action to its end on a worker thread; the journal is written as it goes.

    A daemon thread: closing the window must not wait an hour for a rollout. An action cut
    short that way is journaled as running and shows as interrupted on the next start.
    """

    def __init__(self, action_id: str, work: Callable[[Callable[[ProgressEvent], None]], object]):
        super().__init__(name=f"fleetview-action-{action_id[:8]}", daemon=True)
        self.signals = _Signals()
        self.action_id, self.work = action_id, work

    def run(self) -> None:
        try:
            record = self.work(lambda event: self.signals.progress.emit(self.action_id, event))
            self.signals.finished.emit(self.action_id, record)
        except Exception as exc:  # shown to the user; the journal already says failed
            log.exception("action %s", self.action_id)
            self.signals.failed.emit(self.action_id, str(exc))


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
    """Owns the Actions and Audit docks of a MainWindow and every action started from it."""

    action_finished = Signal(str, object)
    dialog_opened = Signal(object)  # the PlanDialog, for tests and screenshots

    def __init__(self, window, providers: Callable | None = None):
        super().__init__(window)
        self.window = window
        self.store, self.config = window.store, window.config
        # scope name -> provider, for tests; None: a fresh provider per action from config.
        self._providers = providers
        self._jobs: dict[str, _ActionJob] = {}
        self._closed = False
        self.readiness: dict[tuple, history.Readiness] = {}
        self.dialog: PlanDialog | None = None

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
        if hasattr(window, "details") and hasattr(window.details, "replace_requested"):
            window.details.replace_requested.connect(self.replace)
        window.loaded.connect(self._on_window_loaded)
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

    # -- what the window offers ---------------------------------------------------------------
    def palette_entries(self) -> list[PaletteEntry]:
        entries = []
        groups = getattr(self.window, "groups", None)
        if groups is not None and len(groups):
            for row in groups.itertuples(index=False):
                ready = self.readiness.get((row.scope, row.region, row.group))
                detail = f"{row.scope} / {row.region}"
                if ready is not None:
                    detail += (f" · ready: back to {ready.target.version}" if ready.ready
                               else f" · not ready: {ready.why}")
                entries.append(PaletteEntry(
                    f"Roll back {row.group}", "command",
                    lambda s=row.scope, r=row.region, g=row.group: self.rollback(s, r, g),
                    detail=detail))
        fleet = getattr(self.window, "fleet", None)
        if fleet is not None and len(fleet):
            grouped = fleet[fleet["group"].notna()]
            for row in grouped.itertuples(index=False):
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
        self.window.tasks.start("audit", audit.frame, self.store,
                                on_done=self.audit_view.set_log,
                                on_error=self._on_error)

    def verify_audit(self) -> None:
        self.show_audit()
        self.window.tasks.start("audit-verify", audit.verify, self.store,
                                on_done=self.audit_view.set_chain, on_error=self._on_error)

    # -- planning -----------------------------------------------------------------------------
    def _provider(self, scope: str):
        return self._providers(scope) if self._providers else None

    def rollback(self, scope: str, region: str, group: str, version: str | None = None) -> None:
        self.window.statusBar().showMessage(f"Planning the rollback of {group}…")
        self.window.tasks.start("plan", prepare_rollback, self.config, self.store, scope,
                                region, group, version, self._provider(scope),
                                on_done=self._show_plan, on_error=self._on_error)

    def replace(self, instance_id: str) -> None:
        fleet = getattr(self.window, "fleet", None)
        scope = None
        if fleet is not None and len(fleet):
            match = fleet[fleet["instance_id"] == instance_id]
            if len(match):
                scope = match["scope"].iloc[0]
        if scope is None:
            self._tell("Replace", f"{instance_id} is not in the fleet shown now.")
            return
        self.window.statusBar().showMessage(f"Planning the replacement of {instance_id}…")
        self.window.tasks.start("plan", prepare_replace, self.config, self.store, scope,
                                instance_id, self._provider(scope),
                                on_done=self._show_plan, on_error=self._on_error)

    def _show_plan(self, prepared: Prepared) -> None:
        self.window.statusBar().clearMessage()
        if self.dialog is not None and self.dialog.isVisible():
            if self.dialog.prepared.kind == prepared.kind \
                    and self.dialog.prepared.group == prepared.group:
                self.dialog.show_prepared(prepared)
                return
            self.dialog.reject()
        replan = None
        if prepared.kind == "rollback":
            def replan(version: str, p=prepared) -> None:
                self.rollback(p.scope, p.region, p.group or "", version)
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
        job = _ActionJob(action_id, work)
        job.signals.progress.connect(self._on_progress)
        job.signals.finished.connect(self._on_finished)
        job.signals.failed.connect(self._on_failed)
        self._jobs[action_id] = job
        job.start()
        self.show_actions()
        self.refresh()
        self.panel.select(action_id)

    def _on_progress(self, action_id: str, event: ProgressEvent) -> None:
        if event.total:
            self.panel.set_live_progress(action_id, event.done, event.total)
        if event.message:
            self.window.statusBar().showMessage(event.message, 5000)

    def _on_finished(self, action_id: str, record) -> None:
        self._jobs.pop(action_id, None)
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

    def _on_failed(self, action_id: str, message: str) -> None:
        self._jobs.pop(action_id, None)
        self.refresh()
        self._notify(f"Action failed: {message}", failed=True)

    def _notify(self, text: str, failed: bool) -> None:
        """A desktop notification when the window is not in front; the status bar always."""
        self.window.statusBar().showMessage(text, 15000)
        if self.window.isActiveWindow():
            return
        if QSystemTrayIcon.isSystemTrayAvailable():
            tray = getattr(self, "_tray", None)
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
        self.window.tasks.start("actions", lambda: Journal(self.store).recent(50),
                                on_done=self.panel.set_records, on_error=self._on_error)

    def _on_window_loaded(self, what: str) -> None:
        if self._closed:
            return
        if what == "history":
            self.window.tasks.start("markers", audit_markers, self.store,
                                    on_done=self.window.timeline.set_markers,
                                    on_error=self._on_error)
        # Readiness reads each group's history: worth having before anyone needs it, not
        # worth slowing the first paint or every poll for. A few seconds after the fleet
        # shows, and again at most once a minute.
        stale = time.monotonic() - self._readiness_at > READINESS_EVERY_S
        if what == "fleet" and stale and not self._readiness_timer.isActive():
            self._readiness_timer.start()

    def _check_readiness(self) -> None:
        if self._closed:
            return
        groups = getattr(self.window, "groups", None)
        if groups is None or not len(groups):
            return
        self._readiness_at = time.monotonic()
        self.window.tasks.start("readiness", _readiness_table, self.store, self.config,
                                groups, on_done=self._on_readiness, on_error=self._on_error)

    def _on_readiness(self, table: dict) -> None:
        """Rollback readiness on every group, before anyone needs it: in its tooltip."""
        self.readiness = table
        for (scope, region, group), ready in table.items():
            item = self.window.tree.item_for(("group", scope, region, group))
            if item is None:
                continue
            if ready.ready:
                text = f"Rollback: ready, back to {ready.target.version}"
            else:
                text = f"Rollback: not ready: {ready.why}"
            item.setToolTip(0, text)

    def running(self) -> bool:
        return bool(self._jobs)

    def shutdown(self) -> None:
        self._closed = True
        self._timer.stop()
        self._readiness_timer.stop()

    def _on_error(self, exc: BaseException) -> None:
        log.warning("action view: %s", exc)
        self.window.statusBar().showMessage(str(exc), 10000)

    def _tell(self, title: str, text: str, warn: bool = False) -> None:
        box = QMessageBox(QMessageBox.Icon.Warning if warn else QMessageBox.Icon.Information,
                          title, text, QMessageBox.StandardButton.Ok, self.window)
        box.setObjectName("actionMessage")
        box.open()
