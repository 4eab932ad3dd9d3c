"""What a report covers (time range, scopes, groups) and its thresholds, parsed from words."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fleetview.domain.errors import FleetViewError

DEFAULT_SINCE = timedelta(days=30)
# No new instance on the target version for this long: the rollout stalled.
DEFAULT_STALL_AFTER = timedelta(hours=1)
# A rollback of the same group this soon after a rollout started makes the rollout a failure.
DEFAULT_FAILURE_WINDOW = timedelta(hours=24)

_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)\s*$", re.IGNORECASE)


class ReportArgumentError(FleetViewError):
    """A report asked for with arguments that cannot work; the message says what to write."""


def parse_duration(text: str, what: str) -> timedelta:
    """"30d", "12h", "90m", "2w", "45s" as a positive timedelta."""
    match = _DURATION.match(text or "")
    if not match:
        raise ReportArgumentError(f"{what}: {text!r} is not a duration; write a number and a "
                                  "unit, e.g. 30d, 12h, 90m or 2w")
    value = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if value <= 0:
        raise ReportArgumentError(f"{what}: {text!r} must be longer than zero, e.g. 30d")
    return timedelta(seconds=value)


def parse_time(text: str, what: str) -> datetime:
    """An ISO 8601 date or time ("2026-11-01", "2026-11-01T08:00", "...Z"); UTC if no zone."""
    value = (text or "").strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ReportArgumentError(f"{what}: {text!r} is not a date or time; write it as "
                                  "2026-11-01 or 2026-11-01T08:00 (UTC unless a zone is "
                                  "given)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def split_names(values: list[str] | None) -> tuple[str, ...]:
    """Names given as repeated options and/or comma-separated, in order, without repeats."""
    out: list[str] = []
    for value in values or ():
        for name in value.split(","):
            name = name.strip()
            if name and name not in out:
                out.append(name)
    return tuple(out)


@dataclass(frozen=True)
class ReportParams:
    """The range [start, end) and the selection a report covers. Empty `scopes` or `groups`:
    all of them."""

    start: datetime
    end: datetime
    scopes: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    stall_after: timedelta = DEFAULT_STALL_AFTER
    failure_window: timedelta = DEFAULT_FAILURE_WINDOW

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ReportArgumentError("the report's range needs times with a zone (UTC)")
        if self.end <= self.start:
            raise ReportArgumentError(
                f"the range ends ({self.end:%Y-%m-%d %H:%M} UTC) before it starts "
                f"({self.start:%Y-%m-%d %H:%M} UTC); give --from before --to")
        if self.stall_after <= timedelta(0) or self.failure_window <= timedelta(0):
            raise ReportArgumentError("--stall-after and --failure-window must be longer "
                                      "than zero")

    @classmethod
    def from_words(cls, *, since: str | None = None, start: str | None = None,
                   end: str | None = None, scopes: list[str] | None = None,
                   groups: list[str] | None = None, stall_after: str | None = None,
                   failure_window: str | None = None, now: datetime | None = None
                   ) -> ReportParams:
        """The command line's words (`--since 30d` or `--from T [--to T]`) as parameters."""
        now = now or datetime.now(UTC)
        if since is not None and (start is not None or end is not None):
            raise ReportArgumentError("give either --since or --from/--to, not both")
        if start is None and end is not None:
            raise ReportArgumentError("--to needs --from (or use --since 30d)")
        if start is not None:
            t0 = parse_time(start, "--from")
            t1 = parse_time(end, "--to") if end is not None else now
        else:
            t1 = now
            t0 = t1 - (parse_duration(since, "--since") if since is not None else DEFAULT_SINCE)
        return cls(
            t0, t1, split_names(scopes), split_names(groups),
            parse_duration(stall_after, "--stall-after") if stall_after else DEFAULT_STALL_AFTER,
            parse_duration(failure_window, "--failure-window") if failure_window
            else DEFAULT_FAILURE_WINDOW)
