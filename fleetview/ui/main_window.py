"""The main window: scope tree, timeline, fleet table, rollout and status, read from the store."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QTabWidget,
    QWidget,
)

from fleetview import collect_protocol as protocol
from fleetview.config import Config
from fleetview.ui import gc_guard
from fleetview.ui.collector_process import CollectorProcess
from fleetview.ui.colors import VersionColors
from fleetview.ui.fleet_table import FleetTable
from fleetview.ui.instance_details import InstanceDetails
from fleetview.ui.loads import (
    FleetSnapshot,
    History,
    load_fleet,
    load_freshness,
    load_history,
    load_share,
)
from fleetview.ui.palette import CommandPalette, PaletteEntry
from fleetview.ui.rich_text import escape, plain_tooltip
from fleetview.ui.rollout import RolloutView
from fleetview.ui.scope_tree import ScopeTree
from fleetview.ui.state import GroupKey, WindowState
from fleetview.ui.status_bar import ScopeStatus
from fleetview.ui.tasks import TaskRunner
from fleetview.ui.timeline import DAY, HOUR, WEEK, TimelineWidget

log = logging.getLogger(__name__)
HISTORY_DAYS = 30
FIRST_HISTORY_DAYS = 2


@dataclass(frozen=True)
class Command:
    """A named thing the user can do: in the palette, and wherever a shortcut is given."""

    name: str
    run: Callable[[], object]
    shortcut: str = ""


class MainWindow(QMainWindow):
    """The window over one store; `collector` (optional) is started and stopped with it.

    What it shows lives in `state` (a WindowState, no Qt): the window puts into it what its
    loads and the collector bring, and turns what the user does in one widget into a change
    of the state; the widgets follow the state, not each other.
    """

    loaded = Signal(str)  # "fleet", "history", "freshness", "rollout": after each is shown

    def __init__(self, store, config: Config | None = None,
                 collector: CollectorProcess | None = None,
                 settings: QSettings | None = None, history_days: int = HISTORY_DAYS,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.store = store
        self.config = config or Config()
        self.collector = collector
        self.settings = settings
        self.history_days = history_days
        self.tasks = TaskRunner(self)
        self.colors = VersionColors()
        self.state = WindowState()
        self.action_controller = None  # set by app.open_window
        self._closing = False
        self._shown_once = False

        self.setWindowTitle(f"FleetView — {getattr(store, 'path_or_url', '')}")
        state = self.state
        self.tree = ScopeTree(self.colors, self.config.poll.interval_s, self, state=state)
        self.timeline = TimelineWidget(self.colors, self, state=state)
        self.table = FleetTable(self.colors, self, state=state)
        self.rollout = RolloutView(self.colors, self)
        self.details = InstanceDetails(self.colors, self, state=state)
        self.side_tabs = QTabWidget(self)
        self.side_tabs.addTab(self.rollout, "Rollout")
        self.side_tabs.addTab(self.details, "Instance")

        self.bottom_split = QSplitter(Qt.Orientation.Horizontal, self)
        self.bottom_split.addWidget(self.table)
        self.bottom_split.addWidget(self.side_tabs)
        self.bottom_split.setStretchFactor(0, 3)
        self.bottom_split.setStretchFactor(1, 2)
        self.centre_split = QSplitter(Qt.Orientation.Vertical, self)
        self.centre_split.addWidget(self.timeline)
        self.centre_split.addWidget(self.bottom_split)
        self.centre_split.setStretchFactor(0, 3)
        self.centre_split.setStretchFactor(1, 2)
        self.main_split = QSplitter(Qt.Orientation.Horizontal, self)
        self.main_split.addWidget(self.tree)
        self.main_split.addWidget(self.centre_split)
        self.main_split.setStretchFactor(0, 0)
        self.main_split.setStretchFactor(1, 1)
        self.main_split.setSizes([430, 1100])
        self.centre_split.setSizes([520, 330])
        self.bottom_split.setSizes([700, 420])
        for split in (self.main_split, self.centre_split, self.bottom_split):
            split.setChildrenCollapsible(False)
        self.setCentralWidget(self.main_split)

        # Status bar: store, collector state, one progress bar + badge per scope.
        self.store_label = QLabel(f"Store: {getattr(store, 'path_or_url', '?')}"
                                  f"{' (read-only)' if getattr(store, 'readonly', False) else ''}")
        self.collector_label = QLabel("")
        self.collector_label.setObjectName("collectorState")
        self.statusBar().addWidget(self.store_label)
        self.statusBar().addWidget(self.collector_label)
        self.scope_status: dict[str, ScopeStatus] = {}
        state.scope_added.connect(self._on_scope_added)
        state.message.connect(self._on_message)
        state.add_scopes(scope.name for scope in self.config.scopes)

        self.palette_popup = CommandPalette(self)
        gc_guard.acquire()
        self.commands: list[Command] = []
        self.palette_sources: list[Callable[[], list[PaletteEntry]]] = []
        self._install_commands()
        self._connect()

        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(300)  # one refresh for a burst of poll_finished lines
        self._refresh_timer.timeout.connect(self.refresh)
        self._retry_timer = QTimer(self)
        self._retry_timer.setSingleShot(True)
        self._retry_timer.setInterval(2000)
        self._retry_timer.timeout.connect(self.refresh)
        self._clock = QTimer(self)
        self._clock.setInterval(1000)
        self._clock.timeout.connect(self._tick)
        self._clock.start()
        # Without our own collector someone else writes the store: look again each interval.
        self._poll_timer = QTimer(self)
        self._poll_timer.setInterval(int(max(5.0, self.config.poll.interval_s) * 1000))
        self._poll_timer.timeout.connect(self.refresh)
        if collector is None:
            self._poll_timer.start()
        self._restore_settings()

    # -- commands, shortcuts and hooks --------------------------------------------------------
    def add_command(self, name: str, run: Callable[[], object], shortcut: str = "") -> Command:
        """Register a command: listed in the palette, bound to `shortcut` if given."""
        command = Command(name, run, shortcut)
        self.commands.append(command)
        if shortcut:
            QShortcut(QKeySequence(shortcut), self, activated=run,
                      context=Qt.ShortcutContext.WindowShortcut)
        return command

    def add_instance_action(self, name: str | Callable[[str], str | None],
                            run: Callable[[str], object]) -> None:
        """An action on one instance (by id): in the table's context menu. `name` may be a
        function of the instance id giving the entry's text (None: not for this one)."""
        self.table.instance_actions.append((name, run))

    def add_version_action(self, name: str | Callable[[str], str | None],
                           run: Callable[[str], object]) -> None:
        """An action on a version: in the context menu of the timeline's legend."""
        self.timeline.legend.version_actions.append((name, run))

    def add_palette_source(self, source: Callable[[], list[PaletteEntry]]) -> None:
        """More palette entries, asked for each time the palette opens (e.g. actions)."""
        self.palette_sources.append(source)

    def add_node_action(self, name: str | Callable[[tuple], str | None],
                        run: Callable[[tuple], object]) -> None:
        """An action on a tree node (a group, region, scope or standalone instance key);
        `name` may be a function of the key giving the entry's text (None: not for it)."""
        self.tree.node_actions.append((name, run))

    def _install_commands(self) -> None:
        add = self.add_command
        add("Command palette", self.open_palette, "Ctrl+K")
        add("Filter the fleet table", self.focus_filter, "Ctrl+F")
        add("Poll now", self.poll_now, "F5")
        add("Clear filter, selection and time", self.clear_all, "Esc")
        add("Timeline: fit all history", self.timeline.plot.fit)
        add("Timeline: last hour", lambda: self.timeline.plot.show_last(HOUR))
        add("Timeline: last day", lambda: self.timeline.plot.show_last(DAY))
        add("Timeline: last week", lambda: self.timeline.plot.show_last(WEEK))
        add("Timeline: collapse all groups", lambda: self.timeline.plot.set_collapsed(
            frozenset(range(len(self.timeline.plot.data.groups)))))
        add("Timeline: expand all groups", lambda: self.timeline.plot.set_collapsed(frozenset()))
        add("Show the fleet now", self.timeline.scrub_to_now)
        add("Show only drift", lambda: self.table.set_filter_text("drift:yes"))
        add("Export visible rows as CSV…", self._export_csv_dialog, "Ctrl+E")
        add("Export timeline as PNG…", self._export_png_dialog, "Ctrl+Shift+E")
        add("Refresh from the store", self.refresh, "Ctrl+R")

    def palette_entries(self) -> list[PaletteEntry]:
        entries = [PaletteEntry(c.name, "command", c.run, shortcut=c.shortcut)
                   for c in self.commands]
        for key in self.tree.node_keys():
            if key[0] == "group":
                _, scope, region, group = key
                entries.append(PaletteEntry(str(group), "group",
                                            lambda k=key: self.tree.select(k),
                                            detail=f"{scope} / {region}"))
        fleet = self.state.fleet
        if len(fleet):
            for iid, name, version, group in zip(
                    fleet["instance_id"], fleet["name"], fleet["version"],
                    fleet["group"], strict=True):
                entries.append(PaletteEntry(str(name or iid), "instance",
                                            lambda i=str(iid): self.select_instance(i, "palette"),
                                            detail=f"{iid} · {version} · {group or 'standalone'}"))
        for source in self.palette_sources:
            entries.extend(source())
        return entries

    def open_palette(self) -> None:
        self.palette_popup.open_with(self.palette_entries())

    def focus_filter(self) -> None:
        self.table.filter_box.setFocus()
        self.table.filter_box.selectAll()

    def clear_all(self) -> None:
        if self.palette_popup.isVisible():
            self.palette_popup.close_palette()
            return
        self.table.set_filter_text("")
        self.state.select_instance(None, "window")
        self.timeline.scrub_to_now()

    def poll_now(self) -> None:
        """Ask the collector to poll every scope now; without one, re-read the store."""
        if self.collector is not None:
            self.collector.poll_now()
            self.collector_label.setText("Collector: polling now…")
        self.refresh()

    # -- wiring -------------------------------------------------------------------------------
    def _connect(self) -> None:
        self.tree.node_selected.connect(self._on_node_selected)
        self.timeline.instance_selected.connect(self._on_timeline_instance)
        self.timeline.scrubbed.connect(self._on_scrubbed)
        self.timeline.plot.hovered.connect(self._on_hover)
        self.table.instance_selected.connect(
            lambda instance_id: self.select_instance(instance_id, "table"))
        self.state.group_selected.connect(self._on_group_selected)
        self.state.instance_selected.connect(self._on_instance_selected)
        if self.collector is not None:
            self.collector.received.connect(self.on_collector_event)
            self.collector.started.connect(lambda: self.collector_label.setText("Collector: running"))
            self.collector.exited.connect(self._on_collector_exited)

    def start(self) -> None:
        """Start the collector (if any) and the first loads."""
        if self.collector is not None:
            self.collector_label.setText("Collector: starting…")
            self.collector.start()
        else:
            self.collector_label.setText("Collector: off (read-only)"
                                         if getattr(self.store, "readonly", False)
                                         else "Collector: off")
        self.refresh()

    def refresh(self) -> None:
        """Re-read everything the window shows from the store, off the GUI thread."""
        if self._closing:
            return
        now = datetime.now(UTC)
        # The first load reads the last two days (what the timeline shows first), then the
        # whole history follows: a month of spans takes a second to read.
        days = min(FIRST_HISTORY_DAYS, self.history_days) if not self.state.history_loads \
            else self.history_days
        self.tasks.start("history", load_history, self.store, now, days,
                         on_done=lambda h, d=days: self._on_history(h, d),
                         on_error=self._on_query_error)
        self.tasks.start("freshness", load_freshness, self.store,
                         on_done=self._on_freshness, on_error=self._on_query_error)
        self._load_fleet()
        if self.state.selected_group is not None:
            self._load_rollout()

    def _load_fleet(self) -> None:
        self.tasks.start("fleet", load_fleet, self.store, self.timeline.as_of(),
                         self.table.model.filter,
                         on_done=self._on_fleet, on_error=self._on_query_error)

    def _load_rollout(self) -> None:
        if self.state.selected_group is None:
            return
        scope, region, group = self.state.selected_group
        self.tasks.start("rollout", load_share, self.store, scope, region, group,
                         self.state.desired_version(scope, region, group), datetime.now(UTC),
                         self.history_days,
                         on_done=self._on_share, on_error=self._on_query_error)

    # -- results ------------------------------------------------------------------------------
    @property
    def fleet(self) -> pd.DataFrame:
        """The fleet shown (as of the scrubber's time)."""
        return self.state.fleet

    @property
    def groups(self) -> pd.DataFrame:
        return self.state.groups

    def _on_fleet(self, snapshot: FleetSnapshot) -> None:
        self.colors.update(snapshot.version_counts)  # before anything paints a version
        self.state.set_frame(snapshot)
        self.loaded.emit("fleet")

    def _on_history(self, history: History, days: int) -> None:
        self.colors.update(history.versions)
        self.state.set_history(history.timeline)
        self.loaded.emit("history")
        if days < self.history_days:
            self.tasks.start("history", load_history, self.store, datetime.now(UTC),
                             self.history_days,
                             on_done=lambda h: self._on_history(h, self.history_days),
                             on_error=self._on_query_error)

    def _on_freshness(self, df: pd.DataFrame) -> None:
        self.state.set_freshness(df)
        self.loaded.emit("freshness")

    def _on_share(self, share: pd.DataFrame) -> None:
        if self.state.selected_group is None:
            return
        scope, region, group = self.state.selected_group
        desired = self.state.desired_version(scope, region, group)
        if share is not None and len(share):
            self.colors.update(share.columns)
        self.rollout.set_share(f"<b>{escape(group)}</b> — {escape(scope)} / {escape(region)}",
                               share, desired, datetime.now(UTC))
        self.loaded.emit("rollout")

    def _on_query_error(self, exc: BaseException) -> None:
        log.warning("store query failed: %s", exc)
        self.statusBar().showMessage(f"Could not read the store: {exc}; trying again", 15000)
        if not self._closing:
            self._retry_timer.start()

    # -- selection ----------------------------------------------------------------------------
    def _on_node_selected(self, key: tuple) -> None:
        if key[0] == "group":
            _, scope, region, group = key
            self.state.select_group((scope, region, group))
        elif key[0] == "instance":
            self.select_instance(str(key[3]), "tree")

    def _on_timeline_instance(self, key: str) -> None:
        self.select_instance(key.split("\x1f", 1)[-1], "timeline")

    def select_instance(self, instance_id: str, source: str = "window") -> None:
        """Select an instance everywhere: timeline row, table row, details tab."""
        self.state.select_instance(instance_id, source)

    def _on_group_selected(self, key: GroupKey | None) -> None:
        if key is not None:
            self.side_tabs.setCurrentWidget(self.rollout)
            self._load_rollout()

    def _on_instance_selected(self, instance_id: str | None, source: str) -> None:
        if instance_id is not None:
            self.side_tabs.setCurrentWidget(self.details)

    def _on_scrubbed(self, when: datetime | None) -> None:
        self._load_fleet()

    def _on_hover(self, text: str) -> None:
        if text:
            self.statusBar().showMessage(text.replace("\n", "  ·  "), 4000)

    # -- collector ----------------------------------------------------------------------------
    def _on_scope_added(self, scope: str) -> None:
        status = ScopeStatus(scope, self.state, self)
        self.scope_status[scope] = status
        self.statusBar().addPermanentWidget(status)

    def _scope_status(self, scope: str) -> ScopeStatus:
        self.state.scope(scope)
        return self.scope_status[scope]

    def _on_message(self, text: str, timeout_ms: int) -> None:
        if text:
            self.statusBar().showMessage(text, timeout_ms)
        else:
            self.statusBar().clearMessage()

    def on_collector_event(self, event: protocol.CollectorEvent | dict) -> None:
        """One line of the collector (fleetview.collect_protocol), typed or as its JSON."""
        if isinstance(event, dict):
            try:
                event = protocol.from_dict(event)
            except protocol.ProtocolError as exc:
                log.warning("collector line refused: %s", exc)
                return
        state = self.state
        match event:
            case protocol.CollectorStarted():
                state.add_scopes(event.scopes)
                self.collector_label.setText("Collector: running")
            case protocol.StoreError():
                self.collector_label.setText("Collector: stopped, cannot write the store"
                                             if event.fatal
                                             else "Collector: waiting for the store")
                self.collector_label.setToolTip(plain_tooltip(event.message))
                self.statusBar().showMessage(
                    f"The collector cannot write the store: {event.message}", 30000)
            case protocol.StoreOk():
                self.collector_label.setText("Collector: running")
                self.collector_label.setToolTip("")
                self._refresh_timer.start()
            case protocol.CollectorStopped():
                self.collector_label.setText(f"Collector: stopped ({event.reason})")
            case protocol.PollStarted():
                state.poll_started(event.scope)
                self.collector_label.setText("Collector: polling")
            case protocol.PollFinished():
                errors: dict[str | None, str] = {}
                if event.error:
                    errors[None] = event.error
                for failure in event.region_errors:
                    errors[failure.region] = failure.message or "failed"
                summary = event.summary if event.ok else event.summary + " (with errors)"
                state.poll_finished(event.scope, summary, errors)
                if not state.polling():
                    self.collector_label.setText("Collector: running")
                self._refresh_timer.start()
            case protocol.ScopeError():
                state.scope_failed(event.scope, event.region, event.message or "poll failed")
            case protocol.PollsDropped():
                if event.scope:
                    state.scope(event.scope)
                self.statusBar().showMessage(event.message or "the collector dropped polls",
                                             30000)

    def _on_collector_exited(self, code: int, stderr: str) -> None:
        last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
        self.collector_label.setText(f"Collector stopped (exit {code})")
        self.collector_label.setToolTip(plain_tooltip(stderr))
        self.statusBar().showMessage(f"The collector stopped (exit {code}): {last}", 30000)

    # -- periodic -----------------------------------------------------------------------------
    def _tick(self) -> None:
        now = time.time()
        self.tree.update_ages(now)
        self.timeline.set_now(now)

    # -- exports ------------------------------------------------------------------------------
    def export_timeline_png(self, path: str) -> bool:
        return self.timeline.plot.grab().save(path, "PNG")

    def _export_csv_dialog(self) -> None:
        self.table._on_export_clicked()

    def _export_png_dialog(self) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
        path, _ = QFileDialog.getSaveFileName(self, "Export timeline", f"timeline-{stamp}.png",
                                              "PNG images (*.png)")
        if path:
            self.export_timeline_png(path)

    # -- settings and closing -----------------------------------------------------------------
    def _restore_settings(self) -> None:
        if self.settings is None:
            self.resize(1480, 900)
            return
        geometry = self.settings.value("window/geometry")
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1480, 900)

    def _restore_splitters(self) -> None:
        # Once laid out at the restored size: before that a splitter rescales what it got.
        if self.settings is None:
            return
        for name, split in self._splitters().items():
            state = self.settings.value(f"window/{name}")
            if state is not None:
                split.restoreState(state)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self._shown_once:
            self._shown_once = True
            self.layout().activate()
            self._restore_splitters()

    def _splitters(self) -> dict[str, QSplitter]:
        return {"main_split": self.main_split, "centre_split": self.centre_split,
                "bottom_split": self.bottom_split}

    def save_settings(self) -> None:
        if self.settings is None:
            return
        self.settings.setValue("window/geometry", self.saveGeometry())
        for name, split in self._splitters().items():
            self.settings.setValue(f"window/{name}", split.saveState())
        self.settings.sync()

    def shutdown(self) -> None:
        """Stop the collector and the workers; safe to call twice."""
        if self._closing:
            return
        self._closing = True
        gc_guard.release()
        self._clock.stop()
        self._poll_timer.stop()
        self._refresh_timer.stop()
        self._retry_timer.stop()
        if self.action_controller is not None:
            self.action_controller.shutdown()
        if self.collector is not None:
            self.collector.stop()
        self.tasks.shutdown()

    def closeEvent(self, event: QCloseEvent) -> None:
        actions = self.action_controller
        if actions is not None and actions.running():
            answer = QMessageBox.question(
                self, "An action is running",
                "An action is still running or being tracked until its group converges. If "
                "you close FleetView, its remaining steps do not run and nobody watches the "
                "group; nothing is stopped in the cloud. It shows as interrupted next time, "
                "to resume or abandon. Close?")
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
        self.save_settings()
        self.shutdown()
        super().closeEvent(event)
