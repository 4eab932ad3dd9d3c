"""The timeline's arrays and layout, and the plot's numpy lookups."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fleetview.ui.colors import VersionColors
from fleetview.ui.timeline import TimelinePlot
from fleetview.ui.timeline_data import BAND, HEADER, TimelineData, make_layout

T = pd.Timestamp("2026-01-01", tz="UTC")


def spans() -> pd.DataFrame:
    rows = [
        # scope, region, group, id, version, start (h), end (h or None)
        ("s", "r1", "web", "w1", "1.0", 0, 2),
        ("s", "r1", "web", "w1", "1.1", 2, None),
        ("s", "r1", "web", "w2", "1.0", 1, None),
        ("s", "r1", None, "b1", "0.9", 0, None),
        ("s", "r2", "api", "a1", "2.0", 0, 5),
    ]
    return pd.DataFrame({
        "scope": [r[0] for r in rows], "region": [r[1] for r in rows],
        "group": [r[2] for r in rows], "instance_id": [r[3] for r in rows],
        "name": [f"{r[3]}-name" for r in rows], "version": [r[4] for r in rows],
        "image_id": [f"img-{r[4]}" for r in rows], "image_name": [f"app-{r[4]}" for r in rows],
        "state": ["running"] * len(rows),
        "start": [T + pd.Timedelta(hours=r[5]) for r in rows],
        "end": [T + pd.Timedelta(hours=r[6]) if r[6] is not None else pd.NaT for r in rows],
    })


def test_instances_are_grouped_newest_first_with_standalone_last():
    data = TimelineData.from_spans(spans())
    assert data.groups == [("s", "r1", "web"), ("s", "r1", None), ("s", "r2", "api")]
    assert list(data.inst_id) == ["w2", "w1", "b1", "a1"]
    assert data.versions == ["0.9", "1.0", "1.1", "2.0"]
    assert np.isinf(data.seg_x1).sum() == 3  # open spans
    # Segments sorted by instance, then start.
    assert list(data.seg_inst) == [0, 1, 1, 2, 3]


def test_layout_rows_and_collapse():
    data = TimelineData.from_spans(spans())
    lay = make_layout(data)
    assert list(lay.row_kind) == [HEADER, 1, 1, HEADER, 1, HEADER, 1]
    assert np.all(np.diff(lay.seg_row) >= 0)
    collapsed = make_layout(data, frozenset({0}))
    # A collapsed group is its header and its summary band.
    assert list(collapsed.row_kind) == [HEADER, BAND, BAND, HEADER, 1, HEADER, 1]
    assert collapsed.inst_row[0] == -1 and collapsed.inst_row[1] == -1
    assert len(collapsed.seg) == 2


def test_segment_lookup_and_visible_slice(qtbot):
    plot = TimelinePlot(VersionColors())
    qtbot.addWidget(plot)
    now = (T + pd.Timedelta(hours=6)).timestamp()
    plot.set_data(TimelineData.from_spans(spans()), now)
    w1_row = int(plot.layout.inst_row[1])
    seg = plot.segment_at((T + pd.Timedelta(hours=1)).timestamp(), w1_row + 0.5)
    assert plot.data.versions[int(plot.data.seg_ver[seg])] == "1.0"
    seg = plot.segment_at((T + pd.Timedelta(hours=3)).timestamp(), w1_row + 0.5)
    assert plot.data.versions[int(plot.data.seg_ver[seg])] == "1.1"
    # Between rows, before the first span, and on a header: nothing.
    assert plot.segment_at((T + pd.Timedelta(hours=3)).timestamp(), w1_row + 0.02) is None
    assert plot.segment_at((T - pd.Timedelta(hours=1)).timestamp(), w1_row + 0.5) is None
    assert plot.segment_at(now - 10, 0.5) is None
    # The view holds rows 0..3 and hours 3..6: w2, w1's second span, b1; not a1.
    plot.getViewBox().setRange(xRange=((T + pd.Timedelta(hours=3)).timestamp(), now),
                               yRange=(0, 4), padding=0)
    assert plot.visible_rects == 3
    plot.getViewBox().setRange(yRange=(0, 7), padding=0)
    assert plot.visible_rects == 4


def test_row_labels_follow_new_data_in_the_same_view(qtbot):
    """A rollout puts new instances on top: the labels drawn must move with the bars."""
    plot = TimelinePlot(VersionColors())
    qtbot.addWidget(plot)
    plot.resize(800, 400)
    plot.show()
    now = (T + pd.Timedelta(hours=6)).timestamp()
    plot.set_data(TimelineData.from_spans(spans()), now)
    plot.getViewBox().setRange(yRange=(0, 7), padding=0)
    axis = plot.getAxis("left")
    drawn: list[str] = []
    original = axis.tickStrings
    axis.tickStrings = lambda *a: drawn.extend(original(*a)) or original(*a)
    plot.grab()
    drawn_names = lambda: [d.strip() for d in drawn]  # noqa: E731
    assert "w2-name" in drawn_names() and "new-name" not in drawn_names()

    newer = spans()
    newer.loc[len(newer)] = ["s", "r1", "web", "new", "new-name", "1.1", "img-1.1", "app-1.1",
                             "running", T + pd.Timedelta(hours=5), pd.NaT]
    drawn.clear()
    plot.set_data(TimelineData.from_spans(newer), now)
    plot.grab()
    assert "new-name" in drawn_names(), drawn
