"""A stable, readable colour per version label, and the window's palette-aware colours."""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtGui import QColor, QPalette

from fleetview import resources
from fleetview.domain.versions import version_key

# The palette lives in resources/palette.json (shared with the icons): mid-
# lightness hues that keep their contrast on white and near-black, ordered so that neighbours
# differ in hue and lightness, since neighbouring versions sit side by side in a rollout.
_PALETTE = resources.palette()
VERSION_PALETTE: tuple[str, ...] = _PALETTE.versions
UNKNOWN_VERSION = _PALETTE.unknown_version
AMBER = _PALETTE.status["stale"]
RED = _PALETTE.status["error"]
GREEN = _PALETTE.status["ok"]
DRIFT = _PALETTE.status["drift"]


class VersionColors:
    """Colours for a set of version labels, assigned in version order.

    A version keeps its colour for the life of the window: versions that appear later (a new
    build, or older ones a history backfill brings in) take the next colours, so what the
    operator has learnt to read on screen never changes under them. Every label ever seen
    (store.images()) is passed in at the start, so the first assignment is in version order.
    """

    def __init__(self, versions: Iterable[str | None] = ()):
        self._order: list[str] = []
        self._index: dict[str, int] = {}
        self.update(versions)

    def update(self, versions: Iterable[str | None]) -> None:
        new = {v for v in versions if v is not None and v == v} - self._index.keys()
        for v in sorted(new, key=version_key):
            self._index[v] = len(self._index)
        self._order = sorted(self._index, key=version_key)

    @property
    def versions(self) -> list[str]:
        return list(self._order)

    def hex(self, version: str | None) -> str:
        i = self._index.get(version) if isinstance(version, str) else None
        if i is None:
            return UNKNOWN_VERSION
        return VERSION_PALETTE[i % len(VERSION_PALETTE)]

    def color(self, version: str | None) -> QColor:
        return QColor(self.hex(version))


def text_on(background: QColor) -> QColor:
    """Black or white, whichever reads better on `background`."""
    r, g, b = background.redF(), background.greenF(), background.blueF()
    return QColor("#111111") if 0.299 * r + 0.587 * g + 0.114 * b > 0.55 else QColor("#ffffff")


def is_dark(palette: QPalette) -> bool:
    return palette.color(QPalette.ColorRole.Window).lightnessF() < 0.5


def muted(palette: QPalette, alpha: int = 40) -> QColor:
    """A faint band colour (group headers, selection) that works on light and dark."""
    c = QColor(palette.color(QPalette.ColorRole.Text))
    c.setAlpha(alpha)
    return c
