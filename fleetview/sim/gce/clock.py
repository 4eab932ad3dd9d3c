"""The emulator's clock: emulated time that tests advance by hand, or that follows real time."""

from __future__ import annotations

import functools
import threading
import time
from datetime import UTC, datetime, timedelta, timezone

# Compute Engine writes timestamps in Pacific time with an explicit offset; using a non-UTC
# offset here keeps clients honest about parsing offsets.
_PACIFIC = timezone(timedelta(hours=-7))


class EmulatedClock:
    """Seconds since the epoch, as the emulator sees them.

    Manual mode (the default): time stands still until `advance(seconds)`, so a test can walk a
    rollout step by step without sleeping. Real-time mode: time runs at `speed` x wall time
    from where it stood, for the demo; `advance` still jumps ahead.
    """

    def __init__(self, start: float | datetime | None = None, *, realtime: bool = False,
                 speed: float = 1.0) -> None:
        self._lock = threading.Lock()
        if start is None:
            start = float(int(time.time()))
        elif isinstance(start, datetime):
            start = start.timestamp()
        self._base = float(start)
        self._realtime = realtime
        self._speed = speed
        self._wall0 = time.monotonic()

    @property
    def realtime(self) -> bool:
        return self._realtime

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> float:
        with self._lock:
            return self._now_locked()

    def _now_locked(self) -> float:
        if self._realtime:
            return self._base + (time.monotonic() - self._wall0) * self._speed
        return self._base

    def now_datetime(self) -> datetime:
        return datetime.fromtimestamp(self.now(), UTC)

    def advance(self, seconds: float) -> float:
        """Jump ahead by `seconds` of emulated time; returns the new time."""
        if seconds < 0:
            raise ValueError("the emulated clock only moves forward")
        with self._lock:
            self._base += seconds
            return self._now_locked()

    def set_realtime(self, realtime: bool, speed: float | None = None) -> None:
        """Switch between manual and real-time mode without a jump in emulated time."""
        with self._lock:
            self._base = self._now_locked()
            self._wall0 = time.monotonic()
            self._realtime = realtime
            if speed is not None:
                self._speed = speed


@functools.lru_cache(maxsize=8192)
def rfc3339(epoch: float) -> str:
    """A timestamp the way Compute Engine writes it: '2024-05-01T03:04:05.678-07:00'."""
    dt = datetime.fromtimestamp(epoch, _PACIFIC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}-07:00"
