"""The scope tree: scopes, regions, groups and standalone instances with counts, version mix,
drift and the age of their data."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from PySide6.QtCore import QEvent, QModelIndex, QPersistentModelIndex, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QMenu,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QToolTip,
    QTreeWidget,
    QTreeWidgetItem,
)

from fleetview.domain.versions import version_key
from fleetview.ui.colors import AMBER, DRIFT, RED, VersionColors
from fleetview.ui.rich_text import plain_tooltip
from fleetview.ui.state import (
    BAD_COLUMN,
    FleetFrame,
    Freshness,
    WindowState,
    format_age,
    freshness_by_region,
    short_reason,
)

__all__ = ["Freshness", "ScopeTree", "build_nodes", "format_age", "freshness_by_region"]

KEY_ROLE = Qt.ItemDataRole.UserRole + 1
MIX_ROLE = Qt.ItemDataRole.UserRole + 2
TIP_ROLE = Qt.ItemDataRole.UserRole + 3  # the node's own tooltip, before any note
BAD_ROLE = Qt.ItemDataRole.UserRole + 4  # instances under the node on a version marked bad
COL_NAME, COL_COUNT, COL_MIX, COL_DRIFT, COL_AGE = range(5)
HEADERS = ("Scope / region / group", "Instances", "Versions", "Drift", "Data")

NodeKey = tuple  # ("scope", s) | ("region", s, r) | ("group", s, r, g) | ("instance", s, r, id)


@dataclass
class _Node:
    key: NodeKey
    label: str
    count: int = 0
    drift: int = 0
    mix: dict[str | None, int] = field(default_factory=dict)
    children: dict = field(default_factory=dict)
    tooltip: str = ""
    bad: dict[str, tuple[int, str]] = field(default_factory=dict)  # version -> (count, why)

    @property
    def bad_count(self) -> int:
        return sum(n for n, _ in self.bad.values())

    def bad_text(self) -> str:
        """The tooltip lines that flag instances running a version marked bad."""
        if not self.bad:
            return ""
        lines = [f"⚠ {self.bad_count} instance runs a version marked bad:"
                 if self.bad_count == 1 else
                 f"⚠ {self.bad_count} instances run a version marked bad:"]
        lines += [f"  {version} ({count}): {why}" for version, (count, why) in
                  sorted(self.bad.items(), key=lambda kv: version_key(kv[0]), reverse=True)]
        return "\n".join(lines)


_NONE = "\uffff(none)"  # stands for None in groupby keys


def build_nodes(fleet: pd.DataFrame | None, groups: pd.DataFrame | None) -> dict[NodeKey, _Node]:
    """scope -> region -> group/instance nodes with counts, drift and version mix.

    Pure pandas, run off the GUI thread: at 20,000 instances a Python loop over rows would
    hold the GUI for a quarter of a second.
    """
    scopes: dict[NodeKey, _Node] = {}

    def node(parent: dict, key: NodeKey, label: str) -> _Node:
        if key not in parent:
            parent[key] = _Node(key, label)
        return parent[key]

    def path(key: NodeKey) -> _Node:
        s = node(scopes, ("scope", key[1]), str(key[1]))
        if key[0] == "scope":
            return s
        r = node(s.children, ("region", key[1], key[2]), str(key[2]))
        if key[0] == "region":
            return r
        return node(r.children, key, str(key[3]) if key[0] == "group" else str(key[2]))

    if groups is not None and len(groups):
        for g in groups.itertuples(index=False):
            gn = path(("group", g.scope, g.region, g.group))
            desired = getattr(g, "desired_version", None)
            gn.tooltip = f"{g.group} ({getattr(g, 'kind', '')}): wants {desired or '?'}, " \
                         f"target size {getattr(g, 'target_size', '?')}"
            owner = getattr(g, "owner", None)
            if isinstance(owner, str) and owner:
                # Its owner's next deployment can undo what FleetView does to it.
                gn.label = f"{g.group}  · owned by {owner}"
                gn.tooltip += f"\nOwned by {owner}: its next deployment can undo an action here"
            notes = getattr(g, "notes", None)
            if isinstance(notes, list | tuple) and notes:
                gn.tooltip += "\n" + "\n".join(str(n) for n in notes)
    if fleet is None or not len(fleet):
        return scopes
    f = pd.DataFrame({
        "scope": fleet["scope"].astype(str).to_numpy(),
        "region": fleet["region"].astype("string").fillna("").to_numpy(dtype=object),
        "group": fleet["group"].astype("string").fillna(_NONE).to_numpy(dtype=object),
        "version": fleet["version"].astype("string").fillna(_NONE).to_numpy(dtype=object),
        "drift": (fleet["drift"].fillna(False).astype(bool).to_numpy()
                  if "drift" in fleet.columns else False),
    })
    alone = fleet["group"].isna().to_numpy()
    grouped = f[~alone]
    levels = (("scope", f, ["scope"]), ("region", f, ["scope", "region"]),
              ("group", grouped, ["scope", "region", "group"]))
    for kind, frame, keys in levels:
        if not len(frame):
            continue
        by = frame.groupby(keys, sort=False)
        counts, drift = by.size(), by["drift"].sum()  # same groups, same order
        mixes = frame.groupby([*keys, "version"], sort=False).size()
        for k, count, drifting in zip(counts.index, counts.to_numpy(), drift.to_numpy(),
                                      strict=True):
            n = path((kind, *(k if isinstance(k, tuple) else (k,))))
            n.count, n.drift = int(count), int(drifting)
        for k, count in mixes.items():
            *where, version = k
            path((kind, *where)).mix[None if version == _NONE else version] = int(count)
    for row in fleet[alone].itertuples(index=False):
        version = row.version if isinstance(row.version, str) else None
        leaf = path(("instance", row.scope, row.region, row.instance_id))
        leaf.label = row.name if isinstance(row.name, str) and row.name else \
            str(row.instance_id)  # a missing name reads as the id, never "nan"
        leaf.count, leaf.drift, leaf.mix = 1, 0, {version: 1}
        leaf.tooltip = f"standalone instance {row.instance_id}, version {version}"
    if BAD_COLUMN in fleet.columns:
        _flag_bad(fleet, f, path)
    return scopes


def _flag_bad(fleet: pd.DataFrame, f: pd.DataFrame, path) -> None:
    """Count, on each node above them, the instances whose version is marked bad."""
    why = fleet[BAD_COLUMN].to_numpy(dtype=object)
    flagged = np.flatnonzero(pd.notna(why))
    if not len(flagged):
        return
    alone = fleet["group"].isna().to_numpy()[flagged]
    bad = pd.DataFrame({
        "kind": np.where(alone, "instance", "group"),
        "scope": f["scope"].to_numpy()[flagged], "region": f["region"].to_numpy()[flagged],
        "node": np.where(alone, fleet["instance_id"].astype(str).to_numpy()[flagged],
                         f["group"].to_numpy()[flagged]),
        "version": f["version"].to_numpy()[flagged], "why": why[flagged]})
    counts = bad.groupby(["kind", "scope", "region", "node", "version"], sort=False)["why"] \
        .agg(["size", "last"])
    for (kind, scope, region, node, version), (count, reason) in counts.iterrows():
        for key in (("scope", scope), ("region", scope, region), (kind, scope, region, node)):
            target = path(key)
            before, _ = target.bad.get(version, (0, ""))
            target.bad[version] = (before + int(count), str(reason))


def _ordered(nodes) -> list[_Node]:
    """Siblings in tree order: groups before standalone instances, each by name."""
    return sorted(nodes, key=lambda n: (n.key[0] == "instance", n.label))


def _flatten(nodes: dict[NodeKey, _Node]) -> dict[NodeKey, _Node]:
    out: dict[NodeKey, _Node] = {}
    stack = list(nodes.values())
    while stack:
        n = stack.pop()
        out[n.key] = n
        stack.extend(n.children.values())
    return out


def _own_tooltip(n: _Node) -> str:
    return "\n".join(t for t in (n.tooltip, n.bad_text()) if t)


def _drift_text(n: _Node) -> str:
    return f"◆ {n.drift}" if n.drift else ""


class FigureDelegate(QStyledItemDelegate):
    """Right-aligned figures, in `colour` if given, with a tooltip worked out on hover."""

    def __init__(self, parent=None, colour: str | None = None, tooltip=None):
        super().__init__(parent)
        self.colour = QColor(colour) if colour else None
        self.tooltip = tooltip

    def initStyleOption(self, option: QStyleOptionViewItem, index) -> None:
        super().initStyleOption(option, index)
        option.displayAlignment = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        if self.colour is not None:
            option.palette.setColor(QPalette.ColorRole.Text, self.colour)

    def helpEvent(self, event, view, option, index) -> bool:
        if self.tooltip is not None and event.type() == QEvent.Type.ToolTip:
            text = self.tooltip(index)
            if text:
                QToolTip.showText(event.globalPos(), text, view)
            else:
                QToolTip.hideText()
            return True
        return super().helpEvent(event, view, option, index)


def mix_tooltip(index) -> str:
    mix = index.data(MIX_ROLE) or {}
    return ", ".join(f"{v or 'unknown'}: {c}" for v, c in
                     sorted(mix.items(), key=lambda kv: version_key(kv[0]), reverse=True))


def drift_tooltip(index) -> str:
    text = index.data(Qt.ItemDataRole.DisplayRole) or ""
    count = text.removeprefix("◆ ")
    return f"{count} instance(s) run another version than their group wants" if text else ""


class VersionMixDelegate(QStyledItemDelegate):
    """Paints a node's version mix as a small stacked bar."""

    def helpEvent(self, event, view, option, index) -> bool:
        if event.type() == QEvent.Type.ToolTip:
            QToolTip.showText(event.globalPos(), mix_tooltip(index) or "no instances", view)
            return True
        return super().helpEvent(event, view, option, index)

    def __init__(self, colors: VersionColors, parent=None):
        super().__init__(parent)
        self.colors = colors

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        super().paint(painter, option, index)
        mix = index.data(MIX_ROLE)
        if not mix:
            return
        total = sum(mix.values())
        rect: QRect = option.rect.adjusted(4, 5, -6, -5)
        if rect.width() < 4 or total == 0:
            return
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        x = float(rect.left())
        for version in sorted(mix, key=version_key):
            w = rect.width() * mix[version] / total
            painter.fillRect(int(round(x)), rect.top(), max(1, int(round(x + w)) - int(round(x))),
                             rect.height(), self.colors.color(version))
            x += w
        painter.restore()

    def sizeHint(self, option, index) -> QSize:
        return QSize(90, 20)


class ScopeTree(QTreeWidget):
    """Left pane. Emits the selected node's key: ("group", scope, region, group) etc.

    Given a WindowState it follows it: the fleet's nodes, freshness and rollback readiness.
    """

    node_selected = Signal(tuple)

    def __init__(self, colors: VersionColors, interval_s: float = 60.0, parent=None,
                 state: WindowState | None = None):
        super().__init__(parent)
        self.colors = colors
        self.interval_s = interval_s
        self.setColumnCount(len(HEADERS))
        self.setHeaderLabels(list(HEADERS))
        self.setUniformRowHeights(True)
        self.setAlternatingRowColors(False)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setItemDelegateForColumn(COL_MIX, VersionMixDelegate(colors, self))
        self.setItemDelegateForColumn(COL_COUNT, FigureDelegate(self))
        self.setItemDelegateForColumn(COL_DRIFT, FigureDelegate(self, DRIFT, drift_tooltip))
        self.setItemDelegateForColumn(COL_AGE, FigureDelegate(self))
        header = self.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(COL_NAME, QHeaderView.ResizeMode.Stretch)
        for col, width in ((COL_COUNT, 64), (COL_MIX, 72), (COL_DRIFT, 44), (COL_AGE, 70)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.Fixed)
            header.resizeSection(col, width)
        for col in (COL_COUNT, COL_DRIFT, COL_AGE):
            self.headerItem().setTextAlignment(col, Qt.AlignmentFlag.AlignRight)
        self.itemSelectionChanged.connect(self._on_selection)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._on_context_menu)
        # (name, callable(node key)): the window adds actions here (rollback a group...); a
        # name may be a callable(node key) giving the entry's text, or None to leave it out.
        self.node_actions: list[tuple[object, object]] = []
        self._items: dict[NodeKey, QTreeWidgetItem] = {}
        self._fresh: dict[tuple[str, str], Freshness] = {}
        self._notes: dict[NodeKey, str] = {}  # more to say in a node's tooltip (readiness)
        self._warning: QIcon | None = None
        self._first = True
        self._nodes: dict[NodeKey, _Node] = {}
        self._reasons: dict[NodeKey, QTreeWidgetItem] = {}  # a failing node's reason row
        if state is not None:
            state.fleet_changed.connect(self._on_fleet_changed)
            state.freshness_changed.connect(self._on_freshness_changed)
            state.readiness_changed.connect(self._on_readiness_changed)

    # -- the window's state
    def _on_fleet_changed(self, frame: FleetFrame) -> None:
        self.set_nodes(frame.nodes)

    def _on_freshness_changed(self, freshness: dict[tuple[str, str], Freshness]) -> None:
        self._fresh = dict(freshness)
        if {("scope", s) for s, _ in self._fresh} - self._items.keys():
            self.set_nodes(self._nodes)  # a scope with no instance yet: its row says why
        else:
            self.update_ages()

    def _on_readiness_changed(self, readiness: dict) -> None:
        notes = {}
        for (scope, region, group), ready in readiness.items():
            notes[("group", scope, region, group)] = f"Rollback: {ready.describe()}"
        self.set_notes(notes)

    def set_notes(self, notes: dict[NodeKey, str]) -> None:
        """A line more for some nodes' tooltips (e.g. whether a group can roll back)."""
        old, self._notes = self._notes, dict(notes)
        for key in old.keys() | self._notes.keys():
            item = self._items.get(key)
            if item is not None:
                item.setToolTip(COL_NAME, self._tooltip(key, item.data(COL_NAME, TIP_ROLE)))

    def _tooltip(self, key: NodeKey, tooltip: str | None) -> str:
        note = self._notes.get(key)
        return plain_tooltip("\n".join(t for t in (tooltip, note) if t))

    def _flag(self, item: QTreeWidgetItem, n: _Node) -> None:
        """The warning mark of a node with instances on a version marked bad."""
        count = n.bad_count
        if (item.data(COL_NAME, BAD_ROLE) or 0) == count:
            return
        item.setData(COL_NAME, BAD_ROLE, count)
        if count:
            if self._warning is None:
                self._warning = self.style().standardIcon(
                    QStyle.StandardPixmap.SP_MessageBoxWarning)
            item.setIcon(COL_NAME, self._warning)
        else:
            item.setIcon(COL_NAME, QIcon())

    # -- data in
    def set_fleet(self, fleet: pd.DataFrame, groups: pd.DataFrame | None = None) -> None:
        self.set_nodes(build_nodes(fleet, groups))

    def set_nodes(self, nodes: dict[NodeKey, _Node]) -> None:
        """Show nodes made by `build_nodes` (on a worker thread).

        After a poll the nodes are mostly the same: existing items get new figures and new
        nodes are inserted in place; only when a node went away is the tree rebuilt.
        """
        self._nodes = nodes
        nodes = dict(nodes)
        for scope, _ in self._fresh:  # a scope polled but empty (or failing) still has a row
            nodes.setdefault(("scope", scope), _Node(("scope", scope), scope))
        flat = _flatten(nodes)
        self.blockSignals(True)
        self.setUpdatesEnabled(False)
        if self._items and self._items.keys() <= flat.keys():
            self._merge(None, _ordered(nodes.values()))
        else:
            expanded = {k for k, it in self._items.items() if it.isExpanded()}
            current = self.current_key()
            self.clear()
            self._items = {}
            self._reasons = {}
            # Each scope's subtree is built detached, then added: adding items one by one to
            # a live tree costs a model signal each.
            for n in _ordered(nodes.values()):
                self.addTopLevelItem(self._build(n))
            for key, item in self._items.items():
                if key[0] in ("scope", "region") and (self._first or key in expanded):
                    item.setExpanded(True)
            self._first = False
            if current in self._items:
                self.setCurrentItem(self._items[current])
        self.setUpdatesEnabled(True)
        self.blockSignals(False)
        self.update_ages()

    def _build(self, n: _Node, parent: QTreeWidgetItem | None = None) -> QTreeWidgetItem:
        # Children are made with their parent item, so Qt owns them from the start (a list
        # handed to addChildren leaves PySide unsure who deletes them).
        item = self._add(n, parent)
        for child in _ordered(n.children.values()):
            self._build(child, item)
        return item

    def _merge(self, parent: QTreeWidgetItem | None, children: list[_Node]) -> None:
        first = parent.child(0) if parent is not None and parent.childCount() else None
        offset = 1 if first is not None and first.data(COL_NAME, KEY_ROLE)[0] == "reason" \
            else 0  # a reason row stays first
        for i, n in enumerate(children, offset):
            item = self._items.get(n.key)
            if item is not None:
                self._fill(item, n)
                self._merge(item, _ordered(n.children.values()))
                continue
            item = self._build(n)
            if parent is None:
                self.insertTopLevelItem(i, item)
            else:
                parent.insertChild(i, item)
            stack = [item]
            while stack:  # a new scope or region opens, as on the first load
                it = stack.pop()
                if it.data(COL_NAME, KEY_ROLE)[0] in ("scope", "region"):
                    it.setExpanded(True)
                    stack.extend(it.child(k) for k in range(it.childCount()))

    def set_freshness(self, df: pd.DataFrame | None) -> None:
        self._on_freshness_changed(freshness_by_region(df))

    def _add(self, n: _Node, parent: QTreeWidgetItem | None = None) -> QTreeWidgetItem:
        # Few calls per item: a first load can bring a thousand groups. Alignment, the drift
        # colour and the mix and drift tooltips come from the column delegates.
        texts = [n.label, f"{n.count:,}", "", _drift_text(n), ""]
        item = QTreeWidgetItem(parent, texts) if parent is not None else QTreeWidgetItem(texts)
        item.setData(COL_NAME, KEY_ROLE, n.key)
        item.setData(COL_MIX, MIX_ROLE, n.mix)
        own = _own_tooltip(n)
        if own or n.key in self._notes:
            item.setData(COL_NAME, TIP_ROLE, own)
            item.setToolTip(COL_NAME, self._tooltip(n.key, own))
        if n.bad:
            self._flag(item, n)
        if n.key[0] == "scope":
            font = item.font(COL_NAME)
            font.setBold(True)
            item.setFont(COL_NAME, font)
        self._items[n.key] = item
        return item

    def _fill(self, item: QTreeWidgetItem, n: _Node) -> None:
        """Set what changes from poll to poll; Qt repaints only what differs."""
        for col, text in ((COL_NAME, n.label), (COL_COUNT, f"{n.count:,}"),
                          (COL_DRIFT, _drift_text(n))):
            if item.text(col) != text:
                item.setText(col, text)
        if item.data(COL_MIX, MIX_ROLE) != n.mix:
            item.setData(COL_MIX, MIX_ROLE, n.mix)
        own = _own_tooltip(n)
        if (item.data(COL_NAME, TIP_ROLE) or "") != own:
            item.setData(COL_NAME, TIP_ROLE, own)
            item.setToolTip(COL_NAME, self._tooltip(n.key, own))
        self._flag(item, n)

    # -- ages (cheap: no query, run every second)
    def freshness_of(self, key: NodeKey) -> Freshness:
        if key[0] == "scope":
            return Freshness.worst([f for (s, _), f in self._fresh.items() if s == key[1]])
        if key[0] in ("region", "group"):
            return self._fresh.get((key[1], key[2]), Freshness())
        return Freshness()

    def update_ages(self, now: float | None = None) -> None:
        now = datetime.now(UTC).timestamp() if now is None else now
        shown: dict[tuple, tuple[str, str | None, str]] = {}  # per scope/region: one look
        for key, item in self._items.items():
            if key[0] == "instance":
                continue
            where = (key[1],) if key[0] == "scope" else (key[1], key[2])
            look = shown.get(where)
            if look is None:
                look = shown[where] = self._age_look(self.freshness_of(key), now)
            text, colour, tip = look
            if key[0] in ("scope", "region"):
                self._show_reason(key, item)
            if item.text(COL_AGE) != text:
                item.setText(COL_AGE, text)
            if item.toolTip(COL_AGE) != tip:
                item.setToolTip(COL_AGE, tip)
                item.setData(COL_AGE, Qt.ItemDataRole.ForegroundRole,
                             QColor(colour) if colour else None)

    def failure_of(self, key: NodeKey) -> str | None:
        """Why a scope's or region's last poll failed, short (None: it did not)."""
        if key[0] == "scope":
            failing = [f for (s, _), f in self._fresh.items() if s == key[1] and not f.ok]
            if not failing:
                return None
            regions = sum(1 for (s, _) in self._fresh if s == key[1])
            reason = short_reason(failing[0].error, 90)
            return reason if len(failing) == regions else \
                f"{len(failing)} of {regions} regions fail: {reason}"
        if key[0] == "region":
            f = self._fresh.get((key[1], key[2]))
            return short_reason(f.error, 90) if f is not None and not f.ok else None
        return None

    def _show_reason(self, key: NodeKey, item: QTreeWidgetItem) -> None:
        """A failing scope's (or, when only some of its regions fail, a region's) reason on
        a row of its own under it, the tree's whole width: not only in a tooltip."""
        reason = self.failure_of(key)
        if reason and key[0] == "region" and self.failure_of(("scope", key[1])) \
                and self._all_fail(key[1]):
            reason = None  # the scope's row already says it
        row = self._reasons.get(key)
        if row is not None and (reason is None or row.text(COL_NAME) != f"⚠ {reason}"):
            item.removeChild(row)
            del self._reasons[key]
            row = None
        item.setForeground(COL_NAME, QColor(RED) if self.failure_of(key)
                           else self.palette().color(QPalette.ColorRole.Text))
        if reason is None or row is not None:
            return
        row = QTreeWidgetItem([f"⚠ {reason}"])
        row.setData(COL_NAME, KEY_ROLE, ("reason", *key[1:]))
        row.setFlags(Qt.ItemFlag.ItemIsEnabled)
        row.setForeground(COL_NAME, QColor(RED))
        row.setToolTip(COL_NAME, plain_tooltip(self._errors_of(key)))
        item.insertChild(0, row)
        row.setFirstColumnSpanned(True)
        self._reasons[key] = row

    def _all_fail(self, scope: str) -> bool:
        regions = [f for (s, _), f in self._fresh.items() if s == scope]
        return bool(regions) and all(not f.ok for f in regions)

    def _errors_of(self, key: NodeKey) -> str:
        return "\n".join(f"{r or s}: last poll failed: {f.error or 'unknown error'}"
                         for (s, r), f in self._fresh.items()
                         if s == key[1] and not f.ok and (key[0] == "scope" or r == key[2]))

    def _age_look(self, f: Freshness, now: float) -> tuple[str, str | None, str]:
        """Text, colour and tooltip of the age of one scope/region's data."""
        if not math.isfinite(f.last_poll):
            return "", None, ""
        text = format_age(now - f.last_ok) if math.isfinite(f.last_ok) else "failed"
        status = f.status(now, self.interval_s)
        if status == "error":
            return text, RED, f"last poll failed: {f.error or 'unknown error'}"
        if status == "stale":
            return text, AMBER, "no successful poll for more than 3 poll intervals"
        return text, None, "last successful poll"

    # -- lookups
    def item_for(self, key: NodeKey) -> QTreeWidgetItem | None:
        return self._items.get(key)

    def node_keys(self) -> list[NodeKey]:
        return list(self._items)

    def current_key(self) -> NodeKey | None:
        item = self.currentItem()
        return item.data(COL_NAME, KEY_ROLE) if item is not None else None

    def select(self, key: NodeKey) -> bool:
        item = self._items.get(key)
        if item is None:
            return False
        self.setCurrentItem(item)
        self.scrollToItem(item)
        return True

    def _on_selection(self) -> None:
        key = self.current_key()
        if key is not None:
            self.node_selected.emit(tuple(key))

    def _on_context_menu(self, pos) -> None:
        item = self.itemAt(pos)
        if item is None or not self.node_actions:
            return
        key = item.data(COL_NAME, KEY_ROLE)
        if key[0] == "reason":
            return
        menu = self.context_menu(key)
        menu.exec(self.viewport().mapToGlobal(pos))

    def context_menu(self, key: NodeKey) -> QMenu:
        """The node's context menu: the window's node actions that apply to it."""
        menu = QMenu(self)
        for name, fn in self.node_actions:
            text = name(key) if callable(name) else name
            if text:
                menu.addAction(text, lambda fn=fn: fn(key))
        return menu
