"""Rollout view for one group: version share over time, percent done and an estimated finish."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QGridLayout, QLabel, QVBoxLayout, QWidget

from fleetview.domain.versions import version_key
from fleetview.ui.colors import VersionColors, muted
from fleetview.ui.rich_text import plain_label
from fleetview.ui.timeline_data import epoch_seconds


@dataclass(frozen=True)
class RolloutProgress:
    desired: str | None
    total: int
    done: int
    started: datetime | None  # when the desired version first appeared (None: before the window)
    finished: datetime | None  # when every instance first ran it (None: not yet)
    rate_per_hour: float | None  # instances moved to the desired version per hour
    eta: datetime | None

    @property
    def percent(self) -> float:
        return 100.0 * self.done / self.total if self.total else 0.0

    def elapsed(self, now: datetime) -> timedelta | None:
        if self.started is None:
            return None
        return (self.finished or now) - self.started


def rollout_progress(share: pd.DataFrame, desired: str | None, now: datetime) -> RolloutProgress:
    """Progress of the rollout to `desired`, read from `store.version_share` rows.

    The rollout started at the first step after the last one where no instance ran the
    desired version; the rate is the instances moved since then per hour, and the estimate
    finishes the remaining ones at that rate.
    """
    if share is None or not len(share):
        return RolloutProgress(desired, 0, 0, None, None, None, None)
    share = share.fillna(0)
    times = pd.to_datetime(share.index, utc=True)
    total = share.sum(axis=1).to_numpy(dtype=float)
    on = share[desired].to_numpy(dtype=float) if desired in share.columns \
        else np.zeros(len(share))
    done, size = int(on[-1]), int(total[-1])
    zero = np.flatnonzero(on == 0)
    if len(zero) == len(on):
        return RolloutProgress(desired, size, 0, None, None, None, None)
    if len(zero) and zero[-1] + 1 < len(on):
        first = int(zero[-1]) + 1
        started = times[first - 1].to_pydatetime()  # it began after the last step without it
        base = 0.0
    elif len(zero):
        first, started, base = len(on) - 1, times[-1].to_pydatetime(), 0.0
    else:
        first, started, base = 0, None, float(on[0])
    finished = None
    complete = np.flatnonzero((on >= total) & (total > 0) & (np.arange(len(on)) >= first))
    if done >= size > 0 and len(complete):
        finished = times[int(complete[0])].to_pydatetime()
    rate = eta = None
    since = started or times[0].to_pydatetime()
    hours = (now - since).total_seconds() / 3600
    if hours > 0 and finished is None:
        moved = on[-1] - base
        rate = moved / hours if moved > 0 else 0.0
        if rate > 0 and size > done:
            eta = now + timedelta(hours=(size - done) / rate)
    return RolloutProgress(desired, size, done, started, finished, rate, eta)


def _fmt_span(delta: timedelta | None) -> str:
    if delta is None:
        return "—"
    minutes = int(delta.total_seconds() // 60)
    days, minutes = divmod(minutes, 1440)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


class RolloutView(QWidget):
    """Stacked areas of version share for the selected group, with the figures beside them."""

    def __init__(self, colors: VersionColors, parent=None):
        super().__init__(parent)
        self.colors = colors
        self.title = QLabel("Select a group to see its rollout", self)
        self.title.setObjectName("rolloutTitle")
        self.title.setTextFormat(Qt.TextFormat.RichText)  # callers escape what they put in
        self.figures: dict[str, QLabel] = {}
        grid = QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(14)
        for col, (key, caption) in enumerate((("desired", "Desired"), ("done", "Done"),
                                              ("elapsed", "Elapsed"), ("eta", "Est. finish"))):
            cap = QLabel(caption, self)
            cap.setObjectName("figureCaption")
            value = plain_label("—", self)  # a version from the cloud, as it is
            value.setObjectName(f"rollout_{key}")
            font = value.font()
            font.setPointSizeF(font.pointSizeF() * 1.25)
            font.setBold(True)
            value.setFont(font)
            grid.addWidget(cap, 0, col)
            grid.addWidget(value, 1, col)
            self.figures[key] = value
        self.plot = pg.PlotWidget(self, axisItems={"bottom": pg.DateAxisItem("bottom", utcOffset=0)})
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.getPlotItem().getAxis("left").setWidth(36)
        self.progress: RolloutProgress | None = None
        self._items: list = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(6)
        layout.addWidget(self.title)
        layout.addLayout(grid)
        layout.addWidget(self.plot, 1)
        self._apply_palette()

    def _clear_plot(self) -> None:
        # Deleted here, on the GUI thread, rather than whenever the garbage collector (on
        # any thread) gets to them.
        for item in self._items:
            self.plot.removeItem(item)
            if isinstance(item, QObject):  # FillBetweenItem is a plain QGraphicsPathItem
                item.deleteLater()
        self._items = []

    def _add(self, item) -> None:
        self.plot.addItem(item)
        self._items.append(item)

    def clear(self, message: str = "Select a group to see its rollout") -> None:
        self.title.setText(message)
        self._clear_plot()
        for label in self.figures.values():
            label.setText("—")
        self.progress = None

    def set_share(self, title: str, share: pd.DataFrame, desired: str | None,
                  now: datetime) -> None:
        self.title.setText(title)
        self._clear_plot()
        progress = rollout_progress(share, desired, now)
        self.progress = progress
        self.figures["desired"].setText(desired or "—")
        self.figures["done"].setText(f"{progress.percent:.0f}%  ({progress.done}/{progress.total})"
                                     if progress.total else "—")
        elapsed = progress.elapsed(now)
        self.figures["elapsed"].setText(
            _fmt_span(elapsed) if progress.started else
            ("before this window" if progress.done else "not started"))
        if progress.finished is not None:
            self.figures["eta"].setText("done " + progress.finished.strftime("%m-%d %H:%M"))
        elif progress.eta is not None:
            self.figures["eta"].setText(f"{progress.eta:%m-%d %H:%M} UTC "
                                        f"(in {_fmt_span(progress.eta - now)})")
        else:
            self.figures["eta"].setText("no progress" if progress.total else "—")
        if share is None or not len(share):
            return
        x = epoch_seconds(share.index)
        below = np.zeros(len(share))
        below_curve = pg.PlotCurveItem(x, below, pen=pg.mkPen(None))
        self._add(below_curve)  # the floor of the first area; on the plot so it is deleted too
        for version in sorted(share.columns, key=lambda v: version_key(v)):
            values = share[version].fillna(0).to_numpy(dtype=float)
            above = below + values
            colour = self.colors.color(version)
            above_curve = pg.PlotCurveItem(x, above, pen=pg.mkPen(colour.darker(115), width=1))
            fill = QColor(colour)
            fill.setAlpha(235)
            self._add(pg.FillBetweenItem(below_curve, above_curve, brush=pg.mkBrush(fill)))
            self._add(above_curve)
            below, below_curve = above, above_curve
        if desired is not None:
            self.plot.setTitle(None)
        self.plot.setXRange(float(x[0]), float(x[-1]), padding=0.01)
        self.plot.setYRange(0, max(1.0, float(below.max())) * 1.05, padding=0)

    def _apply_palette(self) -> None:
        palette = self.palette()
        self.plot.setBackground(palette.color(QPalette.ColorRole.Base))
        for name in ("left", "bottom"):
            axis = self.plot.getPlotItem().getAxis(name)
            axis.setPen(pg.mkPen(muted(palette, 90)))
            axis.setTextPen(pg.mkPen(palette.color(QPalette.ColorRole.Text)))

    def changeEvent(self, ev: QEvent) -> None:
        if ev.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self._apply_palette()
        super().changeEvent(ev)
