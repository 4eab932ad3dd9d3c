"""The window before its first data: each panel shows placeholder rows and "Loading fleet…"."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, QRectF, Qt, QTimer
from PySide6.QtGui import QColor, QPainter, QPalette
from PySide6.QtWidgets import QWidget

LOADING_TEXT = "Loading fleet…"


class LoadingOverlay(QWidget):
    """Covers a panel (as its child, at its size) with grey placeholder rows and a caption,
    until `done()`: what a panel shows while its first read is under way, instead of an
    empty (or, before the first paint, black) area."""

    ROW_H, GAP = 14, 12

    def __init__(self, panel: QWidget, text: str = LOADING_TEXT):
        super().__init__(panel)
        self.setObjectName("loadingOverlay")
        self.text = text
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setAutoFillBackground(False)
        panel.installEventFilter(self)
        self.setGeometry(panel.rect())
        self.raise_()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.parent() and event.type() in (QEvent.Type.Resize,
                                                          QEvent.Type.Show):
            self.setGeometry(self.parentWidget().rect())
            self.raise_()
        return False

    def done(self) -> None:
        """The panel's data is in: take the overlay away for good."""
        if self.parent() is not None:
            self.parent().removeEventFilter(self)
        self.hide()
        self.deleteLater()

    def paintEvent(self, _event) -> None:
        palette = self.palette()
        base = palette.color(QPalette.ColorRole.Base)
        text = palette.color(QPalette.ColorRole.Text)
        bar = QColor(text)
        bar.setAlphaF(0.09)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), base)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(bar)
        # Placeholder rows of varying length, as a list or a chart of bars would fill it.
        margin, y, n = 14.0, 16.0, 0
        width = max(0.0, self.width() - 2 * margin)
        while y + self.ROW_H < self.height() - margin:
            share = (0.92, 0.64, 0.78, 0.55, 0.86, 0.7)[n % 6]
            painter.drawRoundedRect(QRectF(margin, y, width * share, self.ROW_H), 4, 4)
            y += self.ROW_H + self.GAP
            n += 1
        caption = QColor(text)
        caption.setAlphaF(0.75)
        font = painter.font()
        font.setPointSizeF(font.pointSizeF() * 1.2)
        painter.setFont(font)
        metrics = painter.fontMetrics()
        box = metrics.boundingRect(self.text).adjusted(-16, -10, 16, 10)
        box.moveCenter(self.rect().center())
        painter.setBrush(base)
        painter.drawRoundedRect(QRectF(box), 8, 8)
        painter.setPen(caption)
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, self.text)
        painter.end()


class LoadingSkeleton(QObject):
    """The main window's panels under loading overlays, each taken away when the load that
    fills it is shown (window.loaded): the tree and the table with the fleet, the timeline
    with its history.

    `after_first_paint(start)` holds the window's first reads until the skeleton is on
    screen: a result handled before the window's first paint (a large fleet takes a while to
    lay out) would keep the window system showing an unpainted, black window meanwhile.
    """

    # If the window is never painted (minimised at start), start anyway after this.
    FIRST_PAINT_WAIT_MS = 1000

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.painted = False
        self._after_paint: list[Callable[[], object]] = []
        self.overlays: dict[str, list[LoadingOverlay]] = {
            "fleet": [LoadingOverlay(window.tree), LoadingOverlay(window.table)],
            "history": [LoadingOverlay(window.timeline)],
        }
        window.loaded.connect(self._on_loaded)
        window.installEventFilter(self)

    def after_first_paint(self, run: Callable[[], object]) -> None:
        """Call `run` once the window has been painted (at once if it has been)."""
        if self.painted:
            run()
            return
        self._after_paint.append(run)
        QTimer.singleShot(self.FIRST_PAINT_WAIT_MS, self._run_after_paint)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.window and event.type() == QEvent.Type.Paint and not self.painted:
            self.painted = True
            self.window.removeEventFilter(self)
            # Queued: the frame is flushed to the screen once this paint pass is over.
            QTimer.singleShot(0, self._run_after_paint)
        return False

    def _run_after_paint(self) -> None:
        waiting, self._after_paint = self._after_paint, []
        if getattr(self.window, "_closing", False):
            return  # closed before its first paint: nothing to start any more
        for run in waiting:
            run()

    @property
    def loading(self) -> bool:
        return any(self.overlays.values())

    def _on_loaded(self, what: str) -> None:
        for overlay in self.overlays.pop(what, []):
            overlay.done()
