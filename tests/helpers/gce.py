"""Pytest fixtures for the Compute Engine emulator; import them explicitly where needed.

    from tests.helpers import gce as gce_fixtures
    gce_emulator = gce_fixtures.gce_emulator

`gce_emulator` is a started GceEmulator on a manual clock: `.endpoint`, `.state` (seeding),
`.clock` (advance), `.faults`, `.client_kwargs()` (credentials and client_options for any
compute_v1 client). `gce_client_kwargs` is that last dict on its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from fleetview.sim.gce import EmulatedClock, GceEmulator, GceState

# A fixed start keeps timestamps in assertions stable: 2026-01-15T12:00:00Z.
CLOCK_START = 1_768_478_400.0
PROJECT = "demo-project"


@pytest.fixture
def gce_emulator() -> Iterator[GceEmulator]:
    emulator = GceEmulator(GceState(EmulatedClock(CLOCK_START), project=PROJECT)).start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def gce_client_kwargs(gce_emulator: GceEmulator) -> dict[str, Any]:
    return gce_emulator.client_kwargs()
