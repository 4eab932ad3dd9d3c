"""The emulator's clock: manual advance, real-time mode, and Compute Engine timestamps."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from fleetview.sim.gce.clock import EmulatedClock, rfc3339


def test_manual_clock_stands_still_until_advanced():
    clock = EmulatedClock(1000.0)
    assert clock.now() == 1000.0
    assert clock.advance(30) == 1030.0
    assert clock.now() == 1030.0
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_realtime_clock_runs_at_its_speed_and_switches_without_a_jump():
    clock = EmulatedClock(1000.0, realtime=True, speed=1000.0)
    time.sleep(0.02)
    assert clock.now() >= 1015.0
    clock.set_realtime(False)
    frozen = clock.now()
    time.sleep(0.01)
    assert clock.now() == frozen


def test_timestamps_look_like_compute_engines():
    stamp = rfc3339(1_768_478_400.25)  # 2026-01-15T12:00:00.250Z
    assert stamp == "2026-01-15T05:00:00.250-07:00"
    assert datetime.fromisoformat(stamp).timestamp() == 1_768_478_400.25
