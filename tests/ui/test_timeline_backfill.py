"""Backfilled history on the timeline, read from a real store: the rebuilt past of terminated
instances has rows where it is in view, drawn lighter and saying what it was inferred from,
and the legend keeps the colours the older versions shift."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QLabel

from fleetview.domain.backfill import Backfill, Record
from fleetview.domain.model import Image
from fleetview.store import Store
from fleetview.ui.colors import VersionColors
from fleetview.ui.loads import load_history
from fleetview.ui.state import WindowState
from fleetview.ui.timeline import TimelineWidget
from fleetview.ui.timeline_data import TimelineData
from tests.helpers.builders import at, group, instance, inventory, scope

DAY = 24 * 60
NOW = at(5)  # five minutes after the first poll


def _records() -> Backfill:
    """web ran 1.0 on i-old-1 and i-old-2 from ten days before the first poll, then rolled
    out 2.0 two days before it (i-a and i-b, still running, replaced them)."""
    def rec(kind, minutes, iid=None, image=None, source="cloudtrail"):
        return Record(at(minutes), kind, source, "us-east-1", instance_id=iid, group="web",
                      image_id=image, zone="us-east-1a", group_kind=None if iid else "asg")
    records = [
        rec("group_version", -10 * DAY, image="ami-1.0"),
        rec("group_version", -2 * DAY, image="ami-2.0"),
        rec("launch", -10 * DAY, "i-old-1", "ami-1.0"), rec("terminate", -2 * DAY + 30, "i-old-1"),
        rec("launch", -10 * DAY, "i-old-2", "ami-1.0", source="asg-activity"),
        rec("terminate", -2 * DAY + 60, "i-old-2", source="asg-activity"),
        rec("seen", -2 * DAY + 20, "i-a", "ami-2.0", source="launch-time"),
        rec("seen", -2 * DAY + 50, "i-b", "ami-2.0", source="launch-time"),
    ]
    images = {f"ami-{v}": Image("aws", f"ami-{v}", f"web-{v}") for v in ("1.0", "2.0")}
    return Backfill(records, [], 4, images)


@pytest.fixture
def store(tmp_path):
    with Store.open(f"sqlite:///{tmp_path / 'history.db'}") as s:
        s.record_poll(inventory(at(0), [instance("i-a", "2.0"), instance("i-b", "2.0")],
                                [group("web", "2.0")]), at(0), at(0))
        s.record_backfill(scope(), _records(), at(-30 * DAY), at(60),
                          lambda image: image.name.rsplit("-", 1)[1])
        yield s


@pytest.fixture
def shown(qtbot, store):
    """The window's path: the history load, the state, the timeline following it."""
    state = WindowState()
    colors = VersionColors()
    history = load_history(store, NOW, 30)
    colors.update(history.versions)
    widget = TimelineWidget(colors, state=state)
    qtbot.addWidget(widget)
    widget.resize(1000, 420)
    widget.show()
    qtbot.waitExposed(widget)
    state.set_history(history.timeline)
    widget.set_now(NOW.timestamp())
    return widget


def _rows(plot) -> list[str]:
    return [plot.row_label(r).strip() for r in range(plot.layout.n_rows)]


def _row_of(plot, instance_id: str) -> int:
    return int(plot.layout.inst_row[list(plot.data.inst_id).index(instance_id)])


def test_terminated_instances_rebuilt_from_cloud_records_have_rows_in_view(shown):
    plot = shown.plot
    shown.range_buttons["Day"].click()
    plot.update_rows()
    # The last day: only the live instances ran in it; the band counts all four.
    assert _rows(plot) == ["▾ web · us-east-1 (2 of 4)", "name-i-b", "name-i-a"]
    # The header says where the other two are, so "2 of 4" does not read as lost history.
    assert "2 ran only outside the time in view: a wider range (Week, Fit) or Empty rows " \
        "shows them" in plot.hover_text(NOW.timestamp(), 0.5)
    shown.range_buttons["Week"].click()
    plot.update_rows()
    assert _rows(plot) == ["▾ web · us-east-1 (4)", "name-i-b", "name-i-a", "i-old-2",
                           "i-old-1"]
    assert "outside the time in view" not in plot.hover_text(NOW.timestamp(), 0.5)


def test_rebuilt_spans_are_drawn_lighter_and_say_what_they_were_inferred_from(shown):
    plot = shown.plot
    shown.range_buttons["Week"].click()
    plot.update_rows()
    plot.getViewBox().setRange(yRange=(0, plot.layout.n_rows), padding=0)
    old1, old2, a = (_row_of(plot, i) for i in ("i-old-1", "i-old-2", "i-a"))
    in_old = (at(-3 * DAY)).timestamp()
    text = plot.hover_text(in_old, old1 + 0.5)
    assert "1.0" in text and "inferred from CloudTrail" in text
    assert "inferred from the group's activity history" in plot.hover_text(in_old, old2 + 0.5)
    # i-a: rebuilt from its launch time up to the first poll, observed since.
    assert "inferred from" in plot.hover_text(at(-DAY).timestamp(), a + 0.5)
    assert "inferred" not in plot.hover_text(at(3).timestamp(), a + 0.5)
    lighter = plot._inferred_item.opts
    rows = sorted(set(lighter["y0"].astype(int).tolist()))
    assert rows == sorted(_row_of(plot, i) for i in ("i-a", "i-b", "i-old-1", "i-old-2"))


def test_a_backfills_older_versions_take_new_colours_and_the_legend_keeps_the_old(qtbot):
    state = WindowState()
    colors = VersionColors(["2.0"])
    widget = TimelineWidget(colors, state=state)
    qtbot.addWidget(widget)
    widget.legend.set_counts({"2.0": 2})
    before = colors.hex("2.0")
    # A backfill brings 1.0, older: it takes a colour of its own; 2.0 keeps the one the
    # operator has been reading.
    colors.update(["1.0"])
    assert colors.hex("2.0") == before
    assert colors.hex("1.0") not in (before, colors.hex(None))
    assert colors.versions == ["1.0", "2.0"]
    state.set_history(TimelineData())
    qtbot.waitUntil(lambda: len(widget.legend.findChildren(QLabel, "legendChip")) == 1)
    chip = widget.legend.findChildren(QLabel, "legendChip")[0]
    assert colors.hex("2.0") in chip.text()
