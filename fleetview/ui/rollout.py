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

from fleetview.domain.durations import short_duration, time_until
from fleetview.domain.versions import version_key
from fleetview.ui.colors import VersionColors, muted
from fleetview.ui.rich_text import plain_label
from fleetview.ui.timeline_data import epoch_seconds

NOTHING_SELECTED = "Select a group in the tree to see its rollout."


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


def rollout_progress(share: pd.DataFrame, desired: str | None, now: datetime,
                     target: int | None = None, since: datetime | None = None
                     ) -> RolloutProgress:
    """Progress of the rollout to `desired`, read from `store.version_share` rows.

    `target` is how many instances the group needs: done and total count against it, so
    surge instances (launched above the target while old ones drain) count for nothing.
    `since` is when the group began wanting `desired` (its group spans say); without it the
    rollout started at the first step after the last one where no instance ran the desired
    version. The rate is the instances moved since the start per hour, and the estimate
    finishes the remaining ones at that rate.
    """
    if share is None or not len(share):
        return RolloutProgress(desired, target or 0, 0, since, None, None, None)
    share = share.fillna(0)
    times = pd.to_datetime(share.index, utc=True)
    total = share.sum(axis=1).to_numpy(dtype=float)
    if target:
        total = np.full(len(share), float(target))
    on = share[desired].to_numpy(dtype=float) if desired in share.columns \
        else np.zeros(len(share))
    on = np.minimum(on, total)
    done, size = int(on[-1]), int(total[-1])
    if since is not None:
        # What ran the desired version when the group began wanting it (a rollback finds
        # some still on it) was not moved by this rollout.
        before = np.flatnonzero(times <= pd.Timestamp(since))
        first = int(before[-1]) if len(before) else 0
        started, base = since, float(on[first])
    else:
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
    since_t = started or times[0].to_pydatetime()
    hours = (now - since_t).total_seconds() / 3600
    if hours > 0 and finished is None:
        moved = on[-1] - base
        rate = moved / hours if moved > 0 else 0.0
        if rate > 0 and size > done:
            eta = now + timedelta(hours=(size - done) / rate)
    return RolloutProgress(desired, size, done, started, finished, rate, eta)


class RolloutView(QWidget):
    """Stacked areas of version share for the selected group, with the figures beside them."""

    def __init__(self, colors: VersionColors, parent=None):
        super().__init__(parent)
        self.colors = colors
        self.title = QLabel("", self)
        self.title.setObjectName("rolloutTitle")
        self.title.setTextFormat(Qt.TextFormat.RichText)  # callers escape what they put in
        self.figures: dict[str, QLabel] = {}
        self.figure_box = QWidget(self)
        grid = QGridLayout(self.figure_box)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(14)
        for col, (key, caption) in enumerate((("desired", "Desired"), ("done", "Done"),
                                              ("elapsed", "Elapsed"), ("eta", "Est. finish"))):
            cap = QLabel(caption, self.figure_box)
            cap.setObjectName("figureCaption")
            value = plain_label("—", self.figure_box)  # a version from the cloud, as it is
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
        self.x_range: tuple[float, float] | None = None  # the time the chart shows
        self._items: list = []
        # Said instead of empty axes when there is nothing to draw.
        self.empty = QLabel(self)
        self.empty.setObjectName("rolloutEmpty")
        self.empty.setTextFormat(Qt.TextFormat.PlainText)  # it may name a group
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(6)
        layout.addWidget(self.title)
        layout.addWidget(self.figure_box)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.empty, 1)
        self._apply_palette()
        self.clear()

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

    def clear(self, message: str = NOTHING_SELECTED) -> None:
        self.title.setText("")
        self._clear_plot()
        for label in self.figures.values():
            label.setText("—")
        self.progress = None
        self.x_range = None
        self._show_empty(message)

    def _show_empty(self, message: str | None) -> None:
        self.empty.setText(message or "")
        self.empty.setVisible(bool(message))
        self.plot.setVisible(not message)
        self.figure_box.setVisible(not message or bool(self.title.text()))
        self.title.setVisible(bool(self.title.text()))

    def set_share(self, title: str, share: pd.DataFrame, desired: str | None,
                  now: datetime, target: int | None = None,
                  since: datetime | None = None) -> None:
        """Show a group's rollout: `target` (the group's target size) and `since` (when it
        began wanting `desired`) as `rollout_progress` takes them."""
        self.title.setText(title)
        self._clear_plot()
        progress = rollout_progress(share, desired, now, target, since)
        self.progress = progress
        self.figures["desired"].setText(desired or "—")
        self.figures["done"].setText(f"{progress.percent:.0f}%  ({progress.done}/{progress.total})"
                                     if progress.total else "—")
        elapsed = progress.elapsed(now)
        self.figures["elapsed"].setText(
            short_duration(elapsed.total_seconds()) if elapsed is not None else
            ("before this window" if progress.done else "not started"))
        if progress.finished is not None:
            self.figures["eta"].setText("done " + progress.finished.strftime("%m-%d %H:%M"))
        elif progress.eta is not None:
            self.figures["eta"].setText(f"{progress.eta:%m-%d %H:%M} UTC "
                                        f"({time_until((progress.eta - now).total_seconds())})")
        else:
            self.figures["eta"].setText("no progress" if progress.total else "—")
        if share is None or not len(share):
            self._show_empty("No instance of this group in the stored history.")
            return
        self._show_empty(None)
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
        self.x_range = self._time_range(x, progress, now)
        self.plot.setXRange(*self.x_range, padding=0)
        self.plot.setYRange(0, max(1.0, float(below.max())) * 1.05, padding=0)

    @staticmethod
    def _time_range(x: np.ndarray, progress: RolloutProgress,
                    now: datetime) -> tuple[float, float]:
        """The rollout's own time, a quarter of it again on either side (at least a minute):
        a three-minute rollout fills the chart, not three pixels of a month."""
        lo, hi = float(x[0]), float(x[-1])
        if progress.started is None:
            return lo, hi
        start = progress.started.timestamp()
        end = (progress.finished or now).timestamp()
        pad = max((end - start) * 0.25, 60.0)
        return max(lo, start - pad), (min(hi, end + pad) if progress.finished else hi)

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
