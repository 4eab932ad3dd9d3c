"""The audit log browser: every confirmed plan, step, result and refusal, and a chain check."""

from __future__ import annotations

import json

import pandas as pd
import sqlalchemy as sa
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from fleetview.actions import audit
from fleetview.actions.audit import ChainReport
from fleetview.store.action_tables import audit_log
from fleetview.ui.rich_text import plain_tooltip

_SHOWN = ("seq", "at", "event", "actor", "scope", "group", "reason", "detail")


def load_new_log(store, shown_seq: int) -> pd.DataFrame | None:
    """The whole log if it has an entry newer than `shown_seq`, else None: a look at the
    last seq is cheap enough to run every few seconds while the log is on screen."""
    with store.reading() as conn:
        last = conn.execute(sa.select(sa.func.max(audit_log.c.seq))).scalar()
    if (last or 0) == shown_seq:
        return None
    return audit.frame(store)


def _words(key: str) -> str:
    return key.replace("_", " ")


def _value(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{_words(str(k))} {_value(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_value(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def detail_text(detail: str | None) -> str:
    """An entry's detail (JSON) as a reader says it: "to version 2.3.0 · instances i-1,
    i-2", never a Python list or dict."""
    try:
        data = json.loads(detail or "{}")
    except ValueError:  # written by hand or by a newer FleetView: show it as it is
        return str(detail)
    if not isinstance(data, dict):
        return _value(data)
    return " · ".join(f"{_words(str(k))}: {_value(v)}" for k, v in data.items()
                      if v not in (None, [], "", {}))


class AuditView(QWidget):
    """A read-only table of the log (newest first) and the result of the last verify;
    `seq` is the newest entry it shows, for `load_new_log`."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.seq = -1  # nothing read yet: the first read brings the log, even an empty one
        self.table = QTableWidget(0, len(_SHOWN))
        self.table.setObjectName("auditTable")
        self.table.setHorizontalHeaderLabels([c.title() for c in _SHOWN])
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.verify_button = QPushButton("Verify chain")
        self.chain = QLabel("")
        self.chain.setTextFormat(Qt.TextFormat.PlainText)  # a problem may quote an entry
        self.chain.setObjectName("chainStatus")
        top = QHBoxLayout()
        top.addWidget(self.chain, 1)
        top.addWidget(self.verify_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)

    def set_log(self, frame: pd.DataFrame | None) -> None:
        if frame is None:  # nothing new (load_new_log)
            return
        self.seq = int(frame["seq"].max()) if len(frame) else 0
        if not len(frame) and not self.chain.text():
            self.chain.setText("No entries yet: every confirmed action, step, result and "
                               "refusal is written here.")
        frame = frame.iloc[::-1] if len(frame) else frame
        self.table.setRowCount(len(frame))
        for row, entry in enumerate(frame.itertuples(index=False)):
            values = entry._asdict()
            for column, name in enumerate(_SHOWN):
                value = values.get(name)
                if name == "at":
                    text = value.strftime("%Y-%m-%d %H:%M:%S UTC")
                elif name == "detail":
                    text = detail_text(value)
                else:
                    text = "" if value is None or value != value else str(value)
                item = QTableWidgetItem(text)
                item.setToolTip(plain_tooltip(text))
                if name == "event" and text in ("refused", "failed", "step_failed"):
                    item.setForeground(Qt.GlobalColor.red)
                elif name == "event" and text in ("not_converged", "quarantined",
                                                  "version_marked_bad"):
                    item.setForeground(Qt.GlobalColor.darkYellow)
                self.table.setItem(row, column, item)
        if len(frame):  # an empty log keeps the headers' own widths
            self.table.resizeColumnsToContents()

    def set_chain(self, report: ChainReport) -> None:
        if report.ok:
            self.chain.setText(f"✔ Chain intact: {report.checked} entries, every link holds")
            self.chain.setStyleSheet("color: #15803d;")
        else:
            self.chain.setText(f"✘ Broken at entry {report.broken_seq}: {report.problem}")
            self.chain.setStyleSheet("color: #b91c1c; font-weight: bold;")
