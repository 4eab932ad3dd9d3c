"""The demo without its window: clouds seeded, history seamless, rollback works, nothing left."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from fleetview import cli
from fleetview.actions import history, runner
from fleetview.actions.prepare import prepare_replace, prepare_rollback
from fleetview.config import load_config
from fleetview.domain.model import State
from fleetview.domain.timing import Timing
from fleetview.providers import make_provider, provider_class
from fleetview.providers.aws.scope import AwsScopeConfig
from fleetview.providers.gcp.scope import GcpScopeConfig
from fleetview.sim import demo as demo_module
from fleetview.sim import demo_story
from fleetview.sim.aws_fleet import clients as aws_clients
from fleetview.sim.demo import INSTALL_HINT, start_demo
from fleetview.store import Store

AWS, GCP, FAILING = demo_story.AWS_SCOPE, demo_story.GCP_SCOPE, demo_story.FAILING_SCOPE
BACKFILLED = demo_story.BACKFILLED_SCOPE
BAD = demo_story.BAD_VERSION
# FleetView's rollback of a rollout in flight converges in well under a minute on the demo,
# while the bad rollout takes minutes on its own.
ROLLBACK_WITHIN_S = 60.0


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    running = start_demo("small", tmp_path_factory.mktemp("demo"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def store(demo):
    opened = Store.open(demo.config.store.url)
    yield opened
    opened.close()


def _fleetview(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fleetview", *args], capture_output=True,
                          text=True, timeout=timeout, env=dict(os.environ))


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_the_config_points_at_the_demo_clouds_and_allows_actions(demo):
    config = load_config(demo.config_path)
    assert [s.name for s in config.scopes] == [AWS, FAILING, BACKFILLED, GCP]
    aws, failing, backfilled, gcp = config.scopes
    assert backfilled.endpoint_url == aws.endpoint_url and backfilled.backfill_days == 30
    assert isinstance(aws, AwsScopeConfig) and isinstance(gcp, GcpScopeConfig)
    assert aws.endpoint_url == demo.moto.url
    assert gcp.api_endpoint == demo.gce_endpoint and gcp.credentials == "anonymous"
    assert failing.endpoint_url not in (aws.endpoint_url, gcp.api_endpoint)
    assert all(s.actions for s in config.scopes)
    assert config.store.url.startswith("sqlite:///")
    assert demo.workdir in demo.config_path.parents
    assert str(demo.workdir) in config.store.url


def test_snapshot_sees_both_clouds_groups_and_the_failing_scope(demo):
    result = _fleetview("snapshot", "--config", str(demo.config_path))
    assert result.returncode == cli.EXIT_PARTIAL, result.stderr
    snapshot = json.loads(result.stdout)
    groups = {(r["scope"], r["region"], r["group"]) for r in snapshot["instances"]}
    assert {(AWS, "us-east-1", "web"), (AWS, "us-east-1", "api"),
            (AWS, "eu-west-1", "worker")} <= groups
    assert {(GCP, "us-central1", "frontend"), (GCP, "us-central1", "api"),
            (GCP, "us-central1", "batch")} <= groups
    standalone = {(r["scope"], r["name"]) for r in snapshot["instances"] if r["group"] is None}
    assert {(AWS, "bastion"), (GCP, "bastion"), (GCP, "tools")} <= standalone
    per_group = Counter((r["scope"], r["group"]) for r in snapshot["instances"] if r["group"])
    assert 20 <= sum(n for (scope, _), n in per_group.items() if scope == AWS) <= 60
    assert [e["scope"] for e in snapshot["errors"]] == [FAILING]
    assert FAILING in result.stderr and "cannot reach" in result.stderr
    zones = {r["zone"] for r in snapshot["instances"] if r["scope"] == GCP}
    assert zones == set(demo_story.GCP_ZONES)
    api_zones = {r["zone"] for r in snapshot["instances"]
                 if r["scope"] == GCP and r["group"] == "api"}
    assert len(api_zones) == 2  # the regional MIG spans both zones


def test_history_covers_30_days_and_five_versions(demo, store):
    now = datetime.now(UTC)
    spans = store.spans(now - timedelta(days=40), now)
    # The bad build only starts rolling out as the window opens: the collector records it.
    assert set(demo_story.VERSIONS) - {BAD} <= set(spans["version"].dropna()) <= set(
        demo_story.VERSIONS)
    first = spans["start"].min().to_pydatetime()
    assert now - timedelta(days=31) < first < now - timedelta(days=29)
    # Thirty days ago every group ran 2.0.0; fifteen days ago 2.2.0 (worker too).
    for days, version in ((29.9, "2.0.0"), (15, "2.2.0")):
        fleet = store.fleet_at(now - timedelta(days=days))
        grouped = fleet[fleet["group"].notna() & fleet["scope"].isin([AWS, GCP])]
        assert set(grouped["version"]) == {version}
    # Earlier rollouts replaced instances: many more spans than instances live now.
    assert spans["instance_id"].nunique() > 3 * len(store.fleet_at())


def test_history_tells_the_story(demo, store):
    groups = store.groups_at().set_index(["scope", "group"])
    # The history ends with the poll before the live rollouts began: api still wants 2.3.0
    # (the collector's polls see its refresh and record 2.4.0 from then on).
    assert groups.loc[(AWS, "api"), "desired_version"] == "2.3.0"
    assert groups.loc[(AWS, "worker"), "desired_version"] == "2.3.0"
    fleet = store.fleet_at()
    worker = fleet[(fleet["scope"] == AWS) & (fleet["group"] == "worker")]
    assert set(worker["version"]) == {"2.2.0"} and worker["drift"].all()
    fresh = store.freshness().set_index("scope")
    assert bool(fresh.loc[FAILING, "ok"]) is False
    assert "cannot reach" in fresh.loc[FAILING, "error"]
    assert fresh.loc[[AWS, GCP], "ok"].all()
    failed = store.polls(scopes=[FAILING])
    assert (~failed["ok"]).sum() >= 5  # hours of failures, not just the last poll
    # The outage does not read as "terminated": the failing scope's instances stay.
    assert (fleet["scope"] == FAILING).sum() == len(demo_story.FAILING.instances)


def test_the_first_collector_poll_changes_almost_nothing(demo, store):
    before = datetime.now(UTC)
    result = _fleetview("collect", "--once", "--config", str(demo.config_path))
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    finished = {e["scope"]: e for e in events if e.get("event") == "poll_finished"}
    assert set(finished) == {AWS, GCP, FAILING, BACKFILLED}, result.stderr
    # Every AWS instance outside the refreshing group (api: 8 of 28) is unchanged.
    assert finished[AWS]["ok"] and finished[AWS]["unchanged"] >= 20
    # Every GCP instance outside the rolling group (10 of 26) is unchanged.
    assert finished[GCP]["ok"] and finished[GCP]["unchanged"] >= 16
    assert not finished[FAILING]["ok"]
    # Only the live rollouts (started after the history ended) opened spans.
    spans = store.spans(before - timedelta(minutes=5), datetime.now(UTC))
    # The scope the demo never watched gets its first poll (and its backfill) now.
    fresh = spans[(spans["start"] > demo.history_end) & (spans["scope"] != BACKFILLED)]
    assert set(zip(fresh["scope"], fresh["group"], strict=True)) <= {(GCP, "frontend"),
                                                                     (AWS, "api")}
    assert len(fresh) == finished[GCP]["opened"] + finished[AWS]["opened"]


def test_the_scope_never_watched_gets_its_month_from_backfill(demo):
    result = _fleetview("backfill", "--scope", BACKFILLED, "--config", str(demo.config_path))
    assert result.returncode == cli.EXIT_OK, result.stderr
    done = [json.loads(line) for line in result.stdout.splitlines()
            if '"backfill_finished"' in line]
    assert done and done[0]["ok"] and done[0]["spans"] > 0, result.stdout
    with Store.open(demo.config.store.url, readonly=True) as store:
        spans = store.spans(datetime.now(UTC) - timedelta(days=31), datetime.now(UTC),
                            scopes=[BACKFILLED])
        assert set(spans["source"]) >= {"observed", "asg-activity, cloudtrail"}
        assert spans["start"].min() < datetime.now(UTC) - timedelta(days=29)
        ready = history.readiness(store, demo.config.scope(BACKFILLED), BACKFILLED,
                                  demo_story.BACKFILLED_REGION, "checkout")
    assert ready.ready and "rebuilt from cloud records" in ready.describe()


def test_the_bad_release_is_in_flight_on_both_clouds(demo):
    """As a deploy pipeline started it: an instance refresh with a DesiredConfiguration (and a
    warm-up that makes it take minutes) on AWS, a MIG update on GCP."""
    assert demo.rollouts == {GCP: ["frontend"], AWS: ["api"]}
    _, asg = aws_clients(demo.moto.url, "us-east-1")
    refresh = asg.describe_instance_refreshes(AutoScalingGroupName="api")["InstanceRefreshes"][0]
    assert refresh["Status"] in ("Pending", "InProgress"), refresh
    assert refresh["PercentageComplete"] < 50
    assert refresh["Preferences"]["InstanceWarmup"] == demo_story.DEPLOY_WARMUP_S
    template = refresh["DesiredConfiguration"]["LaunchTemplate"]
    assert template["Version"] != "1"
    providers = [make_provider(demo.config.scope(name), demo.config.versions)
                 for name in (AWS, GCP)]
    try:
        deadline = time.monotonic() + 30
        while True:
            inventories = [p.poll() for p in providers]
            groups = [inventories[0].group("api", "us-east-1"),
                      inventories[1].group("frontend", "us-central1")]
            new = [{i.id for i in inv.instances if i.group == g.name and i.version == BAD}
                   for inv, g in zip(inventories, groups, strict=True)]
            if all(new) and all(g.updating for g in groups) or time.monotonic() > deadline:
                break
            time.sleep(1)
    finally:
        for provider in providers:
            provider.close()
    assert all(new), f"no instance of api (AWS) or frontend (GCP) runs {BAD} after 30 s"
    assert all(g.updating for g in groups), groups
    # Both clouds say the same: the group wants what the rollout deploys, and on AWS the
    # launch template the group names until its refresh succeeds is said beside it.
    assert [g.desired_version for g in groups] == [BAD, BAD]
    assert any("launch template says 2.3.0 until the instance refresh" in n
               for n in groups[0].notes), groups[0].notes


def test_the_live_rollout_advances(demo):
    provider = make_provider(demo.config.scope(GCP), demo.config.versions)
    try:
        group = provider.poll().group("frontend", "us-central1")
        assert group.desired_version == "2.4.0"
        deadline = time.monotonic() + 30
        while True:
            inventory = provider.poll()
            new = [i for i in inventory.instances
                   if i.group == "frontend" and i.version == "2.4.0"]
            if new or time.monotonic() > deadline:
                break
            time.sleep(1)
    finally:
        provider.close()
    assert new, "no instance of frontend runs 2.4.0 after 30 s"
    assert inventory.group("frontend", "us-central1").updating


def _stop_and_roll_back(demo, store, scope: str, region: str, group: str):
    """Plan, confirm and run the rollback of a group whose rollout is in flight; the plan,
    the record, the poll after, and how long it took from confirmation."""
    provider = make_provider(demo.config.scope(scope), demo.config.versions,
                             timing=Timing(interval_s=0.2))
    try:
        ready = history.readiness(store, demo.config.scope(scope), scope, region, group)
        assert ready.ready, ready.why  # not refused: the plan stops the rollout first
        assert ready.note == "will stop the update under way"
        # Named, as an operator may: the default target is the next test's business.
        prepared = prepare_rollback(demo.config, store, scope, region, group, "2.3.0",
                                    provider=provider)
        assert prepared.ok, prepared.refusal
        action_id = runner.confirm(store, demo.config.scope(scope), prepared.plan,
                                   runner.Confirmation(f"{BAD} returns 500s"),
                                   prepared.identity, group=prepared.group_info)
        started = time.monotonic()
        record = runner.execute(store, provider, action_id,
                                timing=Timing(interval_s=0.2, timeout_s=120.0))
        took = time.monotonic() - started
        inventory = provider.poll()
    finally:
        provider.close()
    return prepared.plan, record, inventory, took


@pytest.mark.parametrize(("scope", "region", "group"), [
    (AWS, "us-east-1", "api"), (GCP, "us-central1", "frontend")])
def test_the_default_target_of_a_rollout_in_flight_is_the_version_before_it(
        demo, store, scope, region, group):
    """The collector saw the bad rollout (an earlier test polled): the rollback goes back to
    what the group ran in full before it, 2.3.0, not further."""
    ready = history.readiness(store, demo.config.scope(scope), scope, region, group)
    assert ready.ready, ready.why
    assert ready.target is not None and ready.target.version == "2.3.0", ready.target


def _words(plan) -> str:
    return " ".join([*plan.notes, *(s.description for s in plan.steps)])


def test_stopping_and_rolling_back_the_aws_refresh_in_flight_converges(demo, store):
    plan, record, inventory, took = _stop_and_roll_back(demo, store, AWS, "us-east-1", "api")
    assert plan.to_version == "2.3.0" and BAD in plan.from_versions
    assert plan.mechanism == "instance-refresh"
    assert plan.params.get("in_flight") and "stops the update under way" in _words(plan)
    assert record.status == "recovered", record.message
    assert record.recovered_us is not None
    assert took < ROLLBACK_WITHIN_S, took
    api = [i for i in inventory.instances if i.group == "api" and i.state == State.RUNNING]
    assert len(api) == inventory.group("api", "us-east-1").target_size
    assert {i.version for i in api} == {"2.3.0"}
    assert inventory.group("api", "us-east-1").desired_version == "2.3.0"
    assert not inventory.group("api", "us-east-1").updating
    _, asg = aws_clients(demo.moto.url, "us-east-1")
    refresh = asg.describe_instance_refreshes(AutoScalingGroupName="api")["InstanceRefreshes"]
    assert refresh[-1]["DesiredConfiguration"]  # the deploy's, stopped
    assert refresh[-1]["Status"] in ("Cancelled", "RollbackSuccessful")
    # The version the rollback left is bad for the group: never the default target again.
    again = history.readiness(store, demo.config.scope(AWS), AWS, "us-east-1", "api")
    assert again.target is None or again.target.version != BAD


def test_stopping_and_rolling_back_the_gcp_update_in_flight_converges(demo, store):
    plan, record, inventory, took = _stop_and_roll_back(demo, store, GCP, "us-central1",
                                                        "frontend")
    assert plan.to_version == "2.3.0" and BAD in plan.from_versions
    assert plan.mechanism == "mig-update" and "stops the update under way" in _words(plan)
    assert record.status == "recovered", record.message
    assert took < ROLLBACK_WITHIN_S, took
    frontend = [i for i in inventory.instances if i.group == "frontend"]
    group = inventory.group("frontend", "us-central1")
    assert len(frontend) == group.target_size
    assert {i.version for i in frontend} == {"2.3.0"}
    assert group.desired_version == "2.3.0"


def test_replacing_a_gcp_instance_goes_through_the_emulator(demo, store):
    assert demo._gce_command("speed 10", "speed") == {"speed": 10.0}  # ten times the pace
    scope_config = demo.config.scope(GCP)
    provider = provider_class("gcp")(scope_config, demo.config.versions,
                                     timing=Timing(interval_s=0.5))
    try:
        before = provider.poll()
        victim = next(i for i in before.instances if i.group == "batch")
        prepared = prepare_replace(demo.config, store, GCP, victim.id, provider=provider)
        assert prepared.ok, prepared.refusal
        action_id = runner.confirm(store, scope_config, prepared.plan,
                                   runner.Confirmation("disk errors"), prepared.identity,
                                   group=prepared.group_info)
        record = runner.execute(store, provider, action_id,
                                timing=Timing(interval_s=0.2, timeout_s=60))
        assert record.status == "recovered", record.message
        after = provider.poll()
    finally:
        provider.close()
    batch = [i for i in after.instances if i.group == "batch"]
    assert victim.id not in {i.id for i in batch}
    assert victim.name in {i.name for i in batch}  # a MIG recreates under the same name
    assert {i.version for i in batch} == {"2.3.0"} and len(batch) == 6


def test_a_second_demo_does_not_collide_and_stops_when_the_window_fails(demo, tmp_path,
                                                                          monkeypatch):
    """A second demo beside the first: its own ports and directory; and an exception in the
    window still stops it (the real window is tested with pytest-qt elsewhere)."""
    seen = {}

    def window(config, collect=True, settings_path=None):
        seen["config"] = config
        # The demo keeps its window geometry in its own directory, not the user's settings.
        assert settings_path and settings_path.startswith(str(started[0].workdir))
        seen["pids"] = list(started[0].pids)
        seen["workdir"] = started[0].workdir
        assert collect and config.path.exists()
        raise RuntimeError("the window crashed")

    started = []
    real_start = demo_module.start_demo

    def start(size="small", workdir=None):
        started.append(real_start(size, tmp_path))
        return started[0]

    monkeypatch.setattr(demo_module, "start_demo", start)
    import fleetview.ui.app

    monkeypatch.setattr(fleetview.ui.app, "run_gui", window)
    with pytest.raises(RuntimeError, match="the window crashed"):
        demo_module.run_demo("small")
    assert seen["config"].scope(AWS).endpoint_url != demo.moto.url
    assert seen["config"].scope(GCP).api_endpoint != demo.gce_endpoint
    assert seen["config"].store.url != demo.config.store.url
    assert all(_gone(p) for p in seen["pids"])
    assert not seen["workdir"].exists()
    assert demo.workdir.exists() and not any(_gone(p) for p in demo.pids)


def test_stop_ends_every_child_and_removes_the_directory(demo):
    pids = demo.pids
    assert len(pids) == 2 and not any(_gone(p) for p in pids)
    demo.stop()
    assert all(_gone(p) for p in pids)
    assert not demo.workdir.exists()
    demo.stop()  # twice is harmless


def test_without_moto_the_demo_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "moto", None)
    assert cli.main(["--demo"]) == cli.EXIT_ERROR
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert INSTALL_HINT in err and err.startswith("fleetview: ")

