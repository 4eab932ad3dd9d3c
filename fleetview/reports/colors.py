"""Version colours for report charts: the window's palette, in the window's order, without Qt."""

from __future__ import annotations

from collections.abc import Iterable

from fleetview import resources
from fleetview.domain.versions import version_key

_PALETTE = resources.palette()
MIXED = "#c7c7c7"
EMPTY = "#eeeeee"
OK = _PALETTE.status["ok"]
ERROR = _PALETTE.status["error"]
STALE = _PALETTE.status["stale"]
BLUE = _PALETTE.versions[0]


def version_colors(versions: Iterable[str | None]) -> dict[str, str]:
    """Each version's colour: palette entries in natural version order, as the timeline
    assigns them when it knows the same versions."""
    known = sorted({v for v in versions if isinstance(v, str)}, key=version_key)
    cycle = _PALETTE.versions
    return {v: cycle[i % len(cycle)] for i, v in enumerate(known)}


def unknown() -> str:
    return _PALETTE.unknown_version
