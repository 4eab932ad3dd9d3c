"""The collector end to end: `fleetview collect --once` polls moto and the GCE emulator
through the real SDKs and writes both clouds into one store."""

import json
import subprocess
import sys
from datetime import UTC, datetime

from fleetview.sim.aws_fleet import seed_aws_fleet
from fleetview.store import Store
from tests.helpers import gce as gce_fixtures
from tests.helpers.aws import closed_port_url, moto_server  # noqa: F401

gce_emulator = gce_fixtures.gce_emulator


def collect_once(config_path) -> tuple[int, list[dict]]:
    result = subprocess.run([sys.executable, "-m", "fleetview", "collect", "--once", "--config",
                             str(config_path)], capture_output=True, text=True, timeout=180)
    return result.returncode, [json.loads(line) for line in result.stdout.splitlines()]


def test_collect_once_writes_both_clouds_and_reports_the_failing_region(
        moto_server, gce_emulator, tmp_path):  # noqa: F811
    fleet = seed_aws_fleet(moto_server.url, regions=("us-east-1",))
    state = gce_emulator.state
    state.create_image("app-2-1-0", labels={"version": "2-1-0"})
    state.create_instance_template("app-t1", "app-2-1-0")
    state.create_mig("web", "app-t1", zone="us-central1-a", target_size=3)
    db = tmp_path / "history.db"
    config = tmp_path / "config.toml"
    config.write_text(f"""
[store]
url = "sqlite:///{db}"
[[aws]]
name = "aws-test"
regions = ["us-east-1"]
endpoint_url = "{moto_server.url}"
[[aws]]
name = "aws-down"
regions = ["eu-west-1"]
endpoint_url = "{closed_port_url()}"
[[gcp]]
name = "gcp-test"
project = "{gce_fixtures.PROJECT}"
api_endpoint = "{gce_emulator.endpoint}"
credentials = "anonymous"
""")
    code, events = collect_once(config)
    assert code == 3, events  # one scope failed; the others were written
    finished = {e["scope"]: e for e in events if e["event"] == "poll_finished"}
    assert finished["aws-test"]["ok"] and finished["gcp-test"]["ok"]
    assert finished["aws-test"]["instances"] == fleet.instance_count
    assert finished["gcp-test"]["instances"] == 3
    assert any(e["event"] == "scope_error" and e["scope"] == "aws-down" for e in events)

    with Store.open(f"sqlite:///{db}", readonly=True) as store:
        now = store.fleet_at()
        assert set(now["scope"]) == {"aws-test", "gcp-test"}
        assert set(now.loc[now["scope"] == "gcp-test", "version"]) == {"2.1.0"}
        assert len(now) == fleet.instance_count + 3
        fresh = store.freshness().groupby("scope")["ok"].all()
        assert not fresh["aws-down"] and fresh["gcp-test"] and fresh["aws-test"]

    # A second poll of an unchanged fleet opens no span.
    code, events = collect_once(config)
    again = {e["scope"]: e for e in events if e["event"] == "poll_finished"}
    assert again["aws-test"]["opened"] == 0 and again["gcp-test"]["opened"] == 0
    with Store.open(f"sqlite:///{db}", readonly=True) as store:
        spans = store.spans(datetime(2020, 1, 1, tzinfo=UTC), datetime.now(UTC))
        # The first poll's backfill adds what ran before it, apart: observed spans are one each.
        assert (spans["source"] == "observed").sum() == fleet.instance_count + 3
