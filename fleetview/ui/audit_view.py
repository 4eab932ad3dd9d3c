"""The audit log browser: every confirmed plan, step, result and refusal, and a chain check."""

from __future__ import annotations

import json

import pandas as pd
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

from fleetview.actions.audit import ChainReport
from fleetview.ui.rich_text import plain_tooltip

_SHOWN = ("seq", "at", "event", "actor", "scope", "group", "reason", "detail")


class AuditView(QWidget):
    """A read-only table of the log (newest first) and the result of the last verify."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
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

    def set_log(self, frame: pd.DataFrame) -> None:
        frame = frame.iloc[::-1] if len(frame) else frame
        self.table.setRowCount(len(frame))
        for row, entry in enumerate(frame.itertuples(index=False)):
            values = entry._asdict()
            for column, name in enumerate(_SHOWN):
                value = values.get(name)
                if name == "at":
                    text = value.strftime("%Y-%m-%d %H:%M:%S UTC")
                elif name == "detail":
                    detail = json.loads(value or "{}")
                    text = ", ".join(f"{k}={v}" for k, v in detail.items() if v not in
                                     (None, [], ""))
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
        self.table.resizeColumnsToContents()

    def set_chain(self, report: ChainReport) -> None:
        if report.ok:
            self.chain.setText(f"✔ Chain intact: {report.checked} entries, every link holds")
            self.chain.setStyleSheet("color: #15803d;")
        else:
            self.chain.setText(f"✘ Broken at entry {report.broken_seq}: {report.problem}")
            self.chain.setStyleSheet("color: #b91c1c; font-weight: bold;")
