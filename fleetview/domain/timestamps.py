"""Timestamps as the clouds write them (RFC 3339, maybe with Z), read as UTC datetimes."""

from __future__ import annotations

from datetime import UTC, datetime


def parse_time(text: str | None) -> datetime | None:
    """An aware UTC datetime, or None for an empty or unreadable stamp (never an error: a
    cloud's odd timestamp must not fail a poll)."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
