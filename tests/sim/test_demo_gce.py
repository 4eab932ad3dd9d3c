"""The demo's Compute Engine process: seeded story over HTTP, and its cleanup when orphaned."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest

from fleetview.providers import make_provider
from fleetview.providers.gcp.scope import GcpScopeConfig
from fleetview.sim import demo_story


@pytest.fixture
def gce():
    process = subprocess.Popen(
        [sys.executable, "-m", "fleetview.sim.demo_gce", "--size", "small"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    ready = json.loads(process.stdout.readline())
    assert ready["ready"]
    yield process, ready
    if process.poll() is None:
        process.kill()
    process.wait(10)
    process.stdout.close()
    if process.stdin:
        process.stdin.close()


def _say(process, line: str) -> dict:
    process.stdin.write(line + "\n")
    process.stdin.flush()
    return json.loads(process.stdout.readline())


def _sleeper():
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_it_serves_the_story_and_starts_the_live_rollout(gce):
    process, ready = gce
    scope = GcpScopeConfig(name="demo-gcp", project=ready["project"],
                           api_endpoint=ready["endpoint"], credentials="anonymous")
    provider = make_provider(scope)
    try:
        inventory = provider.poll()
        assert ready["instances"] == len(inventory.instances) == 26
        sizes = Counter(i.group for i in inventory.instances)
        assert sizes == {g.name: g.size("small") for g in demo_story.groups_of("gcp")} | {
            None: 2}
        assert {g.name for g in inventory.groups if g.zone is None} == {"api"}
        assert _say(process, "rollout") == {"rollout": ["frontend"]}
        frontend = provider.poll().group("frontend", "us-central1")
        assert frontend.desired_version == "2.4.0" and frontend.updating
    finally:
        provider.close()
    assert "error" in _say(process, "dance")
    assert "error" in _say(process, "speed -1")


def test_orphaned_it_ends_the_watched_process_and_removes_the_directory(gce, tmp_path):
    process, _ = gce
    sleeper = _sleeper()
    doomed = tmp_path / "demo dir"
    doomed.mkdir()
    assert _say(process, f"watch {sleeper.pid}") == {"watching": sleeper.pid}
    assert _say(process, f"remove {doomed}") == {"removing": str(doomed)}
    process.stdin.close()  # as when the demo's process dies
    assert process.wait(15) == 0
    assert sleeper.wait(15) != 0
    assert not doomed.exists()


def test_told_to_stop_it_leaves_the_cleaning_to_the_demo(gce, tmp_path):
    process, _ = gce
    sleeper = _sleeper()
    try:
        _say(process, f"watch {sleeper.pid}")
        _say(process, f"remove {tmp_path}")
        process.stdin.write("stop\n")
        process.stdin.close()
        assert process.wait(15) == 0
        assert sleeper.poll() is None and tmp_path.exists()
    finally:
        sleeper.kill()
        sleeper.wait(10)
