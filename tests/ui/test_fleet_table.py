"""The fleet table on its own: what the operator sees, filters, sorts, selects and exports."""

from __future__ import annotations

import csv

import pandas as pd
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from fleetview.ui.colors import DRIFT, RED, VersionColors
from fleetview.ui.fleet_table import COLUMNS, MAX_FILTER_BOX_CHARS, FleetTable, prepare_rows
from fleetview.ui.state import FleetFrame, WindowState

START = pd.Timestamp("2026-01-01 08:30", tz="UTC")


def fleet() -> pd.DataFrame:
    rows = [
        # id, version, desired, group, region
        ("w1", "1.10", "1.10", "web", "us-east-1"),
        ("w2", "1.9", "1.10", "web", "us-east-1"),
        ("a1", "2.0", "2.0", "api", "eu-west-1"),
        ("b1", "0.9", None, None, "us-east-1"),
    ]
    return pd.DataFrame({
        "name": [f"{r[0]}-name" for r in rows], "instance_id": [r[0] for r in rows],
        "version": [r[1] for r in rows], "desired_version": [r[2] for r in rows],
        "drift": [r[2] is not None and r[1] != r[2] for r in rows],
        "state": ["running"] * len(rows), "group": [r[3] for r in rows],
        "region": [r[4] for r in rows], "zone": [f"{r[4]}a" for r in rows],
        "scope": ["prod"] * len(rows), "image_name": [f"app-{r[1]}" for r in rows],
        "start": [START] * len(rows),
    })


def column(name: str) -> int:
    return [c for _, c in COLUMNS].index(name)


@pytest.fixture
def table(qtbot):
    widget = FleetTable(VersionColors())
    qtbot.addWidget(widget)
    widget.resize(1000, 300)
    widget.set_frame(fleet())
    return widget


def cell(table: FleetTable, row: int, name: str, role=Qt.ItemDataRole.DisplayRole):
    return table.model.data(table.model.index(row, column(name)), role)


def test_rows_show_formatted_cells_and_a_count(table):
    assert table.count_label.text() == "4 instances"
    row = table.model.row_of("w2")
    assert cell(table, row, "drift") == "◆ drift"
    assert cell(table, row, "start") == "2026-01-01 08:30"
    assert cell(table, row, "drift", Qt.ItemDataRole.ForegroundRole).name() == DRIFT.lower()
    assert cell(table, row, "drift", Qt.ItemDataRole.ToolTipRole) == \
        "runs 1.9, its group wants 1.10"
    assert cell(table, table.model.row_of("b1"), "group") == ""  # standalone: empty, not None
    assert cell(table, row, "version", Qt.ItemDataRole.DecorationRole) is not None


def test_filter_narrows_rows_and_says_how_many_of_how_many(table):
    table.set_filter_text("drift:yes")
    assert list(table.model.visible_frame()["instance_id"]) == ["w2"]
    assert table.count_label.text() == "1 of 4 instances"
    table.set_filter_text("")
    assert table.count_label.text() == "4 instances"


def test_a_bad_filter_key_is_explained_not_applied(table):
    table.set_filter_text("colour:red")
    assert table.model.rowCount() == 4
    assert "unknown filter key 'colour'" in table.filter_box.toolTip()
    assert table.filter_box.styleSheet()  # marked
    table.set_filter_text("region:us-east-1")
    assert table.filter_box.toolTip() == ""


def test_versions_sort_as_versions_not_text(table):
    table.view.sortByColumn(column("version"), Qt.SortOrder.AscendingOrder)
    assert list(table.model.visible_frame()["version"]) == ["0.9", "1.9", "1.10", "2.0"]
    table.view.sortByColumn(column("version"), Qt.SortOrder.DescendingOrder)
    assert list(table.model.visible_frame()["version"]) == ["2.0", "1.10", "1.9", "0.9"]


def test_a_click_says_which_instance_and_selection_survives_new_rows(qtbot, table):
    row = table.model.row_of("a1")
    with qtbot.waitSignal(table.instance_selected) as chosen:
        table.view.clicked.emit(table.model.index(row, 0))
    assert chosen.args == ["a1"]
    table.select_instance("a1", emit=False)
    table.set_rows(prepare_rows(fleet().iloc[::-1]))  # a refresh puts a1 elsewhere
    assert table.selected_instance() == "a1"
    assert not table.select_instance("gone", emit=False)
    assert table.selected_instance() is None


def test_export_writes_the_rows_shown_in_their_order(table, tmp_path):
    table.set_filter_text("region:us-east-1")
    table.view.sortByColumn(column("version"), Qt.SortOrder.DescendingOrder)
    path = tmp_path / "fleet.csv"
    assert table.export_csv(path) == 3
    with path.open() as f:
        rows = list(csv.DictReader(f))
    assert [r["instance_id"] for r in rows] == ["w1", "w2", "b1"]
    assert list(rows[0])[:3] == ["name", "instance_id", "version"]


def test_it_follows_the_windows_state(qtbot):
    state = WindowState()
    table = FleetTable(VersionColors(), state=state)
    qtbot.addWidget(table)
    frame = fleet()
    state.set_frame(FleetFrame(frame, pd.DataFrame(), rows=prepare_rows(frame)))
    assert table.model.rowCount() == 4
    state.select_instance("w2", "timeline")
    assert table.selected_instance() == "w2"
    state.select_instance(None, "window")
    assert table.selected_instance() is None


def test_export_neutralises_cells_a_spreadsheet_would_run(table, tmp_path):
    frame = fleet()
    frame.loc[0, "name"] = '=HYPERLINK("http://evil.example","x")'
    frame.loc[1, "group"] = "+web"
    frame.loc[2, "image_name"] = "@SUM(A1)"
    frame.loc[3, "name"] = "-1+2"
    table.set_frame(frame)
    path = tmp_path / "fleet.csv"
    table.export_csv(path)
    with path.open() as f:
        rows = {r["instance_id"]: r for r in csv.DictReader(f)}
    assert rows["w1"]["name"] == '\'=HYPERLINK("http://evil.example","x")'
    assert rows["w2"]["group"] == "'+web"
    assert rows["a1"]["image_name"] == "'@SUM(A1)"
    assert rows["b1"]["name"] == "'-1+2"
    assert rows["a1"]["version"] == "2.0"  # plain values stay as they are


def test_a_pasted_megabyte_does_not_hold_the_window_and_says_so(qtbot, table):
    table.show()
    table.filter_box.setFocus()
    QApplication.clipboard().setText("web " * 250_000)
    table.filter_box.paste()
    assert len(table.filter_box.text()) <= MAX_FILTER_BOX_CHARS
    assert table.filter_note.isVisible()
    assert "only the first 500 are used" in table.filter_note.text()
    assert [r for r in table.model.visible_frame()["instance_id"]] == ["w1", "w2"]
    table.set_filter_text("web")
    assert not table.filter_note.isVisible()


def test_an_instance_on_a_bad_version_is_flagged(table):
    frame = fleet().assign(marked_bad=[None, "1.9 was quarantined on every group", None,
                                       None])
    table.set_frame(frame)
    row = table.model.row_of("w2")
    assert cell(table, row, "version") == "1.9  ⚠"
    assert cell(table, row, "version", Qt.ItemDataRole.ToolTipRole) == \
        "marked bad: 1.9 was quarantined on every group"
    assert cell(table, row, "version", Qt.ItemDataRole.ForegroundRole).name() == RED.lower()
    assert cell(table, table.model.row_of("w1"), "version") == "1.10"
    table.view.sortByColumn(column("version"), Qt.SortOrder.AscendingOrder)  # still versions
    assert list(table.model.visible_frame()["version"]) == ["0.9", "1.9", "1.10", "2.0"]


def test_a_bad_filter_says_so_under_the_box_until_the_text_is_fixed(qtbot, table):
    table.show()
    table.set_filter_text("colour:red")
    note = table.filter_note
    assert note.isVisible() and "unknown filter key 'colour'" in note.text()
    assert note.geometry().top() > table.filter_box.geometry().bottom()  # under the field
    table.set_filter_text("version:(((")
    assert "version:(((" in note.text() and table.model.rowCount() == 4
    table.set_filter_text("version:7")
    assert note.isVisible() and "No instance matches" in note.text()
    table.set_filter_text("version:1.9")
    assert not note.isVisible() and note.text() == ""


def test_lifecycle_and_state_reason_show_when_the_fleet_has_them(table):
    assert table.view.isColumnHidden(column("lifecycle"))
    spot = fleet().assign(lifecycle=["spot", None, None, None],
                          state_reason=[None, "Spot interruption", None, None],
                          standby=[False, True, False, False])
    table.set_frame(spot)
    assert not table.view.isColumnHidden(column("lifecycle"))
    assert not table.view.isColumnHidden(column("state_reason"))
    assert cell(table, 0, "lifecycle") == "spot"
    assert cell(table, 1, "state_reason") == "Spot interruption"
    assert cell(table, 1, "state") == "running (standby)"
