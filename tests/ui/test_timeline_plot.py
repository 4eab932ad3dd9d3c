"""What the timeline tells at a glance: the live edge, thin spans, only rows with something in
view, summary bands, stale and inferred spans, marker labels, and the linked-panel calls."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from fleetview.ui.colors import VersionColors
from fleetview.ui.state import WindowState
from fleetview.ui.timeline import BAND_ABOVE, DAY, HOUR, MIN_BAR_PX, TimelineWidget
from fleetview.ui.timeline_data import BAND, HEADER, TimelineData

T = pd.Timestamp("2026-01-01", tz="UTC")
NOW = (T + pd.Timedelta(days=3)).timestamp()


def at(hours: float) -> float:
    """Hours before NOW, as epoch seconds."""
    return NOW - hours * 3600


def frame(rows, source: list[str] | None = None) -> pd.DataFrame:
    """rows: (group, id, version, start hours ago, end hours ago or None)."""
    out = pd.DataFrame({
        "scope": "prod", "region": "us-east-1", "group": [r[0] for r in rows],
        "instance_id": [r[1] for r in rows], "name": [r[1] for r in rows],
        "version": [r[2] for r in rows], "image_id": [f"ami-{r[2]}" for r in rows],
        "image_name": [f"app-{r[2]}" for r in rows], "state": "running",
        "start": pd.to_datetime([at(r[3]) for r in rows], unit="s", utc=True),
        "end": pd.to_datetime([at(r[4]) if r[4] is not None else None for r in rows],
                              unit="s", utc=True),
    })
    if source is not None:
        out["source"] = source
    return out


WORKER = [
    # Live now: w1 since 10 h, w2 launched a second ago (a fresh rollout).
    ("worker", "w1", "2.3.0", 10, None),
    ("worker", "w2", "2.4.0", 1 / 3600, None),
    # Gone two days ago: nothing of them in the last day.
    ("worker", "old1", "2.2.0", 60, 48),
    ("worker", "old2", "2.2.0", 60, 48),
    ("api", "a1", "2.3.0", 30, None),
]


@pytest.fixture
def state() -> WindowState:
    return WindowState()


@pytest.fixture
def timeline(qtbot, state):
    widget = TimelineWidget(VersionColors(), state=state)
    qtbot.addWidget(widget)
    widget.resize(1000, 420)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def load(timeline, state, spans: pd.DataFrame) -> None:
    state.set_history(TimelineData.from_spans(spans))
    timeline.set_now(NOW)


def labels(plot) -> list[str]:
    return [plot.row_label(r).strip() for r in range(plot.layout.n_rows)]


def x_range(plot) -> tuple[float, float]:
    return tuple(plot.getViewBox().viewRange()[0])


def test_the_view_follows_now_until_panned_back_and_again_from_live(state, timeline):
    load(timeline, state, frame(WORKER))
    plot = timeline.plot
    timeline.range_buttons["Hour"].click()
    assert plot.following and timeline.live_button.isChecked()
    x0, x1 = x_range(plot)
    assert x0 == pytest.approx(NOW - HOUR) and x1 > NOW  # now and its label are in view
    timeline.set_now(NOW + 600)
    assert x_range(plot)[1] == pytest.approx(x1 + 600)
    assert x_range(plot)[0] == pytest.approx(x0 + 600)

    plot.pan(-0.5)  # the user looks back: the view stays there
    assert not plot.following and not timeline.live_button.isChecked()
    held = x_range(plot)
    timeline.set_now(NOW + 1200)
    assert x_range(plot) == pytest.approx(held)

    plot.pan(0.6)  # panned up to now: following again
    assert plot.following and timeline.live_button.isChecked()
    plot.pan(-0.5)
    timeline.live_button.click()  # the toggle brings now back to the right edge
    assert plot.following
    x0, x1 = x_range(plot)
    assert x0 < NOW + 1200 < x1 and x1 - (NOW + 1200) < (x1 - x0) * 0.1


def test_a_span_that_just_began_is_drawn_a_few_pixels_wide(state, timeline):
    load(timeline, state, frame(WORKER))
    plot = timeline.plot
    timeline.range_buttons["Day"].click()
    code = plot.data.versions.index("2.4.0")
    opts = plot._version_items[code].opts
    assert len(opts["x0"]) == 1
    (x0, x1), _ = plot.getViewBox().viewRange()
    px = (opts["x1"][0] - opts["x0"][0]) * plot.getViewBox().width() / (x1 - x0)
    assert px >= MIN_BAR_PX - 0.01
    # It starts at its launch, right of the now line's dash, not under it.
    assert opts["x0"][0] == pytest.approx(NOW - 1)
    w2 = int(plot.layout.inst_row[list(plot.data.inst_id).index("w2")])
    assert "w2 (w2)" in plot.hover_text(NOW, w2 + 0.5)


def test_rows_with_nothing_in_view_are_hidden_until_asked(state, timeline):
    load(timeline, state, frame(WORKER))
    plot = timeline.plot
    timeline.range_buttons["Day"].click()
    plot.update_rows()
    assert labels(plot) == ["▾ api · us-east-1 (1)", "a1",
                            "▾ worker · us-east-1 (2 of 4)", "w2", "w1"]
    timeline.empty_rows_button.click()
    assert labels(plot)[2:] == ["▾ worker · us-east-1 (4)", "w2", "w1", "old1", "old2"]
    plot.set_collapsed(frozenset({1}))
    assert labels(plot)[2] == "▸ worker · us-east-1 (2)"  # as a band: running now
    plot.set_collapsed(frozenset())
    timeline.empty_rows_button.click()
    timeline.range_buttons["Week"].click()  # the gone ones have spans in the week
    plot.update_rows()
    assert labels(plot)[2:] == ["▾ worker · us-east-1 (4)", "w2", "w1", "old1", "old2"]


def test_rows_added_above_do_not_move_the_row_at_the_top(state, timeline):
    rows = [("api", f"a{n}", "2.3.0", 30 - n, None) for n in range(12)] + WORKER[:2]
    load(timeline, state, frame(rows))
    plot = timeline.plot
    w1 = lambda: int(plot.layout.inst_row[list(plot.data.inst_id).index("w1")])  # noqa: E731
    plot.getViewBox().setRange(yRange=(w1() + 0.25, w1() + 6.25), padding=0)
    before = w1()
    # A rollout of api adds three instances, on top of their group: above the view.
    more = rows + [("api", f"new{n}", "2.4.0", 0.1, None) for n in range(3)]
    state.set_history(TimelineData.from_spans(frame(more)))
    assert w1() == before + 3
    y0 = plot.getViewBox().viewRange()[1][0]
    assert y0 == pytest.approx(w1() + 0.25)
    assert plot.row_label(int(math.floor(y0))).strip() == "w1"


def big_fleet(instances: int) -> pd.DataFrame:
    """`instances` in two groups, a rollout from 1.0 to 2.0 in `big` half done 2 h ago."""
    rows = []
    for n in range(instances - 10):
        rows.append(("big", f"b{n}", "1.0", 20, 2 if n % 2 == 0 else None))
        if n % 2 == 0:
            rows.append(("big", f"b{n}", "2.0", 2, None))
    rows += [("small", f"s{n}", "1.0", 20, None) for n in range(10)]
    return frame(rows)


def test_a_large_fleet_opens_as_summary_bands_of_its_version_mix(state, timeline):
    assert BAND_ABOVE < 400
    load(timeline, state, big_fleet(400))
    plot = timeline.plot
    lay = plot.layout
    assert list(lay.row_kind) == [HEADER, BAND, BAND, HEADER, BAND, BAND]
    assert labels(plot)[:2] == ["▸ big · us-east-1 (390)", "1.0 50% · 2.0 50%"]
    assert plot.mix_at(0, at(3)) == {"1.0": 390}
    assert plot.mix_at(0, at(1)) == {"1.0": 195, "2.0": 195}
    text = plot.hover_text(at(1), 1.5)
    assert "big — prod / us-east-1 at" in text and "390 instances" in text
    assert "1.0: 195 (50%)" in text and "2.0: 195 (50%)" in text
    # Drawn in the versions' colours: the band is stacked shares, 2.0 on top after 2 h ago.
    timeline.range_buttons["Day"].click()
    new = plot._version_items[plot.data.versions.index("2.0")].opts
    assert plot.band_rects > 0 and len(new["x0"]) >= 1
    assert min(new["x0"]) == pytest.approx(at(2), abs=DAY / 150)  # within a column
    assert new["y1"][0] - new["y0"][0] == pytest.approx((new["y1"][0] - 1.14) / 2, rel=0.2) \
        or new["y0"][0] == pytest.approx(1.14)
    # Expanding a band shows its instances.
    plot.click_at(at(1), 0.5)
    assert plot.layout.row_kind[1] != BAND
    assert plot.layout.shown_count[0] == 390


def test_a_small_fleet_opens_expanded(state, timeline):
    load(timeline, state, big_fleet(40))
    assert not timeline.plot.layout.collapsed


def freshness(last_ok: float) -> pd.DataFrame:
    stamp = pd.Timestamp(last_ok, unit="s", tz="UTC")
    return pd.DataFrame({"scope": ["prod"], "region": ["us-east-1"], "last_poll": [stamp],
                         "last_ok": [stamp], "ok": [False], "error": ["timed out"]})


def test_open_spans_are_unknown_after_the_last_good_poll(state, timeline):
    load(timeline, state, frame(WORKER))
    plot = timeline.plot
    timeline.range_buttons["Day"].click()
    w1 = int(plot.layout.inst_row[list(plot.data.inst_id).index("w1")])
    assert "now (open)" in plot.hover_text(at(1), w1 + 0.5)
    assert len(plot._stale_hatch.opts["x0"]) == 0

    state.set_freshness(freshness(at(2)))
    last = datetime.fromtimestamp(at(2), UTC).strftime("%H:%M")
    text = plot.hover_text(at(1), w1 + 0.5)
    assert f"end   unknown since {last} (last successful poll of prod)" in text
    assert "now (open)" not in text
    hatch = plot._stale_hatch.opts
    # Hatched from the last good poll to now on the open spans (w1, w2, a1); not on the rest.
    starts = sorted(np.round(hatch["x0"]).tolist())
    assert starts[0] == pytest.approx(at(2)) and len(starts) == 3
    # ...up to now (w2, a second old, is drawn MIN_BAR_PX wide: a little past it).
    assert NOW - 1 <= max(hatch["x1"]) <= NOW + DAY * 0.01
    # A poll a moment ago: nothing is stale.
    state.set_freshness(freshness(NOW - 5))
    assert len(plot._stale_hatch.opts["x0"]) == 0


def test_spans_inferred_from_cloud_records_are_lighter_and_say_so(state, timeline):
    load(timeline, state, frame(WORKER, source=["observed", "observed", "cloudtrail",
                                                 "asg-activity, launch-time", None]))
    plot = timeline.plot
    timeline.range_buttons["Week"].click()
    plot.update_rows()
    plot.getViewBox().setRange(yRange=(0, plot.layout.n_rows), padding=0)
    old1 = int(plot.layout.inst_row[list(plot.data.inst_id).index("old1")])
    assert "inferred from CloudTrail" in plot.hover_text(at(50), old1 + 0.5)
    old2 = int(plot.layout.inst_row[list(plot.data.inst_id).index("old2")])
    assert "inferred from the group's activity history and the launch time" in \
        plot.hover_text(at(50), old2 + 0.5)
    w1 = int(plot.layout.inst_row[list(plot.data.inst_id).index("w1")])
    assert "inferred" not in plot.hover_text(at(1), w1 + 0.5)
    lighter = plot._inferred_item.opts
    assert sorted(lighter["y0"].astype(int).tolist()) == sorted(
        int(plot.layout.inst_row[list(plot.data.inst_id).index(i)]) for i in ("old1", "old2"))
    # Without the column every span is observed.
    load(timeline, state, frame(WORKER))
    assert len(plot._inferred_item.opts["x0"]) == 0


def test_marker_labels_read_across_and_turn_back_at_the_right_edge(state, timeline):
    load(timeline, state, frame(WORKER))
    plot = timeline.plot
    timeline.range_buttons["Day"].click()
    state.set_markers(pd.DataFrame({
        "time": pd.to_datetime([at(12), at(0.05)], unit="s", utc=True),
        "label": ["▶ rollback api → 2.3.0", "▶ replace w1"]}))
    early, late = plot._marker_items
    assert early.label.rotateAxis is None and early.label.angle == 0  # horizontal
    assert early.label.anchors[0] == (0, 0)  # reads rightwards from its line
    assert late.label.anchors[0] == (1, 0)  # near the right edge: leftwards, not cut off
    assert early.label.orthoPos != late.label.orthoPos


def test_filter_and_focus_for_linked_panels(qtbot, state, timeline):
    load(timeline, state, frame(WORKER))
    plot = timeline.plot
    timeline.set_instance_filter({TimelineWidget.instance_key("prod", "w1")})
    assert labels(plot) == ["▾ worker · us-east-1 (1 of 4)", "w1"]
    timeline.set_instance_filter(set())
    assert labels(plot) == []
    timeline.set_instance_filter(None)
    assert labels(plot)[0] == "▾ api · us-east-1 (1)"

    plot.set_collapsed(frozenset({1}))  # worker as a band
    plot.getViewBox().setRange(yRange=(0, 2), padding=0)
    assert timeline.focus_group("prod", "us-east-1", "worker")
    header = plot.row_of_group(1)
    assert plot.layout.row_kind[header + 1] != BAND  # expanded
    assert plot.getViewBox().viewRange()[1][0] == pytest.approx(header - 0.3)
    assert plot._focus_band.opts["y0"][0] == header
    qtbot.waitUntil(lambda: len(plot._focus_band.opts["x0"]) == 0, timeout=5000)
    assert not timeline.focus_group("prod", "us-east-1", "nope")


def test_a_filter_keeps_only_the_action_marks_of_the_groups_it_shows(state, timeline):
    load(timeline, state, frame(WORKER))
    plot = timeline.plot
    marks = pd.DataFrame({
        "time": pd.to_datetime([at(5), at(2)], unit="s", utc=True),
        "label": ["rollback worker", "replace api"], "scope": "prod", "region": "us-east-1",
        "group": ["worker", "api"]})
    timeline.set_markers(marks)
    shown = lambda: sorted(item.label.toPlainText() for item in plot._marker_items)  # noqa: E731
    assert shown() == ["replace api", "rollback worker"]
    timeline.set_instance_filter({TimelineWidget.instance_key("prod", "a1")})
    assert shown() == ["replace api"]
    timeline.set_instance_filter(None)
    assert shown() == ["replace api", "rollback worker"]


def test_a_rollout_begun_a_moment_ago_shows_in_the_band_at_a_week(state, timeline):
    rows = [("big", f"b{n}", "1.0", 100, 30 / 3600 if n < 40 else None) for n in range(390)]
    rows += [("big", f"b{n}", "2.0", 30 / 3600, None) for n in range(40)]
    rows += [("small", f"s{n}", "1.0", 100, None) for n in range(10)]
    load(timeline, state, frame(rows))
    plot = timeline.plot
    timeline.range_buttons["Week"].click()
    assert 0 in plot.layout.collapsed
    new = plot._version_items[plot.data.versions.index("2.0")].opts
    assert len(new["x0"]) == 1 and new["x1"][0] >= NOW  # a stub at now, in its colour
    (x0, x1), _ = plot.getViewBox().viewRange()
    px = (new["x1"][0] - new["x0"][0]) * plot.getViewBox().width() / (x1 - x0)
    assert px >= MIN_BAR_PX - 0.01
