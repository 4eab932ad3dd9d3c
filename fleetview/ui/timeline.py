"""The timeline widget: toolbar, legend, plot and "as of" readout, following the window state."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pandas as pd
from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMenu,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from fleetview.ui.colors import VersionColors
from fleetview.ui.rich_text import escape, plain_tooltip
from fleetview.ui.state import FleetFrame, GroupKey, WindowState
from fleetview.ui.timeline_data import TimelineData
from fleetview.ui.timeline_plot import (  # noqa: F401  (the timeline's public names)
    BAND_ABOVE,
    DAY,
    HOUR,
    MAX_VISIBLE_ROWS,
    MIN_BAR_PX,
    WEEK,
    TimelinePlot,
)

HINT = "Ctrl+wheel zoom · Shift+wheel pan · wheel scroll · drag pan"
CORNER_HINT = "Ctrl+wheel zoom · Shift+wheel pan"


class Legend(QWidget):
    """Coloured chips: version and how many instances run it (at the scrubber's time)."""

    def __init__(self, colors: VersionColors, parent=None):
        super().__init__(parent)
        self.colors = colors
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(10)
        self.counts: dict[str | None, int] = {}
        self._drawn: tuple | None = None  # (version, count, colour) of the chips shown
        # (name, callable(version)): the window adds actions on a version here; a name may be
        # a callable(version) giving the entry's text, or None to leave it out.
        self.version_actions: list[tuple[object, object]] = []
        # Ignored: a long legend is cut at the right rather than pushing the window wider.
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)

    def set_counts(self, counts: dict[str | None, int]) -> None:
        drawn = tuple((v, n, self.colors.hex(v)) for v, n in counts.items())
        if drawn == self._drawn:
            return
        self._drawn = drawn
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
    """Range buttons, Live and empty-row toggles, legend, the plot, and the scrubber's "as of"
    readout.

    Given a WindowState it draws its history, markers and each scope's freshness, counts its
    fleet in the legend and follows its selection; `instance_selected` and `scrubbed` say
    what the user did here.

    Linked panels use two calls:

    - `set_instance_filter(keys)`: show only these instances, by the timeline's instance
      keys (`scope + "\\x1f" + instance_id`, see `instance_key`); None shows all. Groups
      with none of them are left out.
    - `focus_group(scope, region, group)`: expand the group if it is a band, scroll its
      header to the top and highlight it for a moment (group None: standalone instances).
    """

    instance_selected = Signal(str)  # scope\x1finstance_id
    scrubbed = Signal(object)  # datetime (UTC), or None for "now"

    def __init__(self, colors: VersionColors, parent=None, state: WindowState | None = None):
        super().__init__(parent)
        self.plot = TimelinePlot(colors, self)
        self.legend = Legend(colors, self)
        self._state = state
        self._live = True  # the scrubber is at now (the fleet shown is the fleet now)
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 8, 0)
        buttons.setSpacing(4)
        title = QLabel("Timeline", self)
        font = QFont(title.font())
        font.setBold(True)
        title.setFont(font)
        buttons.addWidget(title)
        buttons.addSpacing(8)
        self.range_buttons: dict[str, QToolButton] = {}
        for label, slot, tip in (
            ("Fit", self.plot.fit, "Show all history (Home)"),
            ("Hour", lambda: self.plot.show_last(HOUR), "The last hour, following now"),
            ("Day", lambda: self.plot.show_last(DAY), "The last day, following now (End)"),
            ("Week", lambda: self.plot.show_last(WEEK), "The last week, following now"),
        ):
            # Tool buttons: compact, so the legend keeps its room on a 1366 px screen.
            button = QToolButton(self)
            button.setText(label)
            button.setToolTip(f"{tip}\n{HINT}")
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            button.clicked.connect(slot)
            buttons.addWidget(button)
            self.range_buttons[label] = button
        buttons.addSpacing(6)
        self.live_button = QToolButton(self)
        self.live_button.setObjectName("timelineLive")
        self.live_button.setText("● Live")
        self.live_button.setCheckable(True)
        self.live_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.live_button.setToolTip("Keep now at the right edge as time passes. Panning back "
                                    "turns it off; panning to now or this button turns it on.")
        self.live_button.toggled.connect(self.plot.set_following)
        self.plot.following_changed.connect(self._on_following_changed)
        buttons.addWidget(self.live_button)
        self.empty_rows_button = QToolButton(self)
        self.empty_rows_button.setObjectName("timelineEmptyRows")
        self.empty_rows_button.setText("Empty rows")
        self.empty_rows_button.setCheckable(True)
        self.empty_rows_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.empty_rows_button.setToolTip("Also list the instances with nothing in the time "
                                          "shown (every instance a group ever had)")
        self.empty_rows_button.toggled.connect(self.plot.set_show_empty)
        buttons.addWidget(self.empty_rows_button)
        buttons.addSpacing(8)
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
        # The gestures, in the plot's empty bottom-left corner (under the row names, left of
        # the time axis), where they take no room from the toolbar or the rows.
        self.hint = QLabel(CORNER_HINT, self.plot)
        self.hint.setObjectName("timelineHint")
        hint_font = QFont(self.hint.font())
        hint_font.setPointSizeF(max(hint_font.pointSizeF() * 0.8, 7.0))
        self.hint.setFont(hint_font)
        self.hint.setEnabled(False)  # drawn muted, as a hint
        self.hint.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.plot.installEventFilter(self)
        self.plot.row_clicked.connect(self._on_row_clicked)
        self.plot.scrubber.sigPositionChangeFinished.connect(self._on_scrub_finished)
        self.plot.scrubber.sigPositionChanged.connect(self._on_scrub_moved)
        self._update_asof()
        self._on_following_changed(self.plot.following)
        if state is not None:
            state.history_changed.connect(self._on_history_changed)
            state.bad_changed.connect(self._on_bad_changed)
            state.markers_changed.connect(self.set_markers)
            state.fleet_changed.connect(self._on_fleet_changed)
            state.freshness_changed.connect(self.plot.set_freshness)
            state.group_selected.connect(self._on_group_selected)
            state.instance_selected.connect(self._on_instance_selected)
            self.plot.set_freshness(state.freshness)

    # -- for linked panels
    @staticmethod
    def instance_key(scope: str, instance_id: str) -> str:
        """The timeline's key of an instance."""
        return f"{scope}\x1f{instance_id}"

    def set_instance_filter(self, keys: set[str] | None) -> None:
        """Show only the instances of these keys (see `instance_key`); None shows all."""
        self.plot.set_instance_filter(keys)

    def focus_group(self, scope: str, region: str, group: str | None) -> bool:
        """Expand the group if banded, bring its header to the top, highlight it briefly."""
        return self.plot.focus_group(scope, region, group)

    def set_poll_interval(self, seconds: float) -> None:
        """Open spans are drawn unknown once their scope's last good poll is older than three
        intervals: the rule by which the scope tree calls a scope stale."""
        self.plot.stale_grace_s = 3 * float(seconds)
        self.plot.refresh()

    def _on_following_changed(self, on: bool) -> None:
        self.live_button.blockSignals(True)
        self.live_button.setChecked(on)
        self.live_button.blockSignals(False)

    def eventFilter(self, obj, ev) -> bool:
        if obj is self.plot and ev.type() == QEvent.Type.Resize:
            self.hint.adjustSize()
            self.hint.move(4, self.plot.height() - self.hint.height() - 4)
        return super().eventFilter(obj, ev)

    # -- the window's state
    def _on_history_changed(self, history: TimelineData, first: bool) -> None:
        self.set_data(history, time.time(), first=first)
        self._on_bad_changed()
        # Versions older than those on screen (a backfill's) shift the colours: the chips
        # were drawn with the old ones.
        self.legend.set_counts(self.legend.counts)

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
        if key is not None:
            self.focus_group(*key)

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
            self.plot.update_rows()
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
        # At now the scrubber lies under the bars (a span that just began is not hidden by
        # it); moved back, it is drawn over them.
        self.plot.scrubber.setZValue(-0.5 if self._live else 30)
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
