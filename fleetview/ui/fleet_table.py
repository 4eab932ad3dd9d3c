"""The fleet table: a sortable, filterable model over the fleet DataFrame, and its widget."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QSizePolicy,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from fleetview.domain.csv_cells import safe_frame
from fleetview.domain.versions import version_key
from fleetview.ui.colors import AMBER, DRIFT, RED, VersionColors
from fleetview.ui.fleet_filter import FleetFilter, filter_mask, parse_filter
from fleetview.ui.rich_text import plain_label, plain_tooltip
from fleetview.ui.state import BAD_COLUMN, FleetFrame, Freshness, WindowState, age_look

# Not a fleet column: the age of the row's scope/region data, from the store's last polls.
DATA_AGE = "data_age"
# (header, fleet_at column)
COLUMNS: tuple[tuple[str, str], ...] = (
    ("Name", "name"),
    ("Instance", "instance_id"),
    ("Version", "version"),
    ("Desired", "desired_version"),
    ("Drift", "drift"),
    ("State", "state"),
    ("Data", DATA_AGE),
    ("Lifecycle", "lifecycle"),
    ("State reason", "state_reason"),
    ("Group", "group"),
    ("Region", "region"),
    ("Zone", "zone"),
    ("Scope", "scope"),
    ("Image", "image_name"),
    ("Since", "start"),
)
_COL = {column: n for n, (_, column) in enumerate(COLUMNS)}
_VERSION_COLUMNS = {"version", "desired_version"}
# Shown only when the fleet has them (clouds that say so; stores that keep them).
_OPTIONAL_COLUMNS = {"lifecycle", "state_reason"}
MAX_FILTER_BOX_CHARS = 4000
_Index = QModelIndex | QPersistentModelIndex
_ROOT = QModelIndex()


def _text(series: pd.Series, column: str) -> np.ndarray:
    if column in ("standby", "warm"):
        return np.where(series.fillna(False).astype(bool).to_numpy(), column, "")
    if column == "drift":
        return np.where(series.fillna(False).astype(bool).to_numpy(), "◆ drift", "")
    if column == "start":
        # numpy's formatter, not strftime: at 20,000 rows strftime holds the GIL (and so the
        # GUI thread) for tens of milliseconds.
        times = pd.to_datetime(series, utc=True).dt.tz_convert(None).to_numpy("datetime64[m]")
        text = np.datetime_as_string(times, unit="m").astype(object)
        return np.array([t.replace("T", " ") if t != "NaT" else "" for t in text], dtype=object)
    return series.astype("string").fillna("").to_numpy(dtype=object)


def _version_rank(series: pd.Series) -> np.ndarray:
    """Each row's version as its place in version order, so sorting is an integer argsort."""
    labels = series.astype(object).where(series.notna(), None)
    order = sorted({v for v in labels if isinstance(v, str)}, key=version_key)
    place = {v: i for i, v in enumerate(order)}
    return np.fromiter((place.get(v, -1) for v in labels), dtype=np.int64, count=len(labels))


@dataclass(frozen=True)
class FleetRows:
    """The fleet with its cells already formatted, and the rows a filter keeps.

    Made by `prepare_rows`, a pure function run on a worker thread: formatting 20,000 rows
    takes longer than the GUI thread may stall.
    """

    frame: pd.DataFrame
    cells: list[np.ndarray]
    ranks: dict[str, np.ndarray]
    flt: FleetFilter
    mask: np.ndarray
    bad: np.ndarray | None = None  # per row: why its version is marked bad, or ""


def prepare_rows(df: pd.DataFrame, flt: FleetFilter | None = None) -> FleetRows:
    flt = flt or FleetFilter()
    frame = df.reset_index(drop=True)
    cells = [_text(frame[c], c) if c in frame.columns
             else np.full(len(frame), "", dtype=object) for _, c in COLUMNS]
    if len(frame) and "name" in frame.columns:
        # A name that only repeats the id says nothing the Instance column does not.
        name, ids = cells[_COL["name"]], cells[_COL["instance_id"]]
        cells[_COL["name"]] = np.where(name == ids, "", name).astype(object)
    state = cells[_COL["state"]]
    for flag in ("standby", "warm"):  # a member held out of service says so with its state
        if flag in frame.columns and len(frame):
            shown = _text(frame[flag], flag)
            state = np.where(shown != "", state + " (" + shown.astype(object) + ")", state)
    cells[_COL["state"]] = np.asarray(state, dtype=object)
    ranks = {c: _version_rank(frame[c]) for c in _VERSION_COLUMNS if c in frame.columns}
    mask = filter_mask(frame, flt) if not flt.empty and len(frame) else \
        np.ones(len(frame), dtype=bool)
    bad = _text(frame[BAD_COLUMN], BAD_COLUMN) if BAD_COLUMN in frame.columns else None
    return FleetRows(frame, cells, ranks, flt, mask, bad)


class FleetTableModel(QAbstractTableModel):
    """Rows of `store.fleet_at(t)`, filtered by a `FleetFilter`, sorted by any column."""

    def __init__(self, colors: VersionColors, parent=None):
        super().__init__(parent)
        self.colors = colors
        self._rows = prepare_rows(pd.DataFrame(columns=[c for _, c in COLUMNS]))
        self._view = self._rows.frame
        self._cells: list[np.ndarray] = list(self._rows.cells)
        self._bad: np.ndarray | None = None
        self._filter = FleetFilter()
        self._sort: tuple[int, Qt.SortOrder] | None = None
        self._freshness: dict[tuple[str, str], Freshness] = {}
        self._where = np.empty(0, dtype=object)  # per shown row: (scope, region)
        self.interval_s = 60.0
        self.now: float | None = None  # None: the clock
    @property
    def filter(self) -> FleetFilter:
        return self._filter

    # -- data in
    def set_frame(self, df: pd.DataFrame) -> None:
        self.set_rows(prepare_rows(df, self._filter))

    def set_rows(self, rows: FleetRows) -> None:
        self._rows = rows
        self._apply()

    def set_filter(self, flt: FleetFilter) -> None:
        self._filter = flt
        self._apply()

    def _apply(self) -> None:
        rows = self._rows
        if rows.flt != self._filter:  # the filter changed since the rows were prepared
            mask = filter_mask(rows.frame, self._filter) if not self._filter.empty \
                and len(rows.frame) else np.ones(len(rows.frame), dtype=bool)
            rows = self._rows = FleetRows(rows.frame, rows.cells, rows.ranks, self._filter, mask,
                                          rows.bad)
        index = np.flatnonzero(rows.mask)
        if self._sort is not None:
            index = index[self._order(index, *self._sort)]
        self.beginResetModel()
        self._view = rows.frame.take(index).reset_index(drop=True)
        self._cells = [c[index] for c in rows.cells]
        self._bad = rows.bad[index] if rows.bad is not None else None
        view = self._view
        self._where = np.array(list(zip(view["scope"].astype(str),
                                        view["region"].astype("string").fillna(""),
                                        strict=True)) if len(view) and "scope" in view
                               else [], dtype=object)
        self.endResetModel()

    def set_freshness(self, freshness: dict[tuple[str, str], Freshness],
                      now: float | None = None) -> None:
        """The store's last polls per (scope, region): each row says how old its data is."""
        self._freshness = dict(freshness)
        self.update_ages(now)

    def update_ages(self, now: float | None = None) -> None:
        self.now = now
        if len(self._view):
            col = _COL[DATA_AGE]
            self.dataChanged.emit(self.index(0, col), self.index(len(self._view) - 1, col))

    def data_age(self, row: int) -> tuple[str, str, str | None]:
        """(text, tooltip, colour) of the age of the row's data: its scope/region's last
        successful poll; stale after three intervals, failed when the last poll failed."""
        if not 0 <= row < len(self._where):
            return "", "", None
        scope, region = self._where[row]
        fresh = self._freshness.get((scope, region))
        if fresh is None:
            return "", "", None
        now = datetime.now(UTC).timestamp() if self.now is None else self.now
        text, tip, status = age_look(fresh, now, self.interval_s, scope, region)
        return text, tip, {"error": RED, "stale": AMBER}.get(status or "")

    def _order(self, index: np.ndarray, column: int, order: Qt.SortOrder) -> np.ndarray:
        name = COLUMNS[column][1]
        if name in self._rows.ranks:
            keys = self._rows.ranks[name][index]
        elif name == "start" and name in self._rows.frame.columns:
            keys = pd.to_datetime(self._rows.frame[name], utc=True).to_numpy()[index]
        elif name == "drift" and name in self._rows.frame.columns:
            keys = self._rows.frame[name].fillna(False).astype(bool).to_numpy()[index]
        else:
            keys = np.char.lower(self._rows.cells[column][index].astype(str))
        if order == Qt.SortOrder.DescendingOrder:
            # High to low, ties kept in their order (a reversed argsort would flip them).
            return np.lexsort((np.arange(len(keys)), _descending(keys)))
        return np.argsort(keys, kind="stable")

    # -- data out
    def visible_frame(self) -> pd.DataFrame:
        return self._view

    def total_count(self) -> int:
        return len(self._rows.frame)

    def instance_at(self, row: int) -> str | None:
        if 0 <= row < len(self._view):
            return str(self._view["instance_id"].iat[row])
        return None

    def bad_reason(self, row: int) -> str:
        """Why the row's version is marked bad ("" if it is not)."""
        if self._bad is None or not 0 <= row < len(self._bad):
            return ""
        return str(self._bad[row])

    def row_of(self, instance_id: str) -> int | None:
        hits = np.flatnonzero(self._view["instance_id"].to_numpy() == instance_id) \
            if len(self._view) else []
        return int(hits[0]) if len(hits) else None

    # -- Qt model
    def rowCount(self, parent: _Index = _ROOT) -> int:
        return 0 if parent.isValid() else len(self._view)

    def columnCount(self, parent: _Index = _ROOT) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section][0]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row, col = index.row(), index.column()
        column = COLUMNS[col][1]
        bad = column == "version" and self._bad is not None and bool(self._bad[row])
        if column == DATA_AGE:
            text, tip, colour = self.data_age(row)
            if role == Qt.ItemDataRole.DisplayRole:
                return text
            if role == Qt.ItemDataRole.ToolTipRole:
                return plain_tooltip(tip) if tip else None
            if role == Qt.ItemDataRole.ForegroundRole and colour:
                return QColor(colour)
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{self._cells[col][row]}  ⚠" if bad else self._cells[col][row]
        if role == Qt.ItemDataRole.DecorationRole and column in _VERSION_COLUMNS:
            text = self._cells[col][row]
            return self.colors.color(text) if text else None
        if role == Qt.ItemDataRole.ForegroundRole and column == "drift" and self._cells[col][row]:
            return QColor(DRIFT)
        if role == Qt.ItemDataRole.ForegroundRole and bad:
            return QColor(RED)
        if role == Qt.ItemDataRole.ToolTipRole and column == "drift" and self._cells[col][row]:
            return plain_tooltip(f"runs {self._cells[col - 2][row]}, its group wants "
                                 f"{self._cells[col - 1][row]}")
        if role == Qt.ItemDataRole.ToolTipRole and bad:
            return plain_tooltip(f"marked bad: {self._bad[row]}")
        return None

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        self._sort = (column, order) if column >= 0 else None
        self._apply()


def _descending(keys: np.ndarray) -> np.ndarray:
    """A key that sorts `keys` high to low (lexsort sorts ascending)."""
    _, inverse = np.unique(keys, return_inverse=True)
    return -inverse


class FleetTable(QWidget):
    """Filter box, table and CSV export; says how many rows it shows of how many.

    Given a WindowState it shows its fleet frame and follows its selected instance;
    `instance_selected` says which row the user chose.
    """

    instance_selected = Signal(str)
    filter_changed = Signal()  # the typed filter or the tree's node changed
    node_cleared = Signal()  # the user cleared the tree's node from the table

    def __init__(self, colors: VersionColors, parent=None, state: WindowState | None = None):
        super().__init__(parent)
        self.model = FleetTableModel(colors, self)
        self._node: tuple[str, ...] = ()
        self._node_label = ""
        self.filter_box = QLineEdit(self)
        self.filter_box.setObjectName("fleetFilter")
        self.filter_box.setPlaceholderText(
            "Filter: version:1.4  region:us-east-1  drift:yes  state:running  or any text  (Ctrl+F)")
        self.filter_box.setClearButtonEnabled(True)
        # What a paste can put in the box; the filter itself reads less (fleet_filter).
        self.filter_box.setMaxLength(MAX_FILTER_BOX_CHARS)
        self.filter_box.textChanged.connect(self._on_filter_text)
        # Under the box, with the text it speaks of: cleared when the text is fixed.
        self.filter_note = plain_label("", self)
        self.filter_note.setObjectName("filterNote")
        self.filter_note.setWordWrap(True)
        self.filter_note.setStyleSheet(f"QLabel {{ color: {AMBER}; }}")
        self.filter_note.hide()
        self.node_chip = QPushButton(self)
        self.node_chip.setObjectName("nodeFilter")
        self.node_chip.setToolTip("Showing only what is under the node selected in the tree; "
                                  "click to show the whole fleet")
        self.node_chip.setFlat(True)
        self.node_chip.setStyleSheet("QPushButton { border: 1px solid palette(mid); "
                                     "border-radius: 9px; padding: 1px 8px; }")
        self.node_chip.clicked.connect(self._on_chip_clicked)
        self.node_chip.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)
        self.node_chip.hide()
        self.count_label = QLabel(self)
        self.export_button = QPushButton("Export CSV…", self)
        self.export_button.setToolTip("Save the rows shown (after the filter) as CSV")
        self.export_button.clicked.connect(self._on_export_clicked)
        self.view = QTableView(self)
        self.view.setModel(self.model)
        self.view.setSortingEnabled(True)
        self.view.sortByColumn(-1, Qt.SortOrder.AscendingOrder)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setAlternatingRowColors(True)
        self.view.setShowGrid(False)
        self.view.setWordWrap(False)
        self.view.verticalHeader().setVisible(False)
        self.view.verticalHeader().setDefaultSectionSize(22)
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        header.setHighlightSections(False)
        widths = {"name": 130, "instance_id": 150, "version": 80, "desired_version": 80,
                  "drift": 60, "state": 75, "lifecycle": 75, "state_reason": 130, "group": 110,
                  "region": 95, "zone": 100, "scope": 90, DATA_AGE: 80, "image_name": 200,
                  "start": 120}
        for col, (_, column) in enumerate(COLUMNS):
            self.view.setColumnWidth(col, widths.get(column, 100))
        self.view.clicked.connect(self._on_clicked)
        self.view.activated.connect(self._on_clicked)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._on_context_menu)
        # (name, callable(instance_id)): the window adds actions here (replace, rollback...);
        # a name may be a callable(instance_id) giving the entry's text, or None to leave it out.
        self.instance_actions: list[tuple[object, object]] = []
        # callable(instance_id) -> [(text, callable())]: what the palette offers for the
        # instance's group (roll it back, stop its action...), so the menu offers it too.
        self.group_actions = None

        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.filter_box, 1)
        top.addWidget(self.count_label)
        top.addWidget(self.export_button)
        # Under the box: what narrows the rows besides the text, and what is wrong with it.
        under = QHBoxLayout()
        under.setContentsMargins(0, 0, 0, 0)
        under.addWidget(self.node_chip)
        under.addWidget(self.filter_note, 1)
        under.addStretch(0)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addLayout(top)
        layout.addLayout(under)
        layout.addWidget(self.view, 1)
        self._show_optional_columns()
        self._update_count()
        if state is not None:
            state.fleet_changed.connect(self._on_fleet_changed)
            state.instance_selected.connect(self._on_instance_selected)
            state.freshness_changed.connect(self._on_freshness_changed)

    def _on_freshness_changed(self, freshness: dict) -> None:
        self.model.set_freshness(freshness)

    def _on_fleet_changed(self, frame: FleetFrame) -> None:
        if frame.rows is not None:
            self.set_rows(frame.rows)
        else:
            self.set_frame(frame.fleet)

    def _on_instance_selected(self, instance_id: str | None, source: str = "") -> None:
        if instance_id is None:
            self.view.clearSelection()
        else:
            self.select_instance(instance_id, emit=False)

    def set_frame(self, df: pd.DataFrame) -> None:
        self.set_rows(prepare_rows(df, self.model.filter))

    def set_rows(self, rows: FleetRows) -> None:
        selected = self.selected_instance()
        self.model.set_rows(rows)
        self._update_count()
        self._show_optional_columns()
        self._say_filter()
        if selected:
            self.select_instance(selected, emit=False)

    def _show_optional_columns(self) -> None:
        rows = self.model._rows
        frame = rows.frame
        for column in _OPTIONAL_COLUMNS:
            present = column in frame.columns and bool(frame[column].notna().any())
            self.view.setColumnHidden(_COL[column], not present)
        # Names that all repeat their ids: the Instance column says it all.
        names = rows.cells[_COL["name"]]
        self.view.setColumnHidden(_COL["name"], bool(len(names)) and not names.any())

    def set_node(self, node: tuple[str, ...], label: str = "") -> None:
        """Narrow to a node of the scope tree: (scope,), (scope, region) or (scope, region,
        group), matched exactly; () shows the whole fleet again."""
        node = tuple(str(part) for part in node)
        if node == self._node:
            return
        self._node, self._node_label = node, label or " / ".join(node)
        self.node_chip.setText(f"In {self._node_label}  ✕")
        self.node_chip.setVisible(bool(node))
        self._on_filter_text(self.filter_box.text())

    @property
    def node(self) -> tuple[str, ...]:
        return self._node

    def _on_chip_clicked(self) -> None:
        self.set_node(())
        self.node_cleared.emit()

    def set_filter_text(self, text: str) -> None:
        self.filter_box.setText(text)

    def selected_instance(self) -> str | None:
        rows = self.view.selectionModel().selectedRows()
        return self.model.instance_at(rows[0].row()) if rows else None

    def select_instance(self, instance_id: str, emit: bool = True) -> bool:
        row = self.model.row_of(instance_id)
        if row is None:
            self.view.clearSelection()
            return False
        self.view.selectRow(row)
        self.view.scrollTo(self.model.index(row, 0))
        if emit:
            self.instance_selected.emit(instance_id)
        return True

    def export_csv(self, path: str | Path) -> int:
        """Write the visible rows (filtered, in their sort order); return how many. A cell
        that a spreadsheet would run as a formula is written as text (csv_cells)."""
        frame = self.model.visible_frame()
        columns = [c for _, c in COLUMNS if c in frame.columns]
        extra = [c for c in frame.columns if c not in columns]
        safe_frame(frame[columns + extra]).to_csv(path, index=False)
        return len(frame)

    def _on_filter_text(self, text: str) -> None:
        flt = dataclasses.replace(parse_filter(text), node=self._node)
        self.model.set_filter(flt)
        self._say_filter()
        self._update_count()
        self.filter_changed.emit()

    def _say_filter(self) -> None:
        """What is wrong with the typed filter, or that it matches nothing, under the box."""
        flt = self.model.filter
        note = ""
        if flt.errors:
            self.filter_box.setStyleSheet(f"QLineEdit {{ border: 1px solid {AMBER}; }}")
            self.filter_box.setToolTip(plain_tooltip("\n".join(flt.errors)))
            note = "  ·  ".join(flt.errors[:2])
        else:
            self.filter_box.setStyleSheet("")
            self.filter_box.setToolTip("")
            if flt.typed and self.model.total_count() and not self.model.rowCount():
                where = f" in {self._node_label}" if self._node else ""
                note = (f"No instance{where} matches “{self.filter_box.text().strip()}”. "
                        "Keys: version, region, group, state, drift, image, name, id…")
        self.filter_note.setText(note)
        self.filter_note.setToolTip(plain_tooltip("\n".join(flt.errors)))
        self.filter_note.setVisible(bool(note))

    def update_ages(self, now: float | None = None) -> None:
        self.model.update_ages(now)

    def _update_count(self) -> None:
        shown, total = self.model.rowCount(), self.model.total_count()
        self.count_label.setText(f"{shown:,} instances" if shown == total
                                 else f"{shown:,} of {total:,} instances")

    def _on_clicked(self, index: QModelIndex) -> None:
        instance = self.model.instance_at(index.row())
        if instance:
            self.instance_selected.emit(instance)

    def _on_export_clicked(self) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
        path, _ = QFileDialog.getSaveFileName(self, "Export visible rows",
                                              f"fleet-{stamp}.csv", "CSV files (*.csv)")
        if path:
            self.export_csv(path)

    def context_menu(self, index: QModelIndex) -> QMenu:
        """The menu of a row: copy, export, and the window's actions on its instance."""
        instance = self.model.instance_at(index.row()) if index.isValid() else None
        menu = QMenu(self)
        menu.addAction("Copy instance id", lambda: _copy(instance)).setEnabled(bool(instance))
        menu.addAction("Export visible rows…", self._on_export_clicked)
        if self.instance_actions and instance:
            menu.addSeparator()
            for name, fn in self.instance_actions:
                text = name(instance) if callable(name) else name
                if text:
                    menu.addAction(text, lambda fn=fn: fn(instance))
        more = self.group_actions(instance) if self.group_actions and instance else []
        if more:
            menu.addSeparator()
            for text, fn in more:
                menu.addAction(text, fn)
        return menu

    def _on_context_menu(self, pos) -> None:
        self.context_menu(self.view.indexAt(pos)).exec(self.view.viewport().mapToGlobal(pos))


def _copy(text: str | None) -> None:
    from PySide6.QtWidgets import QApplication

    if text:
        QApplication.clipboard().setText(text)
