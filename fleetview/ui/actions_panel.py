"""The Actions panel: running and recent actions, how far each is (steps, then instances on the
target until the group converges), elapsed time and time to recover; an open action can be
stopped, an interrupted one resumed (tracking, or from the next step) or abandoned."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMenu,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from fleetview.actions.journal import ActionRecord
from fleetview.domain.actions import ActionRefused, kind_of
from fleetview.domain.durations import short_duration
from fleetview.ui.colors import AMBER, GREEN, RED
from fleetview.ui.rich_text import plain_label, plain_tooltip


def describe(record: ActionRecord) -> str:
    """One line for an action, in its kind's words (fleetview.domain.actions.KINDS)."""
    plan = record.plan
    try:
        kind = kind_of(plan)
    except ActionRefused:  # journaled by a newer FleetView: say so rather than guess
        return f"{plan.kind} {plan.group or ''} (a kind this FleetView does not know)"
    return kind.describe(plan)


# How an action's status reads in the window; "finished" is how a FleetView from before
# convergence tracking ended an action: its steps ran, the fleet was never checked.
_WORDS = {"not_converged": "not converged", "finished": "steps finished"}
_TIPS = {
    "running": "Its steps are running.",
    "converging": "Its steps are done; FleetView watches the group until every instance it "
                  "needs runs the target version and is healthy.",
    "not_converged": "Not every instance runs the target version by the deadline; FleetView "
                     "keeps tracking the group while it is open.",
    "recovered": "Every instance the group needs runs the target version and is healthy.",
    "finished": "Ended by a FleetView from before convergence tracking: its steps finished, "
                "but whether every instance reached the target was never checked.",
    "interrupted": "Its owner stopped (a crash or a restart): resume tracking, resume from "
                   "the next step, or abandon it.",
}
_LOOK = {"recovered": GREEN, "not_converged": AMBER, "interrupted": AMBER, "failed": RED}


def status_text(record: ActionRecord, live: tuple[int, int] | None = None) -> str:
    """"running", "converging 2/3", "recovered", "not converged", "failed", "stopped",
    "abandoned" or "interrupted"; `live` is the latest (on target, needed) seen while it ran,
    newer than the journal read."""
    status = record.shown_status
    if status in ("running", "converging") and (live or (status == "converging"
                                                          and record.needed)):
        done, total = live or record.progress
        return f"converging {done}/{total}"
    return _WORDS.get(status, status)


def progress_text(record: ActionRecord, live: tuple[int, int] | None = None
                  ) -> tuple[int, int, str]:
    """(done, total, text) for the progress bar: instances on the target of those needed
    once the group's convergence is measured, the steps before that."""
    if live is not None and record.open:
        done, total = live
        return done, total, f"{done}/{total} instances"
    done, total = record.progress
    if record.needed:
        return done, total, f"{done}/{total} instances"
    return done, total, f"step {done}/{total}" if record.open else f"steps {done}/{total}"


class ActionsPanel(QWidget):
    """One row per action; `stop_requested(action_id)` for an open one, and
    `resume_requested(action_id, mode)` for an interrupted one."""

    resume_requested = Signal(str, str)  # mode: "track", "next", "abandon"
    stop_requested = Signal(str)
    COLUMNS = ("Action", "Scope", "Status", "Progress", "Elapsed", "Time to recover", "By",
               "Reason", "Message")
    COL_STATUS, COL_PROGRESS, COL_RECOVER = 2, 3, 5
    MAX_COLUMN_PX = 260

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.tree = QTreeWidget()
        self.tree.setObjectName("actionsTree")
        self.tree.setHeaderLabels(list(self.COLUMNS))
        self.tree.setRootIsDecorated(False)
        self.tree.setAlternatingRowColors(True)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._on_context_menu)
        self.tree.currentItemChanged.connect(self._update_buttons)
        self.empty = QLabel("No actions yet. Replace an instance or roll back a group from "
                            "its context menu or the command palette (Ctrl+K).")
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.stop = QPushButton("Stop…")
        self.stop.setObjectName("stopButton")
        self.stop.setToolTip("Stop the selected action: what runs in the cloud for it stops "
                             "(asks for a reason)")
        self.stop.clicked.connect(self._request_stop)
        self.stop.setEnabled(False)
        self.resume_track = QPushButton("Resume tracking")
        self.resume_next = QPushButton("Resume from next step")
        self.abandon = QPushButton("Abandon")
        for button, mode in ((self.resume_track, "track"), (self.resume_next, "next"),
                             (self.abandon, "abandon")):
            button.clicked.connect(lambda _=False, m=mode: self._request(m))
            button.setEnabled(False)
        buttons = QHBoxLayout()
        self.hint = plain_label("")
        self.hint.setObjectName("actionHint")
        buttons.addWidget(self.hint, 1)
        buttons.addWidget(self.stop)
        buttons.addWidget(self.resume_track)
        buttons.addWidget(self.resume_next)
        buttons.addWidget(self.abandon)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.empty)
        layout.addWidget(self.tree, 1)
        layout.addLayout(buttons)
        self.records: dict[str, ActionRecord] = {}
        self._live: dict[str, tuple[int, int]] = {}
        self._wanted: str | None = None  # to select once the journal read brings it
        self.set_records([])

    def set_records(self, records: list[ActionRecord]) -> None:
        current = self.tree.currentItem()
        selected = current.data(0, Qt.ItemDataRole.UserRole) if current else None
        if self._wanted is not None and self._wanted in {r.action_id for r in records}:
            selected, self._wanted = self._wanted, None
        self.records = {r.action_id: r for r in records}
        # Live progress only stands for an action still open: after that the journal knows.
        self._live = {a: v for a, v in self._live.items()
                      if a in self.records and self.records[a].open}
        self.tree.clear()
        for record in records:
            live = self._live.get(record.action_id)
            ttr = record.time_to_recover_s if record.status == "recovered" else None
            item = QTreeWidgetItem([
                describe(record), f"{record.plan.scope} · {record.plan.region}",
                status_text(record, live), "", short_duration(record.elapsed_s),
                short_duration(ttr), record.actor, record.reason, record.message or ""])
            item.setData(0, Qt.ItemDataRole.UserRole, record.action_id)
            item.setToolTip(0, plain_tooltip("\n".join(
                f"{s.seq + 1}. [{s.status}] {s.description}"
                f"{' — ' + s.message if s.message else ''}" for s in record.steps)))
            status = record.shown_status
            tip = _TIPS.get(status, "")
            if record.message:
                tip = f"{tip}\n{record.message}" if tip else record.message
            item.setToolTip(self.COL_STATUS, plain_tooltip(tip))
            item.setToolTip(len(self.COLUMNS) - 1, plain_tooltip(record.message or ""))
            item.setToolTip(len(self.COLUMNS) - 2, plain_tooltip(record.reason or ""))
            if status == "finished" and record.time_to_recover_s is not None:
                item.setToolTip(self.COL_RECOVER, "Not a time to recover: its steps took "
                                f"{short_duration(record.time_to_recover_s)}, and the group "
                                "was never checked")
            colour = _LOOK.get(status)
            if colour:
                item.setForeground(self.COL_STATUS, QColor(colour))
                font = item.font(self.COL_STATUS)
                font.setBold(True)
                item.setFont(self.COL_STATUS, font)
            self.tree.addTopLevelItem(item)
            self.tree.setItemWidget(item, self.COL_PROGRESS, self._bar(record, live))
            if record.action_id == selected:
                self.tree.setCurrentItem(item)
        for column in range(len(self.COLUMNS) - 1):
            self.tree.resizeColumnToContents(column)
            if self.tree.columnWidth(column) > self.MAX_COLUMN_PX:
                self.tree.setColumnWidth(column, self.MAX_COLUMN_PX)
        self.tree.setColumnWidth(self.COL_PROGRESS, max(self.tree.columnWidth(
            self.COL_PROGRESS), 120))
        self.empty.setVisible(not records)
        self.tree.setVisible(bool(records))
        self._update_buttons()

    def _bar(self, record: ActionRecord, live: tuple[int, int] | None) -> QProgressBar:
        bar = QProgressBar()
        bar.setObjectName("actionProgress")
        self._fill_bar(bar, *progress_text(record, live))
        bar.setToolTip("Instances on the target version of those the group needs"
                       if record.needed or live else "Steps done of the plan's steps")
        # An action that ended short of recovering moves no more: its bar is greyed, so a
        # full one (the steps of an old "finished" action) is not read as done.
        bar.setEnabled(record.open or record.status == "recovered")
        return bar

    @staticmethod
    def _fill_bar(bar: QProgressBar, done: int, total: int, text: str) -> None:
        bar.setRange(0, max(total, 1))
        bar.setValue(min(done, max(total, 1)))
        bar.setFormat(text)

    def set_live_progress(self, action_id: str, done: int, total: int) -> None:
        """Instances on the target of those needed, as the running action just measured."""
        self._live[action_id] = (done, total)
        record = self.records.get(action_id)
        item = self._item(action_id)
        if item is None or record is None:
            return
        bar = self.tree.itemWidget(item, self.COL_PROGRESS)
        if isinstance(bar, QProgressBar):
            self._fill_bar(bar, *progress_text(record, (done, total)))
        item.setText(self.COL_STATUS, status_text(record, (done, total)))

    def bar_text(self, action_id: str) -> str:
        """What the action's progress bar says (its format, filled in)."""
        item = self._item(action_id)
        bar = self.tree.itemWidget(item, self.COL_PROGRESS) if item is not None else None
        return bar.text() if isinstance(bar, QProgressBar) else ""

    def status_of(self, action_id: str) -> str:
        item = self._item(action_id)
        return item.text(self.COL_STATUS) if item is not None else ""

    def _item(self, action_id: str) -> QTreeWidgetItem | None:
        for n in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(n)
            if item.data(0, Qt.ItemDataRole.UserRole) == action_id:
                return item
        return None

    def selected(self) -> ActionRecord | None:
        item = self.tree.currentItem()
        return self.records.get(item.data(0, Qt.ItemDataRole.UserRole)) if item else None

    def select(self, action_id: str) -> None:
        """Select the action's row, now or when a read of the journal first brings it (an
        action just started), so that Stop is one click away."""
        item = self._item(action_id)
        if item is not None:
            self.tree.setCurrentItem(item)
        else:
            self._wanted = action_id

    def _update_buttons(self, *_args) -> None:
        record = self.selected()
        interrupted = bool(record and record.interrupted)
        for button in (self.resume_track, self.resume_next, self.abandon):
            button.setEnabled(interrupted)
        self.stop.setEnabled(bool(record and record.open))
        if record and interrupted:
            done = len(record.done_steps)
            self.hint.setText(f"Interrupted after {done} of {len(record.steps)} steps "
                              f"(owner {record.owner} stopped).")
        elif record and record.stop_reason and record.open:
            self.hint.setText(f"Stopping: asked by {record.stop_actor}: {record.stop_reason}")
        else:
            self.hint.setText("")

    def _on_context_menu(self, pos) -> None:
        item = self.tree.itemAt(pos)
        if item is None:
            return
        self.tree.setCurrentItem(item)
        self.context_menu().exec(self.tree.viewport().mapToGlobal(pos))

    def context_menu(self) -> QMenu:
        """The selected action's menu: stop an open one, resume or abandon an interrupted one."""
        record = self.selected()
        menu = QMenu(self)
        stop = menu.addAction("Stop…", self._request_stop)
        stop.setEnabled(bool(record and record.open))
        interrupted = bool(record and record.interrupted)
        for text, mode in (("Resume tracking", "track"), ("Resume from next step", "next"),
                           ("Abandon…", "abandon")):
            menu.addAction(text, lambda m=mode: self._request(m)).setEnabled(interrupted)
        return menu

    def _request_stop(self) -> None:
        record = self.selected()
        if record is not None and record.open:
            self.stop_requested.emit(record.action_id)

    def _request(self, mode: str) -> None:
        record = self.selected()
        if record is not None:
            self.resume_requested.emit(record.action_id, mode)
