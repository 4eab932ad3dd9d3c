"""The plan preview: what an action will do, who acts, a reason, then one click to run it."""

from __future__ import annotations

import html
from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
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
from fleetview.domain.errors import ProviderError
from fleetview.providers import cloud
from fleetview.ui.actions_panel import short_duration

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
    """Shows a Prepared plan; `confirmed(reason, typed_name)` when the operator runs it.

    The run button stays disabled until a reason is given (and, for a protected group, its
    name typed); Enter in the reason box runs it, Esc cancels. Choosing another target version
    asks `replan(version)` for a new plan.
    """

    confirmed = Signal(str, str)
    version_chosen = Signal(str)

    def __init__(self, prepared: Prepared, parent: QWidget | None = None,
                 replan: Callable[[str], None] | None = None):
        super().__init__(parent)
        self.setObjectName("planDialog")
        self.setModal(True)
        self.setMinimumWidth(640)
        self._replan = replan
        self.title = QLabel()
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

        self.form = QFormLayout()
        self.form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self.steps = _steps_list()
        self.instances = QLabel()
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
        self.reason.returnPressed.connect(self._on_run)
        self.typed.returnPressed.connect(self._on_run)

        head = QHBoxLayout()
        head.addWidget(self.title, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(head)
        layout.addWidget(self.refusal)
        layout.addLayout(self.form)
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
        self.instances = QLabel()
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
            self.form.addRow("Runs now", QLabel(prepared.current_version))
        if prepared.versions:  # targets the operator may choose from
            self.target.addItems(prepared.versions)
            if plan and plan.to_version in prepared.versions:
                self.target.setCurrentIndex(prepared.versions.index(plan.to_version))
            self.form.addRow("Target version", self.target)
        elif plan is not None:
            self.form.addRow("Comes back with", QLabel(
                f"{plan.to_version or '?'} ({plan.to_image_id or 'the group image'})"))
        self.form.addRow("Acting as", _selectable(prepared.identity or "unknown"))
        self.refusal.setVisible(bool(prepared.refusal))
        self.refusal.setText(f"Cannot run: {prepared.refusal}" if prepared.refusal else "")
        if plan is not None:
            self.form.addRow("Mechanism", _wrapped(mechanism_text(plan)))
            if len(plan.instances) > 1:  # batches and a duration: a change to many
                self.form.addRow("Batch size", QLabel(
                    f"{plan.batch_size} at a time, minimum healthy {plan.min_healthy_percent}%"))
                self.form.addRow("Estimated duration", QLabel(duration_text(
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
        (self.typed if prepared.protected else self.reason).setFocus()

    def _on_target(self, index: int) -> None:
        version = self.target.itemText(index)
        self.version_chosen.emit(version)
        if self._replan is not None and self.prepared.plan is not None \
                and version != self.prepared.plan.to_version:
            self.run_button.setEnabled(False)
            self._replan(version)

    def can_run(self) -> bool:
        if not self.prepared.ok or not self.reason.text().strip():
            return False
        return not self.prepared.protected or self.typed.text().strip() == self.prepared.group

    def _update_run(self) -> None:
        self.run_button.setEnabled(self.can_run())

    def _on_run(self) -> None:
        if self.typed.hasFocus() and self.prepared.protected and not self.reason.text().strip():
            self.reason.setFocus()
            return
        if not self.can_run():
            return
        self.confirmed.emit(self.reason.text().strip(), self.typed.text().strip())
        self.accept()


def _steps_list() -> QListWidget:
    steps = QListWidget()
    steps.setObjectName("steps")
    steps.setWordWrap(True)
    steps.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    steps.setMinimumHeight(110)
    steps.setMaximumHeight(170)
    return steps


def _wrapped(text: str) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    return label


def _selectable(text: str) -> QLabel:
    label = QLabel(text)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setObjectName("actingAs")
    return label
