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
from fleetview.ui.rollout import RolloutView
from fleetview.ui.scope_tree import ScopeTree
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
    """The window over one store; `collector` (optional) is started and stopped with it."""

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
        self.fleet = pd.DataFrame()
        self.groups = pd.DataFrame()
        self.freshness = pd.DataFrame()
        self.selected_group: tuple[str, str, str] | None = None
        self._history_loaded = False
        self._closing = False
        self._shown_once = False

        self.setWindowTitle(f"FleetView — {getattr(store, 'path_or_url', '')}")
        self.tree = ScopeTree(self.colors, self.config.poll.interval_s, self)
        self.timeline = TimelineWidget(self.colors, self)
        self.table = FleetTable(self.colors, self)
        self.rollout = RolloutView(self.colors, self)
        self.details = InstanceDetails(self.colors, self)
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
        for scope in self.config.scopes:
            self._scope_status(scope.name)

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

    def add_instance_action(self, name: str, run: Callable[[str], object]) -> None:
        """An action on one instance (by id): in the table's context menu."""
        self.table.instance_actions.append((name, run))

    def add_palette_source(self, source: Callable[[], list[PaletteEntry]]) -> None:
        """More palette entries, asked for each time the palette opens (e.g. actions)."""
        self.palette_sources.append(source)

    def add_node_action(self, name: str, run: Callable[[tuple], object]) -> None:
        """An action on a tree node (a group, region, scope or standalone instance key)."""
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
        if len(self.fleet):
            for iid, name, version, group in zip(
                    self.fleet["instance_id"], self.fleet["name"], self.fleet["version"],
                    self.fleet["group"], strict=True):
                entries.append(PaletteEntry(str(name or iid), "instance",
                                            lambda i=str(iid): self.select_instance(i),
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
        self.table.view.clearSelection()
        self.timeline.plot.select_instance(None)
        self.details.clear()
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
        self.table.instance_selected.connect(self.select_instance)
        if self.collector is not None:
            self.collector.event.connect(self.on_collector_event)
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
        days = min(FIRST_HISTORY_DAYS, self.history_days) if not self._history_loaded \
            else self.history_days
        self.tasks.start("history", load_history, self.store, now, days,
                         on_done=lambda h, d=days: self._on_history(h, d),
                         on_error=self._on_query_error)
        self.tasks.start("freshness", load_freshness, self.store,
                         on_done=self._on_freshness, on_error=self._on_query_error)
        self._load_fleet()
        if self.selected_group is not None:
            self._load_rollout()

    def _load_fleet(self) -> None:
        self.tasks.start("fleet", load_fleet, self.store, self.timeline.as_of(),
                         self.table.model.filter,
                         on_done=self._on_fleet, on_error=self._on_query_error)

    def _load_rollout(self) -> None:
        if self.selected_group is None:
            return
        scope, region, group = self.selected_group
        self.tasks.start("rollout", load_share, self.store, scope, region, group,
                         self._desired_version(scope, region, group), datetime.now(UTC),
                         self.history_days,
                         on_done=self._on_share, on_error=self._on_query_error)

    # -- results ------------------------------------------------------------------------------
    def _on_fleet(self, snapshot: FleetSnapshot) -> None:
        self.fleet, self.groups = snapshot.fleet, snapshot.groups
        self.colors.update(snapshot.version_counts)
        self.tree.set_nodes(snapshot.nodes)
        self.table.set_rows(snapshot.rows)
        self.timeline.legend.set_counts(snapshot.version_counts)
        if self.details.instance_id:
            self._show_details(self.details.instance_id)
        self.loaded.emit("fleet")

    def _on_history(self, history: History, days: int) -> None:
        self.colors.update(history.versions)
        self.timeline.set_data(history.timeline, time.time(), first=not self._history_loaded)
        self._history_loaded = True
        self.loaded.emit("history")
        if days < self.history_days:
            self.tasks.start("history", load_history, self.store, datetime.now(UTC),
                             self.history_days,
                             on_done=lambda h: self._on_history(h, self.history_days),
                             on_error=self._on_query_error)

    def _on_freshness(self, df: pd.DataFrame) -> None:
        self.freshness = df
        self.tree.set_freshness(df)
        # The store's word on the last poll of each region, for scopes the collector has not
        # (yet) reported on in this session.
        for scope, rows in df.groupby("scope") if len(df) else []:
            status = self._scope_status(str(scope))
            for row in rows.itertuples(index=False):
                region = str(row.region) if row.region is not None else None
                status.set_error(region, None if row.ok else str(row.error or "poll failed"))
        self.loaded.emit("freshness")

    def _on_share(self, share: pd.DataFrame) -> None:
        if self.selected_group is None:
            return
        scope, region, group = self.selected_group
        desired = self._desired_version(scope, region, group)
        if share is not None and len(share):
            self.colors.update(share.columns)
        self.rollout.set_share(f"<b>{group}</b> — {scope} / {region}", share, desired,
                               datetime.now(UTC))
        self.loaded.emit("rollout")

    def _desired_version(self, scope: str, region: str, group: str) -> str | None:
        if not len(self.groups):
            return None
        hit = self.groups[(self.groups["scope"] == scope) & (self.groups["region"] == region)
                          & (self.groups["group"] == group)]
        return None if not len(hit) or pd.isna(hit["desired_version"].iat[0]) \
            else str(hit["desired_version"].iat[0])

    def _on_query_error(self, exc: BaseException) -> None:
        log.warning("store query failed: %s", exc)
        self.statusBar().showMessage(f"Could not read the store: {exc}; trying again", 15000)
        if not self._closing:
            self._retry_timer.start()

    # -- selection ----------------------------------------------------------------------------
    def _on_node_selected(self, key: tuple) -> None:
        if key[0] == "group":
            _, scope, region, group = key
            self.selected_group = (scope, region, group)
            self.side_tabs.setCurrentWidget(self.rollout)
            self._load_rollout()
            plot = self.timeline.plot
            for g, gkey in enumerate(plot.data.groups):
                if gkey == (scope, region, group):
                    row = plot.row_of_group(g)
                    if row is not None:
                        plot.scroll_to_row(row, top=True)
        elif key[0] == "instance":
            self.select_instance(str(key[3]))

    def _on_timeline_instance(self, key: str) -> None:
        instance_id = key.split("\x1f", 1)[-1]
        self.table.select_instance(instance_id, emit=False)
        self._show_details(instance_id)

    def select_instance(self, instance_id: str) -> None:
        """Select an instance everywhere: timeline row, table row, details tab."""
        self.timeline.plot.select_instance(instance_id, scroll=True)
        self.table.select_instance(instance_id, emit=False)
        self._show_details(instance_id)

    def _show_details(self, instance_id: str) -> None:
        row = None
        if len(self.fleet):
            hit = self.fleet[self.fleet["instance_id"] == instance_id]
            if len(hit):
                row = hit.iloc[0]
        self.details.show_instance(instance_id, row, self.timeline.plot.data)
        self.side_tabs.setCurrentWidget(self.details)

    def _on_scrubbed(self, when: datetime | None) -> None:
        self._load_fleet()

    def _on_hover(self, text: str) -> None:
        if text:
            self.statusBar().showMessage(text.replace("\n", "  ·  "), 4000)

    # -- collector ----------------------------------------------------------------------------
    def _scope_status(self, scope: str) -> ScopeStatus:
        status = self.scope_status.get(scope)
        if status is None:
            status = ScopeStatus(scope, self)
            self.scope_status[scope] = status
            self.statusBar().addPermanentWidget(status)
        return status

    def on_collector_event(self, event: dict) -> None:
        """One line of the collector (see fleetview.collect.EVENTS)."""
        kind = event.get("event")
        scope = event.get("scope")
        message = event.get("message") or event.get("error")
        if kind == "collector_started":
            for name in event.get("scopes") or []:
                self._scope_status(str(name))
            self.collector_label.setText("Collector: running")
            return
        if kind == "store_error":
            fatal = bool(event.get("fatal"))
            self.collector_label.setText("Collector: stopped, cannot write the store" if fatal
                                         else "Collector: waiting for the store")
            self.collector_label.setToolTip(str(message or ""))
            self.statusBar().showMessage(f"The collector cannot write the store: {message}",
                                         30000)
            return
        if kind == "store_ok":
            self.collector_label.setText("Collector: running")
            self.collector_label.setToolTip("")
            self._refresh_timer.start()
            return
        if kind == "collector_stopped":
            self.collector_label.setText(f"Collector: stopped ({event.get('reason', '')})")
            return
        if not scope:
            return
        status = self._scope_status(str(scope))
        if kind == "poll_started":
            status.poll_started()
            self.collector_label.setText("Collector: polling")
        elif kind == "poll_finished":
            ok = bool(event.get("ok", True))
            instances = event.get("instances")
            summary = f"{instances} instances" if instances is not None else "polled"
            if event.get("duration_s") is not None:
                summary += f" in {float(event['duration_s']):.1f} s"
            status.poll_finished(summary if ok else summary + " (with errors)")
            status.clear_errors()
            if event.get("error"):
                status.set_error(None, str(event["error"]))
            for err in event.get("region_errors") or []:
                if isinstance(err, dict):
                    status.set_error(err.get("region"), str(err.get("message") or "failed"))
            if not any(s.polling for s in self.scope_status.values()):
                self.collector_label.setText("Collector: running")
            self._refresh_timer.start()
        elif kind == "scope_error":
            status.set_error(event.get("region"), str(message or "poll failed"))
        elif kind == "polls_dropped":
            self.statusBar().showMessage(str(message or "the collector dropped polls"), 30000)

    def _on_collector_exited(self, code: int, stderr: str) -> None:
        last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
        self.collector_label.setText(f"Collector stopped (exit {code})")
        self.collector_label.setToolTip(stderr)
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
        if getattr(self, "action_controller", None) is not None:
            self.action_controller.shutdown()
        if self.collector is not None:
            self.collector.stop()
        self.tasks.shutdown()

    def closeEvent(self, event: QCloseEvent) -> None:
        actions = getattr(self, "action_controller", None)
        if actions is not None and actions.running():
            answer = QMessageBox.question(
                self, "An action is running",
                "An action is still running. If you close FleetView, its remaining steps do "
                "not run; it shows as interrupted next time, to resume or abandon. Close?")
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
        self.save_settings()
        self.shutdown()
        super().closeEvent(event)
