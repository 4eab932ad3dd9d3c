"""One way to wait: wait_until returns what the check found, or times out on the clock."""

import time

import pytest

from fleetview.domain.errors import FleetViewError
from fleetview.domain.timing import FakeClock, TimedOut, Timing, wait_until, waiting


def test_wait_until_returns_the_first_answer_and_pauses_between_checks():
    clock = FakeClock()
    seen = []

    def check():
        seen.append(clock.now)
        return "ready" if len(seen) == 3 else None

    assert wait_until(check, clock.timing(interval_s=5.0, timeout_s=60.0)) == "ready"
    assert seen == [0.0, 5.0, 10.0]


def test_false_is_no_answer_but_zero_is():
    clock = FakeClock()
    answers = iter([False, None, 0])
    assert wait_until(lambda: next(answers), clock.timing(interval_s=1.0)) == 0
    assert clock.now == 2.0


def test_an_answer_on_the_first_check_does_not_wait():
    clock = FakeClock()
    assert wait_until(lambda: 42, clock.timing()) == 42 and clock.now == 0.0


def test_timeout_checks_once_at_the_deadline_and_says_what_it_awaited():
    clock = FakeClock()
    seen = []

    def never():
        seen.append(clock.now)

    with pytest.raises(TimedOut, match="^web to converge after 12 s$") as info:
        wait_until(never, clock.timing(interval_s=5.0, timeout_s=12.0), "web to converge")
    assert isinstance(info.value, FleetViewError)  # a known error, not a bug
    assert seen == [0.0, 5.0, 10.0, 12.0]  # the last pause is cut to the deadline
    assert clock.now == 12.0


def test_timeout_counts_the_time_the_checks_take():
    """A slow check (7 s an API call) uses up the deadline too: adding up the pauses alone
    would check six times in 30 s and run for 72 s."""
    clock = FakeClock()
    checks = []

    def slow():
        checks.append(clock.now)
        clock.now += 7.0

    with pytest.raises(TimedOut, match="after 31 s"):
        wait_until(slow, clock.timing(interval_s=5.0, timeout_s=30.0))
    assert checks == [0.0, 12.0, 24.0]
    assert clock.now == 31.0


def test_a_check_past_the_deadline_is_not_followed_by_a_pause():
    clock = FakeClock()
    slept = []
    timing = Timing(interval_s=5.0, timeout_s=10.0, clock=clock,
                    sleep=lambda s: (slept.append(s), clock.sleep(s)))

    def slow():
        clock.now += 11.0

    with pytest.raises(TimedOut):
        wait_until(slow, timing)
    assert slept == []


def test_waiting_is_a_loop_with_one_pass_per_check():
    clock = FakeClock(start=100.0)
    checks = []
    with pytest.raises(TimedOut, match="^still waiting after 9 s$"):
        for _ in waiting(clock.timing(interval_s=3.0, timeout_s=9.0)):
            checks.append(clock.now)
    assert checks == [100.0, 103.0, 106.0, 109.0] and clock.now == 109.0


def test_waiting_on_the_real_clock_ends_near_its_deadline():
    start = time.monotonic()
    with pytest.raises(TimedOut):
        wait_until(lambda: None, Timing(interval_s=0.01, timeout_s=0.05))
    assert 0.05 <= time.monotonic() - start < 2.0


def test_fake_clock_moves_only_forward_and_only_when_slept():
    clock = FakeClock(start=10.0)
    assert clock() == 10.0
    clock.sleep(2.5)
    clock.sleep(-4.0)
    assert clock() == 12.5
    timing = clock.timing(interval_s=1.0, timeout_s=3.0, attempts=2)
    assert (timing.interval_s, timing.timeout_s, timing.attempts) == (1.0, 3.0, 2)
    timing.sleep(1.0)
    assert timing.clock() == 13.5


def test_timing_compares_by_its_settings_not_its_clock():
    assert FakeClock().timing(timeout_s=5.0) == Timing(timeout_s=5.0)
    assert Timing() == Timing(interval_s=5.0, timeout_s=3600.0, attempts=4, backoff_s=1.0)
    assert Timing(timeout_s=5.0) != Timing(timeout_s=6.0)
