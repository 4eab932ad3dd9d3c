"""The main window: scope tree, timeline, fleet table, rollout and status, read from the store."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from PySide6.QtCore import QRect, QSettings, Qt, QTimer, Signal
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
    RolloutShare,
    load_fleet,
    load_freshness,
    load_history,
    load_rollout,
)
from fleetview.ui.menu_bar import MenuBar
from fleetview.ui.palette import CommandPalette, PaletteEntry, backfill_entries
from fleetview.ui.reports_view import show_reports
from fleetview.ui.rich_text import escape, plain_tooltip
from fleetview.ui.rollout import RolloutView
from fleetview.ui.scope_tree import ScopeTree
from fleetview.ui.skeleton import LoadingSkeleton
from fleetview.ui.state import GroupKey, WindowState
from fleetview.ui.status_bar import ScopeStatus
from fleetview.ui.tasks import TaskRunner
from fleetview.ui.timeline import DAY, HOUR, WEEK, TimelineWidget

log = logging.getLogger(__name__)
HISTORY_DAYS = 30
FIRST_HISTORY_DAYS = 2
PREFERRED_SIZE = (1480, 900)


@dataclass(frozen=True)
class Command:
    """A named thing the user can do: in the palette, and wherever a shortcut is given."""

    name: str
    run: Callable[[], object]
    shortcut: str = ""
    menu: str = "Actions"  # the menu bar's menu it is listed in (menu_bar.MENUS)


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
        # History has a worker of its own: on the shared one it waited behind an action's
        # reads (preparing a rollback plan of a large fleet took minutes), and the timeline
        # went that long without the spans the collector had written.
        self.history_tasks = TaskRunner(self)
        self.colors = VersionColors()
        self.state = WindowState()
        self.action_controller = None  # set by app.open_window
        self._closing = False
        self._shown_once = False
        self._history_again = False  # a refresh came while history was loading

        self.setWindowTitle(f"FleetView — {getattr(store, 'path_or_url', '')}")
        state = self.state
        self.tree = ScopeTree(self.colors, self.config.poll.interval_s, self, state=state)
        self.timeline = TimelineWidget(self.colors, self, state=state)
        self.timeline.set_poll_interval(self.config.poll.interval_s)
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
        self.menu_bar = MenuBar(self)
        self.setMenuBar(self.menu_bar)
        self._connect()
        # "Loading fleet…" over each panel until its first data is shown.
        self.skeleton = LoadingSkeleton(self)

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
        else:
            self.add_palette_source(lambda: backfill_entries(
                [s.name for s in self.config.scopes], collector.send))
        self._restore_settings()

    # -- commands, shortcuts and hooks --------------------------------------------------------
    def add_command(self, name: str, run: Callable[[], object], shortcut: str = "",
                    menu: str = "Actions") -> Command:
        """Register a command: listed in the palette and in the menu bar's `menu` (File,
        View, Actions, Help), bound to `shortcut` if given."""
        command = Command(name, run, shortcut, menu)
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
        def add(name, run, shortcut="", menu="View"):
            self.add_command(name, run, shortcut, menu)

        add("Export visible rows as CSV…", self._export_csv_dialog, "Ctrl+E", "File")
        add("Export timeline as PNG…", self._export_png_dialog, "Ctrl+Shift+E", "File")
        add("Quit", self.close, "Ctrl+Q", "File")
        add("Command palette", self.open_palette, "Ctrl+K")
        add("Filter the fleet table", self.focus_filter, "Ctrl+F")
        add("Clear filter, selection and time", self.clear_all, "Esc")
        add("Show only drift", lambda: self.table.set_filter_text("drift:yes"))
        add("Timeline: fit all history", self.timeline.plot.fit)
        add("Timeline: last hour", lambda: self.timeline.plot.show_last(HOUR))
        add("Timeline: last day", lambda: self.timeline.plot.show_last(DAY))
        add("Timeline: last week", lambda: self.timeline.plot.show_last(WEEK))
        add("Timeline: collapse all groups", lambda: self.timeline.plot.set_collapsed(
            frozenset(range(len(self.timeline.plot.data.groups)))))
        add("Timeline: expand all groups", lambda: self.timeline.plot.set_collapsed(frozenset()))
        add("Show the fleet now", self.timeline.scrub_to_now)
        add("Refresh from the store", self.refresh, "Ctrl+R")
        add("Reports: rollouts and delivery metrics…", lambda: show_reports(self),
            "Ctrl+Shift+R")
        add("Poll now", self.poll_now, "F5", "Actions")
        add("Keyboard shortcuts", self.show_shortcuts, "F1", "Help")
        add("About FleetView", self.show_about, "", "Help")

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
            groups = fleet["group"].astype(object).where(fleet["group"].notna(), None)
            names = fleet["name"].astype(object).where(fleet["name"].notna(), None)
            for iid, name, version, group, scope, region in zip(
                    fleet["instance_id"], names, fleet["version"], groups, fleet["scope"],
                    fleet["region"], strict=True):
                shown = name or iid
                detail = " · ".join(str(part) for part in (
                    iid if shown != iid else None, version, group or "standalone",
                    f"{scope} / {region}") if part)
                entries.append(PaletteEntry(str(shown), "instance",
                                            lambda i=str(iid): self.select_instance(i, "palette"),
                                            detail=detail))
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
        self.tree.clearSelection()
        self.tree.setCurrentItem(None)
        self._show_node(None)
        self.state.select_instance(None, "window")
        self.timeline.scrub_to_now()

    def show_shortcuts(self) -> None:
        """Every command that has a key, from the same list as the palette and the menus."""
        rows = "".join(f"<tr><td style='padding-right:18px'><b>{escape(c.shortcut)}</b></td>"
                       f"<td>{escape(c.name)}</td></tr>"
                       for c in self.commands if c.shortcut)
        box = QMessageBox(QMessageBox.Icon.NoIcon, "Keyboard shortcuts",
                          f"<table>{rows}</table><p>Every command, with or without a key, is "
                          "in the menus and the command palette (Ctrl+K).</p>",
                          QMessageBox.StandardButton.Ok, self)
        box.setObjectName("shortcutsDialog")
        box.setTextFormat(Qt.TextFormat.RichText)
        box.open()

    def show_about(self) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            release = version("fleetview")
        except PackageNotFoundError:
            release = "development"
        box = QMessageBox(QMessageBox.Icon.Information, "About FleetView",
                          f"FleetView {release}\n\nWhich image version each instance ran, "
                          "when; and rollback or replacement through the clouds' APIs.\n\n"
                          f"Store: {getattr(self.store, 'path_or_url', '?')}",
                          QMessageBox.StandardButton.Ok, self)
        box.setObjectName("aboutDialog")
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.open()

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
        self.table.filter_changed.connect(self._filter_timeline)
        self.table.node_cleared.connect(self._on_node_cleared)
        self.table.group_actions = self._group_actions_of_instance
        self.table.model.interval_s = self.config.poll.interval_s
        self.state.history_changed.connect(self._on_history_for_filter)
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
        self._load_history(now, days)
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
        # The desired version is read with the share, not taken from the fleet frame: a
        # refresh loads both at once, and the frame shown may predate the rollout.
        self.tasks.start("rollout", load_rollout, self.store, scope, region, group,
                         datetime.now(UTC), self.history_days,
                         on_done=lambda r, key=(scope, region, group): self._on_share(r, key),
                         on_error=self._on_query_error)

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
        if self.table.model.filter.typed:
            self._filter_timeline()
        self.loaded.emit("fleet")

    def _on_history(self, history: History, days: int) -> None:
        self.colors.update(history.versions)
        self.state.set_history(history.timeline)
        self.loaded.emit("history")
        if days < self.history_days or self._history_again:
            self._history_again = False
            self._load_history(datetime.now(UTC), self.history_days)

    def _load_history(self, now: datetime, days: int) -> None:
        # A load under way is not dropped for a newer one: a month of a large fleet takes
        # seconds to read, polls and actions ask every few seconds, and each ask used to
        # drop the load running (or send it to the back of the queue), so the timeline went
        # a minute or more without new history. It finishes, is shown, and one more follows.
        if self.history_tasks.is_running("history"):
            self._history_again = True
            return
        self.history_tasks.start("history", load_history, self.store, now, days,
                         on_done=lambda h, d=days: self._on_history(h, d),
                         on_error=self._on_query_error)

    def _on_freshness(self, df: pd.DataFrame) -> None:
        self.state.set_freshness(df)
        self.loaded.emit("freshness")

    def _on_share(self, rollout: RolloutShare, key: GroupKey) -> None:
        if self.state.selected_group != key:  # another group was chosen meanwhile
            return
        scope, region, group = key
        share = rollout.share
        if share is not None and len(share):
            self.colors.update(share.columns)
        note = f"<br><small>{escape(rollout.note)}</small>" if rollout.note else ""
        self.rollout.set_share(f"<b>{escape(group)}</b> — {escape(scope)} / {escape(region)}"
                               f"{note}", share, rollout.desired, datetime.now(UTC),
                               rollout.target_size, rollout.since)
        self.loaded.emit("rollout")

    def _on_query_error(self, exc: BaseException) -> None:
        log.warning("store query failed: %s", exc)
        self.statusBar().showMessage(f"Could not read the store: {exc}; trying again", 15000)
        if not self._closing:
            self._retry_timer.start()

    # -- selection ----------------------------------------------------------------------------
    def _on_node_selected(self, key: tuple) -> None:
        """A tree node narrows the table and the timeline to it (a standalone instance is
        selected instead); a group also shows its rollout."""
        if key[0] == "instance":
            self.select_instance(str(key[3]), "tree")
            return
        self._show_node(key)
        if key[0] == "group":
            _, scope, region, group = key
            self.state.select_group((scope, region, group))
            self.timeline.focus_group(scope, region, group)
        else:
            self.state.select_group(None)

    def _show_node(self, key: tuple | None) -> None:
        if key is None:
            self.table.set_node(())
            return
        parts = tuple(str(part) for part in key[1:])
        if key[0] == "scope":
            label = parts[0]
        elif key[0] == "region":
            label = f"{parts[1]} · {parts[0]}"
        else:
            label = f"{parts[2]} · {parts[0]} / {parts[1]}"
        self.table.set_node(parts, label)

    def _on_node_cleared(self) -> None:
        self.tree.blockSignals(True)
        self.tree.clearSelection()
        self.tree.setCurrentItem(None)
        self.tree.blockSignals(False)
        self.state.select_group(None)

    def timeline_filter_keys(self) -> set[str] | None:
        """The timeline rows the table's filter keeps (scope\x1finstance_id), None: all.
        The tree's node alone keeps every instance the node ever had; typed terms speak of
        the fleet shown, so they keep the rows the table keeps."""
        flt = self.table.model.filter
        if flt.empty:
            return None
        if flt.typed:
            frame = self.table.model.visible_frame()
            if not len(frame):
                return set()
            return set(frame["scope"].astype(str) + "\x1f" + frame["instance_id"].astype(str))
        data = self.state.history
        if not data.n_instances:
            return set()
        node = flt.node
        keep = np.array([tuple(g[:len(node)]) == node for g in data.groups], dtype=bool)
        return set(data.inst_key[keep[data.inst_group]])

    def _filter_timeline(self) -> None:
        self.timeline.set_instance_filter(self.timeline_filter_keys())

    def _on_history_for_filter(self, _history, _first: bool) -> None:
        if not self.table.model.filter.empty:
            self._filter_timeline()

    def _group_actions_of_instance(self, instance_id: str) -> list[tuple[str, Callable]]:
        """The tree's actions on the instance's group, for the table's menu: the same the
        palette offers (roll back, stop...), named for the group."""
        row = self.state.instance_row(instance_id)
        if row is None or pd.isna(row.get("group")):
            return []
        key = ("group", str(row["scope"]), str(row["region"]), str(row["group"]))
        out = []
        for name, fn in self.tree.node_actions:
            text = name(key) if callable(name) else name
            if text:
                out.append((f"Group {key[3]}: {text}", lambda fn=fn: fn(key)))
        return out

    def _on_timeline_instance(self, key: str) -> None:
        self.select_instance(key.split("\x1f", 1)[-1], "timeline")

    def select_instance(self, instance_id: str, source: str = "window") -> None:
        """Select an instance everywhere: timeline row, table row, details tab."""
        self.state.select_instance(instance_id, source)

    def _on_group_selected(self, key: GroupKey | None) -> None:
        if key is not None:
            self.side_tabs.setCurrentWidget(self.rollout)
            self.rollout.clear(f"Reading the rollout of {key[2]}…")
            self._load_rollout()
        else:
            self.rollout.clear()

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
            case protocol.BackfillFinished():
                self.statusBar().showMessage(
                    event.message or f"history of {event.scope} rebuilt", 30000)
                if event.ok:
                    self._refresh_timer.start()
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
        self.table.update_ages(now)
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
    def available_geometry(self) -> QRect:
        """Where the window may be: its screen's room less panels and docks."""
        screen = self.screen()
        return screen.availableGeometry() if screen is not None else QRect(0, 0, *PREFERRED_SIZE)

    def fit_to_screen(self, available: QRect | None = None, restored: bool = False) -> None:
        """Keep the whole window, title bar included, on the screen: the preferred size
        where there is room, less on a laptop; a restored geometry from a bigger screen is
        shrunk and moved back on."""
        room = available if available is not None else self.available_geometry()
        # The window manager's frame (title bar, borders) comes on top of our size.
        frame_w = max(0, self.frameGeometry().width() - self.geometry().width()) or 8
        frame_h = max(0, self.frameGeometry().height() - self.geometry().height()) or 36
        max_w, max_h = room.width() - frame_w, room.height() - frame_h
        if restored:
            width, height = min(self.width(), max_w), min(self.height(), max_h)
        else:
            width, height = min(PREFERRED_SIZE[0], max_w), min(PREFERRED_SIZE[1], max_h)
        self.resize(max(width, 320), max(height, 240))
        x, y = self.x(), self.y()
        if not restored or not room.contains(QRect(x, y, self.width(), self.height())):
            x = room.x() + max(0, (room.width() - self.width() - frame_w) // 2) \
                if not restored else min(max(x, room.x()), room.right() - self.width() - frame_w)
            y = room.y() + max(0, (room.height() - self.height() - frame_h) // 2) \
                if not restored else min(max(y, room.y()), room.bottom() - self.height() - frame_h)
            self.move(max(x, room.x()), max(y, room.y()))

    def _restore_settings(self) -> None:
        geometry = self.settings.value("window/geometry") if self.settings is not None else None
        if geometry is not None and self.restoreGeometry(geometry):
            self.fit_to_screen(restored=True)
        else:
            self.fit_to_screen()

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
        self.history_tasks.shutdown()

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
