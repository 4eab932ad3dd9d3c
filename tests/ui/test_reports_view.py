"""The Reports view on a store with a known history: the figures, tables and charts it shows,
its export, and its entry in the main window."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import QDateTime, QTimeZone

from fleetview.config import Config, PollConfig, StoreConfig
from fleetview.domain.durations import short_duration
from fleetview.reports.export import render
from fleetview.store import Store
from fleetview.ui.main_window import MainWindow
from fleetview.ui.reports_view import RANGES, ReportsView
from fleetview.ui.tasks import TaskRunner
from tests.helpers import report_history as known


@pytest.fixture(scope="module")
def report_url(tmp_path_factory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('reports') / 'history.db'}"
    with Store.open(url) as store:
        known.seed(store)
    return url


@pytest.fixture
def view(qtbot, report_url):
    store = Store.open(report_url, readonly=True)
    tasks = TaskRunner()
    widget = ReportsView(store, tasks, ["prod"])
    qtbot.addWidget(widget)
    widget.resize(1300, 900)
    widget.show()
    yield widget
    tasks.shutdown()
    store.close()


def _utc(hours: float) -> QDateTime:
    return QDateTime.fromSecsSinceEpoch(int(known.h(hours).timestamp()), QTimeZone.utc())


def _show_known_range(qtbot, view: ReportsView) -> None:
    view.range_box.setCurrentIndex(len(RANGES) - 1)  # custom
    view.from_edit.setDateTime(_utc(0))
    view.to_edit.setDateTime(_utc(known.END_H))
    view.stall_hours.setValue(3)
    with qtbot.waitSignal(view.loaded, timeout=10000):
        view.refresh_button.click()


def _column(table, header: str) -> list[str]:
    headers = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    col = headers.index(header)
    return [table.item(r, col).text() for r in range(table.rowCount())]


def test_the_view_shows_the_known_figures_and_rows(qtbot, view, tmp_path):
    _show_known_range(qtbot, view)
    assert view.figures["deployment_frequency"].text() == "8.4 / week"
    assert view.figures["lead_time"].text() == short_duration(5 * 3600)
    assert view.figures["change_failure_rate"].text() == "50%"
    assert view.figures["time_to_restore"].text() == short_duration(4 * 3600)
    assert f"rollback → converged {short_duration(3600)}" in \
        view.figure_notes["time_to_restore"].text()
    rollouts = view.tables["rollouts"]
    assert _column(rollouts, "Status") == ["completed", "completed", "rolled back",
                                           "completed", "completed", "in progress"]
    assert _column(rollouts, "Stalled / paused / rolled back") == [
        "", "stalled, paused", "rolled back (alice)", "rolled back (observed)", "", "stalled"]
    assert _column(rollouts, "Start (UTC)")[0] == "2026-01-01 10:00"
    assert _column(view.tables["actions"], "Reason") == ["1.2 returns 500s", "disk errors"]
    assert _column(view.tables["versions"], "Instance-hours")[2] == "132.0"
    # Two lanes; the weekly bars and the points are drawn.
    ticks = view.lanes_plot.getPlotItem().getAxis("left")._tickLevels[0]
    assert [name for _, name in ticks] == ["prod/us-east-1/api", "prod/us-east-1/web"]
    assert len(view._items) > 3
    qtbot.wait(100)  # the lanes' axis takes its new width at the next layout
    view.grab().save(str(tmp_path / "reports-view.png"), "PNG")


def test_export_writes_what_the_command_line_writes(qtbot, view, tmp_path):
    _show_known_range(qtbot, view)
    for fmt in ("html", "csv", "json"):
        path = tmp_path / f"report.{fmt}"
        view.export_to(str(path), fmt)
        assert path.read_text(encoding="utf-8") == render(view.report, fmt)
    assert len(json.loads((tmp_path / "report.json").read_text())["rollouts"]) == 6


def test_a_group_the_store_never_saw_is_said_not_shown_empty(qtbot, view):
    view.groups_edit.setText("wbe")
    with qtbot.waitSignal(view.failed, timeout=10000) as failed:
        view.refresh_button.click()
    assert "no history of group wbe" in failed.args[0]
    assert "known groups: api, web" in view.status.text()


def test_a_custom_range_that_ends_before_it_starts(qtbot, view):
    view.range_box.setCurrentIndex(len(RANGES) - 1)
    view.from_edit.setDateTime(_utc(10))
    view.to_edit.setDateTime(_utc(5))
    with qtbot.waitSignal(view.failed, timeout=2000):
        view.refresh_button.click()
    assert "give --from before --to" in view.status.text() or "before it starts" in \
        view.status.text()


# The offscreen platform cannot stack or size windows; this marker replaces the package's.
@pytest.mark.qt_log_ignore(r"does not support raise", r"does not support propagateSizeHints")
def test_the_main_window_opens_reports_from_its_view_menu(qtbot, report_url):
    config = Config(store=StoreConfig(url=report_url), poll=PollConfig(interval_s=60))
    with Store.open(report_url, readonly=True) as store:
        window = MainWindow(store, config)
        qtbot.addWidget(window)
        command = next(c for c in window.commands if c.name.startswith("Reports"))
        assert command.menu == "View" and command.shortcut == "Ctrl+Shift+R"
        command.run()
        reports = window.reports_window
        with qtbot.waitSignal(reports.view.loaded, timeout=10000):
            pass
        assert reports.isVisible()
        command.run()  # again: the same window, raised
        assert window.reports_window is reports
        window.shutdown()
        window.close()
