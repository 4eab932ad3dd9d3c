"""A bad rollout in flight on AWS: rolled back by AWS or cancelled first, FleetView's own refresh
stopped, standby instances named and not counted, through boto3 on moto behind FleetView's
instance-refresh layer and a SQLite store."""

from __future__ import annotations

import json
import time

import boto3
import pytest

from fleetview.actions import audit, runner
from fleetview.actions.journal import Journal
from fleetview.domain.timing import Timing
from fleetview.domain.versions import VersionRules
from fleetview.providers.aws.provider import AwsProvider
from fleetview.providers.aws.scope import AwsScopeConfig
from fleetview.sim.aws_fleet import GroupSpec, seed_aws_fleet
from fleetview.store import Store
from tests.helpers.aws import REFRESH_STEP_S, moto_refresh_server  # noqa: F401

REGION = "us-east-1"
GOOD, BAD = "1.3.0", "1.4.0"
# Real time: the layer replaces one batch every REFRESH_STEP_S seconds.
FAST = Timing(interval_s=0.1, timeout_s=60 * REFRESH_STEP_S)


@pytest.fixture
def store(tmp_path):
    with Store.open(f"sqlite:///{tmp_path / 'h.db'}") as opened:
        yield opened


def seed(url: str, *groups: GroupSpec):
    # One standalone instance on GOOD: a poll knows that version's AMI from it.
    return seed_aws_fleet(url, (REGION,), groups=groups, versions=(GOOD, BAD), standalone=1,
                          unlabelled=0).regions[REGION]


@pytest.fixture
def provider(moto_refresh_server):  # noqa: F811
    config = AwsScopeConfig(name="prod", regions=(REGION,),
                            endpoint_url=moto_refresh_server.url, actions=True)
    p = AwsProvider(config, VersionRules(), timing=FAST)
    yield p
    p.close()


def clients(url: str):
    kwargs = {"region_name": REGION, "endpoint_url": url}
    return boto3.client("ec2", **kwargs), boto3.client("autoscaling", **kwargs)


def refreshes(asg, group: str) -> list[dict]:
    """The group's instance refreshes, newest first."""
    return asg.describe_instance_refreshes(AutoScalingGroupName=group)["InstanceRefreshes"]


def until_percent(asg, group: str, percent: int) -> dict:
    deadline = time.monotonic() + 30 * REFRESH_STEP_S
    while time.monotonic() < deadline:
        latest = refreshes(asg, group)[0]
        if latest["PercentageComplete"] >= percent:
            return latest
        time.sleep(0.05)
    raise AssertionError(f"the refresh of {group} did not reach {percent}%")


def deploy_bad(url: str, seeded, group: str, *, desired: bool) -> None:
    """Start a rollout of BAD as a deploy pipeline would: with a DesiredConfiguration (AWS can
    roll it back), or the old way, pointing the group first (AWS cannot)."""
    ec2, asg = clients(url)
    template = seeded.templates[group]
    made = ec2.create_launch_template_version(
        LaunchTemplateId=template, SourceVersion="1",
        LaunchTemplateData={"ImageId": seeded.images[BAD]})["LaunchTemplateVersion"]
    spec = {"LaunchTemplateId": template, "Version": str(made["VersionNumber"])}
    preferences = {"MinHealthyPercentage": 100}  # one instance at a time
    if desired:
        asg.start_instance_refresh(AutoScalingGroupName=group, Preferences=preferences,
                                   DesiredConfiguration={"LaunchTemplate": spec})
    else:
        asg.update_auto_scaling_group(AutoScalingGroupName=group, LaunchTemplate=spec)
        asg.start_instance_refresh(AutoScalingGroupName=group, Preferences=preferences)
    until_percent(asg, group, 12)  # one of eight replaced


def member_images(url: str, group: str) -> dict[str, str]:
    ec2, asg = clients(url)
    described = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group])
    ids = [i["InstanceId"] for i in described["AutoScalingGroups"][0]["Instances"]]
    found = ec2.describe_instances(InstanceIds=ids)["Reservations"]
    return {i["InstanceId"]: i["ImageId"] for r in found for i in r["Instances"]}


def confirm(store, provider, plan) -> str:
    return runner.confirm(store, provider.config, plan,
                          runner.Confirmation(f"{BAD} returns 500s"), "ops")


def test_a_rollback_runs_an_instance_refresh_with_the_version_and_converges(
        moto_refresh_server, provider, store):  # noqa: F811
    seeded = seed(moto_refresh_server.url, GroupSpec("web", size=3, version=BAD))
    inv = provider.poll()
    assert provider.poller.state.refresh_supported[REGION] is True
    assert {i.healthy for i in inv.members(inv.group("web", REGION))} == {True}
    plan = provider.plan_rollback(inv, "web", REGION, GOOD)
    assert plan.mechanism == "instance-refresh"
    assert [s.key for s in plan.steps] == ["template", "refresh:start", "refresh:track"]

    record = runner.execute(store, provider, confirm(store, provider, plan), timing=FAST)
    assert record.status == "recovered", record.message
    assert record.message == f"recovered: all 3 instances of web run {GOOD}"

    _, asg = clients(moto_refresh_server.url)
    [refresh] = refreshes(asg, "web")
    template = seeded.templates["web"]
    assert refresh["Status"] == "Successful"
    assert refresh["DesiredConfiguration"] == {
        "LaunchTemplate": {"LaunchTemplateId": template, "Version": "2"}}
    assert {k: refresh["Preferences"][k] for k in (
        "SkipMatching", "ScaleInProtectedInstances", "StandbyInstances")} == {
        "SkipMatching": True, "ScaleInProtectedInstances": "Wait", "StandbyInstances": "Wait"}
    # The group took the version from the refresh, once it succeeded.
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["web"])[
        "AutoScalingGroups"][0]
    assert group["LaunchTemplate"]["Version"] == "2"
    assert set(member_images(moto_refresh_server.url, "web").values()) == {
        seeded.images[GOOD]}


def test_a_bad_rollout_in_flight_is_stopped_and_rolled_back_by_aws(
        moto_refresh_server, provider, store):  # noqa: F811
    url = moto_refresh_server.url
    seeded = seed(url, GroupSpec("api", size=8, version=GOOD))
    deploy_bad(url, seeded, "api", desired=True)

    inv = provider.poll()
    api = inv.group("api", REGION)
    # The group wants what the refresh deploys; its launch template names GOOD until success.
    assert api.updating and api.desired_version == BAD
    assert api.extra["group_version"] == GOOD
    assert (f"the group's launch template says {GOOD} until the instance refresh completes; "
            f"the refresh deploys {BAD}") in api.notes
    plan = provider.plan_rollback(inv, "api", REGION, GOOD)  # not refused
    on_bad = [i for i in inv.members(api) if i.version == BAD]
    assert on_bad and plan.params["on_rollout"] == len(on_bad)
    assert plan.notes[0].startswith(
        f"stops the update under way, then rolls back: group api has an instance refresh "
        f"InProgress to {BAD} (")
    assert (f"{len(on_bad)} of its {len(inv.members(api))} instances "
            f"{'are' if len(on_bad) != 1 else 'is'} already on {BAD}") in plan.notes[0]
    assert "AWS rolls the refresh back (RollbackInstanceRefresh)" in plan.notes[0]
    assert [s.key for s in plan.steps] == ["refresh:rollback", "refresh:rollback-track"]
    assert plan.steps[0].description.startswith("Stop the update under way: roll back")
    assert plan.mechanism == "instance-refresh" and BAD in plan.from_versions
    assert any(f"already on {BAD}" in line and "replaced by the rollback" in line
               for line in plan.irreversible)

    action_id = confirm(store, provider, plan)
    record = runner.execute(store, provider, action_id, timing=FAST)
    assert record.status == "recovered", record.message
    assert record.message == f"recovered: all 8 instances of api run {GOOD}"
    assert record.time_to_recover_s is not None

    _, asg = clients(url)
    assert [r["Status"] for r in refreshes(asg, "api")] == ["RollbackSuccessful"]
    assert set(member_images(url, "api").values()) == {seeded.images[GOOD]}
    assert asg.describe_auto_scaling_groups(AutoScalingGroupNames=["api"])[
        "AutoScalingGroups"][0]["LaunchTemplate"]["Version"] == "1"
    last = list(audit.entries(store, action_id))[-1]
    assert last.event == "recovered" and json.loads(last.detail)["needed"] == 8


def test_a_rollout_aws_cannot_roll_back_is_cancelled_then_rolled_back(
        moto_refresh_server, provider, store):  # noqa: F811
    url = moto_refresh_server.url
    seeded = seed(url, GroupSpec("api", size=8, version=GOOD))
    deploy_bad(url, seeded, "api", desired=False)

    inv = provider.poll()
    api = inv.group("api", REGION)
    assert api.updating and api.desired_version == BAD
    plan = provider.plan_rollback(inv, "api", REGION, GOOD)
    assert plan.notes[0].startswith("stops the update under way, then rolls back: group api "
                                    f"has an instance refresh InProgress to {BAD}")
    assert ("FleetView cancels the refresh (CancelInstanceRefresh) and waits until it is "
            "cancelled, then an instance refresh replaces them with 1.3.0. AWS's own rollback "
            "cannot be used: the refresh was started without a desired configuration"
            ) in plan.notes[0]
    assert [s.key for s in plan.steps] == ["refresh:cancel", "template", "refresh:start",
                                           "refresh:track"]

    record = runner.execute(store, provider, confirm(store, provider, plan), timing=FAST)
    assert record.status == "recovered", record.message

    _, asg = clients(url)
    newest, bad = refreshes(asg, "api")
    assert (newest["Status"], bad["Status"]) == ("Successful", "Cancelled")
    assert "DesiredConfiguration" not in bad
    # The template step found version 1, which launches GOOD: no new version was made.
    assert newest["DesiredConfiguration"]["LaunchTemplate"]["Version"] == "1"
    assert set(member_images(url, "api").values()) == {seeded.images[GOOD]}


def test_a_stop_during_fleetviews_refresh_cancels_it_and_says_where_the_group_is(
        moto_refresh_server, provider, store):  # noqa: F811
    url = moto_refresh_server.url
    seeded = seed(url, GroupSpec("web", size=4, version=BAD))
    plan = provider.plan_rollback(provider.poll(), "web", REGION, GOOD,
                                  min_healthy_percent=100)  # one instance at a time
    action_id = confirm(store, provider, plan)
    asked: list[str] = []

    def watch(event):
        if event.step == "refresh:track" and event.status == "progress" and event.done >= 25:
            asked.append("enough")

    record = runner.execute(store, provider, action_id, on_event=watch, timing=FAST,
                            should_stop=lambda: "the operator stopped it" if asked else None)
    assert record.status == "stopped", record.message
    _, asg = clients(url)
    [refresh] = refreshes(asg, "web")
    assert refresh["Status"] == "Cancelled"
    assert record.message.startswith(f"the operator stopped it. instance refresh "
                                     f"{refresh['InstanceRefreshId']} (FleetView's rollback) is "
                                     "Cancelled. Group web stays on ")
    images = member_images(url, "web")
    on_good = sum(1 for image in images.values() if image == seeded.images[GOOD])
    assert 0 < on_good < 4
    assert f"{on_good} of {GOOD}" in record.message or f"{on_good} instances of {GOOD}" in \
        record.message
    # A cancelled refresh leaves the group on its configuration: new instances still get BAD.
    assert record.message.endswith(f"it launches {BAD} (launch template "
                                   f"{seeded.templates['web']} version 1) for new instances")
    time.sleep(3 * REFRESH_STEP_S)
    assert member_images(url, "web") == images
    assert not Journal(store).get(action_id).open
    assert [e.event for e in audit.entries(store, action_id)][-1] == "stopped"


def test_standby_and_protected_instances_are_named_and_standby_is_not_healthy(
        moto_refresh_server, provider):  # noqa: F811
    url = moto_refresh_server.url
    seeded = seed(url, GroupSpec("web", size=3, version=BAD))
    _, asg = clients(url)
    standby, protected, plain = seeded.groups["web"]
    asg.enter_standby(AutoScalingGroupName="web", InstanceIds=[standby],
                      ShouldDecrementDesiredCapacity=True)
    asg.set_instance_protection(AutoScalingGroupName="web", InstanceIds=[protected],
                                ProtectedFromScaleIn=True)
    inv = provider.poll()
    web = inv.group("web", REGION)
    assert {i.id: i.healthy for i in inv.members(web)} == {
        standby: False, protected: True, plain: True}

    plan = provider.plan_rollback(inv, "web", REGION, GOOD)
    assert (f"1 instance in Standby ({standby}) would make the refresh wait until back in "
            "service") in " ".join(plan.notes)
    assert f"1 instance protected from scale in ({protected}) would make the refresh wait" in \
        " ".join(plan.notes)
    # A member in Standby runs the version but does not count (ASG lifecycle, not EC2 state).
    replace = provider.plan_replace(inv, plain)
    state = provider.convergence(replace)
    assert (state.on_target, state.needed, state.others) == (1, 2, {"starting": 1})

    # The refresh waits for them rather than skipping them; a stop cancels it.
    list(provider.run_step(plan, plan.steps[0]))
    list(provider.run_step(plan, plan.steps[1]))
    deadline = time.monotonic() + 30 * REFRESH_STEP_S
    while "Waiting for i-" not in (refreshes(asg, "web")[0].get("StatusReason") or ""):
        assert time.monotonic() < deadline, refreshes(asg, "web")[0]
        time.sleep(0.05)
    reason = refreshes(asg, "web")[0]["StatusReason"]
    assert f"{standby}, which is in Standby" in reason or \
        f"{protected}, which is protected from scale in" in reason
    assert refreshes(asg, "web")[0]["Preferences"]["StandbyInstances"] == "Wait"
    message = drain(provider.stop(plan, frozenset({"template", "refresh:start"})))
    assert refreshes(asg, "web")[0]["Status"] == "Cancelled"
    assert message.startswith(f"instance refresh {refreshes(asg, 'web')[0]['InstanceRefreshId']} "
                              "(FleetView's rollback) is Cancelled. ")
    assert message.endswith(f"Group web stays on 2 instances of {BAD} and 1 of {GOOD}; it "
                            f"launches {BAD} (launch template {seeded.templates['web']} "
                            "version 1) for new instances")


def drain(gen):
    try:
        while True:
            next(gen)
    except StopIteration as end:
        return end.value


def test_the_group_wants_what_a_refresh_deploys_from_its_start_and_what_its_rollback_restores(
        moto_refresh_server, provider, store):  # noqa: F811
    """As a MIG patch does on GCP: the store's group spans change when the refresh is seen,
    not when it succeeds, and readiness targets what the group ran in full before it."""
    from datetime import UTC, datetime, timedelta

    from fleetview.actions import history

    url = moto_refresh_server.url
    seeded = seed(url, GroupSpec("api", size=6, version=GOOD))

    def poll():
        inv = provider.poll()
        store.record_poll(inv, inv.polled_at, inv.polled_at)
        return inv.group("api", REGION)

    before = poll()
    assert (before.desired_version, before.updating) == (GOOD, False)
    assert not any("launch template says" in n for n in before.notes)
    ec2, asg = clients(url)
    made = ec2.create_launch_template_version(
        LaunchTemplateId=seeded.templates["api"], SourceVersion="1",
        LaunchTemplateData={"ImageId": seeded.images[BAD]})["LaunchTemplateVersion"]
    asg.start_instance_refresh(
        AutoScalingGroupName="api", Preferences={"MinHealthyPercentage": 100},
        DesiredConfiguration={"LaunchTemplate": {
            "LaunchTemplateId": seeded.templates["api"],
            "Version": str(made["VersionNumber"])}})
    until_percent(asg, "api", 50)  # three of six on BAD
    rolling = poll()
    assert (rolling.desired_version, rolling.desired_image_id, rolling.updating) == (
        BAD, seeded.images[BAD], True)
    assert rolling.extra["group_image_id"] == seeded.images[GOOD]
    ready = history.readiness(store, provider.config, "prod", REGION, "api")
    assert ready.describe() == f"ready: back to {GOOD} (will stop the update under way)"

    asg.rollback_instance_refresh(AutoScalingGroupName="api")
    back = poll()
    # AWS puts back the configuration the group had before the refresh: GOOD.
    assert back.extra["instance_refresh"] == "RollbackInProgress"
    assert (back.desired_version, back.updating) == (GOOD, True)
    assert not any("launch template says" in n for n in back.notes)

    deadline = time.monotonic() + 30 * REFRESH_STEP_S
    while refreshes(asg, "api")[0]["Status"] != "RollbackSuccessful":
        assert time.monotonic() < deadline, refreshes(asg, "api")[0]
        time.sleep(0.05)
    after = poll()
    assert (after.desired_version, after.updating) == (GOOD, False)
    now = datetime.now(UTC)
    spans = store.group_spans(now - timedelta(hours=1), now, ["prod"], [REGION], ["api"])
    # Successive group spans: a refresh seen, then rolled back; the rollback's end changes
    # only `updating`.
    desired = list(spans.sort_values("start")["desired_version"])
    assert [v for n, v in enumerate(desired) if n == 0 or v != desired[n - 1]] == [
        GOOD, BAD, GOOD]
