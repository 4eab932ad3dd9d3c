"""Messages that say what went wrong: a broken GOOGLE_APPLICATION_CREDENTIALS file names the
file and why; a lock whose owner process is gone says so; a GCP scope that fails right after a
restart shows every one of its regions failed, not a pseudo-region."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from fleetview.actions import locks
from fleetview.domain.actions import ActionRefused
from fleetview.domain.errors import ProviderError
from fleetview.domain.timing import Timing
from fleetview.domain.versions import VersionRules
from fleetview.providers.gcp.clients import load_credentials
from fleetview.providers.gcp.provider import GcpProvider
from fleetview.providers.gcp.scope import GcpScopeConfig
from fleetview.store import Store
from tests.helpers import gce as gce_fixtures
from tests.helpers.aws import closed_port_url

gce_emulator = gce_fixtures.gce_emulator


@pytest.fixture
def store(tmp_path):
    with Store.open(f"sqlite:///{tmp_path / 'history.db'}") as opened:
        yield opened


# -- GOOGLE_APPLICATION_CREDENTIALS -----------------------------------------------------------

@pytest.mark.parametrize(("content", "why"), [
    (None, "there is no such file"),
    ("this is not JSON", "not usable credentials"),
    ('{"type": "no_such_type"}', "not usable credentials"),
], ids=["missing", "not-json", "unknown-type"])
def test_a_broken_credentials_file_is_named_with_what_is_wrong(content, why, tmp_path,
                                                                monkeypatch):
    path = tmp_path / "key.json"
    if content is not None:
        path.write_text(content)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
    config = GcpScopeConfig(name="gcp", project="p")
    with pytest.raises(ProviderError) as raised:
        load_credentials(config)
    message = str(raised.value)
    assert str(path) in message and why in message, message
    assert "no Google application default credentials found" not in message


# -- locks ------------------------------------------------------------------------------------

def test_a_lock_whose_owner_process_is_gone_says_so(store):
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    owner = f"ana@{socket.gethostname()}:{int(ended.stdout)}"
    locks.acquire(store, "prod", "us-east-1", "web", "a1", owner=owner)
    with pytest.raises(ActionRefused, match=r"owner gone since \d{4}-\d\d-\d\d .*UTC") as refused:
        locks.acquire(store, "prod", "us-east-1", "web", "a2")
    assert "no longer runs" in str(refused.value)
    assert locks.current(store, "prod", "us-east-1", "web").action_id == "a1"  # not taken


def test_a_lock_of_a_live_or_remote_owner_is_not_called_gone(store):
    here = f"bo@{socket.gethostname()}:{os.getpid()}"
    elsewhere = "cy@another-machine.example:1"
    for group, owner in (("web", here), ("api", elsewhere)):
        locks.acquire(store, "prod", "us-east-1", group, f"a-{group}", owner=owner)
        lock = locks.current(store, "prod", "us-east-1", group)
        assert not lock.owner_gone and "owner gone" not in lock.describe()


# -- a GCP scope failing right after a restart -------------------------------------------------

def test_a_gcp_failure_after_a_restart_marks_every_region_failed(gce_emulator, store):
    gce_fixtures.seed_fleet(gce_emulator.state)
    before = gce_fixtures.make(gce_emulator)
    good = before.poll()
    before.close()
    assert good.ok and len(good.regions_ok) == 2
    store.record_poll(good, good.polled_at, good.polled_at)
    # A new collector process: no region known in memory, and the endpoint is down.
    config = GcpScopeConfig(name=good.scope.name, project=gce_fixtures.PROJECT,
                            api_endpoint=closed_port_url(), credentials="anonymous")
    after = GcpProvider(config, VersionRules(), timing=Timing(attempts=1, poll_deadline_s=10))
    failed = after.poll()
    after.close()
    assert not failed.regions_ok and [e.region for e in failed.errors] == [""]
    store.record_poll(failed, failed.polled_at, failed.polled_at)
    rows = store.freshness()
    assert set(rows["region"]) == set(good.regions_ok)  # no pseudo-region
    assert not rows["ok"].any()
    assert all("cannot reach the Compute API" in e for e in rows["error"])
