"""The Actions panel: running and recent actions, progress, elapsed time and time to recover;
interrupted ones offer resume tracking, resume from the next step, or abandon."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from fleetview.actions.journal import ActionRecord
from fleetview.domain.actions import ActionRefused, kind_of


def short_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def describe(record: ActionRecord) -> str:
    """One line for an action, in its kind's words (fleetview.domain.actions.KINDS)."""
    plan = record.plan
    try:
        kind = kind_of(plan)
    except ActionRefused:  # journaled by a newer FleetView: say so rather than guess
        return f"{plan.kind} {plan.group or ''} (a kind this FleetView does not know)"
    return kind.describe(plan)


class ActionsPanel(QWidget):
    """One row per action; `resume_requested(action_id, mode)` for an interrupted one."""

    resume_requested = Signal(str, str)  # mode: "track", "next", "abandon"
    COLUMNS = ("Action", "Scope", "Status", "Progress", "Elapsed", "Time to recover", "By",
               "Reason")

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.tree = QTreeWidget()
        self.tree.setObjectName("actionsTree")
        self.tree.setHeaderLabels(list(self.COLUMNS))
        self.tree.setRootIsDecorated(False)
        self.tree.setAlternatingRowColors(True)
        self.tree.currentItemChanged.connect(self._update_buttons)
        self.empty = QLabel("No actions yet. Replace an instance or roll back a group from "
                            "its context menu or the command palette (Ctrl+K).")
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.resume_track = QPushButton("Resume tracking")
        self.resume_next = QPushButton("Resume from next step")
        self.abandon = QPushButton("Abandon")
        for button, mode in ((self.resume_track, "track"), (self.resume_next, "next"),
                             (self.abandon, "abandon")):
            button.clicked.connect(lambda _=False, m=mode: self._request(m))
            button.setEnabled(False)
        buttons = QHBoxLayout()
        self.hint = QLabel("")
        buttons.addWidget(self.hint, 1)
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
        self.set_records([])

    def set_records(self, records: list[ActionRecord]) -> None:
        current = self.tree.currentItem()
        selected = current.data(0, Qt.ItemDataRole.UserRole) if current else None
        self.records = {r.action_id: r for r in records}
        self.tree.clear()
        for record in records:
            item = QTreeWidgetItem([
                describe(record), f"{record.plan.scope} · {record.plan.region}",
                record.shown_status, "", short_duration(record.elapsed_s),
                short_duration(record.time_to_recover_s), record.actor, record.reason])
            item.setData(0, Qt.ItemDataRole.UserRole, record.action_id)
            item.setToolTip(0, "\n".join(f"{s.seq + 1}. [{s.status}] {s.description}"
                                         f"{' — ' + s.message if s.message else ''}"
                                         for s in record.steps))
            if record.message:
                item.setToolTip(2, record.message)
            self.tree.addTopLevelItem(item)
            bar = QProgressBar()
            done, total = self._live.get(record.action_id, record.progress)
            bar.setRange(0, max(total, 1))
            bar.setValue(total if record.status == "finished" else done)
            bar.setFormat(f"{done}/{total}" if record.status != "finished" else "done")
            self.tree.setItemWidget(item, 3, bar)
            if record.action_id == selected:
                self.tree.setCurrentItem(item)
        for column in range(len(self.COLUMNS) - 1):
            self.tree.resizeColumnToContents(column)
        self.empty.setVisible(not records)
        self.tree.setVisible(bool(records))
        self._update_buttons()

    def set_live_progress(self, action_id: str, done: int, total: int) -> None:
        self._live[action_id] = (done, total)
        for n in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(n)
            if item.data(0, Qt.ItemDataRole.UserRole) == action_id:
                bar = self.tree.itemWidget(item, 3)
                if isinstance(bar, QProgressBar):
                    bar.setRange(0, max(total, 1))
                    bar.setValue(done)
                    bar.setFormat(f"{done}/{total}")

    def selected(self) -> ActionRecord | None:
        item = self.tree.currentItem()
        return self.records.get(item.data(0, Qt.ItemDataRole.UserRole)) if item else None

    def select(self, action_id: str) -> None:
        for n in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(n)
            if item.data(0, Qt.ItemDataRole.UserRole) == action_id:
                self.tree.setCurrentItem(item)

    def _update_buttons(self, *_args) -> None:
        record = self.selected()
        interrupted = bool(record and record.interrupted)
        for button in (self.resume_track, self.resume_next, self.abandon):
            button.setEnabled(interrupted)
        if record and interrupted:
            done = len(record.done_steps)
            self.hint.setText(f"Interrupted after {done} of {len(record.steps)} steps "
                              f"(owner {record.owner} stopped).")
        else:
            self.hint.setText("")

    def _request(self, mode: str) -> None:
        record = self.selected()
        if record is not None:
            self.resume_requested.emit(record.action_id, mode)
