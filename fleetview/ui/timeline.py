"""The timeline: one row per instance, segments coloured by version, drawn as one item per colour."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QKeyEvent, QPalette, QPen
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from fleetview.ui.colors import RED, VersionColors, is_dark, muted
from fleetview.ui.rich_text import escape, plain_tooltip
from fleetview.ui.state import FleetFrame, GroupKey, WindowState
from fleetview.ui.timeline_data import (
    HEADER,
    TimelineData,
    epoch_seconds,
    make_layout,
)

HOUR, DAY, WEEK = 3600.0, 86400.0, 7 * 86400.0
BAR = 0.72  # height of a segment within its row
MAX_VISIBLE_ROWS = 400  # beyond this rows are sub-pixel; keeping it caps the rects per frame
ROW_PX = 18  # preferred row height when the view is laid out
LABEL_PX = 13  # minimum pixels per axis label


def _fmt_time(t: float) -> str:
    if not math.isfinite(t):
        return "now (open)"
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _fmt_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min" if minutes else f"{seconds} s"


def _discard(plot: pg.PlotWidget, item) -> None:
    """Take an item off the plot and delete it on this (the GUI) thread, now-ish: left to
    Python's garbage collector it could be destroyed on whichever thread collects."""
    plot.removeItem(item)
    item.deleteLater()


class RowAxis(pg.AxisItem):
    """The left axis: group headers and instance names instead of numbers."""

    def __init__(self, timeline: TimelinePlot):
        super().__init__("left")
        self._timeline = timeline
        self.setWidth(190)
        self.setStyle(tickLength=0, tickTextOffset=8, autoExpandTextSpace=False,
                      hideOverlappingLabels=False)

    def tickValues(self, minVal, maxVal, size):
        n_rows = self._timeline.layout.n_rows
        minVal, maxVal = min(minVal, maxVal), max(minVal, maxVal)  # the y axis is inverted
        if n_rows == 0 or maxVal <= minVal:
            return []
        px_per_row = size / (maxVal - minVal)
        step = max(1, math.ceil(LABEL_PX / max(px_per_row, 1e-9)))
        first = max(0, int(math.floor(minVal)))
        last = min(n_rows - 1, int(math.ceil(maxVal)))
        first -= first % step
        rows = np.arange(first, last + 1, step)
        headers = [r for r in self._timeline.layout.header_rows if first <= r <= last]
        # Headers always get a label; instance rows only when there is room for them.
        values = sorted(set((rows + 0.5).tolist()) | {r + 0.5 for r in headers}) \
            if px_per_row >= LABEL_PX else [r + 0.5 for r in headers]
        return [(1.0, values)]

    def tickStrings(self, values, scale, spacing):
        return [self._timeline.row_label(int(v)) for v in values]


class TimelineViewBox(pg.ViewBox):
    """Wheel scrolls rows, Ctrl+wheel zooms time, Shift+wheel pans time; drag pans."""

    def __init__(self):
        super().__init__(enableMenu=False, invertY=True)
        self.setMouseEnabled(x=True, y=True)

    def wheelEvent(self, ev, axis=None):
        delta = ev.delta() if hasattr(ev, "delta") else ev.angleDelta().y()
        steps = delta / 120.0
        (x0, x1), (y0, y1) = self.viewRange()
        mods = ev.modifiers()
        if mods & Qt.KeyboardModifier.ControlModifier:
            factor = 0.85 ** steps
            x = self.mapSceneToView(ev.scenePos()).x()
            self.setXRange(x - (x - x0) * factor, x + (x1 - x) * factor, padding=0)
        elif mods & Qt.KeyboardModifier.ShiftModifier:
            shift = -(x1 - x0) * 0.1 * steps
            self.setXRange(x0 + shift, x1 + shift, padding=0)
        else:
            shift = -3 * steps
            self.setYRange(y0 + shift, y1 + shift, padding=0)
        ev.accept()


class TimelinePlot(pg.PlotWidget):
    """The plot part: bars, headers, now-line, scrubber, markers; hover and click lookups."""

    hovered = Signal(str)
    row_clicked = Signal(int)

    def __init__(self, colors: VersionColors, parent=None):
        self.colors = colors
        self.data = TimelineData()
        self.layout = make_layout(self.data)
        self._row_axis = RowAxis(self)
        self._view = TimelineViewBox()
        super().__init__(parent, viewBox=self._view,
                         axisItems={"left": self._row_axis,
                                    "bottom": pg.DateAxisItem("bottom", utcOffset=0)})
        self.setMenuEnabled(False)
        self.hideButtons()
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.now = time.time()
        self.selected_row: int | None = None
        self._version_items: dict[int, pg.BarGraphItem] = {}
        self._header_band = pg.BarGraphItem(x0=[], x1=[], y0=[], y1=[], pen=None, brush=None)
        self._header_band.setZValue(-10)
        self._select_band = pg.BarGraphItem(x0=[], x1=[], y0=[], y1=[], pen=None, brush=None)
        self._select_band.setZValue(-5)
        self.addItem(self._header_band)
        self.addItem(self._select_band)
        # Bars of versions marked bad for their group: one hatched item over them all.
        self._bad_item = pg.BarGraphItem(x0=[], x1=[], y0=[], y1=[])
        self._bad_item.setZValue(10)
        self.addItem(self._bad_item)
        self._bad_why: dict[tuple[int, int], str] = {}  # (group, version code) -> why
        self._bad_table = np.zeros((0, 0), dtype=bool)
        self._inst_bad = np.zeros(0, dtype=bool)  # the instance's latest bar is flagged
        self.now_line = pg.InfiniteLine(angle=90, movable=False, label="now",
                                        labelOpts={"position": 0.02, "anchors": [(1, 0), (1, 0)]})
        self.now_line.setZValue(20)
        self.scrubber = pg.InfiniteLine(angle=90, movable=True, label="",
                                        labelOpts={"position": 0.97, "anchors": [(1, 1), (1, 1)]})
        self.scrubber.setZValue(30)
        self.scrubber.setHoverPen(pg.mkPen(width=3))
        self.addItem(self.now_line, ignoreBounds=True)
        self.addItem(self.scrubber, ignoreBounds=True)
        self._marker_items: list[pg.InfiniteLine] = []
        self.visible_rects = 0
        self._view.setLimits(minYRange=2, maxYRange=MAX_VISIBLE_ROWS, yMin=-1, minXRange=60)
        self._view.sigRangeChanged.connect(self._on_range_changed)
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.scene().sigMouseClicked.connect(self._on_mouse_clicked)
        self.getPlotItem().showGrid(x=True, y=False, alpha=0.15)
        self.apply_palette(self.palette())

    # -- appearance
    def apply_palette(self, palette: QPalette) -> None:
        base = palette.color(QPalette.ColorRole.Base)
        text = palette.color(QPalette.ColorRole.Text)
        self.setBackground(base)
        for name in ("left", "bottom"):
            axis = self.getPlotItem().getAxis(name)
            axis.setPen(pg.mkPen(muted(palette, 90)))
            axis.setTextPen(pg.mkPen(text))
        self._header_band.setOpts(brush=pg.mkBrush(muted(palette, 28)))
        highlight = QColor(palette.color(QPalette.ColorRole.Highlight))
        highlight.setAlpha(70)
        self._select_band.setOpts(brush=pg.mkBrush(highlight))
        now_colour = QColor("#ff6b6b" if is_dark(palette) else "#c0392b")
        self.now_line.setPen(pg.mkPen(now_colour, width=1.5, style=Qt.PenStyle.DashLine))
        self.now_line.label.setColor(now_colour)
        accent = QColor(palette.color(QPalette.ColorRole.Highlight))
        self.scrubber.setPen(pg.mkPen(accent, width=2))
        self.scrubber.label.setColor(accent)
        for item in self._marker_items:
            item.setPen(self._marker_pen(palette))
            item.label.setColor(palette.color(QPalette.ColorRole.Text))
        hatch = QColor("#ffffff" if is_dark(palette) else "#111111")
        hatch.setAlpha(200)
        self._bad_item.setOpts(brush=QBrush(hatch, Qt.BrushStyle.BDiagPattern),
                               pen=pg.mkPen(QColor(RED), width=1.5))

    @staticmethod
    def _marker_pen(palette: QPalette) -> QPen:
        return pg.mkPen(QColor("#b07aa1" if not is_dark(palette) else "#d4a6c8"),
                        width=1.5, style=Qt.PenStyle.DotLine)

    # -- data
    def set_data(self, data: TimelineData, now: float) -> None:
        selected = self.selected_instance()
        self.data = data
        self.now = now
        collapsed = frozenset(g for g in self.layout.collapsed if g < len(data.groups))
        self.layout = make_layout(data, collapsed)
        self.now_line.setPos(now)
        for item in self._version_items.values():
            _discard(self, item)
        self._version_items = {}
        for code in range(len(data.versions)):
            item = pg.BarGraphItem(x0=[], x1=[], y0=[], y1=[], pen=None,
                                   brush=self.colors.color(data.versions[code]))
            self._version_items[code] = item
            self.addItem(item)
        self.selected_row = None
        self._bad_why, self._bad_table = {}, np.zeros((0, 0), dtype=bool)
        self._inst_bad = np.zeros(data.n_instances, dtype=bool)
        if selected is not None:
            self.select_instance(selected)
        self.refresh()
        # The axis caches its labels by row number; new data can put other instances on the
        # same rows (a rollout adds rows on top), so the labels must be drawn again.
        self._row_axis.picture = None
        self._row_axis.update()

    def set_now(self, now: float) -> None:
        self.now = now
        self.now_line.setPos(now)
        self.refresh()

    def set_bad(self, why: dict[tuple[int, int], str]) -> None:
        """Flag the bars of versions marked bad: (group index, version code) -> why."""
        data = self.data
        self._bad_why = dict(why)
        table = np.zeros((len(data.groups), len(data.versions)), dtype=bool)
        for g, code in self._bad_why:
            table[g, code] = True
        self._bad_table = table
        self._inst_bad = np.zeros(data.n_instances, dtype=bool)
        if self._bad_why and data.n_segments:
            # Segments are sorted by instance, then start: each instance's last is its latest.
            last = np.flatnonzero(np.r_[data.seg_inst[1:] != data.seg_inst[:-1], True])
            inst = data.seg_inst[last]
            self._inst_bad[inst] = table[data.inst_group[inst], data.seg_ver[last]] \
                & ~np.isfinite(data.seg_x1[last])
        self.refresh()
        self._row_axis.picture = None
        self._row_axis.update()

    def bad_reason(self, s: int) -> str | None:
        """Why segment `s`'s version is marked bad for its group, or None."""
        if not self._bad_why:
            return None
        g = int(self.data.inst_group[int(self.data.seg_inst[s])])
        return self._bad_why.get((g, int(self.data.seg_ver[s])))

    def set_markers(self, markers: pd.DataFrame | None) -> None:
        """Vertical marks for actions: a DataFrame with `time` and `label` columns."""
        for item in self._marker_items:
            _discard(self, item)
        self._marker_items = []
        if markers is None or not len(markers):
            return
        times = epoch_seconds(markers["time"])
        for t, label in zip(times, markers["label"].astype(str), strict=True):
            if not math.isfinite(t):
                continue
            # The y axis points down: position 0 is the top. The label reads down the line
            # from just below the "now" label, so it stays in view however tall the plot is.
            line = pg.InfiniteLine(pos=t, angle=90, movable=False, label=label,
                                   pen=self._marker_pen(self.palette()),
                                   labelOpts={"position": 0.08, "rotateAxis": (1, 0),
                                              "anchors": [(0, 0), (0, 0)]})
            line.label.setColor(self.palette().color(QPalette.ColorRole.Text))
            line.setZValue(15)
            self._marker_items.append(line)
            self.addItem(line, ignoreBounds=True)

    def toggle_group(self, g: int) -> None:
        collapsed = set(self.layout.collapsed)
        collapsed.symmetric_difference_update({g})
        self.set_collapsed(frozenset(collapsed))

    def set_collapsed(self, groups: frozenset[int]) -> None:
        selected = self.selected_instance()
        self.layout = make_layout(self.data, groups)
        self.selected_row = None
        if selected is not None:
            self.select_instance(selected)
        self.refresh()

    # -- lookups
    def row_label(self, row: int) -> str:
        lay = self.layout
        if not 0 <= row < lay.n_rows:
            return ""
        ref = int(lay.row_ref[row])
        if lay.row_kind[row] == HEADER:
            scope, region, group = self.data.groups[ref]
            count = int(np.count_nonzero(self.data.inst_group == ref))
            mark = "▸" if ref in lay.collapsed else "▾"
            return f"{mark} {group or 'standalone'} · {region} ({count})"
        name = self.data.inst_name[ref] or self.data.inst_id[ref]
        flag = "  ⚠" if len(self._inst_bad) > ref and self._inst_bad[ref] else ""
        return f"    {name}{flag}"

    def instance_of_row(self, row: int) -> int | None:
        lay = self.layout
        if 0 <= row < lay.n_rows and lay.row_kind[row] != HEADER:
            return int(lay.row_ref[row])
        return None

    def group_of_row(self, row: int) -> int | None:
        lay = self.layout
        if 0 <= row < lay.n_rows and lay.row_kind[row] == HEADER:
            return int(lay.row_ref[row])
        return None

    def segment_at(self, x: float, y: float) -> int | None:
        """Index into the data's segment arrays of the bar under (x, y), or None."""
        row = int(math.floor(y))
        if self.instance_of_row(row) is None or y - row < (1 - BAR) / 2 or y - row > (1 + BAR) / 2:
            return None
        rows = self.layout.segments_of_row(row)
        seg = self.layout.seg[rows]
        if not len(seg):
            return None
        k = int(np.searchsorted(self.data.seg_x0[seg], x, "right")) - 1
        if k < 0:
            return None
        s = int(seg[k])
        end = min(self.data.seg_x1[s], self.now)
        return s if x <= end else None

    def hover_text(self, x: float, y: float) -> str:
        row = int(math.floor(y))
        g = self.group_of_row(row)
        if g is not None:
            scope, region, group = self.data.groups[g]
            n = int(np.count_nonzero(self.data.inst_group == g))
            return f"{group or 'standalone instances'} — {scope} / {region}: {n} instances " \
                   f"(click to {'expand' if g in self.layout.collapsed else 'collapse'})"
        s = self.segment_at(x, y)
        if s is None:
            return ""
        i = int(self.data.seg_inst[s])
        version = self.data.versions[int(self.data.seg_ver[s])] or "unknown"
        x0, x1 = float(self.data.seg_x0[s]), float(self.data.seg_x1[s])
        end = min(x1, self.now)
        why = self.bad_reason(s)
        return (f"{self.data.inst_name[i] or self.data.inst_id[i]} ({self.data.inst_id[i]})\n"
                f"version {version} · image {self.data.seg_image[s]} · {self.data.seg_state[s]}\n"
                f"start {_fmt_time(x0)}\n"
                f"end   {_fmt_time(x1)}  ({_fmt_duration(end - x0)})"
                + (f"\n⚠ marked bad: {why}" if why else ""))

    def selected_instance(self) -> str | None:
        if self.selected_row is None:
            return None
        i = self.instance_of_row(self.selected_row)
        return None if i is None else str(self.data.inst_key[i])

    def select_instance(self, key: str | None, scroll: bool = False) -> bool:
        """Select by `scope\\x1finstance_id` key (or bare instance id)."""
        self.selected_row = None
        if key is not None and self.data.n_instances:
            hits = np.flatnonzero(self.data.inst_key == key)
            if not len(hits):
                hits = np.flatnonzero(self.data.inst_id == key)
            if len(hits):
                row = int(self.layout.inst_row[hits[0]])
                if row < 0:  # in a collapsed group: open it
                    self.set_collapsed(self.layout.collapsed - {int(self.data.inst_group[hits[0]])})
                    row = int(self.layout.inst_row[hits[0]])
                self.selected_row = row
                if scroll:
                    self.scroll_to_row(row)
        self.refresh()
        return self.selected_row is not None

    def scroll_to_row(self, row: int, top: bool = False) -> None:
        """Bring `row` into view: a third of the way down, or to the top with `top`."""
        (y0, y1) = self._view.viewRange()[1]
        if top or not y0 <= row < y1 - 1:
            span = y1 - y0
            first = max(-0.3, row - 0.3 if top else row - span / 3)
            self._view.setYRange(first, first + span, padding=0)

    def row_of_group(self, g: int) -> int | None:
        hits = np.flatnonzero((self.layout.row_kind == HEADER) & (self.layout.row_ref == g))
        return int(hits[0]) if len(hits) else None

    # -- view
    def time_bounds(self) -> tuple[float, float]:
        bounds = self.data.time_bounds(self.now)
        if bounds is None:
            return self.now - DAY, self.now
        return bounds[0], max(bounds[1], self.now)

    def fit(self) -> None:
        t0, t1 = self.time_bounds()
        pad = max((t1 - t0) * 0.02, 60)
        self._view.setXRange(t0 - pad, t1 + pad, padding=0)
        self._fit_rows()

    def show_last(self, seconds: float) -> None:
        self._view.setXRange(self.now - seconds, self.now + seconds * 0.03, padding=0)

    def _fit_rows(self) -> None:
        height = max(self._view.height(), 200)
        rows = min(max(self.layout.n_rows, 4), height / ROW_PX, MAX_VISIBLE_ROWS)
        self._view.setYRange(-0.3, rows - 0.3, padding=0)

    def pan(self, fraction_x: float = 0.0, rows: float = 0.0) -> None:
        (x0, x1), (y0, y1) = self._view.viewRange()
        dx = (x1 - x0) * fraction_x
        if dx:
            self._view.setXRange(x0 + dx, x1 + dx, padding=0)
        if rows:
            self._view.setYRange(y0 + rows, y1 + rows, padding=0)

    def zoom(self, factor: float, center: float | None = None) -> None:
        (x0, x1), _ = self._view.viewRange()
        c = (x0 + x1) / 2 if center is None else center
        self._view.setXRange(c - (c - x0) * factor, c + (x1 - c) * factor, padding=0)

    # -- drawing
    def _on_range_changed(self, *_args) -> None:
        self.refresh()

    def refresh(self) -> None:
        """Give each colour's item the bars in view, clipped to the visible time range."""
        (x0, x1), (y0, y1) = self._view.viewRange()
        lay, data = self.layout, self.data
        lo = int(np.searchsorted(lay.seg_row, math.floor(y0), "left"))
        hi = int(np.searchsorted(lay.seg_row, math.ceil(y1), "right"))
        seg = lay.seg[lo:hi]
        rows = lay.seg_row[lo:hi]
        sx0 = data.seg_x0[seg]
        sx1 = np.minimum(data.seg_x1[seg], self.now)
        keep = (sx1 >= x0) & (sx0 <= x1)
        # Clip to the view: Qt's raster engine is slower on far off-screen rectangles.
        margin = (x1 - x0) * 0.01
        sx0 = np.maximum(sx0[keep], x0 - margin)
        sx1 = np.minimum(sx1[keep], x1 + margin)
        rows = rows[keep]
        ver = data.seg_ver[seg[keep]]
        self.visible_rects = len(ver)
        if len(ver):
            order = np.argsort(ver, kind="stable")
            bounds = np.searchsorted(ver[order], np.arange(len(data.versions) + 1))
        for code, item in self._version_items.items():
            if len(ver):
                pick = order[bounds[code]:bounds[code + 1]]
            else:
                pick = np.empty(0, np.int64)
            y = rows[pick] + (1 - BAR) / 2
            item.setOpts(x0=sx0[pick], x1=sx1[pick], y0=y, y1=y + BAR)
        if self._bad_table.size and len(ver):
            inst = data.seg_inst[seg[keep]]
            bad = self._bad_table[data.inst_group[inst], ver]
            y = rows[bad] + (1 - BAR) / 2
            self._bad_item.setOpts(x0=sx0[bad], x1=sx1[bad], y0=y, y1=y + BAR)
        else:
            self._bad_item.setOpts(x0=[], x1=[], y0=[], y1=[])
        headers = lay.header_rows
        headers = headers[(headers >= math.floor(y0)) & (headers <= math.ceil(y1))]
        n = len(headers)
        self._header_band.setOpts(x0=np.full(n, x0 - margin), x1=np.full(n, x1 + margin),
                                  y0=headers.astype(float), y1=headers + 1.0)
        if self.selected_row is not None:
            r = float(self.selected_row)
            self._select_band.setOpts(x0=[x0 - margin], x1=[x1 + margin], y0=[r], y1=[r + 1])
        else:
            self._select_band.setOpts(x0=[], x1=[], y0=[], y1=[])

    # -- mouse and keys
    def _on_mouse_moved(self, pos: QPointF) -> None:
        if not self._view.sceneBoundingRect().contains(pos):
            self.setToolTip("")
            self.hovered.emit("")
            return
        p = self._view.mapSceneToView(pos)
        text = self.hover_text(p.x(), p.y())
        self.setToolTip(plain_tooltip(text))
        self.hovered.emit(text)

    def _on_mouse_clicked(self, ev) -> None:
        if ev.button() != Qt.MouseButton.LeftButton:
            return
        pos = ev.scenePos()
        if not self._view.sceneBoundingRect().contains(pos):
            return
        p = self._view.mapSceneToView(pos)
        self.click_at(p.x(), p.y())

    def click_at(self, x: float, y: float) -> None:
        row = int(math.floor(y))
        g = self.group_of_row(row)
        if g is not None:
            self.toggle_group(g)
            return
        if self.instance_of_row(row) is not None:
            self.selected_row = row
            self.refresh()
            self.row_clicked.emit(row)

    def keyPressEvent(self, ev: QKeyEvent) -> None:
        key = ev.key()
        page = self._view.viewRange()[1][1] - self._view.viewRange()[1][0]
        actions = {
            Qt.Key.Key_Left: lambda: self.pan(-0.1),
            Qt.Key.Key_Right: lambda: self.pan(0.1),
            Qt.Key.Key_Up: lambda: self.pan(rows=-1),
            Qt.Key.Key_Down: lambda: self.pan(rows=1),
            Qt.Key.Key_PageUp: lambda: self.pan(rows=-page * 0.9),
            Qt.Key.Key_PageDown: lambda: self.pan(rows=page * 0.9),
            Qt.Key.Key_Plus: lambda: self.zoom(0.7),
            Qt.Key.Key_Equal: lambda: self.zoom(0.7),
            Qt.Key.Key_Minus: lambda: self.zoom(1 / 0.7),
            Qt.Key.Key_Home: self.fit,
            Qt.Key.Key_End: lambda: self.show_last(DAY),
        }
        action = actions.get(Qt.Key(key))
        if action is None:
            super().keyPressEvent(ev)
            return
        action()
        ev.accept()


class Legend(QWidget):
    """Coloured chips: version and how many instances run it (at the scrubber's time)."""

    def __init__(self, colors: VersionColors, parent=None):
        super().__init__(parent)
        self.colors = colors
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(10)
        self.counts: dict[str | None, int] = {}
        # (name, callable(version)): the window adds actions on a version here; a name may be
        # a callable(version) giving the entry's text, or None to leave it out.
        self.version_actions: list[tuple[object, object]] = []
        # Ignored: a long legend is cut at the right rather than pushing the window wider.
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)

    def set_counts(self, counts: dict[str | None, int]) -> None:
        self.counts = dict(counts)
        while self._layout.count():
            item = self._layout.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        from fleetview.domain.versions import version_key

        for version in sorted(counts, key=version_key, reverse=True):
            colour = self.colors.hex(version)
            chip = QLabel(f"<span style='color:{colour}; font-size:15px'>■</span>&nbsp;"
                          f"{escape(version or 'unknown')} <span style='opacity:0.7'>"
                          f"({counts[version]:,})</span>", self)
            chip.setTextFormat(Qt.TextFormat.RichText)
            chip.setObjectName("legendChip")
            chip.setToolTip(plain_tooltip(
                f"{counts[version]:,} instances run {version or 'an unknown version'}"))
            if version is not None:
                chip.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
                chip.customContextMenuRequested.connect(
                    lambda pos, c=chip, v=version: self._on_chip_menu(c, v, pos))
            self._layout.addWidget(chip)
        self._layout.addStretch(1)

    def text(self) -> str:
        return "  ".join(f"{v or 'unknown'} ({n})" for v, n in self.counts.items())

    def context_menu(self, version: str) -> QMenu:
        """A version's menu: the window's actions on a version (quarantine...)."""
        menu = QMenu(self)
        for name, fn in self.version_actions:
            text = name(version) if callable(name) else name
            if text:
                menu.addAction(text, lambda fn=fn: fn(version))
        return menu

    def _on_chip_menu(self, chip: QLabel, version: str, pos) -> None:
        if self.version_actions:
            self.context_menu(version).exec(chip.mapToGlobal(pos))


class TimelineWidget(QWidget):
    """Range buttons, legend, the plot, and the scrubber's "as of" readout.

    Given a WindowState it draws its history and markers, counts its fleet in the legend and
    follows its selection; `instance_selected` and `scrubbed` say what the user did here.
    """

    instance_selected = Signal(str)  # scope\x1finstance_id
    scrubbed = Signal(object)  # datetime (UTC), or None for "now"

    def __init__(self, colors: VersionColors, parent=None, state: WindowState | None = None):
        super().__init__(parent)
        self.plot = TimelinePlot(colors, self)
        self.legend = Legend(colors, self)
        self._state = state
        self._live = True
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 8, 0)
        buttons.setSpacing(4)
        title = QLabel("Timeline", self)
        font = QFont(title.font())
        font.setBold(True)
        title.setFont(font)
        buttons.addWidget(title)
        buttons.addSpacing(8)
        self.range_buttons: dict[str, QPushButton] = {}
        for label, slot, tip in (
            ("Fit", self.plot.fit, "Show all history (Home)"),
            ("Hour", lambda: self.plot.show_last(HOUR), "The last hour"),
            ("Day", lambda: self.plot.show_last(DAY), "The last day (End)"),
            ("Week", lambda: self.plot.show_last(WEEK), "The last week"),
        ):
            button = QPushButton(label, self)
            button.setToolTip(tip)
            button.setFlat(False)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            button.clicked.connect(slot)
            buttons.addWidget(button)
            self.range_buttons[label] = button
        buttons.addSpacing(12)
        buttons.addWidget(self.legend, 1)
        self.asof_label = QLabel(self)
        self.asof_label.setObjectName("asOf")
        self.now_button = QToolButton(self)
        self.now_button.setText("Back to now")
        self.now_button.setToolTip("Show the fleet as it is now (Esc)")
        self.now_button.clicked.connect(self.scrub_to_now)
        buttons.addWidget(self.asof_label)
        buttons.addWidget(self.now_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addLayout(buttons)
        layout.addWidget(self.plot, 1)
        self.plot.row_clicked.connect(self._on_row_clicked)
        self.plot.scrubber.sigPositionChangeFinished.connect(self._on_scrub_finished)
        self.plot.scrubber.sigPositionChanged.connect(self._on_scrub_moved)
        self._update_asof()
        if state is not None:
            state.history_changed.connect(self._on_history_changed)
            state.bad_changed.connect(self._on_bad_changed)
            state.markers_changed.connect(self.set_markers)
            state.fleet_changed.connect(self._on_fleet_changed)
            state.group_selected.connect(self._on_group_selected)
            state.instance_selected.connect(self._on_instance_selected)

    # -- the window's state
    def _on_history_changed(self, history: TimelineData, first: bool) -> None:
        self.set_data(history, time.time(), first=first)
        self._on_bad_changed()

    def _on_bad_changed(self, *_marks) -> None:
        """Flag the bars of the versions the state says are bad for their group."""
        state, data = self._state, self.plot.data
        if state is None:
            return
        why: dict[tuple[int, int], str] = {}
        if state.bad_marks:
            for g, (scope, region, group) in enumerate(data.groups):
                bad = state.bad_versions(scope, region, group)
                for code, version in enumerate(data.versions):
                    if version in bad:
                        why[(g, code)] = bad[version]
        self.plot.set_bad(why)

    def _on_fleet_changed(self, frame: FleetFrame) -> None:
        self.legend.set_counts(frame.version_counts)

    def _on_group_selected(self, key: GroupKey | None) -> None:
        """Bring the group's header to the top."""
        if key is None:
            return
        for g, gkey in enumerate(self.plot.data.groups):
            if tuple(gkey) == tuple(key):
                row = self.plot.row_of_group(g)
                if row is not None:
                    self.plot.scroll_to_row(row, top=True)

    def _on_instance_selected(self, instance_id: str | None, source: str = "") -> None:
        if instance_id is None:
            self.plot.select_instance(None)
        elif source != "timeline":  # a click here has selected its row already
            self.plot.select_instance(instance_id, scroll=True)

    @property
    def live(self) -> bool:
        return self._live

    def set_spans(self, spans: pd.DataFrame, now: datetime | float | None = None,
                  first: bool = False) -> None:
        self.set_data(TimelineData.from_spans(spans), now, first)

    def set_data(self, data: TimelineData, now: datetime | float | None = None,
                 first: bool = False) -> None:
        t = now.timestamp() if isinstance(now, datetime) else (now or time.time())
        self.plot.set_data(data, t)
        if self._live:
            self._move_scrubber(t)
        if first:
            self.plot.show_last(DAY)
            self.plot._fit_rows()

    def set_now(self, now: float) -> None:
        self.plot.set_now(now)
        if self._live:
            self._move_scrubber(now)

    def set_markers(self, markers: pd.DataFrame | None) -> None:
        self.plot.set_markers(markers)

    def scrub_to(self, when: datetime) -> None:
        """Move the scrubber to `when` and say so, as if the user had dragged it."""
        self._live = when.timestamp() >= self.plot.now
        self._move_scrubber(min(when.timestamp(), self.plot.now))
        self._update_asof()
        self.scrubbed.emit(None if self._live else when)

    def scrub_to_now(self) -> None:
        was_live = self._live
        self._live = True
        self._move_scrubber(self.plot.now)
        self._update_asof()
        if not was_live:
            self.scrubbed.emit(None)

    def as_of(self) -> datetime | None:
        if self._live:
            return None
        return datetime.fromtimestamp(float(self.plot.scrubber.value()), UTC)

    def _move_scrubber(self, t: float) -> None:
        self.plot.scrubber.blockSignals(True)
        self.plot.scrubber.setPos(t)
        self.plot.scrubber.blockSignals(False)

    def _on_scrub_moved(self) -> None:
        t = float(self.plot.scrubber.value())
        if t > self.plot.now:
            self._move_scrubber(self.plot.now)
        self._live = t >= self.plot.now - 1
        self._update_asof()

    def _on_scrub_finished(self) -> None:
        t = float(self.plot.scrubber.value())
        self._live = t >= self.plot.now - 1
        self._update_asof()
        self.scrubbed.emit(None if self._live else datetime.fromtimestamp(t, UTC))

    def _update_asof(self) -> None:
        if self._live:
            self.asof_label.setText("As of: now")
            self.plot.scrubber.label.setFormat("")
            self.now_button.hide()
        else:
            t = float(self.plot.scrubber.value())
            stamp = datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC")
            self.asof_label.setText(f"<b>As of: {stamp}</b>")
            self.plot.scrubber.label.setFormat(stamp)
            self.now_button.show()

    def _on_row_clicked(self, row: int) -> None:
        key = self.plot.selected_instance()
        if key:
            self.instance_selected.emit(key)

    def changeEvent(self, ev: QEvent) -> None:
        if ev.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self.plot.apply_palette(self.palette())
        super().changeEvent(ev)
