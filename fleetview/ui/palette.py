"""The command palette (Ctrl+K): every command, group and instance, found by typing."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from PySide6.QtCore import QEvent, QObject, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QKeyEvent, QPainter, QPalette
from PySide6.QtWidgets import (
    QApplication,
    QFrame,
    QGraphicsDropShadowEffect,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

MAX_SHOWN = 200


@dataclass(frozen=True)
class PaletteEntry:
    title: str
    kind: str  # "command", "group", "instance"
    run: Callable[[], object]
    detail: str = ""
    shortcut: str = ""


def where_of(entry: PaletteEntry) -> str:
    """The part of an entry's detail that says where it is ("prod / us-east-1"): the
    first part of the detail, before any " · "."""
    return entry.detail.split(" · ", 1)[0].strip()


def disambiguate(entries: list[PaletteEntry]) -> list[PaletteEntry]:
    """Entries whose titles are the same (`Roll back api` of an AWS and of a GCP group)
    get where they are in their title, so the one chosen is the one meant and a query can
    name the scope; unique titles are left as they are."""
    seen: dict[tuple[str, str], int] = {}
    for entry in entries:
        key = (entry.kind, entry.title)
        seen[key] = seen.get(key, 0) + 1
    out = []
    for entry in entries:
        where = where_of(entry)
        if seen[(entry.kind, entry.title)] > 1 and where:
            rest = entry.detail.split(" · ", 1)[1] if " · " in entry.detail else ""
            entry = replace(entry, title=f"{entry.title} — {where}", detail=rest)
        out.append(entry)
    return out


def backfill_entries(scopes: Iterable[str], send: Callable[[str], object]
                     ) -> list[PaletteEntry]:
    """One entry a scope: rebuild its history from its cloud's records. `send` writes a
    command line to the collector, which polls the scope, reads the records and writes the
    spans they support before what it observed (a `backfill_finished` line says how it went)."""
    return [PaletteEntry(f"Rebuild history of {scope} from cloud records", "command",
                         lambda s=scope: send(f"backfill {s}"),
                         detail=f"{scope} · CloudTrail, Auto Scaling activities, audit logs")
            for scope in scopes]


def match_score(query: str, text: str) -> float | None:
    """None if `query`'s letters do not appear in order in `text`; higher is better.

    A substring beats scattered letters, an early match beats a late one, and a match at a
    word start beats one inside a word.
    """
    q, t = query.lower().strip(), text.lower()
    if not q:
        return 0.0
    pos = t.find(q)
    if pos >= 0:
        word_start = pos == 0 or not t[pos - 1].isalnum()
        return 100.0 - pos * 0.1 + (20 if word_start else 0) - len(t) * 0.01
    score, i = 0.0, 0
    for ch in q:
        j = t.find(ch, i)
        if j < 0:
            return None
        score -= (j - i)
        i = j + 1
    return score - len(t) * 0.01


def rank(entries: list[PaletteEntry], query: str, limit: int = MAX_SHOWN) -> list[PaletteEntry]:
    scored = []
    for n, entry in enumerate(entries):
        # The title decides; the detail (scope, region, version) only breaks a miss.
        s = match_score(query, entry.title)
        if s is None:
            s = match_score(query, entry.detail)
            s = None if s is None else s - 200
        if s is not None:
            # Commands first on ties: they are what the palette is mostly for.
            scored.append((-s, entry.kind != "command", n, entry))
    scored.sort(key=lambda item: item[:3])
    return [entry for *_, entry in scored[:limit]]


KIND_ROLE = Qt.ItemDataRole.UserRole
DETAIL_ROLE = Qt.ItemDataRole.UserRole + 1


class _EntryDelegate(QStyledItemDelegate):
    """Title, then the detail in a muted colour; the kind (and shortcut) at the right."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        title, detail = opt.text, index.data(DETAIL_ROLE) or ""
        kind = index.data(KIND_ROLE) or ""
        opt.text = ""
        style = opt.widget.style() if opt.widget else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, opt.widget)
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        text = opt.palette.color(QPalette.ColorRole.HighlightedText if selected
                                 else QPalette.ColorRole.Text)
        muted = QColor(text)
        muted.setAlphaF(0.6)
        rect = opt.rect.adjusted(10, 0, -10, 0)
        painter.save()
        painter.setPen(muted)
        painter.drawText(rect, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, kind)
        kind_width = opt.fontMetrics.horizontalAdvance(kind) + 16
        painter.setPen(text)
        font = QFont(opt.font)
        font.setBold(True)
        painter.setFont(font)
        painter.drawText(rect, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, title)
        title_width = QFontMetrics(font).horizontalAdvance(title) + 12
        painter.setFont(opt.font)
        painter.setPen(muted)
        room = rect.adjusted(title_width, 0, -kind_width, 0)
        painter.drawText(room, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                         opt.fontMetrics.elidedText(detail, Qt.TextElideMode.ElideRight,
                                                    max(0, room.width())))
        painter.restore()

    def sizeHint(self, option, index) -> QSize:
        size = super().sizeHint(option, index)
        return QSize(size.width(), size.height() + 10)


class CommandPalette(QFrame):
    """An overlay at the top of the window: a search box and the best matches.

    A child widget rather than a popup window, so it needs no keyboard grab and looks the
    same on every platform. Enter runs, Esc or clicking elsewhere closes.
    """

    ran = Signal(str)

    def __init__(self, parent: QWidget):
        super().__init__(parent)
        self.setObjectName("commandPalette")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAutoFillBackground(True)
        self.setBackgroundRole(QPalette.ColorRole.Window)
        shadow = QGraphicsDropShadowEffect(self)
        shadow.setBlurRadius(24)
        shadow.setOffset(0, 4)
        shadow.setColor(QColor(0, 0, 0, 110))
        self.setGraphicsEffect(shadow)
        self.entries: list[PaletteEntry] = []
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Type a command, group or instance…")
        self.list = QListWidget(self)
        self.list.setUniformItemSizes(True)
        self.list.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.list.setItemDelegate(_EntryDelegate(self.list))
        self.search.setMinimumHeight(30)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addWidget(self.search)
        layout.addWidget(self.list)
        self.search.textChanged.connect(self._refill)
        self.search.installEventFilter(self)
        self.search.returnPressed.connect(self.run_current)
        self.list.itemClicked.connect(lambda _item: self.run_current())
        self._shown: list[PaletteEntry] = []
        self.hide()

    def open_with(self, entries: list[PaletteEntry]) -> None:
        self.entries = disambiguate(entries)
        self.search.clear()
        self._refill("")
        parent = self.parentWidget()
        width = min(620, max(360, parent.width() - 80))
        self.setGeometry((parent.width() - width) // 2, 60, width, min(420, parent.height() - 90))
        self.show()
        self.raise_()
        self.search.setFocus()
        app = QApplication.instance()
        app.focusChanged.connect(self._on_focus_changed)

    def close_palette(self) -> None:
        if self.isVisible():
            QApplication.instance().focusChanged.disconnect(self._on_focus_changed)
        self.hide()

    def shown_titles(self) -> list[str]:
        return [e.title for e in self._shown]

    def _refill(self, query: str) -> None:
        self._shown = rank(self.entries, query)
        self.list.clear()
        for entry in self._shown:
            item = QListWidgetItem(entry.title)
            item.setData(KIND_ROLE, f"{entry.shortcut}   {entry.kind}" if entry.shortcut
                         else entry.kind)
            item.setData(DETAIL_ROLE, entry.detail)
            self.list.addItem(item)
        if self._shown:
            self.list.setCurrentRow(0)

    def run_current(self) -> None:
        row = self.list.currentRow()
        if not 0 <= row < len(self._shown):
            return
        entry = self._shown[row]
        self.close_palette()
        entry.run()
        self.ran.emit(entry.title)

    def _on_focus_changed(self, old, new) -> None:
        if new is not None and not self.isAncestorOf(new):
            self.close_palette()

    def eventFilter(self, obj: QObject, ev: QEvent) -> bool:
        if obj is self.search and ev.type() == QEvent.Type.KeyPress and isinstance(ev, QKeyEvent):
            key = ev.key()
            steps = {Qt.Key.Key_Down: 1, Qt.Key.Key_Up: -1,
                     Qt.Key.Key_PageDown: 10, Qt.Key.Key_PageUp: -10}
            if key in steps:
                row = min(max(self.list.currentRow() + steps[Qt.Key(key)], 0),
                          self.list.count() - 1)
                self.list.setCurrentRow(row)
                return True
            if key == Qt.Key.Key_Escape:
                self.close_palette()
                return True
        return super().eventFilter(obj, ev)
