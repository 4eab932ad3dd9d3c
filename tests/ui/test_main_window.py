"""The main window on a real store seeded with a known fleet."""

from __future__ import annotations

import csv
from datetime import timedelta

import pytest
from PySide6.QtCore import QSettings, Qt

from fleetview.config import Config, StoreConfig
from fleetview.ui.main_window import MainWindow
from fleetview.ui.scope_tree import COL_AGE, COL_COUNT, COL_DRIFT, MIX_ROLE
from tests.ui.conftest import LAB_ERROR


def wait_for(qtbot, window: MainWindow, keys: set[str], timeout: int = 10000) -> None:
    seen: set[str] = set()
    window.loaded.connect(seen.add)
    qtbot.waitUntil(lambda: keys <= seen, timeout=timeout)
    window.loaded.disconnect(seen.add)




def tree_text(window, key, col=COL_COUNT) -> str:
    item = window.tree.item_for(key)
    assert item is not None, f"no tree node {key}"
    return item.text(col)


def test_tree_counts_versions_and_drift(window):
    assert tree_text(window, ("scope", "prod")) == "6"
    assert tree_text(window, ("region", "prod", "us-east-1")) == "4"
    assert tree_text(window, ("group", "prod", "us-east-1", "web")) == "3"
    assert tree_text(window, ("region", "prod", "eu-west-1")) == "2"
    assert tree_text(window, ("group", "prod", "eu-west-1", "api")) == "2"
    assert tree_text(window, ("instance", "prod", "us-east-1", "b1")) == "1"
    web = window.tree.item_for(("group", "prod", "us-east-1", "web"))
    assert web.data(2, MIX_ROLE) == {"1.0": 2, "1.1": 1}
    assert tree_text(window, ("group", "prod", "us-east-1", "web"), COL_DRIFT) == "◆ 2"
    assert tree_text(window, ("group", "prod", "eu-west-1", "api"), COL_DRIFT) == "◆ 1"
    assert tree_text(window, ("scope", "prod"), COL_DRIFT) == "◆ 3"
    assert tree_text(window, ("region", "prod", "us-east-1"), COL_AGE) == "1 min ago"


def test_table_shows_the_fleet_now(window):
    frame = window.table.model.visible_frame()
    assert sorted(frame["instance_id"]) == ["a1", "a3", "b1", "w2", "w3", "w4"]
    versions = dict(zip(frame["instance_id"], frame["version"], strict=True))
    assert versions == {"a1": "2.0", "a3": "1.9", "b1": "0.9", "w2": "1.0", "w3": "1.0",
                        "w4": "1.1"}
    assert window.table.count_label.text() == "6 instances"


def test_timeline_rows_segments_and_legend(window):
    data = window.timeline.plot.data
    assert sorted(data.inst_id) == ["a1", "a2", "a3", "b1", "w1", "w2", "w3", "w4"]
    assert data.n_segments == 8
    assert set(data.versions) == {"0.9", "1.0", "1.1", "1.9", "2.0"}
    assert window.timeline.legend.counts == {"1.0": 2, "1.1": 1, "0.9": 1, "2.0": 1, "1.9": 1}
    # Three groups' headers (api, web, standalone) + 8 instance rows.
    assert window.timeline.plot.layout.n_rows == 11


@pytest.mark.parametrize(("text", "expected"), [
    ("version:1.0", {"w2", "w3"}),
    ("version:1", {"w2", "w3", "w4", "a3"}),
    ("region:eu-west-1", {"a1", "a3"}),
    ("drift:yes", {"w2", "w3", "a3"}),
    ("drift:no", {"a1", "b1", "w4"}),
    ("state:running", {"a1", "a3", "b1", "w2", "w3", "w4"}),
    ("state:stopped", set()),
    ("region:us-east-1 version:1.1", {"w4"}),
    ("b1-name", {"b1"}),
    ("-group:web region:us-east-1", {"b1"}),
])
def test_filter_terms(window, text, expected):
    window.table.set_filter_text(text)
    assert set(window.table.model.visible_frame()["instance_id"]) == expected
    assert window.table.model.rowCount() == len(expected)


def test_unknown_filter_key_is_reported_not_applied(window):
    window.table.set_filter_text("colour:red")
    assert window.table.model.rowCount() == 6
    assert "unknown filter key 'colour'" in window.table.filter_box.toolTip()


def test_scrubber_shows_the_fleet_as_of_then(qtbot, window, known_fleet):
    window.timeline.scrub_to(known_fleet.t1 + timedelta(minutes=30))
    wait_for(qtbot, window, {"fleet"})
    frame = window.table.model.visible_frame()
    assert sorted(frame["instance_id"]) == ["a1", "a2", "b1", "w1", "w2", "w3"]
    assert tree_text(window, ("group", "prod", "us-east-1", "web")) == "3"
    assert window.tree.item_for(("group", "prod", "us-east-1", "web")).data(2, MIX_ROLE) == \
        {"1.0": 3}
    assert window.timeline.legend.counts == {"1.0": 3, "2.0": 2, "0.9": 1}
    assert "As of:" in window.timeline.asof_label.text()
    assert "now" not in window.timeline.asof_label.text()

    window.timeline.scrub_to_now()
    wait_for(qtbot, window, {"fleet"})
    assert sorted(window.table.model.visible_frame()["instance_id"]) == \
        ["a1", "a3", "b1", "w2", "w3", "w4"]


def test_hover_text_names_instance_version_image_and_times(window, known_fleet):
    plot = window.timeline.plot
    i = list(plot.data.inst_id).index("w4")
    row = int(plot.layout.inst_row[i])
    x = (known_fleet.now - timedelta(minutes=30)).timestamp()
    text = plot.hover_text(x, row + 0.5)
    assert "w4-name (w4)" in text
    assert "version 1.1" in text
    assert "app-1.1" in text
    assert f"start {known_fleet.t2:%Y-%m-%d %H:%M:%S} UTC" in text
    assert "now (open)" in text
    # Before w4 was launched there is nothing under the pointer.
    assert plot.hover_text((known_fleet.t1 + timedelta(minutes=5)).timestamp(), row + 0.5) == ""
    w1 = int(plot.layout.inst_row[list(plot.data.inst_id).index("w1")])
    closed = plot.hover_text((known_fleet.t1 + timedelta(minutes=5)).timestamp(), w1 + 0.5)
    assert "version 1.0" in closed and f"end   {known_fleet.t2:%Y-%m-%d %H:%M:%S} UTC" in closed


def test_click_selects_the_instance_everywhere(window, known_fleet):
    plot = window.timeline.plot
    row = int(plot.layout.inst_row[list(plot.data.inst_id).index("a3")])
    plot.click_at(known_fleet.now.timestamp() - 60, row + 0.5)
    assert window.table.selected_instance() == "a3"
    assert window.details.instance_id == "a3"
    assert "drift" in window.details.label.text()
    assert window.side_tabs.currentWidget() is window.details


def test_clicking_a_group_header_collapses_it(window, known_fleet):
    plot = window.timeline.plot
    before = plot.layout.n_rows
    header = int(plot.layout.header_rows[0])
    plot.click_at(known_fleet.now.timestamp(), header + 0.5)
    assert plot.layout.n_rows < before
    plot.click_at(known_fleet.now.timestamp(), header + 0.5)
    assert plot.layout.n_rows == before


def test_palette_finds_a_group_and_selects_it(qtbot, window):
    qtbot.keyClick(window, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier)
    assert window.palette_popup.isVisible()
    qtbot.keyClicks(window.palette_popup.search, "api")
    assert window.palette_popup.shown_titles()[0] == "api"
    qtbot.keyClick(window.palette_popup.search, Qt.Key.Key_Return)
    assert not window.palette_popup.isVisible()
    assert window.tree.current_key() == ("group", "prod", "eu-west-1", "api")
    wait_for(qtbot, window, {"rollout"})
    assert window.rollout.figures["desired"].text() == "2.0"
    assert window.rollout.figures["done"].text().startswith("50%")


def test_palette_lists_commands_and_instances(window):
    titles = {e.title: e.kind for e in window.palette_entries()}
    assert titles["Poll now"] == "command"
    assert titles["web"] == "group"
    assert titles["w4-name"] == "instance"


def test_commands_are_extensible(window):
    ran = []
    window.add_command("Roll back group…", lambda: ran.append(1))
    entry = next(e for e in window.palette_entries() if e.title == "Roll back group…")
    entry.run()
    assert ran == [1]


def test_failing_scope_shows_its_badge(window):
    status = window.scope_status["lab"]
    assert status.badge.isVisibleTo(window)
    assert LAB_ERROR in status.badge.toolTip()
    assert not window.scope_status["prod"].badge.isVisibleTo(window)
    lab = window.tree.item_for(("scope", "lab"))
    assert lab is None or "failed" in lab.text(COL_AGE)


def test_collector_events_drive_progress_and_badges(window):
    window.on_collector_event({"event": "poll_started", "scope": "prod"})
    status = window.scope_status["prod"]
    assert status.polling and status.bar.maximum() == 0  # busy
    window.on_collector_event({"event": "scope_error", "scope": "prod", "region": "eu-west-1",
                               "error": "throttled; try again"})
    assert status.badge.isVisibleTo(window)
    assert "eu-west-1: throttled; try again" in status.badge.toolTip()
    window.on_collector_event({"event": "poll_finished", "scope": "prod", "ok": True})
    assert not status.polling
    assert not status.badge.isVisibleTo(window)


def test_a_finished_backfill_is_said_in_the_status_bar(window):
    text = "prod: rebuilt 40 instance spans and 2 group spans from 120 cloud records"
    window.on_collector_event({"event": "backfill_finished", "scope": "prod", "ok": True,
                               "spans": 40, "message": text})
    assert window.statusBar().currentMessage() == text


def test_keyboard_filter_focus_and_escape(qtbot, window):
    qtbot.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert window.table.filter_box.hasFocus() or window.focusWidget() is window.table.filter_box
    qtbot.keyClicks(window.table.filter_box, "drift:yes")
    assert window.table.model.rowCount() == 3
    qtbot.keyClick(window.table.filter_box, Qt.Key.Key_Escape)
    assert window.table.filter_box.text() == ""
    assert window.table.model.rowCount() == 6


def test_export_visible_rows_and_timeline_png(window, tmp_path):
    window.table.set_filter_text("region:us-east-1")
    path = tmp_path / "fleet.csv"
    assert window.table.export_csv(path) == 4
    with path.open() as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["instance_id"] for r in rows) == ["b1", "w2", "w3", "w4"]
    png = tmp_path / "timeline.png"
    assert window.export_timeline_png(str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_markers_are_drawn_from_a_frame(window, known_fleet):
    import pandas as pd

    window.timeline.set_markers(pd.DataFrame({"time": [known_fleet.t3], "label": ["rollback web"]}))
    assert len(window.timeline.plot._marker_items) == 1
    assert window.timeline.plot._marker_items[0].value() == pytest.approx(known_fleet.t3.timestamp())


def test_geometry_and_splitters_are_saved(qtbot, seeded_store, store_url, tmp_path):
    settings_path = str(tmp_path / "s.ini")
    config = Config(store=StoreConfig(url=store_url))
    first = MainWindow(seeded_store, config,
                       settings=QSettings(settings_path, QSettings.Format.IniFormat))
    qtbot.addWidget(first)
    first.resize(700, 600)  # within the offscreen platform's 800x800 screen
    first.show()
    first.main_split.setSizes([222, 400])
    sizes = first.main_split.sizes()
    first.close()
    second = MainWindow(seeded_store, config,
                        settings=QSettings(settings_path, QSettings.Format.IniFormat))
    qtbot.addWidget(second)
    second.show()
    assert second.size() == first.size()
    assert second.main_split.sizes() == sizes
    second.close()


def test_table_sorts_versions_naturally_both_ways(window):
    from fleetview.ui.fleet_table import COLUMNS

    column = [c for _, c in COLUMNS].index("version")
    window.table.view.sortByColumn(column, Qt.SortOrder.AscendingOrder)
    assert list(window.table.model.visible_frame()["version"]) == \
        ["0.9", "1.0", "1.0", "1.1", "1.9", "2.0"]
    window.table.view.sortByColumn(column, Qt.SortOrder.DescendingOrder)
    frame = window.table.model.visible_frame()
    assert list(frame["version"]) == ["2.0", "1.9", "1.1", "1.0", "1.0", "0.9"]
    window.table.set_filter_text("version:1.0")  # the sort holds under a filter
    assert list(window.table.model.visible_frame()["version"]) == ["1.0", "1.0"]


# -- linked panels, menus, a laptop's screen, honest words ----------------------------------
WEB_KEY = ("group", "prod", "us-east-1", "web")


def timeline_instances(window) -> set[str]:
    """The instance ids the timeline has a row for now."""
    from fleetview.ui.timeline_data import INSTANCE

    plot = window.timeline.plot
    refs = plot.layout.row_ref[plot.layout.row_kind == INSTANCE]
    return {str(plot.data.inst_id[int(i)]) for i in refs}


def test_a_tree_node_filters_the_table_and_the_timeline(qtbot, window):
    assert window.tree.select(WEB_KEY)
    assert set(window.table.model.visible_frame()["instance_id"]) == {"w2", "w3", "w4"}
    assert window.table.node_chip.isVisibleTo(window)
    assert "web" in window.table.node_chip.text()
    # The timeline keeps every instance the group had, w1 (replaced) too.
    assert window.timeline_filter_keys() == {f"prod\x1f{i}" for i in ("w1", "w2", "w3", "w4")}
    assert "w4" in timeline_instances(window)
    assert timeline_instances(window) <= {"w1", "w2", "w3", "w4"}
    # A typed term narrows within the node, on the table and the timeline alike.
    window.table.set_filter_text("version:1.0")
    assert set(window.table.model.visible_frame()["instance_id"]) == {"w2", "w3"}
    assert window.timeline_filter_keys() == {"prod\x1fw2", "prod\x1fw3"}
    assert timeline_instances(window) <= {"w2", "w3"}
    # A region, then the chip's ✕, then Esc: the whole fleet again.
    window.table.set_filter_text("")
    window.tree.select(("region", "prod", "eu-west-1"))
    assert set(window.table.model.visible_frame()["instance_id"]) == {"a1", "a3"}
    assert window.state.selected_group is None
    window.table.node_chip.click()
    assert window.table.model.rowCount() == 6
    assert window.timeline_filter_keys() is None
    assert {"a1", "w4", "b1"} <= timeline_instances(window)
    window.tree.select(WEB_KEY)
    window.clear_all()
    assert window.table.model.rowCount() == 6 and window.tree.current_key() is None


def test_a_group_shows_its_rollout_from_when_it_began_wanting_the_version(qtbot, window,
                                                                         known_fleet):
    window.tree.select(WEB_KEY)
    wait_for(qtbot, window, {"rollout"})
    progress = window.rollout.progress
    assert progress.desired == "1.1" and (progress.done, progress.total) == (1, 3)
    assert progress.started == known_fleet.t2
    assert window.rollout.figures["elapsed"].text() == "2 h"
    assert "00 s" not in window.rollout.figures["eta"].text()
    window.tree.select(("scope", "prod"))
    assert window.rollout.empty.isVisibleTo(window)


def test_the_window_fits_a_laptop_screen(qtbot, seeded_store, store_url, tmp_path):
    from PySide6.QtCore import QRect

    config = Config(store=StoreConfig(url=store_url))
    settings_path = str(tmp_path / "s.ini")
    big = MainWindow(seeded_store, config,
                     settings=QSettings(settings_path, QSettings.Format.IniFormat))
    qtbot.addWidget(big)
    laptop = QRect(0, 0, 1366, 768)
    big.fit_to_screen(laptop)
    assert laptop.contains(big.geometry())
    assert big.height() <= 768 - 30  # room for the title bar
    big.fit_to_screen(QRect(0, 0, 2560, 1440))
    assert (big.width(), big.height()) == (1480, 900)
    # Saved on a big screen, far to the right: restored on the laptop, it is brought back.
    big.move(1000, 400)
    big.save_settings()
    small = MainWindow(seeded_store, config,
                       settings=QSettings(settings_path, QSettings.Format.IniFormat))
    qtbot.addWidget(small)
    small.restoreGeometry(QSettings(settings_path, QSettings.Format.IniFormat)
                          .value("window/geometry"))
    small.fit_to_screen(laptop, restored=True)
    assert laptop.contains(small.geometry())


def test_the_menus_list_the_palettes_commands(window):
    menus = window.menu_bar
    assert set(menus.command_names()) == {c.name for c in window.commands}
    assert "Quit" in menus.command_names("File")
    assert "Keyboard shortcuts" in menus.command_names("Help")
    window.add_command("Show reports", lambda: None, menu="View")  # added later: listed too
    assert "Show reports" in menus.command_names("View")
    quit_action = next(a for a in menus.menus["File"].actions() if a.data() == "Quit")
    assert quit_action.text().endswith("\tCtrl+Q")


def test_palette_and_table_menu_name_where_and_never_nan(window):
    entries = window.palette_entries()
    assert not [e for e in entries if "nan" in f"{e.title} {e.detail}".split()
                or "nan " in e.detail]
    b1 = next(e for e in entries if e.title == "b1-name")
    assert "standalone" in b1.detail and "prod / us-east-1" in b1.detail
    ran = []
    window.add_node_action(lambda key: "Roll back…" if key[0] == "group" else None,
                           lambda key: ran.append(key))
    index = window.table.model.index(window.table.model.row_of("w2"), 0)
    menu = window.table.context_menu(index)
    action = next(a for a in menu.actions() if a.text() == "Group web: Roll back…")
    action.trigger()
    assert ran == [WEB_KEY]
    standalone = window.table.context_menu(
        window.table.model.index(window.table.model.row_of("b1"), 0))
    assert not [a for a in standalone.actions() if a.text().startswith("Group")]


def test_status_bar_names_each_scope_with_the_trees_count(window):
    prod = window.scope_status["prod"]
    assert "prod" in prod.name.text() and "· 6" in prod.name.text()
    assert tree_text(window, ("scope", "prod")) == "6"
    assert "Scope prod" in prod.toolTip()


def test_rows_say_how_old_their_data_is_and_the_tree_why_a_scope_fails(window):
    from fleetview.ui.fleet_table import COLUMNS, DATA_AGE

    col = [c for _, c in COLUMNS].index(DATA_AGE)
    model = window.table.model
    cell = model.index(model.row_of("w4"), col)
    assert model.data(cell) == "1 min ago"
    assert "last successful poll" in model.data(cell, Qt.ItemDataRole.ToolTipRole)
    lab = window.tree.item_for(("scope", "lab"))
    reason = lab.child(0)
    assert reason is not None and reason.text(0).startswith("⚠ 403 Forbidden")
    assert LAB_ERROR in reason.toolTip(0)


def test_the_name_column_does_not_repeat_the_id(window):
    from fleetview.ui.fleet_table import COLUMNS, prepare_rows

    name = [c for _, c in COLUMNS].index("name")
    frame = window.fleet.copy()
    frame.loc[frame["instance_id"] == "w4", "name"] = "w4"
    rows = prepare_rows(frame)
    cells = dict(zip(frame["instance_id"], rows.cells[name], strict=True))
    assert cells["w4"] == "" and cells["w2"] == "w2-name"
    assert not window.table.view.isColumnHidden(name)  # the known fleet has names
