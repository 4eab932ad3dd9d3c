"""Durations as people read them, the same in the window and on the command line."""

from __future__ import annotations


def short_duration(seconds: float | None, missing: str = "—") -> str:
    """"45 s", "3 min 20 s", "40 min" (seconds dropped past ten minutes), "2 h 05 min"."""
    if seconds is None:
        return missing
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        minutes, rest = divmod(seconds, 60)
        return f"{minutes} min {rest:02d} s" if minutes < 10 and rest else f"{minutes} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
