"""Pytest fixtures for the Compute Engine emulator; import them explicitly where needed.

    from tests.helpers import gce as gce_fixtures
    gce_emulator = gce_fixtures.gce_emulator

`gce_emulator` is a started GceEmulator on a manual clock: `.endpoint`, `.state` (seeding),
`.clock` (advance), `.faults`, `.client_kwargs()` (credentials and client_options for any
compute_v1 client). `gce_client_kwargs` is that last dict on its own. `seed_fleet` seeds the
GCP tests' fleet; `make` is a GCP provider on the emulator that waits on its clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from fleetview.domain.timing import Timing
from fleetview.domain.versions import VersionRules
from fleetview.providers.gcp.provider import GcpProvider
from fleetview.providers.gcp.scope import GcpScopeConfig
from fleetview.sim.gce import EmulatedClock, GceEmulator, GceState
from fleetview.sim.gce.audit import seed_rollouts

# A fixed start keeps timestamps in assertions stable: 2026-01-15T12:00:00Z.
CLOCK_START = 1_768_478_400.0
PROJECT = "demo-project"
IMG = f"projects/{PROJECT}/global/images"


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


def scope_config(emulator, **kw) -> GcpScopeConfig:
    return GcpScopeConfig(name="gcp-test", project=kw.pop("project", PROJECT),
                          api_endpoint=emulator.endpoint,
                          credentials=kw.pop("credentials", "anonymous"), **kw)


def emulated_timing(emulator, sleeps: list | None = None, **kw) -> Timing:
    """Waiting on the emulator's clock: a sleep advances it (and is noted)."""
    def sleep(seconds: float) -> None:
        if sleeps is not None:
            sleeps.append(seconds)
        emulator.clock.advance(seconds)

    return Timing(sleep=sleep, clock=emulator.clock.now, **kw)


def make(emulator, sleeps: list | None = None, **kw) -> GcpProvider:
    """A provider on the emulator whose waits run on the emulated clock; `interval_s`,
    `timeout_s` and `attempts` go to its Timing, the rest to its scope config."""
    opts = {k: kw.pop(k) for k in ("attempts", "interval_s", "timeout_s") if k in kw}
    return GcpProvider(scope_config(emulator, **kw), VersionRules(),
                       timing=emulated_timing(emulator, sleeps, **opts))


def seed_fleet(state) -> None:
    """Three releases; a zonal, a regional and a canary MIG; one standalone VM."""
    for days, version in ((60, "1-8-0"), (20, "1-9-0"), (2, "1-10-0")):
        state.create_image(f"app-{version}", family="app", labels={"version": version},
                           created=timedelta(days=days))
        state.create_instance_template(f"app-{version}-tmpl", f"app-{version}",
                                       labels={"team": "web"}, created=timedelta(days=days))
    state.create_mig("web", "app-1-9-0-tmpl", zone="us-central1-a", target_size=3)
    state.create_mig("api", "app-1-9-0-tmpl", region="us-central1", target_size=6)
    state.create_mig("worker", "app-1-9-0-tmpl", zone="europe-west1-b", target_size=4,
                     versions=[{"instanceTemplate": "app-1-9-0-tmpl", "name": "stable"},
                               {"instanceTemplate": "app-1-10-0-tmpl", "name": "canary",
                                "targetSize": {"fixed": 1}}])
    state.create_instance("bastion", "us-central1-b", "app-1-8-0", labels={"role": "bastion"})


# A month of history (audit log entries, live instances to match), for backfill tests:
# group -> [(days before the clock's start, version it was created on or rolled out to)].
ROLLOUTS = {
    "web": [(40.0, "1-0-0"), (29.5, "1-1-0"), (12.25, "1-2-0")],
    "api": [(25.0, "1-1-0"), (6.75, "1-2-0")],
}
ROLLOUT_SPREAD = 60.0  # seconds between two instances of one rollout


def seed_history(state) -> None:
    """Releases 1-0-0 .. 1-3-0 (1-3-0 not yet rolled out), a zonal group "web" (4 instances)
    and a regional group "api" (6) with the past of ROLLOUTS, a standalone "bastion"."""
    for days, version in ((45, "1-0-0"), (35, "1-1-0"), (20, "1-2-0"), (1, "1-3-0")):
        state.create_image(f"app-{version}", family="app", labels={"version": version},
                           created=timedelta(days=days))
        state.create_instance_template(f"app-{version}-tmpl", f"app-{version}",
                                       created=timedelta(days=days))
    state.create_mig("web", "app-1-2-0-tmpl", zone="us-central1-a", target_size=4)
    state.create_mig("api", "app-1-2-0-tmpl", region="us-central1", target_size=6)
    for group, rollouts in ROLLOUTS.items():
        seed_rollouts(state, group, [(timedelta(days=d), f"app-{v}-tmpl") for d, v in rollouts],
                      spread=ROLLOUT_SPREAD)
    state.create_instance("bastion", "us-central1-b", "app-1-0-0", created=timedelta(days=33))
