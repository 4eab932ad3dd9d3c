"""The timeline's plot: bars by version, summary bands, stale and inferred spans, the live edge."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QFontMetrics, QKeyEvent, QPalette, QPen

from fleetview.ui.colors import RED, VersionColors, is_dark, muted
from fleetview.ui.rich_text import plain_tooltip
from fleetview.ui.timeline_data import (
    BAND,
    BAND_ROWS,
    HEADER,
    INSTANCE,
    GroupKey,
    TimelineData,
    epoch_seconds,
    make_layout,
)
from fleetview.ui.timeline_mix import BandCache

HOUR, DAY, WEEK = 3600.0, 86400.0, 7 * 86400.0
BAR = 0.72  # height of a segment within its row
MAX_VISIBLE_ROWS = 400  # beyond this rows are sub-pixel; keeping it caps the rects per frame
ROW_PX = 18  # preferred row height when the view is laid out
LABEL_PX = 13  # minimum pixels per axis label
MIN_BAR_PX = 3.0  # a span is never drawn thinner: a fresh instance shows at every zoom
BAND_COLUMN_PX = 3.0  # a summary band samples its group's mix every this many pixels
BAND_ABOVE = 300  # a fleet larger than this opens with its groups collapsed to bands
NOW_PAD_PX = 56  # room right of "now" for its line and label
STALE_GRACE_S = 120.0  # data this much younger than its last good poll is not called stale
FOCUS_MS = 1600  # how long focus_group's highlight stays
ROWS_DELAY_MS = 120  # rows follow the time in view once a pan or zoom pauses this long
SOURCE_WORDS = {  # the records history backfill reads (domain/backfill.py Record.source)
    "cloudtrail": "CloudTrail",
    "asg-activity": "the group's activity history",
    "launch-template": "the launch template",
    "launch-time": "the launch time",
    "audit-log": "the audit log",
    "instance-template": "the instance template",
    "creation-time": "the creation time",
}


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


def source_words(source: str) -> str:
    """How a tooltip names the records a span was inferred from ("a, b": several)."""
    names = [SOURCE_WORDS.get(name.strip(), name.strip()) for name in source.split(",")
             if name.strip()]
    return " and ".join(names) if len(names) <= 2 else ", ".join(names[:-1]) + " and " + \
        names[-1]


def _discard(plot: pg.PlotWidget, item) -> None:
    """Take an item off the plot and delete it on this (the GUI) thread, now-ish: left to
    Python's garbage collector it could be destroyed on whichever thread collects."""
    plot.removeItem(item)
    item.deleteLater()


def _bars(z: float) -> pg.BarGraphItem:
    item = pg.BarGraphItem(x0=[], x1=[], y0=[], y1=[], pen=None, brush=None)
    item.setZValue(z)
    return item


def _empty(item: pg.BarGraphItem) -> None:
    item.setOpts(x0=[], x1=[], y0=[], y1=[])


class RowAxis(pg.AxisItem):
    """The left axis: group headers and instance names instead of numbers."""

    def __init__(self, timeline: TimelinePlot):
        super().__init__("left")
        self._timeline = timeline
        self.setWidth(220)
        self.setStyle(tickLength=0, tickTextOffset=8, autoExpandTextSpace=False,
                      hideOverlappingLabels=False)

    def tickValues(self, minVal, maxVal, size):
        lay = self._timeline.layout
        n_rows = lay.n_rows
        minVal, maxVal = min(minVal, maxVal), max(minVal, maxVal)  # the y axis is inverted
        if n_rows == 0 or maxVal <= minVal:
            return []
        px_per_row = size / (maxVal - minVal)
        step = max(1, math.ceil(LABEL_PX / max(px_per_row, 1e-9)))
        first = max(0, int(math.floor(minVal)))
        last = min(n_rows - 1, int(math.ceil(maxVal)))
        first -= first % step
        rows = np.arange(first, last + 1, step)
        rows = rows[lay.row_kind[rows] != BAND]
        headers = [r for r in lay.header_rows if first <= r <= last]
        # The first row of a band says the group's mix now.
        bands = [r + 1 for r in headers if r + 1 < n_rows and lay.row_kind[r + 1] == BAND]
        # Headers always get a label; instance rows only when there is room for them.
        values = sorted(set((rows + 0.5).tolist()) | {r + 0.5 for r in headers + bands}) \
            if px_per_row >= LABEL_PX else [r + 0.5 for r in headers]
        return [(1.0, values)]

    def tickStrings(self, values, scale, spacing):
        # Elided to the axis: a label wider than it is not drawn at all.
        font = self.style.get("tickFont") or self.font()
        metrics = QFontMetrics(font)
        room = int(self.width() - self.style["tickTextOffset"][0] - 4)
        return [_elided(self._timeline.row_label(int(v)), metrics, room) for v in values]


def _elided(label: str, metrics: QFontMetrics, room: int) -> str:
    """`label` cut to `room` pixels; a header ("name · region (count)") keeps its region and
    count and gives up the end of its name."""
    if metrics.horizontalAdvance(label) <= room:
        return label
    name, sep, rest = label.partition(" · ")
    if sep:
        left = room - metrics.horizontalAdvance(sep + rest)
        if left >= metrics.horizontalAdvance("▸ ab…"):
            return metrics.elidedText(name, Qt.TextElideMode.ElideRight, left) + sep + rest
    return metrics.elidedText(label, Qt.TextElideMode.ElideRight, room)


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
    """The plot part: bars, bands, headers, now-line, scrubber, markers; lookups for hover and
    click; the live edge (`following`) and which rows are shown."""

    hovered = Signal(str)
    row_clicked = Signal(int)
    following_changed = Signal(bool)
    rows_changed = Signal()

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
        # The view's right edge stays at "now" while this is on; a pan away turns it off.
        self.following = True
        self.show_empty = False  # every instance a group ever had, not only those in view
        self.stale_grace_s = STALE_GRACE_S
        self._collapsed_keys: set[GroupKey] = set()
        self._seen_groups: set[GroupKey] = set()
        self._filter_keys: frozenset[str] | None = None
        self._filter_mask: np.ndarray | None = None
        self._last_ok: dict[tuple[str, str], float] = {}
        self._group_last_ok = np.zeros(0, float)  # per group: its scope's last good poll
        self._group_sizes = np.zeros(0, np.int64)  # per group: instances in the history
        self._group_live = np.zeros(0, np.int64)  # per group: of those, running now
        self._setting_range = False
        self._focus: int | None = None  # the group focus_group is highlighting
        self._layout_inputs: tuple | None = None
        self._bands: BandCache | None = None
        self._version_items: dict[int, pg.BarGraphItem] = {}
        self._header_band = _bars(-10)
        self._select_band = _bars(-5)
        self._focus_band = _bars(-4)
        # Over the bars: spans inferred from cloud records drawn lighter, the time since a
        # scope's last good poll faded and hatched, versions marked bad hatched in red.
        self._inferred_item = _bars(6)
        self._stale_fade = _bars(7)
        self._stale_hatch = _bars(8)
        self._bad_item = _bars(10)
        for item in (self._header_band, self._select_band, self._focus_band,
                     self._inferred_item, self._stale_fade, self._stale_hatch, self._bad_item):
            self.addItem(item)
        self._bad_why: dict[tuple[int, int], str] = {}  # (group, version code) -> why
        self._bad_table = np.zeros((0, 0), dtype=bool)
        self._inst_bad = np.zeros(0, dtype=bool)  # the instance's latest bar is flagged
        # Under the bars: a span that began a moment ago crosses the line rather than hiding
        # beneath it.
        self.now_line = pg.InfiniteLine(angle=90, movable=False)
        self.now_line.setZValue(-1)
        # Its word sits over the bars, at the top, left of the line.
        self.now_label = pg.TextItem("now", anchor=(1, 0))
        self.now_label.setZValue(25)
        self.addItem(self.now_label, ignoreBounds=True)
        self.scrubber = pg.InfiniteLine(angle=90, movable=True, label="",
                                        labelOpts={"position": 0.97, "anchors": [(1, 1), (1, 1)]})
        self.scrubber.setZValue(30)
        self.scrubber.setHoverPen(pg.mkPen(width=3))
        self.addItem(self.now_line, ignoreBounds=True)
        self.addItem(self.scrubber, ignoreBounds=True)
        self._markers: pd.DataFrame | None = None
        self._marker_items: list[pg.InfiniteLine] = []
        self.visible_rects = 0
        self.band_rects = 0
        self._rows_timer = QTimer(self)
        self._rows_timer.setSingleShot(True)
        self._rows_timer.setInterval(ROWS_DELAY_MS)
        self._rows_timer.timeout.connect(self.update_rows)
        self._focus_timer = QTimer(self)
        self._focus_timer.setSingleShot(True)
        self._focus_timer.setInterval(FOCUS_MS)
        self._focus_timer.timeout.connect(self._end_focus)
        self._view.setLimits(minYRange=2, maxYRange=MAX_VISIBLE_ROWS, yMin=-1, minXRange=60)
        # The timeline sets its ranges itself; left on, auto-range re-measures the items at
        # every paint and moves the view a second time.
        self._view.disableAutoRange()
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
        focus = QColor(highlight)
        focus.setAlpha(110)
        self._focus_band.setOpts(brush=pg.mkBrush(focus))
        now_colour = QColor("#ff6b6b" if is_dark(palette) else "#c0392b")
        self.now_line.setPen(pg.mkPen(now_colour, width=1.5, style=Qt.PenStyle.DashLine))
        self.now_label.setColor(now_colour)
        label_fill = QColor(base)
        label_fill.setAlpha(200)
        self._label_fill = pg.mkBrush(label_fill)
        self.now_label.fill = self._label_fill
        accent = QColor(palette.color(QPalette.ColorRole.Highlight))
        self.scrubber.setPen(pg.mkPen(accent, width=2))
        self.scrubber.label.setColor(accent)
        for item in self._marker_items:
            item.setPen(self._marker_pen(palette))
            item.label.setColor(palette.color(QPalette.ColorRole.Text))
            item.label.fill = self._label_fill
        hatch = QColor("#ffffff" if is_dark(palette) else "#111111")
        hatch.setAlpha(200)
        self._bad_item.setOpts(brush=QBrush(hatch, Qt.BrushStyle.BDiagPattern),
                               pen=pg.mkPen(QColor(RED), width=1.5))
        # Lighter: the background showing through half of the version's colour.
        light = QColor(base)
        light.setAlpha(140)
        self._inferred_item.setOpts(brush=pg.mkBrush(light), pen=None)
        fade = QColor(base)
        fade.setAlpha(120)
        self._stale_fade.setOpts(brush=pg.mkBrush(fade), pen=None)
        stale = QColor(text)
        stale.setAlpha(150)
        self._stale_hatch.setOpts(brush=QBrush(stale, Qt.BrushStyle.FDiagPattern), pen=None)

    @staticmethod
    def _marker_pen(palette: QPalette) -> QPen:
        return pg.mkPen(QColor("#b07aa1" if not is_dark(palette) else "#d4a6c8"),
                        width=1.5, style=Qt.PenStyle.DotLine)

    # -- data
    def set_data(self, data: TimelineData, now: float) -> None:
        anchor = self._anchor()
        selected = self.selected_instance()
        first = not self._seen_groups
        self.data = data
        self.now = now
        self.now_line.setPos(now)
        if first:  # until told otherwise, the last day
            self._set_range(x=(now - DAY, now + self._now_pad(DAY)))
        new = [key for key in data.groups if key not in self._seen_groups]
        if new and data.n_instances > BAND_ABOVE:
            # A large fleet opens as one band per group; expanding one shows its instances.
            self._collapsed_keys |= set(new)
        self._seen_groups |= set(data.groups)
        self._group_sizes = np.bincount(data.inst_group, minlength=len(data.groups)) \
            if data.n_instances else np.zeros(len(data.groups), np.int64)
        self._group_live = np.bincount(data.inst_group[data.inst_live],
                                       minlength=len(data.groups)) \
            if data.n_instances else np.zeros(len(data.groups), np.int64)
        self._group_last_ok = self._last_ok_of_groups()
        self._filter_mask = self._mask_of(self._filter_keys)
        for item in self._version_items.values():
            _discard(self, item)
        self._version_items = {}
        for code in range(len(data.versions)):
            item = pg.BarGraphItem(x0=[], x1=[], y0=[], y1=[], pen=None,
                                   brush=self.colors.color(data.versions[code]))
            self._version_items[code] = item
            self.addItem(item)
        self._bad_why, self._bad_table = {}, np.zeros((0, 0), dtype=bool)
        self._inst_bad = np.zeros(data.n_instances, dtype=bool)
        self._layout_inputs = None
        self._relayout(anchor, selected)
        if self.following:
            self._follow_now()

    def set_now(self, now: float) -> None:
        self.now = now
        self.now_line.setPos(now)
        if self.following:
            self._follow_now()
        self.refresh()

    def set_freshness(self, freshness: dict) -> None:
        """The window state's freshness ({(scope, region): Freshness}): an open span is known
        up to its scope's last successful poll, unknown after it."""
        self._last_ok = {(str(scope), str(region or "")): float(f.last_ok)
                         for (scope, region), f in freshness.items()}
        self._group_last_ok = self._last_ok_of_groups()
        self.refresh()

    def _last_ok_of_groups(self) -> np.ndarray:
        out = np.full(len(self.data.groups), np.nan)
        by_scope: dict[str, float] = {}
        for (scope, _region), t in self._last_ok.items():
            if math.isfinite(t):
                by_scope[scope] = min(by_scope.get(scope, math.inf), t)
        for g, (scope, region, _group) in enumerate(self.data.groups):
            t = self._last_ok.get((scope, region or ""), math.nan)
            # A region the store has no poll of: the scope's oldest good poll.
            out[g] = t if math.isfinite(t) else by_scope.get(scope, math.nan)
        return out

    def stale_since(self, g: int) -> float | None:
        """When group `g`'s scope last polled successfully, if that is long enough ago
        (STALE_GRACE_S) that what came after is unknown; else None."""
        if not 0 <= g < len(self._group_last_ok):
            return None
        t = float(self._group_last_ok[g])
        if not math.isfinite(t) or self.now - t <= self.stale_grace_s:
            return None
        return t

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
        self._redraw_labels()

    def bad_reason(self, s: int) -> str | None:
        """Why segment `s`'s version is marked bad for its group, or None."""
        if not self._bad_why:
            return None
        g = int(self.data.inst_group[int(self.data.seg_inst[s])])
        return self._bad_why.get((g, int(self.data.seg_ver[s])))

    def set_markers(self, markers: pd.DataFrame | None) -> None:
        """Vertical marks for actions: a DataFrame with `time` and `label` columns, and
        `scope`, `region`, `group` to keep only the marks of the groups a filter shows."""
        self._markers = markers
        for item in self._marker_items:
            _discard(self, item)
        self._marker_items = []
        markers = self._markers_shown(markers)
        if markers is None or not len(markers):
            return
        times = epoch_seconds(markers["time"])
        for n, (t, label) in enumerate(zip(times, markers["label"].astype(str), strict=True)):
            if not math.isfinite(t):
                continue
            # Read across, below the "now" label; marks close in time take turns on three
            # heights so their labels do not sit on each other.
            line = pg.InfiniteLine(pos=t, angle=90, movable=False, label=label,
                                   pen=self._marker_pen(self.palette()),
                                   labelOpts={"position": 0.07 + 0.06 * (n % 3),
                                              "anchors": [(0, 0), (0, 0)],
                                              "fill": self._label_fill})
            line.label.setColor(self.palette().color(QPalette.ColorRole.Text))
            line.setZValue(15)
            self._marker_items.append(line)
            self.addItem(line, ignoreBounds=True)
        self._place_marker_labels()

    def _place_marker_labels(self) -> None:
        """A label near the right edge reads leftwards from its line, so it is not cut off."""
        if not self._marker_items:
            return
        (x0, x1), _ = self._view.viewRange()
        for line in self._marker_items:
            label = line.label
            width = label.boundingRect().width() * self._view.viewPixelSize()[0]
            anchor = (1, 0) if line.value() + width > x1 - (x1 - x0) * 0.01 else (0, 0)
            if label.anchors[0] != anchor:
                label.anchors = [anchor, anchor]
                label.updatePosition()

    # -- which rows
    def toggle_group(self, g: int) -> None:
        key = self.data.groups[g]
        self._collapsed_keys.symmetric_difference_update({key})
        self._relayout(self._anchor())

    def set_collapsed(self, groups: frozenset[int]) -> None:
        self._collapsed_keys = {key for g, key in enumerate(self.data.groups) if g in groups}
        self._relayout(self._anchor())

    def set_show_empty(self, on: bool) -> None:
        """Show every instance a group ever had (on), or only those with a span in view."""
        if on != self.show_empty:
            self.show_empty = on
            self._relayout(self._anchor())

    def set_instance_filter(self, keys: set[str] | frozenset[str] | None) -> None:
        """Show only these instances (timeline keys, `scope\\x1finstance_id`); None: all.
        A group with none of them is left out, and so are its action marks."""
        self._filter_keys = None if keys is None else frozenset(keys)
        self._filter_mask = self._mask_of(self._filter_keys)
        self._relayout(self._anchor())
        if self._markers is not None:
            self.set_markers(self._markers)

    def _markers_shown(self, markers: pd.DataFrame | None) -> pd.DataFrame | None:
        """The marks of the groups the filter shows (all of them without a filter): an
        action on `api` is not part of the story of another scope."""
        if markers is None or self._filter_mask is None or "scope" not in markers:
            return markers
        data = self.data
        shown = {data.groups[g] for g in np.unique(data.inst_group[self._filter_mask])}
        keep = [(s, r, g if isinstance(g, str) else None) in shown
                for s, r, g in zip(markers["scope"], markers["region"], markers["group"],
                                   strict=True)]
        return markers[np.asarray(keep, bool)]

    def _mask_of(self, keys: frozenset[str] | None) -> np.ndarray | None:
        if keys is None:
            return None
        return pd.Index(self.data.inst_key).isin(list(keys)) if self.data.n_instances \
            else np.zeros(0, bool)

    def update_rows(self) -> None:
        """Lay the rows out for the time in view, the row at the top staying where it is."""
        self._rows_timer.stop()
        self._relayout(self._anchor())

    def _relayout(self, anchor: tuple | None, selected: str | None = None) -> None:
        data = self.data
        selected = selected if selected is not None else self.selected_instance()
        collapsed = frozenset(g for g, key in enumerate(data.groups)
                              if key in self._collapsed_keys)
        shown = None
        if not self.show_empty and data.n_instances:
            (x0, x1), _ = self._view.viewRange()
            shown = data.in_range(x0, x1, self.now)
        if self._filter_mask is not None:
            shown = self._filter_mask.copy() if shown is None else shown & self._filter_mask
        sel = self._instance_index(selected)
        if shown is not None and sel is not None:
            shown[sel] = True  # the selected instance keeps its row
        groups_shown = None
        if self._filter_mask is not None:
            groups_shown = np.bincount(data.inst_group[self._filter_mask],
                                       minlength=len(data.groups)) > 0
        inputs = (id(data), collapsed, None if shown is None else shown.tobytes(),
                  None if groups_shown is None else groups_shown.tobytes())
        if inputs == self._layout_inputs and anchor is not None:
            return  # the same rows: a pan that hid or showed nothing
        self._layout_inputs = inputs
        self.layout = make_layout(data, collapsed, shown, groups_shown)
        self.selected_row = None
        if sel is not None and self.layout.inst_row[sel] >= 0:
            self.selected_row = int(self.layout.inst_row[sel])
        self._restore_anchor(anchor)
        self.refresh()
        self._redraw_labels()
        self.rows_changed.emit()

    def _redraw_labels(self) -> None:
        # The axis caches its labels by row number; other instances can now be on the same
        # rows (a rollout adds rows on top), so the labels must be drawn again.
        self._row_axis.picture = None
        self._row_axis.update()

    def _instance_index(self, key: str | None) -> int | None:
        if key is None or not self.data.n_instances:
            return None
        hits = np.flatnonzero(self.data.inst_key == key)
        if not len(hits):
            hits = np.flatnonzero(self.data.inst_id == key)
        return int(hits[0]) if len(hits) else None

    def _group_index(self, key: GroupKey) -> int | None:
        for g, gkey in enumerate(self.data.groups):
            if tuple(gkey) == tuple(key):
                return g
        return None

    def _anchor(self) -> tuple | None:
        """What is at the top of the view: ("instance", key, offset) or ("group", key, rows
        below its header, offset)."""
        lay = self.layout
        if not lay.n_rows:
            return None
        y0 = self._view.viewRange()[1][0]
        row = min(max(int(math.floor(y0)), 0), lay.n_rows - 1)
        offset = y0 - row
        ref = int(lay.row_ref[row])
        if lay.row_kind[row] == INSTANCE:
            return ("instance", str(self.data.inst_key[ref]), offset)
        return ("group", self.data.groups[ref], row - int(lay.group_row[ref]), offset)

    def _restore_anchor(self, anchor: tuple | None) -> None:
        if anchor is None or not self.layout.n_rows:
            return
        lay = self.layout
        row = None
        if anchor[0] == "instance":
            i = self._instance_index(anchor[1])
            if i is not None and lay.inst_row[i] >= 0:
                row = int(lay.inst_row[i])
            elif i is not None:  # hidden now: its group's header takes its place
                g = int(self.data.inst_group[i])
                row = int(lay.group_row[g]) if lay.group_row[g] >= 0 else None
        else:
            g = self._group_index(anchor[1])
            if g is not None and lay.group_row[g] >= 0:
                last = int(lay.group_row[g + 1]) - 1 if g + 1 < len(lay.group_row) and \
                    lay.group_row[g + 1] >= 0 else lay.n_rows - 1
                row = min(int(lay.group_row[g]) + anchor[2], last)
        if row is None:
            return
        y0, y1 = self._view.viewRange()[1]
        top = row + anchor[-1]
        if abs(top - y0) > 1e-9:
            self._set_range(y=(top, top + (y1 - y0)))

    # -- lookups
    def row_label(self, row: int) -> str:
        lay = self.layout
        if not 0 <= row < lay.n_rows:
            return ""
        ref = int(lay.row_ref[row])
        kind = lay.row_kind[row]
        if kind == HEADER:
            _scope, region, group = self.data.groups[ref]
            total = int(self._group_sizes[ref]) if ref < len(self._group_sizes) else 0
            if ref in lay.collapsed:
                return f"▸ {group or 'standalone'} · {region} ({int(self._group_live[ref]):,})"
            shown = int(lay.shown_count[ref])
            count = f"{total:,}" if shown == total else f"{shown:,} of {total:,}"
            return f"▾ {group or 'standalone'} · {region} ({count})"
        if kind == BAND:
            if row == 0 or lay.row_kind[row - 1] != HEADER:
                return ""
            return "    " + self.mix_words(ref, self.now, most=2)
        name = self.data.inst_name[ref] or self.data.inst_id[ref]
        flag = "  ⚠" if len(self._inst_bad) > ref and self._inst_bad[ref] else ""
        return f"    {name}{flag}"

    def mix_at(self, g: int, t: float) -> dict[str | None, int]:
        """Group `g`'s instances per version at time `t`, most first."""
        counts = self.data.mix.counts_at(g, np.array([t]))[0]
        order = np.argsort(-counts, kind="stable")
        return {self.data.versions[v]: int(counts[v]) for v in order if counts[v] > 0}

    def mix_words(self, g: int, t: float, most: int | None = None) -> str:
        mix = self.mix_at(g, t)
        total = sum(mix.values())
        if not total:
            return "no instances"
        items = list(mix.items())
        words = [f"{v or 'unknown'} {n / total:.0%}" for v, n in items[:most]]
        if most is not None and len(items) > most:
            words.append("…")
        return " · ".join(words)

    def instance_of_row(self, row: int) -> int | None:
        lay = self.layout
        if 0 <= row < lay.n_rows and lay.row_kind[row] == INSTANCE:
            return int(lay.row_ref[row])
        return None

    def group_of_row(self, row: int) -> int | None:
        """The group of a header or band row."""
        lay = self.layout
        if 0 <= row < lay.n_rows and lay.row_kind[row] != INSTANCE:
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
        end = max(min(self.data.seg_x1[s], self.now), self.data.seg_x0[s] + self._min_width())
        return s if x <= end else None

    def hover_text(self, x: float, y: float) -> str:
        row = int(math.floor(y))
        g = self.group_of_row(row)
        if g is not None:
            scope, region, group = self.data.groups[g]
            n = int(self._group_sizes[g])
            if self.layout.row_kind[row] == BAND:
                t = min(x, self.now)
                stamp = datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC")
                mix = self.mix_at(g, t)
                total = sum(mix.values())
                lines = [f"{group or 'standalone instances'} — {scope} / {region} at {stamp}: "
                         f"{total:,} instances"]
                lines += [f"{v or 'unknown'}: {k:,} ({k / total:.0%})" for v, k in mix.items()]
                since = self.stale_since(g)
                if since is not None and t >= since:
                    lines.append(self._unknown_words(since, scope))
                return "\n".join(lines)
            live = int(self._group_live[g])
            text = f"{group or 'standalone instances'} — {scope} / {region}: {live:,} " \
                   f"instances now, {n:,} in the history loaded " \
                   f"(click to {'expand' if g in self.layout.collapsed else 'collapse'})"
            hidden = self._outside_view(g)
            if g not in self.layout.collapsed and hidden > 0:
                # "3 of 15" alone reads as lost history: say where the others are.
                text += f"\n{hidden:,} ran only outside the time in view: a wider range " \
                        "(Week, Fit) or Empty rows shows them"
            return text
        s = self.segment_at(x, y)
        if s is None:
            return ""
        data = self.data
        i = int(data.seg_inst[s])
        version = data.versions[int(data.seg_ver[s])] or "unknown"
        x0, x1 = float(data.seg_x0[s]), float(data.seg_x1[s])
        end = min(x1, self.now)
        end_words = f"{_fmt_time(x1)}  ({_fmt_duration(end - x0)})"
        g = int(data.inst_group[i])
        since = self.stale_since(g)
        if not math.isfinite(x1) and since is not None:
            end_words = self._unknown_words(since, data.groups[g][0])
        source = data.sources[int(data.seg_source[s])] if len(data.seg_source) else "observed"
        why = self.bad_reason(s)
        return (f"{data.inst_name[i] or data.inst_id[i]} ({data.inst_id[i]})\n"
                f"version {version} · image {data.seg_image[s]} · {data.seg_state[s]}\n"
                f"start {_fmt_time(x0)}\n"
                f"end   {end_words}"
                + (f"\ninferred from {source_words(source)}" if int(data.seg_source[s]) else "")
                + (f"\n⚠ marked bad: {why}" if why else ""))

    def _outside_view(self, g: int) -> int:
        """How many of group `g`'s instances (those the filter keeps) have no row because
        nothing of them is in the time in view."""
        if self.show_empty or not self.data.n_instances:
            return 0
        (x0, x1), _ = self._view.viewRange()
        out = ~self.data.in_range(x0, x1, self.now) & (self.data.inst_group == g) \
            & (self.layout.inst_row < 0)  # the selected instance keeps its row
        if self._filter_mask is not None:
            out &= self._filter_mask
        return int(out.sum())

    @staticmethod
    def _unknown_words(since: float, scope: str) -> str:
        stamp = datetime.fromtimestamp(since, UTC).strftime("%H:%M")
        return f"unknown since {stamp} (last successful poll of {scope})"

    def selected_instance(self) -> str | None:
        if self.selected_row is None:
            return None
        i = self.instance_of_row(self.selected_row)
        return None if i is None else str(self.data.inst_key[i])

    def select_instance(self, key: str | None, scroll: bool = False) -> bool:
        """Select by `scope\\x1finstance_id` key (or bare instance id)."""
        self.selected_row = None
        i = self._instance_index(key)
        if i is not None:
            g = int(self.data.inst_group[i])
            if self.layout.inst_row[i] < 0:  # collapsed, hidden or filtered out: show it
                self._collapsed_keys.discard(self.data.groups[g])
                self._relayout(self._anchor(), selected=str(self.data.inst_key[i]))
            row = int(self.layout.inst_row[i])
            if row >= 0:
                self.selected_row = row
                if scroll:
                    self.scroll_to_row(row)
        self.refresh()
        return self.selected_row is not None

    def focus_group(self, scope: str, region: str, group: str | None) -> bool:
        """Expand the group if it is a band, bring its header to the top and highlight it
        for a moment. False if the timeline has no such group."""
        g = self._group_index((scope, region, group))
        if g is None:
            return False
        if self.data.groups[g] in self._collapsed_keys:
            self._collapsed_keys.discard(self.data.groups[g])
            self._relayout(self._anchor())
        row = int(self.layout.group_row[g])
        if row < 0:
            return False
        self.scroll_to_row(row, top=True)
        self._focus = g
        self._focus_timer.start()
        self.refresh()
        return True

    def _end_focus(self) -> None:
        self._focus = None
        self.refresh()

    def scroll_to_row(self, row: int, top: bool = False) -> None:
        """Bring `row` into view: a third of the way down, or to the top with `top`."""
        (y0, y1) = self._view.viewRange()[1]
        if top or not y0 <= row < y1 - 1:
            span = y1 - y0
            first = max(-0.3, row - 0.3 if top else row - span / 3)
            self._set_range(y=(first, first + span))

    def row_of_group(self, g: int) -> int | None:
        if 0 <= g < len(self.layout.group_row) and self.layout.group_row[g] >= 0:
            return int(self.layout.group_row[g])
        return None

    # -- view
    def time_bounds(self) -> tuple[float, float]:
        bounds = self.data.time_bounds(self.now)
        if bounds is None:
            return self.now - DAY, self.now
        return bounds[0], max(bounds[1], self.now)

    def _now_pad(self, width: float) -> float:
        px = self._view.width()
        return max(width * 0.02, width * NOW_PAD_PX / px if px > 2 * NOW_PAD_PX else 0.0)

    def fit(self) -> None:
        t0, t1 = self.time_bounds()
        width = max(t1 - t0, 60.0) * 1.04
        self._set_range(x=(t1 + self._now_pad(width) - width, t1 + self._now_pad(width)))
        self.set_following(True)
        self._fit_rows()

    def show_last(self, seconds: float) -> None:
        """The last `seconds` up to now, and keep following now."""
        self._set_range(x=(self.now - seconds, self.now + self._now_pad(seconds)))
        self.set_following(True)

    def set_following(self, on: bool) -> None:
        """Keep the view's right edge at now (on, and move it there now), or leave it."""
        if on:
            self._follow_now()
        self._note_following(on)

    def _note_following(self, on: bool) -> None:
        if on != self.following:
            self.following = on
            self.following_changed.emit(on)

    def _follow_now(self) -> None:
        (x0, x1), _ = self._view.viewRange()
        width = x1 - x0
        right = self.now + self._now_pad(width)
        if abs(right - x1) > 1e-6:
            self._set_range(x=(right - width, right))

    def _set_range(self, x: tuple[float, float] | None = None,
                   y: tuple[float, float] | None = None) -> None:
        """Move the view for the program, not the user: it does not touch `following`."""
        self._setting_range = True
        try:
            if x is not None and y is not None:
                self._view.setRange(xRange=x, yRange=y, padding=0)
            elif x is not None:
                self._view.setXRange(*x, padding=0)
            elif y is not None:
                self._view.setYRange(*y, padding=0)
        finally:
            self._setting_range = False

    def _fit_rows(self) -> None:
        height = max(self._view.height(), 200)
        rows = min(max(self.layout.n_rows, 4), height / ROW_PX, MAX_VISIBLE_ROWS)
        self._set_range(y=(-0.3, rows - 0.3))

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
    def _on_range_changed(self, _view, ranges, changed=None) -> None:
        x_changed = changed is None or changed[0]
        if x_changed and not self._setting_range:
            # The user moved time: a view that reaches now follows it, one that does not, not.
            # Not moved to now here: that would fight a drag under way.
            (x0, x1), _ = self._view.viewRange()
            self._note_following(x1 >= self.now - (x1 - x0) * 0.002)
        if x_changed and not self.show_empty:
            self._rows_timer.start()
        self.refresh()
        if x_changed:
            self._place_marker_labels()

    def _min_width(self) -> float:
        """MIN_BAR_PX in seconds at the current zoom (0 until the view has a size)."""
        (x0, x1), _ = self._view.viewRange()
        px = self._view.width()
        return MIN_BAR_PX * (x1 - x0) / px if px > 10 * MIN_BAR_PX else 0.0

    def refresh(self) -> None:
        """Give each colour's item the bars and bands in view, clipped to the visible time."""
        (x0, x1), (y0, y1) = self._view.viewRange()
        lay, data, now = self.layout, self.data, self.now
        lo = int(np.searchsorted(lay.seg_row, math.floor(y0), "left"))
        hi = int(np.searchsorted(lay.seg_row, math.ceil(y1), "right"))
        seg = lay.seg[lo:hi]
        rows = lay.seg_row[lo:hi]
        sx0 = data.seg_x0[seg]
        sx1 = np.maximum(np.minimum(data.seg_x1[seg], now), sx0 + self._min_width())
        keep = (sx1 >= x0) & (sx0 <= x1)
        # Clip to the view: Qt's raster engine is slower on far off-screen rectangles.
        margin = (x1 - x0) * 0.01
        seg = seg[keep]
        sx0 = np.maximum(sx0[keep], x0 - margin)
        sx1 = np.minimum(sx1[keep], x1 + margin)
        rows = rows[keep]
        ver = data.seg_ver[seg]
        self.visible_rects = len(ver)
        bar_y0 = rows + (1 - BAR) / 2
        bands = self._bands_in_view(x0, x1, y0, y1)
        self.band_rects = sum(len(b[0]) for b in bands)
        if len(ver):
            order = np.argsort(ver, kind="stable")
            bounds = np.searchsorted(ver[order], np.arange(len(data.versions) + 1))
        for code, item in self._version_items.items():
            pick = order[bounds[code]:bounds[code + 1]] if len(ver) else np.empty(0, np.int64)
            bx0, bx1, by0 = sx0[pick], sx1[pick], bar_y0[pick]
            by1 = by0 + BAR
            if bands and len(bands[code][0]):
                band = bands[code]
                bx0, bx1 = np.r_[bx0, band[0]], np.r_[bx1, band[1]]
                by0, by1 = np.r_[by0, band[2]], np.r_[by1, band[3]]
            item.setOpts(x0=bx0, x1=bx1, y0=by0, y1=by1)
        self._draw_overlays(seg, sx0, sx1, bar_y0, ver, x0, x1, y0, y1, margin)
        self.now_label.setPos(now - (x1 - x0) * 0.002, y0)
        headers = lay.header_rows
        headers = headers[(headers >= math.floor(y0)) & (headers <= math.ceil(y1))]
        n = len(headers)
        self._header_band.setOpts(x0=np.full(n, x0 - margin), x1=np.full(n, x1 + margin),
                                  y0=headers.astype(float), y1=headers + 1.0)
        if self.selected_row is not None:
            r = float(self.selected_row)
            self._select_band.setOpts(x0=[x0 - margin], x1=[x1 + margin], y0=[r], y1=[r + 1])
        else:
            _empty(self._select_band)
        row = self.row_of_group(self._focus) if self._focus is not None else None
        if row is not None:
            self._focus_band.setOpts(x0=[x0 - margin], x1=[x1 + margin], y0=[float(row)],
                                     y1=[row + 1.0])
        else:
            _empty(self._focus_band)

    def _bands_in_view(self, x0: float, x1: float, y0: float, y1: float) -> list:
        """Per version code, the rectangles (x0, x1, y0, y1) of the summary bands in view."""
        lay, data = self.layout, self.data
        first, last = max(int(math.floor(y0)), 0), min(int(math.ceil(y1)), lay.n_rows - 1)
        if last < first or not len(data.versions):
            return []
        window = slice(first, last + 1)
        groups = np.unique(lay.row_ref[window][lay.row_kind[window] == BAND])
        # Up to MIN_BAR_PX past now, as a bar that just began: the mix now always shows.
        t_lo, t_hi = x0, min(x1, self.now + self._min_width())
        if not len(groups) or t_hi <= t_lo:
            return []
        column_s = BAND_COLUMN_PX * (x1 - x0) / max(self._view.width(), 1.0)
        parts: list[list] = [[] for _ in data.versions]
        height = BAND_ROWS - (1 - BAR)
        levels = max(2, round(height * self._view.height() / max(y1 - y0, 1e-9)))
        if self._bands is None or self._bands.mix is not data.mix:
            self._bands = BandCache(data.mix)
        for g in groups:
            top = lay.group_row[g] + 1 + (1 - BAR) / 2
            for code, (bx0, bx1, by0, by1) in enumerate(
                    self._bands.rects(int(g), t_lo, t_hi, column_s, levels)):
                if len(bx0):
                    parts[code].append((bx0, bx1, top + by0 * height, top + by1 * height))
        return [tuple(np.concatenate([r[k] for r in p]) if p else np.empty(0) for k in range(4))
                for p in parts]

    def _draw_overlays(self, seg, sx0, sx1, bar_y0, ver, x0, x1, y0, y1, margin) -> None:
        data = self.data
        inferred = data.seg_source[seg] != 0 if len(data.seg_source) else np.zeros(0, bool)
        if inferred.any():
            self._inferred_item.setOpts(x0=sx0[inferred], x1=sx1[inferred],
                                        y0=bar_y0[inferred], y1=bar_y0[inferred] + BAR)
        else:
            _empty(self._inferred_item)
        # Stale: open spans past their scope's last good poll, and bands likewise.
        sx, ex, sy, ey = [], [], [], []
        last_ok = self._group_last_ok
        with np.errstate(invalid="ignore"):
            since = np.where(self.now - last_ok > self.stale_grace_s, last_ok, np.nan)
        if len(seg) and np.isfinite(since).any():
            inst = data.seg_inst[seg]
            from_t = since[data.inst_group[inst]]
            stale = ~np.isfinite(data.seg_x1[seg]) & np.isfinite(from_t) & (sx1 > from_t)
            sx.append(np.maximum(sx0[stale], from_t[stale]))
            ex.append(sx1[stale])
            sy.append(bar_y0[stale])
            ey.append(bar_y0[stale] + BAR)
        lay = self.layout
        first, last = max(int(math.floor(y0)), 0), min(int(math.ceil(y1)), lay.n_rows - 1)
        if last >= first and np.isfinite(since).any():
            window = slice(first, last + 1)
            for g in np.unique(lay.row_ref[window][lay.row_kind[window] == BAND]):
                if math.isfinite(since[g]) and since[g] < min(x1, self.now):
                    top = lay.group_row[g] + 1 + (1 - BAR) / 2
                    sx.append(np.array([max(since[g], x0 - margin)]))
                    ex.append(np.array([min(self.now, x1 + margin)]))
                    sy.append(np.array([top]))
                    ey.append(np.array([top + BAND_ROWS - (1 - BAR)]))
        if sx:
            opts = dict(x0=np.concatenate(sx), x1=np.concatenate(ex), y0=np.concatenate(sy),
                        y1=np.concatenate(ey))
            self._stale_fade.setOpts(**opts)
            self._stale_hatch.setOpts(**opts)
        else:
            _empty(self._stale_fade)
            _empty(self._stale_hatch)
        if self._bad_table.size and len(ver):
            inst = data.seg_inst[seg]
            bad = self._bad_table[data.inst_group[inst], ver]
            self._bad_item.setOpts(x0=sx0[bad], x1=sx1[bad], y0=bar_y0[bad],
                                   y1=bar_y0[bad] + BAR)
        else:
            _empty(self._bad_item)

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
