"""Asking for a reason before something is written to the audit log: stopping an action,
quarantining a version, lifting a quarantine."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from fleetview.ui.rich_text import plain_label


class ReasonDialog(QDialog):
    """What will happen, an optional version to act on, and a reason (required).

    `confirmed(reason, version)` when the operator confirms; the button stays disabled until
    a reason (and a version, where one is asked) is given. Enter in the reason box confirms,
    Esc cancels. `versions` offers choices; with `version_editable` any version may be typed.
    """

    confirmed = Signal(str, str)

    def __init__(self, title: str, text: str, confirm: str, parent: QWidget | None = None, *,
                 versions: Sequence[str] | None = None, version: str | None = None,
                 version_editable: bool = False, warning: str = ""):
        super().__init__(parent)
        self.setObjectName("reasonDialog")
        self.setWindowTitle(title)
        self.setModal(True)
        self.setMinimumWidth(480)
        self.text = plain_label(text)
        self.text.setObjectName("reasonText")
        self.text.setWordWrap(True)
        self.warning = plain_label(warning)
        self.warning.setObjectName("reasonWarning")
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet("QLabel { color: #b91c1c; }")
        self.warning.setVisible(bool(warning))
        self.version = QComboBox()
        self.version.setObjectName("reasonVersion")
        self.version.setEditable(version_editable)
        self.version.addItems(list(versions or ([version] if version else [])))
        if version:
            index = self.version.findText(version)
            if index >= 0:
                self.version.setCurrentIndex(index)
            else:
                self.version.setEditText(version)
        self.asks_version = versions is not None or version is not None
        self.reason = QLineEdit()
        self.reason.setObjectName("reason")
        self.reason.setPlaceholderText("Why? Goes into the audit log (required)")
        self.buttons = QDialogButtonBox()
        self.confirm_button = self.buttons.addButton(confirm,
                                                     QDialogButtonBox.ButtonRole.AcceptRole)
        self.confirm_button.setObjectName("confirmButton")
        self.confirm_button.setDefault(True)
        self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self._on_confirm)
        self.buttons.rejected.connect(self.reject)
        self.reason.textChanged.connect(self._update)
        self.version.currentTextChanged.connect(self._update)
        self.reason.returnPressed.connect(self._on_confirm)

        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(self.warning)
        if self.asks_version:
            layout.addWidget(QLabel("Version"))
            layout.addWidget(self.version)
        else:
            self.version.hide()
        layout.addWidget(QLabel("Reason"))
        layout.addWidget(self.reason)
        layout.addWidget(self.buttons)
        self._update()
        self.reason.setFocus(Qt.FocusReason.OtherFocusReason)

    def chosen_version(self) -> str:
        return self.version.currentText().strip() if self.asks_version else ""

    def can_confirm(self) -> bool:
        if not self.reason.text().strip():
            return False
        return not self.asks_version or bool(self.chosen_version())

    def _update(self, *_args) -> None:
        self.confirm_button.setEnabled(self.can_confirm())

    def _on_confirm(self) -> None:
        if not self.can_confirm():
            return
        self.confirmed.emit(self.reason.text().strip(), self.chosen_version())
        self.accept()
