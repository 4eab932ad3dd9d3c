"""Durations as people read them, the same in the window and on the command line."""

from __future__ import annotations


def short_duration(seconds: float | None, missing: str = "—") -> str:
    """"45 s", "3 min 20 s", "40 min" (seconds dropped past ten minutes), "2 h 5 min",
    "2 h", "3 d 4 h": never a zero part ("40 min 00 s", "2 h 00 min")."""
    if seconds is None or seconds != seconds:
        return missing
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        minutes, rest = divmod(seconds, 60)
        return f"{minutes} min {rest} s" if minutes < 10 and rest else f"{minutes} min"
    if seconds < 86400:
        hours, minutes = divmod(seconds // 60, 60)
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(seconds // 3600, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def time_until(seconds: float | None, missing: str = "—") -> str:
    """How long until something: "in 40 min", "in under a minute" (never "in 0 min")."""
    if seconds is None or seconds != seconds:
        return missing
    if seconds < 60:
        return "in under a minute"
    return f"in {short_duration(seconds)}"
