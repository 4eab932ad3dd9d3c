"""The plan preview: what an action will do, who acts, a reason, then one click to run it."""

from __future__ import annotations

import html
from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QVBoxLayout,
    QWidget,
)

from fleetview.actions.prepare import Prepared
from fleetview.domain.actions import ActionPlan, kind_of
from fleetview.domain.durations import short_duration
from fleetview.domain.errors import ProviderError
from fleetview.providers import cloud
from fleetview.ui.colors import AMBER, RED
from fleetview.ui.rich_text import plain_label, plain_tooltip

# How each mechanism works, in the words of the plan's cloud: {cloud} is its title ("AWS"),
# {group} what its console calls a group ("Auto Scaling group").
_MECHANISMS = {
    "instance-refresh": "{cloud} instance refresh (the {group} replaces instances, keeping "
                        "the minimum healthy percentage)",
    "rolling-replacement": "Rolling replacement by FleetView in batches (each batch must run "
                           "the target before the next starts)",
    "mig-update": "{cloud} {group} update (PROACTIVE, REPLACE; bounded by max surge and max "
                  "unavailable)",
    "terminate-in-asg": "Terminate in the {group}; it launches a replacement from its launch "
                        "template (capacity is not decremented)",
    "recreate-instances": "{cloud} recreateInstances: the {group} recreates the instance from "
                          "its template under the same name",
}


def mechanism_text(plan: ActionPlan) -> str:
    """How the plan's mechanism works, named as the plan's cloud names things."""
    try:
        declared = cloud(plan.provider)
        words = {"cloud": declared.title, "group": declared.group_word}
    except ProviderError:  # a cloud this installation lacks: its own name will do
        words = {"cloud": plan.provider, "group": "group"}
    text = _MECHANISMS.get(plan.mechanism)
    return text.format(**words) if text else plan.mechanism


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "unknown: no past rollout of this group to estimate from"
    return f"about {short_duration(seconds)} (from this group's past rollouts)"


class PlanDialog(QDialog):
    """Shows a Prepared plan; `confirmed(reason, typed_name, typed_version)` when the operator
    runs it.

    The run button stays disabled until a reason is given (and, for a protected group, its
    name typed; for a target version marked bad, that version typed); Enter in the reason box
    runs it, Esc cancels. Choosing another target version asks `replan(version)` for a new
    plan. The versions marked bad are marked in the chooser; a rollout in flight that the
    rollback stops first is said above the plan.
    """

    confirmed = Signal(str, str, str)
    version_chosen = Signal(str)

    def __init__(self, prepared: Prepared, parent: QWidget | None = None,
                 replan: Callable[[str], None] | None = None):
        super().__init__(parent)
        self.setObjectName("planDialog")
        self.setModal(True)
        self.setMinimumWidth(640)
        self._replan = replan
        self.title = plain_label()
        self.title.setObjectName("planTitle")
        self.title.setWordWrap(True)
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.25)
        font.setBold(True)
        self.title.setFont(font)

        self.target = QComboBox()
        self.target.setObjectName("targetVersion")
        self.target.activated.connect(self._on_target)
        self.refusal = QLabel()
        self.refusal.setObjectName("refusal")
        self.refusal.setWordWrap(True)
        self.refusal.setStyleSheet("QLabel { color: #b91c1c; font-weight: bold; }")
        self.refusal.setTextFormat(Qt.TextFormat.PlainText)
        # What the rollback does besides (stops the rollout in flight): said before the plan.
        self.note = plain_label()
        self.note.setObjectName("planNote")
        self.note.setWordWrap(True)
        self.note.setStyleSheet(f"QLabel {{ background: {AMBER}; color: #111111; "
                                "font-weight: bold; padding: 6px 8px; border-radius: 4px; }")
        # The target is marked bad: why, and the version typed to go back to it anyway.
        self.bad = plain_label()
        self.bad.setObjectName("badVersion")
        self.bad.setWordWrap(True)
        self.bad.setStyleSheet(f"QLabel {{ color: {RED}; border: 1px solid {RED}; "
                               "padding: 6px 8px; border-radius: 4px; }")
        self.typed_version_label = plain_label()
        self.typed_version_label.setWordWrap(True)
        self.typed_version = QLineEdit()
        self.typed_version.setObjectName("typedVersion")

        self.form = QFormLayout()
        self.form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self.steps = _steps_list()
        self.instances = plain_label()
        self.instances.setWordWrap(True)
        self.instances.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.irreversible = QLabel()
        self.irreversible.setWordWrap(True)

        self.reason = QLineEdit()
        self.reason.setObjectName("reason")
        self.reason.setPlaceholderText("Why? Goes into the audit log (required)")
        self.typed = QLineEdit()
        self.typed.setObjectName("typedName")
        self.typed_label = QLabel()
        self.typed_label.setTextFormat(Qt.TextFormat.RichText)  # its values are escaped
        self.typed_label.setWordWrap(True)

        self.buttons = QDialogButtonBox()
        self.run_button = self.buttons.addButton("Run", QDialogButtonBox.ButtonRole.AcceptRole)
        self.run_button.setObjectName("runButton")
        self.run_button.setDefault(True)
        self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self._on_run)
        self.buttons.rejected.connect(self.reject)
        self.reason.textChanged.connect(self._update_run)
        self.typed.textChanged.connect(self._update_run)
        self.typed_version.textChanged.connect(self._update_run)
        self.reason.returnPressed.connect(self._on_run)
        self.typed.returnPressed.connect(self._on_run)
        self.typed_version.returnPressed.connect(self._on_run)

        head = QHBoxLayout()
        head.addWidget(self.title, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(head)
        layout.addWidget(self.refusal)
        layout.addWidget(self.note)
        layout.addLayout(self.form)
        layout.addWidget(self.bad)
        layout.addWidget(self.typed_version_label)
        layout.addWidget(self.typed_version)
        layout.addWidget(self.typed_label)
        layout.addWidget(self.typed)
        layout.addWidget(QLabel("Reason"))
        layout.addWidget(self.reason)
        layout.addWidget(self.buttons)
        self.show_prepared(prepared)

    def show_prepared(self, prepared: Prepared) -> None:
        self.prepared = prepared
        plan = prepared.plan
        while self.form.rowCount():
            self.form.removeRow(0)
        self.steps = _steps_list()
        self.instances = plain_label()
        self.instances.setWordWrap(True)
        self.irreversible = QLabel()
        self.irreversible.setWordWrap(True)
        self.target = QComboBox()
        self.target.setObjectName("targetVersion")
        self.target.activated.connect(self._on_target)

        kind = kind_of(prepared.kind)
        where = f"{prepared.scope} · {prepared.region}" if prepared.region else prepared.scope
        if plan is not None:
            self.setWindowTitle(kind.describe(plan))
            self.title.setText(f"{kind.describe(plan)} ({where})")
        else:
            self.setWindowTitle(kind.title)
            self.title.setText(" ".join(t for t in (kind.title, prepared.group) if t)
                               + f" ({where})")
        self.run_button.setText(kind.confirm)
        if prepared.current_version:
            self.form.addRow("Runs now", plain_label(prepared.current_version))
        if prepared.versions:  # targets the operator may choose from
            for version in prepared.versions:
                why = prepared.bad.get(version)
                self.target.addItem(f"{version}  ⚠ marked bad" if why else version, version)
                if why:
                    index = self.target.count() - 1
                    self.target.setItemData(index, plain_tooltip(why),
                                            Qt.ItemDataRole.ToolTipRole)
                    self.target.setItemData(index, QColor(RED),
                                            Qt.ItemDataRole.ForegroundRole)
            if plan and plan.to_version in prepared.versions:
                self.target.setCurrentIndex(prepared.versions.index(plan.to_version))
            self.form.addRow("Target version", self.target)
        elif plan is not None:
            self.form.addRow("Comes back with", plain_label(
                f"{plan.to_version or '?'} ({plan.to_image_id or 'the group image'})"))
        self.form.addRow("Acting as", _selectable(prepared.identity or "unknown"))
        note = prepared.note if prepared.kind == "rollback" and plan is not None else ""
        self.note.setText(f"Rollout in flight: this rollback {_then_rolls_back(note)}"
                          if note else "")
        self.note.setVisible(bool(note))
        why_bad = prepared.target_bad
        self.bad.setText(f"⚠ {plan.to_version} is marked bad: {why_bad}" if why_bad else "")
        self.bad.setVisible(bool(why_bad))
        self.typed_version_label.setText(
            f"To go back to {plan.to_version} anyway, type {plan.to_version} to confirm"
            if why_bad else "")
        self.typed_version_label.setVisible(bool(why_bad))
        self.typed_version.setVisible(bool(why_bad))
        if not why_bad:
            self.typed_version.clear()
        self.refusal.setVisible(bool(prepared.refusal))
        self.refusal.setText(f"Cannot run: {prepared.refusal}" if prepared.refusal else "")
        if plan is not None:
            self.form.addRow("Mechanism", _wrapped(mechanism_text(plan)))
            if len(plan.instances) > 1:  # batches and a duration: a change to many
                self.form.addRow("Batch size", plain_label(
                    f"{plan.batch_size} at a time, minimum healthy {plan.min_healthy_percent}%"))
                self.form.addRow("Estimated duration", plain_label(duration_text(
                    prepared.estimate_s)))
            if plan.capacity_kept:
                self.form.addRow("Capacity", _wrapped(plan.capacity_kept))
            shown = ", ".join(plan.instances[:12])
            more = f" and {len(plan.instances) - 12} more" if len(plan.instances) > 12 else ""
            self.instances.setText(f"{len(plan.instances)}: {shown}{more}")
            self.form.addRow("Instances", self.instances)
            for n, step in enumerate(plan.steps, 1):
                self.steps.addItem(f"{n}. {step.description}")
            self.form.addRow("Steps", self.steps)
            cannot = list(plan.irreversible) or ["nothing beyond the replaced instances"]
            if len(cannot) > 4:  # one line per instance would push the reason off screen
                cannot = cannot[:3] + [f"and {len(cannot) - 3} more like these"]
            self.irreversible.setTextFormat(Qt.TextFormat.RichText)
            self.irreversible.setText("<br>".join(f"• {html.escape(c)}" for c in cannot))
            self.form.addRow("Cannot be undone", self.irreversible)
            for note in plan.notes:
                self.form.addRow("Note", _wrapped(note))
        if prepared.protected:
            self.typed_label.setText(
                f"<b>{html.escape(prepared.group or '')}</b> is protected "
                f"({html.escape(prepared.protected)}): type its name to confirm")
        self.typed_label.setVisible(bool(prepared.protected))
        self.typed.setVisible(bool(prepared.protected))
        self._update_run()
        (self.typed if prepared.protected else
         self.typed_version if why_bad else self.reason).setFocus()

    def _on_target(self, index: int) -> None:
        version = self.target.itemData(index) or self.target.itemText(index)
        self.version_chosen.emit(version)
        if self._replan is not None and self.prepared.plan is not None \
                and version != self.prepared.plan.to_version:
            self.run_button.setEnabled(False)
            self._replan(version)

    def can_run(self) -> bool:
        if not self.prepared.ok or not self.reason.text().strip():
            return False
        if self.prepared.protected and self.typed.text().strip() != self.prepared.group:
            return False
        return not self.prepared.target_bad or \
            self.typed_version.text().strip() == self.prepared.plan.to_version

    def _update_run(self) -> None:
        self.run_button.setEnabled(self.can_run())

    def _on_run(self) -> None:
        focus = self.focusWidget()  # the window's, even while another window is active
        typing = (focus is self.typed and self.prepared.protected) or \
            (focus is self.typed_version and self.prepared.target_bad)
        if typing and not self.reason.text().strip():
            self.reason.setFocus()
            return
        if not self.can_run():
            return
        self.confirmed.emit(self.reason.text().strip(), self.typed.text().strip(),
                            self.typed_version.text().strip())
        self.accept()


def _then_rolls_back(note: str) -> str:
    """"will stop the update under way" -> "will stop the update under way, then roll back"."""
    note = note.strip().rstrip(".")
    return f"{note}, then rolls back" if not note.startswith("will ") \
        else f"{note}, then roll back"


def _steps_list() -> QListWidget:
    steps = QListWidget()
    steps.setObjectName("steps")
    steps.setWordWrap(True)
    steps.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    steps.setMinimumHeight(110)
    steps.setMaximumHeight(170)
    return steps


def _wrapped(text: str) -> QLabel:
    label = plain_label(text)
    label.setWordWrap(True)
    return label


def _selectable(text: str) -> QLabel:
    label = plain_label(text)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setObjectName("actingAs")
    return label
