"""Status bar pieces: a progress bar and an error badge per scope, fed by collector events."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QWidget

from fleetview.ui.colors import GREEN, RED


class ScopeStatus(QWidget):
    """`prod-aws [=====   ] ⚠`: polling progress, and a red badge while the scope fails."""

    def __init__(self, scope: str, parent=None):
        super().__init__(parent)
        self.scope = scope
        self.name = QLabel(scope, self)
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
        self.errors: dict[str | None, str] = {}
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        layout.setSpacing(4)
        layout.addWidget(self.name)
        layout.addWidget(self.bar)
        layout.addWidget(self.badge)
        self._regions_total = 0
        self._regions_done = 0
        self.polling = False
        self.setToolTip(f"{scope}: waiting for the first poll")
        self._show_errors()

    def poll_started(self, regions: int | None = None) -> None:
        self.polling = True
        self.bar.show()
        self._regions_total = regions or 0
        self._regions_done = 0
        if self._regions_total:
            self.bar.setRange(0, self._regions_total)
            self.bar.setValue(0)
        else:
            self.bar.setRange(0, 0)  # busy: the collector does not say how far it is
        self.setToolTip(f"{self.scope}: polling…")

    def region_done(self) -> None:
        if self._regions_total:
            self._regions_done += 1
            self.bar.setValue(min(self._regions_done, self._regions_total))

    def poll_finished(self, summary: str = "") -> None:
        self.polling = False
        self.bar.show()
        self.bar.setRange(0, 1)
        self.bar.setValue(1)
        self.setToolTip(f"{self.scope}: {summary or 'polled'}")

    def set_error(self, region: str | None, message: str | None) -> None:
        """A region's (or the whole scope's, region None) error, or None when it cleared."""
        if message:
            self.errors[region] = message
        else:
            self.errors.pop(region, None)
        self._show_errors()

    def clear_errors(self) -> None:
        self.errors.clear()
        self._show_errors()

    def _show_errors(self) -> None:
        dot = RED if self.errors else GREEN
        self.name.setText(f"<span style='color:{dot}'>●</span> {self.scope}")
        if self.errors:
            lines = [f"{region or self.scope}: {message}" for region, message in self.errors.items()]
            self.badge.setToolTip("\n".join(lines))
            self.badge.setText("⚠ error" if len(self.errors) == 1 else f"⚠ {len(self.errors)} errors")
            self.badge.show()
        else:
            self.badge.hide()
            self.badge.setToolTip("")
