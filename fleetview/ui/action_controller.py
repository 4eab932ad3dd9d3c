"""Replace and rollback in the window: palette entries and menus -> plan preview -> confirm ->
a worker runs it and tracks its group until it converges, while the Actions panel shows how
far it is; stop, quarantine a version, audit log and readiness beside it."""

from __future__ import annotations

import contextlib
import dataclasses
import getpass
import json
import logging
import socket
import time
from collections.abc import Callable

import pandas as pd
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QApplication, QDockWidget, QMessageBox, QSystemTrayIcon

from fleetview.actions import audit, history, quarantine, runner
from fleetview.actions.journal import ActionRecord, Journal
from fleetview.actions.prepare import Prepared, prepare_replace, prepare_rollback
from fleetview.domain.actions import ActionRefused, ProgressEvent
from fleetview.domain.durations import short_duration
from fleetview.domain.errors import FleetViewError
from fleetview.domain.timing import Timing
from fleetview.domain.versions import version_key
from fleetview.ui.actions_panel import ActionsPanel, describe, status_text
from fleetview.ui.audit_view import AuditView, load_new_log
from fleetview.ui.palette import PaletteEntry
from fleetview.ui.plan_dialog import PlanDialog
from fleetview.ui.reason_dialog import ReasonDialog
from fleetview.ui.scope_tree import COL_MIX, MIX_ROLE
from fleetview.ui.state import FleetFrame, WindowState
from fleetview.ui.tasks import TaskRunner, TaskState

log = logging.getLogger(__name__)


def run_action(state: TaskState, work: Callable[[TaskState], object]):
    """An action to its end, on the task runner's long-task thread: `work(state)` reports each
    ProgressEvent with `state.report` and asks `state.stop_reason` whether the operator
    stopped it; the journal is written as it goes.

    A bare interruption (the window closes) does not stop the action in the cloud: the
    thread, a daemon one, ends with the process, and the action, journaled as open, shows as
    interrupted on the next start, to resume or abandon. Only a stop with a reason stops it.
    """
    return work(state)


def tracking_timing(base: Timing, state: TaskState) -> Timing:
    """`base` with its pauses cut short by a stop: a stop asked while the runner waits for
    the group to converge is acted on at once, not after the pause. A fake clock's sleep
    (tests) is kept."""
    if base.sleep is not time.sleep:
        return base
    return dataclasses.replace(base, sleep=state.pause)


def _instances(n: int) -> str:
    return f"{n:,} instance" if n == 1 else f"{n:,} instances"


def local_operator() -> str:
    """Who sits at this window, for what is not done with a cloud's credentials."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no user name in this environment
        user = "user"
    return f"{user}@{socket.gethostname()}"


READINESS_DELAY_MS = 2500
READINESS_EVERY_S = 60.0
_MARKED = {"plan_confirmed": "▶", "recovered": "✔", "finished": "✔", "failed": "✘",
           "not_converged": "⚠", "stopped": "■", "abandoned": "■"}
# The ends an operator wants to hear of when the window is not in front: (level, words).
_NOTIFY = {"recovered": ("info", "recovered"), "failed": ("critical", "failed"),
           "not_converged": ("warning", "not converged")}


def audit_markers(store) -> pd.DataFrame:
    """Timeline marks for actions from the audit log: when each was confirmed and ended."""
    log = audit.frame(store)
    log = log[log["event"].isin(list(_MARKED))]
    if log.empty:
        return pd.DataFrame({"time": pd.Series([], dtype="datetime64[ns, UTC]"), "label": [],
                             "scope": [], "region": [], "group": []})
    # An action's end does not repeat what it was: its confirmation says.
    confirmed = {}
    for row in log[log["event"] == "plan_confirmed"].itertuples(index=False):
        confirmed[row.action_id] = json.loads(row.detail or "{}")
    labels = []
    for row in log.itertuples(index=False):
        detail = {**confirmed.get(row.action_id, {}), **json.loads(row.detail or "{}")}
        what = detail.get("kind", "action")
        target = detail.get("to_version")
        text = f"{_MARKED[row.event]} {what} {row.group or ''}"
        labels.append(f"{text} → {target}" if target else text)
    return pd.DataFrame({"time": log["at"].to_numpy(), "label": labels,
                         "scope": log["scope"].to_numpy(), "region": log["region"].to_numpy(),
                         "group": log["group"].to_numpy()})


def _group_wants(groups: pd.DataFrame) -> frozenset:
    """What each group wants and whether it is updating: what its readiness turns on."""
    if not len(groups):
        return frozenset()
    cols = ["scope", "region", "group", "desired_version", "updating"]
    return frozenset(groups[cols].astype(str).itertuples(index=False, name=None))


def _readiness_table(store, config, groups: pd.DataFrame) -> dict[tuple, history.Readiness]:
    keys = list(zip(groups["scope"], groups["region"], groups["group"], strict=True))
    configs = {}
    for scope in {k[0] for k in keys}:
        # A scope no longer configured: its groups are read-only.
        with contextlib.suppress(KeyError):
            configs[scope] = config.scope(scope)
    return history.readiness_table(store, configs, keys)


class ActionController(QObject):
    """Owns the Actions and Audit docks of a MainWindow and every action started from it.

    It reads what the window shows from the window's state (fleet, groups) and puts what it
    learns there (rollback readiness, the timeline's action markers, status messages); of the
    window it uses only its extension points (commands, menus, palette, docks) and its task
    runner, on which each action runs as a long task.
    """

    action_finished = Signal(str, object)
    dialog_opened = Signal(object)  # the PlanDialog or ReasonDialog, for tests and screenshots
    notified = Signal(str, str)  # text, level ("info", "warning", "critical")

    # After its steps, how often an action re-reads its group and how long it may take to
    # converge before it is "not converged" (the window keeps tracking it after that).
    converge_timing: Timing = runner.CONVERGE

    def __init__(self, window, providers: Callable | None = None):
        super().__init__(window)
        self.window = window  # the docks' and dialogs' parent
        self.state: WindowState = window.state
        self.tasks = window.tasks
        # Plans and readiness read a group's whole history and poll its scope: on the window's
        # worker they held up the fleet and freshness reads behind them (as history did).
        self.plan_tasks = TaskRunner(self)
        self.store, self.config = window.store, window.config
        # scope name -> provider, for tests; None: a fresh provider per action from config.
        self._providers = providers
        self._running: set[str] = set()
        self._states: dict[str, TaskState] = {}  # the running actions' tasks, to stop them
        self._statuses: dict[str, str] = {}  # last status seen of each action, to notify
        self._identities: dict[str, str] = {}  # scope -> the cloud identity this window acts as
        self._closed = False
        self.dialog: PlanDialog | None = None
        self.reason_dialog: ReasonDialog | None = None
        self._tray: QSystemTrayIcon | None = None

        self.panel = ActionsPanel()
        self.panel.resume_requested.connect(self.resume)
        self.panel.stop_requested.connect(self.ask_stop)
        self.audit_view = AuditView()
        self.audit_view.verify_button.clicked.connect(self.verify_audit)
        self.actions_dock = self._dock("Actions", self.panel, "actionsDock")
        self.audit_dock = self._dock("Audit log", self.audit_view, "auditDock")
        window.tabifyDockWidget(self.actions_dock, self.audit_dock)
        # The log is read when its tab comes up, and followed while it is up.
        self._audit_shown = False
        self.audit_dock.visibilityChanged.connect(self._on_audit_visibility)
        self.actions_dock.raise_()
        # A strip, not half the window: the fleet is what the window is for.
        window.resizeDocks([self.actions_dock], [150], Qt.Orientation.Vertical)

        window.add_node_action("Roll back…", self._rollback_node)
        window.add_node_action("Rollback readiness", self._show_readiness_node)
        window.add_node_action(self._stop_node_name, self._stop_node)
        window.add_node_action(self._quarantine_node_name, self._quarantine_node)
        window.add_node_action(self._lift_node_name, self._lift_node)
        window.add_instance_action("Replace instance…", self.replace)
        window.add_instance_action(self._quarantine_instance_name, self._quarantine_instance)
        window.add_instance_action(self._lift_instance_name, self._lift_instance)
        window.add_version_action(lambda v: f"Quarantine version {v}…", self.ask_quarantine)
        window.add_version_action(self._lift_version_name, self.ask_lift)
        window.add_palette_source(self.palette_entries)
        window.add_command("Quarantine a version…", lambda: self.ask_quarantine(None))
        window.add_command("Show actions", self.show_actions, menu="View")
        window.add_command("Show audit log", self.show_audit, menu="View")
        window.add_command("Verify audit log", self.verify_audit)
        self.state.history_changed.connect(self._on_history_changed)
        self.state.fleet_changed.connect(self._on_fleet_changed)
        self._readiness_at = -READINESS_EVERY_S
        self._readiness_wants: frozenset = frozenset()
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
                detail += f" · {ready.describe()}"
            entries.append(PaletteEntry(
                f"Roll back {group}", "command",
                lambda s=scope, r=region, g=group: self.rollback(s, r, g), detail=detail))
        for row in self.state.grouped_instances().itertuples(index=False):
            entries.append(PaletteEntry(
                f"Replace {row.name if isinstance(row.name, str) and row.name else row.instance_id}",
                "command",
                lambda i=row.instance_id: self.replace(i),
                detail=f"{row.instance_id} · {row.group} · {row.scope}"))
        for record in self.panel.records.values():
            if record.open:
                entries.append(PaletteEntry(
                    f"Stop {describe(record)}", "command",
                    lambda a=record.action_id: self.ask_stop(a),
                    detail=f"{self.panel.status_of(record.action_id) or status_text(record)}"
                           f" · {record.plan.scope} / {record.plan.region}"))
        quarantined = self.state.quarantined()
        counts = self.state.frame.version_counts
        for version in sorted({v for v in counts if isinstance(v, str)} | set(quarantined),
                              key=version_key, reverse=True):
            mark = quarantined.get(version)
            if mark is not None:
                entries.append(PaletteEntry(
                    f"Lift quarantine of {version}", "command",
                    lambda v=version: self.ask_lift(v), detail=mark.describe()))
            else:
                entries.append(PaletteEntry(
                    f"Quarantine version {version}", "command",
                    lambda v=version: self.ask_quarantine(v),
                    detail=f"mark it bad for every group · {_instances(counts.get(version, 0))}"
                           " run it"))
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
        else:
            text = f"{key[3]}: {ready.describe()}."
            if ready.skipped:
                text += (f" Passed over as marked bad: {', '.join(ready.skipped)}.")
        self._tell("Rollback readiness", text)

    def show_actions(self) -> None:
        self.actions_dock.show()
        self.actions_dock.raise_()

    def show_audit(self) -> None:
        self.audit_dock.show()
        self.audit_dock.raise_()
        self._load_audit()

    def _on_audit_visibility(self, visible: bool) -> None:
        self._audit_shown = visible
        if visible:
            self._load_audit()

    def _load_audit(self) -> None:
        """Read the log if it has a new entry (run when it is shown and at each refresh
        while it is on screen, so it follows every new entry)."""
        if not self._closed:
            self.tasks.start("audit", load_new_log, self.store, self.audit_view.seq,
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

        self.plan_tasks.start("plan", prepare_rollback, self.config, self.store, scope,
                              region, group, version, self._provider(scope),
                              on_done=lambda prepared: self._show_plan(prepared, replan),
                              on_error=self._on_error)

    def replace(self, instance_id: str) -> None:
        scope = self.state.scope_of(instance_id)
        if scope is None:
            self._tell("Replace", f"{instance_id} is not in the fleet shown now.")
            return
        self.state.say(f"Planning the replacement of {instance_id}…")
        self.plan_tasks.start("plan", prepare_replace, self.config, self.store, scope,
                              instance_id, self._provider(scope),
                              on_done=self._show_plan, on_error=self._on_error)

    def _show_plan(self, prepared: Prepared,
                   replan: Callable[[str], None] | None = None) -> None:
        """The plan preview; `replan(version)` plans again for another target version."""
        self.state.say("")
        if prepared.identity:
            self._identities[prepared.scope] = prepared.identity
        if self.dialog is not None and self.dialog.isVisible():
            if self.dialog.prepared.kind == prepared.kind \
                    and self.dialog.prepared.group == prepared.group:
                self.dialog.show_prepared(prepared)
                return
            self.dialog.reject()
        self.dialog = PlanDialog(prepared, self.window, replan=replan)
        self.dialog.confirmed.connect(
            lambda reason, typed, typed_version, d=self.dialog:
            self._confirm(d.prepared, reason, typed, typed_version))
        self.dialog.open()
        self.dialog_opened.emit(self.dialog)

    # -- running ------------------------------------------------------------------------------
    def _confirm(self, prepared: Prepared, reason: str, typed: str,
                 typed_version: str = "") -> None:
        plan = prepared.plan
        if prepared.identity:
            self._identities[prepared.scope] = prepared.identity
        scope_config = self.config.scope(prepared.scope)
        selectors = tuple(self.config.protect) + tuple(getattr(scope_config, "protect", ()))
        try:
            action_id = runner.confirm(
                self.store, scope_config, plan,
                runner.Confirmation(reason, typed, typed_version),
                prepared.identity or "unknown", selectors=selectors, group=prepared.group_info)
        except (ActionRefused, FleetViewError) as exc:
            self._tell("Refused", str(exc), warn=True)
            self.refresh()
            return
        provider, timing = prepared.provider, self.converge_timing

        def work(state: TaskState, provider=provider, action_id=action_id):
            # Tracked until the group converges, past the deadline too: the window is where
            # someone watches. Stopped by the operator through the state or the journal.
            return runner.execute(self.store, provider, action_id, on_event=state.report,
                                  timing=tracking_timing(timing, state),
                                  should_stop=state.stop_reason, keep_tracking=True)

        self._start(action_id, work)
        self._marks_changed()  # the versions a rollback leaves are bad for the group now

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
        provider, timing = self._provider(scope), self.converge_timing

        def work(state: TaskState, mode=mode):
            from fleetview.providers import make_provider

            p = provider or make_provider(scope_config, self.config.versions)
            actor = p.identity() if mode != "abandon" else record.actor
            # A stop is asked through the journal here (resume watches it like any owner).
            return runner.resume(self.store, p, action_id, mode, actor, on_event=state.report,
                                 timing=tracking_timing(timing, state), keep_tracking=True)

        self._start(action_id, work)

    def _start(self, action_id: str, work: Callable[[TaskState], object]) -> None:
        self._running.add(action_id)
        self._statuses.setdefault(action_id, "running")
        self._states[action_id] = self.tasks.start_long(
            f"action:{action_id}", run_action, work,
            on_done=lambda record, a=action_id: self._on_finished(a, record),
            on_error=lambda exc, a=action_id: self._on_failed(a, exc),
            on_progress=lambda event, a=action_id: self._on_progress(a, event))
        self.show_actions()
        self.refresh()
        self.panel.select(action_id)

    def _on_progress(self, action_id: str, event: ProgressEvent) -> None:
        # Only the group's convergence is counted in instances on the panel's bar; a step's
        # own figures (a refresh's percent, a batch) are said in the status bar.
        if event.step is None and event.status == "progress" and event.total:
            self.panel.set_live_progress(action_id, event.done, event.total)
        if event.message:
            self.state.say(event.message, 5000)
            if event.step is None and event.message.startswith("not converged"):
                record = self.panel.records.get(action_id)
                self._seen_status(action_id, "not_converged",
                                  f"{describe(record)}: {event.message}" if record
                                  else event.message)

    def _on_finished(self, action_id: str, record) -> None:
        self._running.discard(action_id)
        self._states.pop(action_id, None)
        if self._closed:
            return
        self._readiness_at = -READINESS_EVERY_S  # the group's history just changed
        self.refresh()
        self.window.refresh()
        self.state.say(self._ended_text(record), 15000)
        self._seen_status(action_id, record.status, self._ended_text(record))
        self.action_finished.emit(action_id, record)

    @staticmethod
    def _ended_text(record) -> str:
        status = {"not_converged": "not converged",
                  "finished": "steps finished"}.get(record.status, record.status)
        if record.status != "recovered" and record.message \
                and record.message.startswith(status):  # the message says it already
            return f"{describe(record)}: {record.message}"
        text = f"{describe(record)}: {status}"
        ttr = getattr(record, "time_to_recover_s", None)
        if record.status == "recovered" and ttr is not None:
            text += f" in {short_duration(ttr)}"
        if record.message and record.status != "recovered":
            text += f" ({record.message})"
        return text

    def _on_failed(self, action_id: str, exc: BaseException) -> None:
        # Shown to the user; the journal already says failed.
        log.error("action %s", action_id, exc_info=exc)
        self._running.discard(action_id)
        self._states.pop(action_id, None)
        self._statuses[action_id] = "failed"
        self.refresh()
        self.state.say(f"Action failed: {exc}", 15000)
        self._notify(f"Action failed: {exc}", "critical")

    def _seen_status(self, action_id: str, status: str, text: str) -> None:
        """An action's status as just seen: its end (or not converging) is notified once."""
        before = self._statuses.get(action_id)
        self._statuses[action_id] = status
        if before is None or before == status or status not in _NOTIFY:
            return
        self._notify(text, _NOTIFY[status][0])

    def _notify(self, text: str, level: str) -> None:
        """A desktop notification when the window is not in front."""
        if self.window.isActiveWindow():
            return
        self.notified.emit(text, level)
        if QSystemTrayIcon.isSystemTrayAvailable():
            tray = self._tray
            if tray is None:
                tray = self._tray = QSystemTrayIcon(self.window.windowIcon(), self)
                tray.show()
            icon = {"critical": QSystemTrayIcon.MessageIcon.Critical,
                    "warning": QSystemTrayIcon.MessageIcon.Warning}.get(
                level, QSystemTrayIcon.MessageIcon.Information)
            tray.showMessage("FleetView", text, icon, 10000)
        QApplication.alert(self.window)

    # -- stopping -----------------------------------------------------------------------------
    def _record(self, action_id: str) -> ActionRecord:
        return self.panel.records.get(action_id) or Journal(self.store).get(action_id)

    def ask_stop(self, action_id: str) -> None:
        """Ask for a reason, then stop the action (see `stop`)."""
        record = self._record(action_id)
        if not record.open:
            self._tell("Stop", f"“{describe(record)}” is {status_text(record)}: there is "
                       "nothing to stop.")
            return
        dialog = ReasonDialog(
            "Stop action", f"Stop “{describe(record)}” ({status_text(record)})? What runs "
            "in the cloud for it stops: FleetView's batches at the next batch boundary, an "
            "instance refresh is cancelled, a group update keeps the versions it has now. "
            "What is done stays done.", "Stop", self.window)
        dialog.confirmed.connect(lambda reason, _v, a=action_id: self.stop(a, reason))
        self._open(dialog)

    def stop(self, action_id: str, reason: str) -> None:
        """Stop an open action, for `reason` (journaled and audited).

        One this window runs stops at its next check: the stop is journaled, and its task is
        told so that a wait for the group ends at once. One nobody runs any more (interrupted)
        is stopped here, on the task runner, with runner.stop; one another process runs is
        asked to stop through the journal, and runner.stop waits a while for its owner.
        """
        record = self._record(action_id)
        actor = self._actor(record.plan.scope)
        state = self._states.get(action_id)
        if state is not None:
            self.tasks.start(f"stop:{action_id}", runner.request_stop, self.store, action_id,
                             actor, reason,
                             on_done=lambda _record, s=state: self._stop_asked(
                                 s, f"stopped by {actor}: {reason}"),
                             on_error=self._on_refused)
            return
        try:
            scope_config = self.config.scope(record.plan.scope)
        except KeyError:
            self._tell("Stop", f"scope {record.plan.scope} is no longer in the config; "
                       "`fleetview stop` can stop it where the scope is configured", warn=True)
            return
        provider = self._provider(record.plan.scope)

        def work(state: TaskState):
            from fleetview.providers import make_provider

            p = provider or make_provider(scope_config, self.config.versions)
            try:  # who stops it in the cloud, as `fleetview stop` says it
                who = p.identity()
            except FleetViewError:  # the cloud is what is failing: the stop still goes on
                who = actor
            return runner.stop(self.store, p, action_id, who, reason, on_event=state.report)

        self._start(action_id, work)

    def _stop_asked(self, state: TaskState, reason: str) -> None:
        state.request_stop(reason)
        self.state.say("Stopping the action at its next check…", 10000)
        self.refresh()

    def _stop_node_name(self, key) -> str | None:
        return "Stop the action on this group…" if key and key[0] == "group" else None

    def _stop_node(self, key) -> None:
        _, scope, region, group = key
        for record in self.panel.records.values():
            plan = record.plan
            if record.open and (plan.scope, plan.region, plan.group) == (scope, region, group):
                self.ask_stop(record.action_id)
                return
        self._tell("Stop", f"No action is running on {group}.")

    # -- bad versions -------------------------------------------------------------------------
    def ask_quarantine(self, version: str | None, versions: list[str] | None = None) -> None:
        """Ask for a reason, then mark `version` bad for every group (quarantine.mark)."""
        known = versions or sorted({v for v in self.state.frame.version_counts
                                    if isinstance(v, str)}, key=version_key, reverse=True)
        dialog = ReasonDialog(
            "Quarantine version",
            "Mark a version bad for every group: it is never again a default rollback "
            "target, going back to it needs the version typed, and the instances running it "
            "are flagged. Lift the quarantine when it is fixed.", "Quarantine", self.window,
            versions=known, version=version, version_editable=True)
        dialog.confirmed.connect(lambda reason, chosen: self.quarantine(chosen, reason))
        self._open(dialog)

    def quarantine(self, version: str, reason: str) -> None:
        self.tasks.start("quarantine", quarantine.mark, self.store, version, reason,
                         local_operator(),
                         on_done=lambda mark: self._marks_changed(
                             f"{mark.version} quarantined: {reason}"),
                         on_error=self._on_refused)

    def ask_lift(self, version: str) -> None:
        mark = self.state.quarantined().get(version)
        dialog = ReasonDialog(
            "Lift quarantine", f"Lift the quarantine of {version}: it can be a rollback "
            "target again and its instances are no longer flagged (marks a rollback left on "
            "one group stay).", "Lift quarantine", self.window, version=version,
            warning=f"Quarantined: {mark.describe()}" if mark else "")
        dialog.confirmed.connect(lambda reason, chosen: self.lift(chosen, reason))
        self._open(dialog)

    def lift(self, version: str, reason: str) -> None:
        self.tasks.start("quarantine", quarantine.lift, self.store, version, reason,
                         local_operator(),
                         on_done=lambda _n: self._marks_changed(
                             f"quarantine of {version} lifted: {reason}"),
                         on_error=self._on_refused)

    def _marks_changed(self, message: str = "") -> None:
        """Marks were added or lifted: re-read the fleet (its flags) and readiness."""
        if message:
            self.state.say(message, 10000)
        self._readiness_at = -READINESS_EVERY_S
        self.window.refresh()
        self._readiness_timer.start()

    def _versions_of(self, key) -> list[str]:
        node = self.window.tree.item_for(tuple(key))
        mix = node.data(COL_MIX, MIX_ROLE) if node is not None else None
        return sorted((v for v in (mix or {}) if isinstance(v, str)), key=version_key,
                      reverse=True)

    def _quarantine_node_name(self, key) -> str | None:
        return "Quarantine a version…" if self._versions_of(key) else None

    def _quarantine_node(self, key) -> None:
        versions = self._versions_of(key)
        desired = self.state.desired_version(*key[1:]) if key[0] == "group" else None
        self.ask_quarantine(desired if desired in versions else versions[0], versions)

    def _lift_node_name(self, key) -> str | None:
        lifted = [v for v in self._versions_of(key) if v in self.state.quarantined()]
        return f"Lift quarantine of {lifted[0]}…" if lifted else None

    def _lift_node(self, key) -> None:
        lifted = [v for v in self._versions_of(key) if v in self.state.quarantined()]
        if lifted:
            self.ask_lift(lifted[0])

    def _version_of_instance(self, instance_id: str) -> str | None:
        row = self.state.instance_row(instance_id)
        version = None if row is None else row.get("version")
        return version if isinstance(version, str) else None

    def _quarantine_instance_name(self, instance_id: str) -> str | None:
        version = self._version_of_instance(instance_id)
        if version is None or version in self.state.quarantined():
            return None
        return f"Quarantine version {version}…"

    def _quarantine_instance(self, instance_id: str) -> None:
        version = self._version_of_instance(instance_id)
        if version is not None:
            self.ask_quarantine(version)

    def _lift_instance_name(self, instance_id: str) -> str | None:
        version = self._version_of_instance(instance_id)
        return f"Lift quarantine of {version}…" if version in self.state.quarantined() \
            else None

    def _lift_instance(self, instance_id: str) -> None:
        version = self._version_of_instance(instance_id)
        if version is not None:
            self.ask_lift(version)

    def _lift_version_name(self, version: str) -> str | None:
        return f"Lift quarantine of {version}…" if version in self.state.quarantined() else None

    # -- refreshing ---------------------------------------------------------------------------
    def refresh(self) -> None:
        if self._closed:
            return
        self.tasks.start("actions", lambda: Journal(self.store).recent(50),
                         on_done=self._on_records, on_error=self._on_error)
        if self._audit_shown:
            self._load_audit()

    def _on_records(self, records: list[ActionRecord]) -> None:
        self.panel.set_records(records)
        for record in records:
            # What other windows and the command line run is heard of too; an action first
            # seen already ended is history, not news.
            if record.action_id in self._statuses:
                self._seen_status(record.action_id, record.status, self._ended_text(record))
            elif record.open:
                self._statuses[record.action_id] = record.status

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
        # A group that starts or ends a rollout, or wants another version, changes what its
        # rollback goes back to: a minute-old "back to 2.2.0" beside a rollout of 2.4.0 would
        # send the responder the wrong way.
        wants = _group_wants(self.state.groups)
        if wants != self._readiness_wants:
            self._readiness_wants = wants
            stale = True
        if stale and not self._readiness_timer.isActive():
            self._readiness_timer.start()

    def _check_readiness(self) -> None:
        if self._closed:
            return
        groups = self.state.groups
        if not len(groups):
            return
        self._readiness_at = time.monotonic()
        self.plan_tasks.start("readiness", _readiness_table, self.store, self.config, groups,
                              on_done=self.state.set_readiness, on_error=self._on_error)

    def running(self) -> bool:
        return bool(self._running)

    def shutdown(self) -> None:
        self._closed = True
        self._timer.stop()
        self._readiness_timer.stop()
        self.plan_tasks.shutdown()

    def _actor(self, scope: str) -> str:
        """Who stops or marks: the cloud identity this window acted as in the scope, else
        the person at this machine."""
        return self._identities.get(scope) or local_operator()

    def _open(self, dialog: ReasonDialog) -> None:
        if self.reason_dialog is not None and self.reason_dialog.isVisible():
            self.reason_dialog.reject()
        self.reason_dialog = dialog
        dialog.open()
        self.dialog_opened.emit(dialog)

    def _on_error(self, exc: BaseException) -> None:
        log.warning("action view: %s", exc)
        self.state.say(str(exc), 10000)

    def _on_refused(self, exc: BaseException) -> None:
        if isinstance(exc, FleetViewError):
            self._tell("Refused", str(exc), warn=True)
        else:
            log.error("action view", exc_info=exc)
            self._tell("Failed", f"{type(exc).__name__}: {exc}", warn=True)
        self.refresh()

    def _tell(self, title: str, text: str, warn: bool = False) -> None:
        box = QMessageBox(QMessageBox.Icon.Warning if warn else QMessageBox.Icon.Information,
                          title, text, QMessageBox.StandardButton.Ok, self.window)
        box.setTextFormat(Qt.TextFormat.PlainText)  # a message may quote a cloud's names
        box.setObjectName("actionMessage")
        box.open()
