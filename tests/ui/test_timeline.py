"""The timeline widget: bars by version, hover and click, groups, the scrubber, the legend,
and how it follows the window's state."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from fleetview.ui.colors import VersionColors
from fleetview.ui.state import FleetFrame, WindowState
from fleetview.ui.timeline import DAY, TimelineWidget
from fleetview.ui.timeline_data import TimelineData

T = pd.Timestamp("2026-01-01", tz="UTC")
NOW = (T + pd.Timedelta(hours=6)).timestamp()


def spans() -> pd.DataFrame:
    rows = [
        # group, id, version, start (h), end (h or None)
        ("web", "w1", "1.0", 0, 2),
        ("web", "w1", "1.1", 2, None),
        ("web", "w2", "1.0", 1, None),
        (None, "b1", "0.9", 0, None),
    ]
    return pd.DataFrame({
        "scope": "prod", "region": "us-east-1", "group": [r[0] for r in rows],
        "instance_id": [r[1] for r in rows], "name": [f"{r[1]}-name" for r in rows],
        "version": [r[2] for r in rows], "image_id": [f"ami-{r[2]}" for r in rows],
        "image_name": [f"app-{r[2]}" for r in rows], "state": "running",
        "start": [T + pd.Timedelta(hours=r[3]) for r in rows],
        "end": [T + pd.Timedelta(hours=r[4]) if r[4] is not None else pd.NaT for r in rows],
    })


def at(hours: float) -> float:
    return (T + pd.Timedelta(hours=hours)).timestamp()


@pytest.fixture
def state() -> WindowState:
    return WindowState()


@pytest.fixture
def timeline(qtbot, state):
    widget = TimelineWidget(VersionColors(), state=state)
    qtbot.addWidget(widget)
    widget.resize(900, 400)
    widget.show()
    state.set_history(TimelineData.from_spans(spans()))
    widget.set_now(NOW)
    widget.plot.getViewBox().setRange(xRange=(at(0), NOW), yRange=(0, 6), padding=0)
    return widget


def row_of(timeline: TimelineWidget, instance_id: str) -> int:
    plot = timeline.plot
    return int(plot.layout.inst_row[list(plot.data.inst_id).index(instance_id)])


def test_bars_are_drawn_one_item_per_version(timeline):
    plot = timeline.plot
    assert len(plot._version_items) == 3  # 0.9, 1.0, 1.1
    assert plot.visible_rects == 4
    # Rows: the web header, w2 and w1 (newest launch on top), the standalone header, b1.
    assert [plot.row_label(r).strip() for r in range(plot.layout.n_rows)] == \
        ["▾ web · us-east-1 (2)", "w2-name", "w1-name", "▾ standalone · us-east-1 (1)",
         "b1-name"]


def test_hover_names_the_instance_and_its_version(timeline):
    text = timeline.plot.hover_text(at(1), row_of(timeline, "w1") + 0.5)
    assert "w1-name (w1)" in text and "version 1.0" in text and "app-1.0" in text
    assert "end   2026-01-01 02:00:00 UTC  (2 h 0 min)" in text
    assert timeline.plot.hover_text(at(0.5), row_of(timeline, "w2") + 0.5) == ""  # not yet
    header = timeline.plot.hover_text(at(1), 0.5)
    assert header.startswith("web — prod / us-east-1: 2 instances now, 2 in the history "
                             "loaded (click to collapse)")


def test_a_click_on_a_bar_selects_its_instance(qtbot, timeline):
    with qtbot.waitSignal(timeline.instance_selected) as selected:
        timeline.plot.click_at(at(3), row_of(timeline, "w1") + 0.5)
    assert selected.args == ["prod\x1fw1"]


def test_a_click_on_a_header_folds_the_group_into_its_summary_band(timeline):
    plot = timeline.plot
    plot.click_at(at(3), 0.5)
    assert [plot.row_label(r).strip() for r in range(plot.layout.n_rows)] == \
        ["▸ web · us-east-1 (2)", "1.0 50% · 1.1 50%", "", "▾ standalone · us-east-1 (1)",
         "b1-name"]
    plot.click_at(at(3), 0.5)
    assert plot.layout.n_rows == 5 and plot.row_label(1).strip() == "w2-name"


def test_scrubbing_back_says_as_of_when_and_back_to_now(qtbot, timeline):
    then = datetime(2026, 1, 1, 3, 0, tzinfo=UTC)
    with qtbot.waitSignal(timeline.scrubbed) as scrubbed:
        timeline.scrub_to(then)
    assert scrubbed.args == [then]
    assert timeline.as_of() == then
    assert "As of: 2026-01-01 03:00 UTC" in timeline.asof_label.text()
    assert timeline.now_button.isVisibleTo(timeline)
    with qtbot.waitSignal(timeline.scrubbed) as back:
        timeline.scrub_to_now()
    assert back.args == [None]
    assert timeline.as_of() is None and timeline.asof_label.text() == "As of: now"
    assert not timeline.now_button.isVisibleTo(timeline)


def test_the_range_buttons_set_the_time_shown(timeline):
    timeline.range_buttons["Day"].click()
    (x0, x1), _ = timeline.plot.getViewBox().viewRange()
    assert x0 == pytest.approx(NOW - DAY) and x1 > NOW


def test_it_follows_the_windows_state(state, timeline):
    plot = timeline.plot
    state.set_frame(FleetFrame(version_counts={"1.1": 1, "1.0": 1, "0.9": 1}))
    assert timeline.legend.counts == {"1.1": 1, "1.0": 1, "0.9": 1}
    assert "1.0 (1)" in timeline.legend.text()
    state.select_instance("b1", "table")
    assert plot.selected_instance() == "prod\x1fb1"
    state.select_instance(None, "window")
    assert plot.selected_instance() is None
    markers = pd.DataFrame({"time": [T + pd.Timedelta(hours=4)], "label": ["▶ rollback web"]})
    state.set_markers(markers)
    assert [m.value() for m in plot._marker_items] == [pytest.approx(at(4))]


def test_selecting_a_group_brings_its_header_to_the_top(state, timeline):
    plot = timeline.plot
    plot.getViewBox().setRange(yRange=(0, 2), padding=0)
    state.select_group(("prod", "us-east-1", None))
    (_, _), (y0, _) = plot.getViewBox().viewRange()
    assert y0 == pytest.approx(3 - 0.3)  # the standalone header is row 3
