"""Status bar pieces: a progress bar and an error badge per scope, from the window's state."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QWidget

from fleetview.ui.colors import GREEN, RED
from fleetview.ui.rich_text import escape, plain_tooltip
from fleetview.ui.state import ScopeHealth, WindowState


class ScopeStatus(QWidget):
    """`prod-aws [=====   ] ⚠`: polling progress, and a red badge while the scope fails.

    It shows one scope's ScopeHealth from the window's state, and follows its changes.
    """

    def __init__(self, scope: str, state: WindowState, parent=None):
        super().__init__(parent)
        self.scope = scope
        self._state = state
        self.name = QLabel(self)
        self.name.setTextFormat(Qt.TextFormat.RichText)
        self.bar = QProgressBar(self)
        self.bar.setFixedWidth(70)
        self.bar.setFixedHeight(12)
        self.bar.setTextVisible(False)
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.bar.hide()  # shown once a collector reports on this scope
        self.badge = QLabel("⚠ error", self)
        self.badge.setObjectName("scopeErrorBadge")
        self.badge.setStyleSheet(f"QLabel {{ color: white; background: {RED}; border-radius: 6px;"
                                 " padding: 0px 6px; font-weight: bold; }")
        self.badge.hide()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        layout.setSpacing(4)
        layout.addWidget(self.name)
        layout.addWidget(self.bar)
        layout.addWidget(self.badge)
        state.scope_changed.connect(self._on_scope_changed)
        self.show_health(state.scope(scope))

    @property
    def health(self) -> ScopeHealth:
        return self._state.scope(self.scope)

    @property
    def polling(self) -> bool:
        return self.health.polling

    @property
    def errors(self) -> dict[str | None, str]:
        return self.health.errors

    def _on_scope_changed(self, health: ScopeHealth) -> None:
        if health.name == self.scope:
            self.show_health(health)

    def show_health(self, health: ScopeHealth) -> None:
        self.bar.setVisible(health.reported)
        if health.polling:
            self.bar.setRange(0, 0)  # busy: the collector does not say how far it is
            self.setToolTip(plain_tooltip(f"{self.scope}: polling…"))
        elif health.reported:
            self.bar.setRange(0, 1)
            self.bar.setValue(1)
            self.setToolTip(plain_tooltip(f"{self.scope}: {health.summary or 'polled'}"))
        else:
            self.setToolTip(plain_tooltip(f"{self.scope}: waiting for the first poll"))
        dot = RED if health.errors else GREEN
        self.name.setText(f"<span style='color:{dot}'>●</span> {escape(self.scope)}")
        if health.errors:
            lines = [f"{region or self.scope}: {message}"
                     for region, message in health.errors.items()]
            self.badge.setToolTip(plain_tooltip("\n".join(lines)))
            self.badge.setText("⚠ error" if len(health.errors) == 1
                               else f"⚠ {len(health.errors)} errors")
            self.badge.show()
        else:
            self.badge.hide()
            self.badge.setToolTip("")
