"""Status bar pieces: a progress bar and an error badge per scope, from the window's state."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QSizePolicy, QWidget

from fleetview.ui.colors import GREEN, RED
from fleetview.ui.rich_text import escape, plain_tooltip
from fleetview.ui.state import ScopeHealth, WindowState


class ScopeStatus(QWidget):
    """`● prod-aws · 120 [===] ⚠ error`: the scope's name and instance count (the tree's),
    a busy bar while it polls, and a red badge while it fails.

    It shows one scope's ScopeHealth from the window's state, and follows its changes. It
    stays narrow, so the status bar's messages beside it are not cut short.
    """

    def __init__(self, scope: str, state: WindowState, parent=None):
        super().__init__(parent)
        self.scope = scope
        self._state = state
        self.name = QLabel(self)
        self.name.setTextFormat(Qt.TextFormat.RichText)
        self.name.setObjectName("scopeStatusName")
        self.count: int | None = None  # instances of the scope in the fleet shown
        self.bar = QProgressBar(self)
        self.bar.setFixedWidth(40)
        self.bar.setFixedHeight(12)
        self.bar.setTextVisible(False)
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.bar.hide()  # shown while the collector polls this scope
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
        # As narrow as it can be: the status bar's messages get the rest of the room.
        for part in (self, self.name, self.badge):
            part.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Preferred)
        state.scope_changed.connect(self._on_scope_changed)
        state.fleet_changed.connect(self._on_fleet_changed)
        self.show_health(state.scope(scope))

    def _on_fleet_changed(self, frame) -> None:
        node = frame.nodes.get(("scope", self.scope)) if frame.nodes else None
        if node is not None:
            self.count = node.count
        elif len(frame.fleet):
            self.count = int((frame.fleet["scope"] == self.scope).sum())
        else:
            self.count = 0
        self.show_health(self.health)

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
        self.bar.setVisible(health.polling)
        count = "" if self.count is None else f"{self.count:,} instances shown"
        if health.polling:
            self.bar.setRange(0, 0)  # busy: the collector does not say how far it is
            word = "polling…"
        elif health.reported:
            word = health.summary or "polled"
        else:
            word = "no poll heard of in this session yet"
        self.setToolTip(plain_tooltip(f"Scope {self.scope}: {word}"
                                      + (f"\n{count}" if count else "")))
        dot = RED if health.errors else GREEN
        figure = "" if self.count is None else f" · {self.count:,}"
        self.name.setText(f"<span style='color:{dot}'>●</span> {escape(self.scope)}{figure}")
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
