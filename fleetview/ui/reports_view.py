"""The Reports window: rollouts, rollbacks, delivery metrics and versions over a time range,
with pyqtgraph charts, and the same report exported as HTML, CSV or JSON."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QDateTime, Qt, QTimeZone, Signal
from PySide6.QtGui import QColor, QFontMetrics, QPalette
from PySide6.QtWidgets import (
    QComboBox,
    QDateTimeEdit,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from fleetview.domain.durations import short_duration
from fleetview.domain.versions import version_key
from fleetview.reports import colors as report_colors
from fleetview.reports.export import FORMATS, render, rows
from fleetview.reports.params import ReportArgumentError, ReportParams, split_names
from fleetview.reports.report import Report, build_report, check_names
from fleetview.ui.colors import VersionColors, muted
from fleetview.ui.rich_text import escape, plain_label, plain_tooltip
from fleetview.ui.tasks import TaskRunner

RANGES = (("Last 7 days", 7), ("Last 30 days", 30), ("Last 90 days", 90), ("Custom", None))
ALL_SCOPES = "All scopes"
_TABLES = {
    "rollouts": [("group", "Group"), ("from_version", "From"), ("to_version", "To"),
                 ("kind", "Kind"), ("status", "Status"), ("start", "Start (UTC)"),
                 ("end", "End (UTC)"), ("duration_s", "Duration"), ("instances", "Instances"),
                 ("longest_wait_s", "Longest wait"), ("flags", "Stalled / paused / rolled back"),
                 ("lead_time_s", "Lead time"), ("time_to_restore_s", "Time to restore")],
    "actions": [("kind", "Kind"), ("group", "Group"), ("from_versions", "From"),
                ("to_version", "To"), ("confirmed", "Confirmed (UTC)"), ("actor", "Who"),
                ("reason", "Reason"), ("status", "Status"),
                ("time_to_recover_s", "Time to recover"), ("audit_seq", "Audit entry")],
    "versions": [("version", "Version"), ("first_seen", "First seen (UTC)"),
                 ("last_seen", "Last seen (UTC)"), ("instance_hours", "Instance-hours"),
                 ("instances", "Instances"), ("running_in", "Still running in"),
                 ("groups", "Ran in")],
}
_EXPORT_FILTERS = {"html": "HTML page (*.html)", "csv": "CSV (*.csv)", "json": "JSON (*.json)"}


def load_report(store, params: ReportParams) -> Report:
    """Off the GUI thread: the whole report, read and worked out (a scope or group the store
    never saw is refused, not shown as an empty report)."""
    check_names(store, params)
    return build_report(store, params)


def _cell(key: str, value) -> str:
    if value is None:
        return "—"
    if key.endswith("_s"):
        return _duration(float(value))
    if isinstance(value, str) and len(value) == 20 and value.endswith("Z") and "T" in value:
        return value[:16].replace("T", " ")  # an ISO instant, shown to the minute
    if isinstance(value, float):
        return f"{value:,.1f}"
    return str(value)


def _duration(seconds: float) -> str:
    return f"{seconds / 86400:.1f} d" if seconds >= 2 * 86400 else short_duration(seconds)


def _epoch(us: int) -> float:
    return us / 1e6


class ReportsView(QWidget):
    """Controls for the range and selection, the four figures, three charts and the tables.

    `load()` reads the report on the task runner; `report` is the one shown; `loaded` is
    emitted each time one is shown, and `failed` with the message when it could not be."""

    loaded = Signal()
    failed = Signal(str)

    def __init__(self, store, tasks: TaskRunner, scopes: list[str] | None = None,
                 colors: VersionColors | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.store, self.tasks = store, tasks
        self.colors = colors or VersionColors()
        self.report: Report | None = None
        self._items: list = []

        self.range_box = QComboBox(self)
        for label, _ in RANGES:
            self.range_box.addItem(label)
        self.range_box.setCurrentIndex(1)
        now = QDateTime.currentDateTimeUtc()
        self.from_edit = QDateTimeEdit(now.addDays(-30), self)
        self.to_edit = QDateTimeEdit(now, self)
        for edit in (self.from_edit, self.to_edit):
            edit.setTimeZone(QTimeZone.utc())
            edit.setDisplayFormat("yyyy-MM-dd HH:mm")
            edit.setCalendarPopup(True)
        self.scope_box = QComboBox(self)
        self.scope_box.addItem(ALL_SCOPES)
        for scope in scopes or ():
            self.scope_box.addItem(scope)
        self.groups_edit = QLineEdit(self)
        self.groups_edit.setPlaceholderText("all groups (or web, api)")
        self.groups_edit.setMaxLength(2000)
        self.groups_edit.setMinimumWidth(180)
        self.stall_hours = QSpinBox(self)
        self.stall_hours.setRange(1, 24 * 14)
        self.stall_hours.setValue(1)
        self.stall_hours.setSuffix(" h")
        self.window_hours = QSpinBox(self)
        self.window_hours.setRange(1, 24 * 60)
        self.window_hours.setValue(24)
        self.window_hours.setSuffix(" h")
        self.refresh_button = QPushButton("Show", self)
        self.export_box = QComboBox(self)
        self.export_box.addItems([f.upper() for f in FORMATS])
        self.export_button = QPushButton("Export…", self)
        self.status = plain_label("", self)
        self.status.setObjectName("reportStatus")
        self.status.setWordWrap(True)

        controls = QHBoxLayout()
        for label, widget in (("Range", self.range_box), ("From", self.from_edit),
                              ("to", self.to_edit), ("Scope", self.scope_box),
                              ("Groups", self.groups_edit), ("Stalled after", self.stall_hours),
                              ("Failure window", self.window_hours)):
            controls.addWidget(QLabel(label, self))
            controls.addWidget(widget, 2 if widget is self.groups_edit else 0)
        controls.addWidget(self.refresh_button)
        controls.addStretch(1)
        controls.addWidget(self.export_box)
        controls.addWidget(self.export_button)

        self.figures: dict[str, QLabel] = {}
        self.figure_notes: dict[str, QLabel] = {}
        grid = QGridLayout()
        grid.setHorizontalSpacing(24)
        for col, (key, caption) in enumerate((
                ("deployment_frequency", "Deployment frequency"),
                ("lead_time", "Lead time (median)"),
                ("change_failure_rate", "Change failure rate"),
                ("time_to_restore", "Time to restore (median)"))):
            cap = QLabel(caption, self)
            cap.setObjectName("figureCaption")
            value = plain_label("—", self)
            value.setObjectName(f"report_{key}")
            font = value.font()
            font.setPointSizeF(font.pointSizeF() * 1.5)
            font.setBold(True)
            value.setFont(font)
            note = plain_label("", self)
            note.setObjectName(f"report_{key}_note")
            grid.addWidget(cap, 0, col)
            grid.addWidget(value, 1, col)
            grid.addWidget(note, 2, col)
            self.figures[key], self.figure_notes[key] = value, note

        self.weekly_plot = self._plot("Rollouts per week")
        self.duration_plot = self._plot("Lead time and time to restore (hours)")
        self.duration_plot.addLegend(offset=(10, 5), labelTextColor=self.palette().color(
            QPalette.ColorRole.Text))
        self.lanes_plot = self._plot("Versions over time, a lane per group")
        self.lanes_plot.getPlotItem().invertY(True)
        # The versions' key sits above the lanes, not on them: a legend inside the plot
        # covers the first lane.
        self.lanes_key = QLabel(self)
        self.lanes_key.setObjectName("reportLanesKey")
        self.lanes_key.setTextFormat(Qt.TextFormat.RichText)  # versions escaped in _draw_lanes
        lanes_box = QWidget(self)
        lanes_layout = QVBoxLayout(lanes_box)
        lanes_layout.setContentsMargins(0, 0, 0, 0)
        lanes_layout.setSpacing(2)
        lanes_layout.addWidget(self.lanes_key)
        lanes_layout.addWidget(self.lanes_plot, 1)
        charts_top = QSplitter(Qt.Orientation.Horizontal, self)
        charts_top.addWidget(self.weekly_plot)
        charts_top.addWidget(self.duration_plot)

        self.tables: dict[str, QTableWidget] = {}
        self.table_tabs = QTabWidget(self)
        for name, title in (("rollouts", "Rollouts"), ("actions", "Rollbacks and replaces"),
                            ("versions", "Versions")):
            table = QTableWidget(0, len(_TABLES[name]), self)
            table.setObjectName(f"report_{name}")
            table.setHorizontalHeaderLabels([h for _, h in _TABLES[name]])
            table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
            table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
            table.verticalHeader().setVisible(False)
            table.horizontalHeader().setStretchLastSection(True)
            self.tables[name] = table
            self.table_tabs.addTab(table, title)

        body = QSplitter(Qt.Orientation.Vertical, self)
        body.addWidget(charts_top)
        body.addWidget(lanes_box)
        body.addWidget(self.table_tabs)
        body.setSizes([230, 230, 300])
        body.setChildrenCollapsible(False)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addLayout(controls)
        layout.addWidget(self.status)
        layout.addLayout(grid)
        layout.addWidget(body, 1)

        self.range_box.currentIndexChanged.connect(self._on_range)
        self.refresh_button.clicked.connect(self.load)
        self.groups_edit.returnPressed.connect(self.load)
        self.export_button.clicked.connect(self._on_export_clicked)
        self._on_range(self.range_box.currentIndex())
        self._apply_palette()

    # -- parameters and loading -----------------------------------------------------------
    def _plot(self, title: str) -> pg.PlotWidget:
        plot = pg.PlotWidget(self, axisItems={"bottom": pg.DateAxisItem("bottom", utcOffset=0)})
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.setMouseEnabled(x=False, y=False)
        plot.setTitle(title, size="10pt")
        return plot

    def _on_range(self, index: int) -> None:
        custom = RANGES[index][1] is None
        self.from_edit.setEnabled(custom)
        self.to_edit.setEnabled(custom)

    def params(self, now: datetime | None = None) -> ReportParams:
        """What the controls ask for; ReportArgumentError says what is wrong with it."""
        now = now or datetime.now(UTC)
        days = RANGES[self.range_box.currentIndex()][1]
        if days is None:
            start = datetime.fromtimestamp(self.from_edit.dateTime().toSecsSinceEpoch(), UTC)
            end = datetime.fromtimestamp(self.to_edit.dateTime().toSecsSinceEpoch(), UTC)
        else:
            start, end = now - timedelta(days=days), now
        scope = self.scope_box.currentText()
        return ReportParams(
            start, end, () if scope == ALL_SCOPES else (scope,),
            split_names([self.groups_edit.text()]),
            timedelta(hours=self.stall_hours.value()),
            timedelta(hours=self.window_hours.value()))

    def load(self) -> None:
        try:
            params = self.params()
        except ReportArgumentError as exc:
            self._on_error(exc)
            return
        self.status.setText("Reading the report…")
        self.tasks.start("report", load_report, self.store, params,
                         on_done=self.set_report, on_error=self._on_error)

    def _on_error(self, exc: BaseException) -> None:
        text = f"Could not make the report: {exc}"
        self.status.setText(text)
        self.failed.emit(text)

    # -- showing ----------------------------------------------------------------------------
    def set_report(self, report: Report) -> None:
        self.report = report
        m = report.metrics
        self.colors.update([v.version for v in report.versions])
        self.figures["deployment_frequency"].setText(f"{m.deployments_per_week:.1f} / week")
        self.figure_notes["deployment_frequency"].setText(
            f"{m.deployments} completed rollouts in {m.days:.1f} days")
        self.figures["lead_time"].setText(_cell("_s", m.lead_time_median_s))
        self.figure_notes["lead_time"].setText(
            f"image created → group on it; {m.lead_time_measured} rollouts")
        self.figures["change_failure_rate"].setText(
            "—" if m.change_failure_rate is None else f"{m.change_failure_rate:.0%}")
        self.figure_notes["change_failure_rate"].setText(
            f"{m.failed} of {m.changes} rollouts rolled back")
        self.figures["time_to_restore"].setText(_cell("_s", m.time_to_restore_median_s))
        self.figure_notes["time_to_restore"].setText(
            f"{m.restores_measured} measured; rollback → converged "
            f"{_cell('_s', m.rollback_recovery_median_s)}")
        notes = report.notes()
        self.status.setText(" ".join(notes) if notes else
                            f"{len(report.rollouts)} rollouts, {len(report.actions)} rollbacks "
                            f"and replaces, {len(report.versions)} versions")
        self._fill_tables(report)
        self._draw(report)
        self.loaded.emit()

    def _fill_tables(self, report: Report) -> None:
        data = rows(report)
        for name, columns in _TABLES.items():
            table = self.tables[name]
            records = data[name]
            table.setSortingEnabled(False)
            table.setRowCount(len(records))
            for row, record in enumerate(records):
                for col, (key, _) in enumerate(columns):
                    if key == "flags":
                        text = ", ".join(w for w, on in (
                            ("stalled", record["stalled"]), ("paused", record["paused"]),
                            (f"rolled back ({record['rollback_by']})", record["rolled_back"]))
                            if on)
                    elif key == "group" and "region" in record:
                        text = f"{record['scope']} / {record['region']} / " \
                               f"{record['group'] or '—'}"
                    else:
                        text = _cell(key, record.get(key))
                    item = QTableWidgetItem(text)
                    item.setToolTip(plain_tooltip(text))
                    if key in ("status", "flags") and ("rolled back" in text):
                        item.setForeground(QColor(report_colors.ERROR))
                    elif key == "flags" and text:
                        item.setForeground(QColor(report_colors.STALE))
                    table.setItem(row, col, item)
            table.resizeColumnsToContents()

    def _clear_plots(self) -> None:
        for plot, item in self._items:
            plot.removeItem(item)
            item.deleteLater()
        self._items = []
        self.lanes_plot.getPlotItem().getAxis("left").setTicks(None)
        self.lanes_key.setText("")

    def _add(self, plot: pg.PlotWidget, item) -> None:
        plot.addItem(item)
        self._items.append((plot, item))

    def _draw(self, report: Report) -> None:
        self._clear_plots()
        t0, t1 = _epoch(report.t0), _epoch(report.t1)
        week = 7 * 86400
        weeks = report.weeks
        if weeks:
            x = np.asarray([_epoch(w.start) + week / 2 for w in weeks])
            below = np.zeros(len(weeks))
            for values, colour, name in (
                    ([w.rollouts - w.rolled_back for w in weeks], report_colors.BLUE, "held"),
                    ([w.rolled_back for w in weeks], report_colors.ERROR, "rolled back"),
                    ([w.rollbacks for w in weeks], report_colors.STALE, "rollbacks")):
                height = np.asarray(values, dtype=float)
                self._add(self.weekly_plot, pg.BarGraphItem(
                    x=x, height=height, y0=below, width=week * 0.7, brush=colour,
                    pen=pg.mkPen(None), name=name))
                below = below + height
            self.weekly_plot.setXRange(_epoch(weeks[0].start), _epoch(weeks[-1].start) + week,
                                       padding=0.02)
            self.weekly_plot.setYRange(0, max(1.0, float(below.max())) * 1.1, padding=0)
        highest = 1.0
        for name, colour, points in (
                ("lead time", report_colors.BLUE,
                 [(r.end, r.lead_time_s) for r in report.rollouts
                  if r.lead_time_s is not None and r.end is not None]),
                ("time to restore", report_colors.ERROR,
                 [(r.restored, r.time_to_restore_s) for r in report.rollouts
                  if r.time_to_restore_s is not None and r.restored is not None])):
            item = pg.ScatterPlotItem(
                x=[_epoch(at) for at, _ in points], y=[v / 3600 for _, v in points], size=8,
                brush=pg.mkBrush(colour), pen=pg.mkPen(None), name=name)
            self._add(self.duration_plot, item)
            highest = max([highest, *(v / 3600 for _, v in points)])
        self.duration_plot.setXRange(t0, t1, padding=0.02)
        self.duration_plot.setYRange(0, highest * 1.15, padding=0)
        self._draw_lanes(report)

    def _draw_lanes(self, report: Report) -> None:
        names = sorted(report.lanes)
        by_colour: dict[tuple[str, str], tuple[list, list, list]] = {}
        for row, name in enumerate(names):
            for seg in report.lanes[name]:
                end = report.t1 if seg.end is None else seg.end
                if seg.version is not None:
                    key = (self.colors.hex(seg.version), seg.version)
                else:
                    key = (report_colors.EMPTY, "no instance") if seg.empty else \
                        (report_colors.MIXED, "mixed")
                x0s, widths, ys = by_colour.setdefault(key, ([], [], []))
                x0s.append(_epoch(seg.start))
                widths.append((end - seg.start) / 1e6)
                ys.append(row)
        # One item per colour: pyqtgraph paints all its bars in one call.
        for (colour, _), (x0s, widths, ys) in by_colour.items():
            self._add(self.lanes_plot, pg.BarGraphItem(
                x0=np.asarray(x0s), width=np.asarray(widths), y=np.asarray(ys, dtype=float),
                height=0.7, brush=colour, pen=pg.mkPen(None)))
        self.lanes_key.setText("&nbsp;&nbsp;".join(
            f'<span style="color:{colour}">■</span>&nbsp;{escape(label)}'
            for colour, label in sorted(by_colour, key=lambda k: (k[1] in ("mixed",
                                                                          "no instance"),
                                                                  version_key(k[1])))))
        axis = self.lanes_plot.getPlotItem().getAxis("left")
        axis.setTicks([[(i, name) for i, name in enumerate(names)]])
        width = QFontMetrics(self.font()).horizontalAdvance(max(names, key=len)) if names else 0
        axis.setWidth(min(320, width + 16))
        self.lanes_plot.setXRange(_epoch(report.t0), _epoch(report.t1), padding=0.01)
        self.lanes_plot.setYRange(-0.6, max(0.6, len(names) - 0.4), padding=0)

    # -- export -----------------------------------------------------------------------------
    def export_to(self, path: str, fmt: str) -> None:
        """Write the report shown (the same as `fleetview report` would) to `path`."""
        if self.report is None:
            raise ReportArgumentError("no report is shown yet; press Show first")
        Path(path).write_text(render(self.report, fmt), encoding="utf-8", newline="")

    def _on_export_clicked(self) -> None:
        if self.report is None:
            self.status.setText("Show a report first, then export it.")
            return
        fmt = FORMATS[self.export_box.currentIndex()]
        start = datetime.fromtimestamp(self.report.t0 / 1e6, UTC)
        name = f"fleetview-report-{start:%Y%m%d}.{fmt}"
        path, _ = QFileDialog.getSaveFileName(self, "Export the report", name,
                                              _EXPORT_FILTERS[fmt])
        if not path:
            return
        try:
            self.export_to(path, fmt)
        except OSError as exc:
            self.status.setText(f"Could not write {path}: {exc.strerror or exc}; choose "
                                "another place")
            return
        self.status.setText(f"Wrote {path}")

    def _apply_palette(self) -> None:
        palette = self.palette()
        for plot in (self.weekly_plot, self.duration_plot, self.lanes_plot):
            plot.setBackground(palette.color(QPalette.ColorRole.Base))
            for name in ("left", "bottom"):
                axis = plot.getPlotItem().getAxis(name)
                axis.setPen(pg.mkPen(muted(palette, 90)))
                axis.setTextPen(pg.mkPen(palette.color(QPalette.ColorRole.Text)))

    def changeEvent(self, ev) -> None:
        if ev.type() in (ev.Type.PaletteChange, ev.Type.ApplicationPaletteChange):
            self._apply_palette()
        super().changeEvent(ev)


class ReportsWindow(QMainWindow):
    """The Reports view in a window of its own, beside the main window."""

    def __init__(self, store, tasks: TaskRunner, scopes: list[str] | None = None,
                 colors: VersionColors | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("FleetView — Reports")
        self.view = ReportsView(store, tasks, scopes, colors, self)
        self.setCentralWidget(self.view)
        self.resize(1280, 900)


def show_reports(window) -> ReportsWindow:
    """Open (or raise) the main window's Reports window and read the report."""
    reports = getattr(window, "reports_window", None)
    if reports is None:
        scopes = [scope.name for scope in window.config.scopes]
        reports = ReportsWindow(window.store, window.tasks, scopes, window.colors, window)
        reports.setWindowFlag(Qt.WindowType.Window, True)
        window.reports_window = reports
        reports.view.load()
    reports.show()
    reports.raise_()
    reports.activateWindow()
    return reports
