"""One way to wait: a Timing value and wait_until, with a wall-clock deadline."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from fleetview.domain.errors import FleetViewError

T = TypeVar("T")


class TimedOut(FleetViewError):
    """A wait that reached its deadline; the message says what was still awaited."""


@dataclass(frozen=True)
class Timing:
    """How a provider waits and retries, the same names on every cloud.

    `timeout_s` is measured on `clock`, so the time the calls take counts, not only the
    pauses; `attempts` counts the first try of one API call; `backoff_s` is the first pause
    after a throttled or failed try, doubled each time. Tests pass a `sleep` that advances a
    fake `clock` (or a local cloud's clock) so that waiting costs nothing.

    `poll_deadline_s` bounds one poll of a scope, retries included: a provider sizes its
    connect and read timeouts to it, and what has not answered by then is a failed region.
    It is network time, measured on the real monotonic clock, never on `clock`.
    """

    interval_s: float = 5.0
    timeout_s: float = 3600.0
    attempts: int = 4
    backoff_s: float = 1.0
    poll_deadline_s: float = 300.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)


def waiting(timing: Timing, what: str = "") -> Iterator[float]:
    """Yield the seconds waited so far, once before each check, pausing `interval_s` between
    checks; raise TimedOut once `timeout_s` has passed on the clock since the first check.

    A check that reports progress is a loop body: `for _ in waiting(t, "..."): ...; return`.
    """
    start = timing.clock()
    waited = 0.0
    while True:
        # One clock reading a round: `waited` is measured after the check that just ran.
        yield waited
        waited = timing.clock() - start
        if waited >= timing.timeout_s:
            raise TimedOut(f"{what or 'still waiting'} after {waited:.0f} s")
        timing.sleep(max(0.0, min(timing.interval_s, timing.timeout_s - waited)))


def wait_until(check: Callable[[], T | None], timing: Timing, what: str = "") -> T:
    """Call `check` until it returns something other than None (or False); TimedOut past the
    deadline."""
    for _ in waiting(timing, what):
        result = check()
        if result is not None and result is not False:
            return result
    raise AssertionError("unreachable")  # pragma: no cover - waiting() raises at the deadline


class FakeClock:
    """A clock whose `sleep` only moves it forward: waiting without waiting."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)

    def timing(self, **kwargs) -> Timing:
        return Timing(sleep=self.sleep, clock=self, **kwargs)
