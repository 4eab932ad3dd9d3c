"""The emulator as a server: the command line, concurrent clients, scale, real-time waits."""

from __future__ import annotations

import subprocess
import sys
import threading

import requests
from google.cloud import compute_v1

from fleetview.sim.gce import EmulatedClock, GceEmulator, GceState
from fleetview.sim.gce.seed import seed_fleet
from tests.helpers import gce as gce_fixtures
from tests.helpers.gce import PROJECT

gce_emulator = gce_fixtures.gce_emulator
gce_client_kwargs = gce_fixtures.gce_client_kwargs


def test_command_line_serves_a_seeded_estate():
    with subprocess.Popen(
            [sys.executable, "-m", "fleetview.sim.gce", "--port", "0", "--seed", "--realtime"],
            stdout=subprocess.PIPE, text=True) as proc:
        try:
            line = proc.stdout.readline()
            assert "Compute Engine emulator on http://127.0.0.1:" in line
            endpoint = line.split(" on ", 1)[1].split(" ", 1)[0]
            body = requests.get(
                f"{endpoint}/compute/v1/projects/demo-project/aggregated/instances",
                timeout=10).json()
            names = [i["name"] for s in body["items"].values() for i in s.get("instances", [])]
            assert "bastion" in names and len(names) > 10
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def test_concurrent_clients_during_a_rollout_see_consistent_counts(gce_emulator):
    state = gce_emulator.state
    state.create_image("a")
    state.create_image("b")
    state.create_instance_template("ta", "a")
    state.create_instance_template("tb", "b")
    state.create_mig("web", "ta", zone="us-central1-a", target_size=40)
    state.patch_group(state.find_group("web"), {
        "versions": [{"instanceTemplate": "tb"}],
        "updatePolicy": {"maxSurge": {"fixed": 3}, "maxUnavailable": {"fixed": 0}}})
    url = f"{gce_emulator.endpoint}/compute/v1/projects/{PROJECT}/aggregated/instances"
    problems: list[str] = []

    def reader() -> None:
        with requests.Session() as session:
            for _ in range(15):
                body = session.get(url, timeout=10).json()
                n = sum(len(s.get("instances", [])) for s in body["items"].values())
                if not 40 <= n <= 43:  # target size, plus at most maxSurge in flight
                    problems.append(f"saw {n} instances")

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for _ in range(20):
        gce_emulator.clock.advance(30)
    for t in threads:
        t.join()
    assert problems == []
    assert state.mig("web")["status"]["versionTarget"]["isReached"]


def test_ten_thousand_instances_page_quickly_and_completely():
    with GceEmulator(GceState(EmulatedClock(gce_fixtures.CLOCK_START))) as emulator:
        seed_fleet(emulator.state, 10_000, group_size=250)
        url = f"{emulator.endpoint}/compute/v1/projects/{PROJECT}/aggregated/instances"
        seen, token, pages = set(), None, 0
        with requests.Session() as session:
            while True:
                body = session.get(url, params={"pageToken": token} if token else {},
                                   timeout=30).json()
                pages += 1
                seen.update(i["id"] for s in body["items"].values()
                            for i in s.get("instances", []))
                token = body.get("nextPageToken")
                if not token:
                    break
        assert len(seen) == 10_000 and pages == 20


def test_wait_blocks_until_done_when_the_clock_follows_real_time(gce_client_kwargs,
                                                                  gce_emulator):
    state = gce_emulator.state
    state.create_image("a")
    state.create_instance_template("ta", "a")
    state.create_mig("web", "ta", zone="us-central1-a", target_size=1)
    gce_emulator.clock.set_realtime(True, speed=50.0)  # op_seconds=1 -> 20 ms of wall time
    groups = compute_v1.InstanceGroupManagersClient(**gce_client_kwargs)
    op = groups.resize_unary(project=PROJECT, zone="us-central1-a",
                             instance_group_manager="web", size=2)
    before = gce_emulator.clock.now()
    done = compute_v1.ZoneOperationsClient(**gce_client_kwargs).wait(
        project=PROJECT, zone="us-central1-a", operation=op.name)
    assert done.status == compute_v1.Operation.Status.DONE
    assert gce_emulator.clock.now() - before >= 0.0
    assert state.operations[PROJECT][op.name].done_at > before - 1.0
