"""Replace and rollback on moto end to end; the instance-refresh path through botocore's Stubber."""

import dataclasses
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import ANY, Stubber

from fleetview.actions.steps import run_steps
from fleetview.domain.actions import ActionRefused
from fleetview.domain.timing import FakeClock
from fleetview.domain.versions import VersionRules
from fleetview.providers.aws.provider import AwsProvider
from fleetview.providers.aws.scope import AwsScopeConfig
from fleetview.sim.aws_fleet import GroupSpec, seed_aws_fleet
from tests.helpers.aws import moto_server  # noqa: F401

REGION = "us-east-1"
GROUPS = [GroupSpec("api", size=4, version="1.4.0", running="1.3.0", pointer="$Latest"),
          GroupSpec("worker", size=2, version="1.3.0", mixed=True, pointer="$Default")]


def make(url, *, actions=True, protect=(), **kw) -> AwsProvider:
    config = AwsScopeConfig(name="prod", regions=(REGION,), endpoint_url=url, actions=actions,
                            protect=protect)
    # A fake clock: waiting between checks costs nothing, and a deadline still comes.
    timing = FakeClock().timing(interval_s=1.0, timeout_s=3600.0)
    return AwsProvider(config, VersionRules(), timing=timing, **kw)


@pytest.fixture
def fleet(moto_server):  # noqa: F811
    return seed_aws_fleet(moto_server.url, (REGION,), groups=GROUPS)


@pytest.fixture
def provider(moto_server, fleet):  # noqa: F811
    p = make(moto_server.url)
    yield p
    p.close()


def versions_in(inventory, group):
    return sorted(i.version for i in inventory.instances
                  if i.group == group and i.state.value == "running")


def test_replace_terminates_in_the_group_and_tracks_the_replacement(provider):
    inv = provider.poll()
    old = next(i for i in inv.instances if i.group == "api")
    plan = provider.plan_replace(inv, old.id)
    assert plan.mechanism == "terminate-in-asg" and plan.instances == (old.id,)
    assert plan.from_versions == ("1.3.0",) and plan.to_version == "1.4.0"
    assert [s.key for s in plan.steps] == [f"terminate:{old.id}", f"track:{old.id}"]
    events = list(run_steps(provider, plan))
    assert [(e.step, e.status) for e in events if e.status != "progress"] == [
        (f"terminate:{old.id}", "started"), (f"terminate:{old.id}", "done"),
        (f"track:{old.id}", "started"), (f"track:{old.id}", "done"), (None, "finished")]
    after = provider.poll()
    group = after.group("api", REGION)
    assert old.id not in group.extra["instance_ids"] and group.target_size == 4
    # the replacement runs the group's desired version; the others were not touched
    assert versions_in(after, "api") == ["1.3.0", "1.3.0", "1.3.0", "1.4.0"]


def test_replace_refuses_a_standalone_instance_and_a_read_only_scope(provider, moto_server):  # noqa: F811
    inv = provider.poll()
    stray = next(i for i in inv.instances if i.group is None)
    with pytest.raises(ActionRefused, match="standalone"):
        provider.plan_replace(inv, stray.id)
    reader = make(moto_server.url, actions=False)
    member = next(i for i in inv.instances if i.group == "api")
    with pytest.raises(ActionRefused, match="read-only.*actions = true"):
        reader.plan_replace(inv, member.id)
    with pytest.raises(ActionRefused, match="read-only"):
        reader.plan_rollback(inv, "api", REGION, "1.2.0")
    reader.close()


def test_protected_groups_plan_and_refreshing_groups_stop_the_refresh_first(provider,
                                                                            moto_server):  # noqa: F811
    inv = provider.poll()
    guarded = make(moto_server.url, protect=("app=api",))
    boto3.client("autoscaling", region_name=REGION, endpoint_url=moto_server.url
                 ).create_or_update_tags(Tags=[{
                     "ResourceId": "api", "ResourceType": "auto-scaling-group", "Key": "app",
                     "Value": "api", "PropagateAtLaunch": False}])
    # Protection is the operator typing the group's name (the runner), not a refusal here;
    # the group's tags carry what the selector matches.
    polled = guarded.poll()
    assert polled.group("api", REGION).tags.get("app") == "api"
    assert guarded.plan_rollback(polled, "api", REGION, "1.2.0").to_version == "1.2.0"
    guarded.close()
    api = inv.group("api", REGION)
    busy = dataclasses.replace(api, updating=True,
                               extra={**api.extra, "instance_refresh": "InProgress"})
    inv = dataclasses.replace(inv, groups=(busy,))
    # A rollback of a group under refresh is planned (behaviour changed on purpose): it stops
    # the refresh first; one the poll knows nothing more of is cancelled, not rolled back.
    plan = provider.plan_rollback(inv, "api", REGION, "1.2.0")
    assert plan.notes[0].startswith("stops the update under way, then rolls back: group api "
                                    "has an instance refresh InProgress")
    assert [s.key for s in plan.steps][0] == "refresh:cancel"
    member = next(i for i in inv.instances if i.group == "api")
    with pytest.raises(ActionRefused, match="instance refresh"):
        provider.plan_replace(inv, member.id)


def test_rollback_refuses_a_deregistered_version_and_an_unknown_one(provider, fleet, moto_server):  # noqa: F811
    import fleetview.providers.aws.inventory as aws

    provider.poll()
    boto3.client("ec2", region_name=REGION, endpoint_url=moto_server.url).deregister_image(
        ImageId=fleet.regions[REGION].images["1.2.0"])
    aws.IMAGE_RECHECK_S, saved = 0.0, aws.IMAGE_RECHECK_S
    try:
        inv = provider.poll()
    finally:
        aws.IMAGE_RECHECK_S = saved
    with pytest.raises(ActionRefused, match="1.2.0's AMI .* is deregistered"):
        provider.plan_rollback(inv, "api", REGION, "1.2.0")
    with pytest.raises(ActionRefused, match="no image of version 0.9"):
        provider.plan_rollback(inv, "api", REGION, "0.9")


def test_rolling_rollback_on_moto_brings_every_instance_to_v(provider, moto_server):  # noqa: F811
    inv = provider.poll()
    assert provider.poller.state.refresh_supported[REGION] is False  # moto has no instance refresh
    plan = provider.plan_rollback(inv, "api", REGION, "1.2.0", min_healthy_percent=50)
    assert plan.mechanism == "rolling-replacement"
    assert plan.batch_size == 2 and plan.min_healthy_percent == 50
    assert set(plan.from_versions) == {"1.3.0", "1.4.0"} and plan.to_version == "1.2.0"
    assert [s.key for s in plan.steps] == ["template", "point", "batch:1", "batch:2"]
    assert "2 of 4" in plan.capacity_kept
    assert any("follows $Latest" in note for note in plan.notes)
    events = list(run_steps(provider, plan))
    assert events[-1].status == "finished", events[-1].message
    after = provider.poll()
    assert versions_in(after, "api") == ["1.2.0"] * 4
    group = after.group("api", REGION)
    assert group.desired_version == "1.2.0" and group.extra["launch_template_version"] == 3


def test_rollback_of_a_mixed_group_keeps_its_policy(provider, moto_server):  # noqa: F811
    plan = provider.plan_rollback(provider.poll(), "worker", REGION, "1.2.0")
    events = list(run_steps(provider, plan))
    assert events[-1].status == "finished", events[-1].message
    after = provider.poll()
    worker = after.group("worker", REGION)
    assert worker.extra["mixed_instances"] is True
    policy = worker.extra["mixed_instances_policy"]["LaunchTemplate"]
    assert policy["Overrides"] == [{"InstanceType": "t3.micro"}]
    assert versions_in(after, "worker") == ["1.2.0", "1.2.0"]


def test_rollback_reuses_a_template_version_that_has_v(provider):
    inv = provider.poll()
    # api's template version 1 launched 1.3.0, so rolling back to 1.3.0 needs no new version
    plan = provider.plan_rollback(inv, "api", REGION, "1.3.0")
    assert "Use launch template" in plan.steps[0].description
    assert not plan.instances  # every instance already runs 1.3.0: SkipMatching
    events = list(run_steps(provider, plan))
    assert events[-1].status == "finished"
    group = provider.poll().group("api", REGION)
    assert group.extra["launch_template_version"] == 1 and group.desired_version == "1.3.0"


def test_a_restarted_execution_never_repeats_a_done_step(provider, moto_server):  # noqa: F811
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=moto_server.url)
    plan = provider.plan_rollback(provider.poll(), "api", REGION, "1.2.0",
                                  min_healthy_percent=50)
    done = []
    for event in run_steps(provider, plan):
        if event.status == "done":
            done.append(event.step)
        if event.step == "batch:1" and event.status == "done":
            break  # the app died here
    assert done == ["template", "point", "batch:1"]
    template = plan.params["launch_template_id"]
    count = len(ec2.describe_launch_template_versions(LaunchTemplateId=template)[
        "LaunchTemplateVersions"])
    events = list(run_steps(provider, plan, done=done))
    started = [e.step for e in events if e.status == "started"]
    assert started == ["batch:2"]
    assert events[-1].status == "finished"
    assert len(ec2.describe_launch_template_versions(LaunchTemplateId=template)[
        "LaunchTemplateVersions"]) == count
    # and a template step re-run after a crash reuses the version it made
    list(run_steps(provider, plan, done=["point", "batch:1", "batch:2"]))
    assert len(ec2.describe_launch_template_versions(LaunchTemplateId=template)[
        "LaunchTemplateVersions"]) == count
    assert versions_in(provider.poll(), "api") == ["1.2.0"] * 4


def test_a_failed_batch_stops_and_says_what_is_left(provider, moto_server, fleet):  # noqa: F811
    plan = provider.plan_rollback(provider.poll(), "api", REGION, "1.2.0",
                                  min_healthy_percent=50)
    # Someone points the template at another AMI behind FleetView's back mid-rollback.
    wrong = fleet.regions[REGION].images["1.4.0"]
    asg = boto3.client("autoscaling", region_name=REGION, endpoint_url=moto_server.url)
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=moto_server.url)
    events = []
    for event in run_steps(provider, plan):
        events.append(event)
        if event.step == "point" and event.status == "done":
            made = ec2.create_launch_template_version(
                LaunchTemplateId=plan.params["launch_template_id"], SourceVersion="1",
                LaunchTemplateData={"ImageId": wrong})["LaunchTemplateVersion"]
            asg.update_auto_scaling_group(AutoScalingGroupName="api", LaunchTemplate={
                "LaunchTemplateId": plan.params["launch_template_id"],
                "Version": str(made["VersionNumber"])})
    failed = [e for e in events if e.status == "failed"]
    assert [e.step for e in failed] == ["batch:1", None]
    assert f"launched with {wrong}" in failed[0].message
    assert "instances not yet on 1.2.0" in failed[1].message
    assert "batch:2" not in {e.step for e in events}


# -- the instance-refresh path, checked against the service model by botocore's Stubber ------

def test_instance_refresh_path_sends_what_the_api_expects(moto_server, fleet):  # noqa: F811
    inv = make(moto_server.url).poll()
    provider = make(moto_server.url)  # knows nothing of moto: plans as for AWS
    plan = provider.plan_rollback(inv, "api", REGION, "1.2.0", min_healthy_percent=75)
    assert plan.mechanism == "instance-refresh"
    # The group is not pointed first: the refresh carries the version (DesiredConfiguration).
    assert [s.key for s in plan.steps] == ["template", "refresh:start", "refresh:track"]
    template, image = plan.params["launch_template_id"], plan.to_image_id
    ec2 = provider.clients.client("ec2", REGION)
    asg = provider.clients.client("autoscaling", REGION)
    now = datetime.now(UTC)

    def version(n, ami):
        return {"LaunchTemplateId": template, "VersionNumber": n, "CreateTime": now,
                "LaunchTemplateData": {"ImageId": ami}}

    with Stubber(ec2) as ec2_stub, Stubber(asg) as asg_stub:
        asg_stub.add_response("describe_instance_refreshes", {"InstanceRefreshes": []},
                              {"AutoScalingGroupName": "api", "MaxRecords": 1})
        ec2_stub.add_response("describe_launch_template_versions", {
            "LaunchTemplateVersions": [version(1, "ami-0old"), version(2, "ami-0new")]},
            {"LaunchTemplateId": template})
        ec2_stub.add_response("create_launch_template_version", {
            "LaunchTemplateVersion": version(3, image)}, {
            "LaunchTemplateId": template, "SourceVersion": "2",
            "VersionDescription": "FleetView rollback to 1.2.0",
            "LaunchTemplateData": {"ImageId": image}})
        ec2_stub.add_response("describe_launch_template_versions", {
            "LaunchTemplateVersions": [version(3, image)]}, {"LaunchTemplateId": template})
        asg_stub.add_response("start_instance_refresh", {"InstanceRefreshId": "r-1"}, {
            "AutoScalingGroupName": "api", "Strategy": "Rolling",
            "DesiredConfiguration": {
                "LaunchTemplate": {"LaunchTemplateId": template, "Version": "3"}},
            "Preferences": {"MinHealthyPercentage": 75, "SkipMatching": True,
                            "ScaleInProtectedInstances": "Wait", "StandbyInstances": "Wait"}})
        for status in ("Pending", "InProgress", "Successful"):
            asg_stub.add_response("describe_instance_refreshes", {"InstanceRefreshes": [{
                "InstanceRefreshId": "r-1", "AutoScalingGroupName": "api", "Status": status,
                "PercentageComplete": 100 if status == "Successful" else 40}]},
                {"AutoScalingGroupName": "api", "MaxRecords": 1})
        events = list(run_steps(provider, plan))
        ec2_stub.assert_no_pending_responses()
        asg_stub.assert_no_pending_responses()
    assert events[-1].status == "finished"
    assert [e.step for e in events if e.status == "done"] == [
        "template", "refresh:start", "refresh:track"]
    provider.close()


def test_instance_refresh_failure_and_an_active_refresh_are_reported(moto_server, fleet):  # noqa: F811
    inv = make(moto_server.url).poll()
    provider = make(moto_server.url)
    plan = provider.plan_rollback(inv, "api", REGION, "1.2.0")
    asg = provider.clients.client("autoscaling", REGION)
    with Stubber(asg) as stub:
        stub.add_response("describe_instance_refreshes", {"InstanceRefreshes": [{
            "InstanceRefreshId": "r-0", "Status": "InProgress"}]}, {
            "AutoScalingGroupName": "api", "MaxRecords": 1})
        with pytest.raises(ActionRefused, match="instance refresh InProgress"):
            list(run_steps(provider, plan))
        stub.add_response("describe_instance_refreshes", {"InstanceRefreshes": [{
            "InstanceRefreshId": "r-1", "Status": "Failed",
            "StatusReason": "instances failed health checks"}]}, {
            "AutoScalingGroupName": "api", "MaxRecords": 1})
        stub.add_response("describe_auto_scaling_groups", {"AutoScalingGroups": []}, {
            "AutoScalingGroupNames": ["api"]})
        events = list(run_steps(provider, plan, done=["template", "refresh:start"]))
    assert events[-2].step == "refresh:track" and events[-2].status == "failed"
    assert "ended Failed: instances failed health checks" in events[-2].message
    assert events[-1].step is None and "instances not yet on 1.2.0" in events[-1].message
    provider.close()


def test_without_instance_refresh_a_refresh_plan_falls_back_to_batches(moto_server, fleet):  # noqa: F811
    inv = make(moto_server.url).poll()
    provider = make(moto_server.url)
    plan = provider.plan_rollback(inv, "api", REGION, "1.2.0", min_healthy_percent=50)
    assert plan.mechanism == "instance-refresh"
    events = list(run_steps(provider, plan))
    assert events[-1].status == "finished", events[-1].message
    steps = [e.step for e in events if e.status == "done"]
    # FleetView's batches launch from the group's configuration: it is pointed first.
    assert steps == ["template", "refresh:start", "point", "batch:1", "batch:2"]
    assert "no instance refresh" in next(e.message for e in events
                                         if e.step == "refresh:start" and e.status == "done")
    assert versions_in(provider.poll(), "api") == ["1.2.0"] * 4
    provider.close()


def test_a_stubbed_call_with_other_parameters_fails_the_step(moto_server, fleet):  # noqa: F811
    """The Stubber test above can fail: a request unlike the stubbed one fails its step."""
    inv = make(moto_server.url).poll()
    provider = make(moto_server.url)
    plan = provider.plan_rollback(inv, "api", REGION, "1.2.0", min_healthy_percent=75)
    list(provider.run_step(plan, plan.steps[0]))  # the template version, on moto
    with Stubber(provider.clients.client("autoscaling", REGION)) as stub:
        stub.add_response("start_instance_refresh", {"InstanceRefreshId": "r"}, {
            "AutoScalingGroupName": "api", "Strategy": "Rolling", "DesiredConfiguration": ANY,
            "Preferences": {"MinHealthyPercentage": 90, "SkipMatching": ANY,
                            "ScaleInProtectedInstances": ANY, "StandbyInstances": ANY}})
        events = list(run_steps(provider, plan, done=["template"]))
    failed = [e for e in events if e.status == "failed"]
    assert failed[0].step == "refresh:start" and "MinHealthyPercentage" in failed[0].message
    provider.close()


def test_waits_end_at_their_deadline_on_the_clock(moto_server, fleet):  # noqa: F811
    """Tracking a refresh or a replacement stops at `timing.timeout_s`, measured on the clock."""
    config = AwsScopeConfig(name="prod", regions=(REGION,), endpoint_url=moto_server.url,
                            actions=True)
    clock = FakeClock()
    provider = AwsProvider(config, VersionRules(),
                           timing=clock.timing(interval_s=15.0, timeout_s=60.0))
    inv = make(moto_server.url).poll()
    plan = provider.plan_rollback(inv, "api", REGION, "1.2.0")
    with Stubber(provider.clients.client("autoscaling", REGION)) as stub:
        for _ in range(5):  # at 0, 15, 30, 45 and 60 s
            stub.add_response("describe_instance_refreshes", {"InstanceRefreshes": [{
                "InstanceRefreshId": "r-1", "Status": "InProgress", "PercentageComplete": 40}]},
                {"AutoScalingGroupName": "api", "MaxRecords": 1})
        stub.add_response("describe_auto_scaling_groups", {"AutoScalingGroups": []},
                          {"AutoScalingGroupNames": ["api"]})
        events = list(run_steps(provider, plan, done=["template", "refresh:start"]))
        stub.assert_no_pending_responses()
    assert clock.now == 60.0
    assert [e.message for e in events if e.status == "progress"][0] == \
        "instance refresh InProgress, 40% done"
    assert "still InProgress after 60 s; it goes on in AWS" in events[-2].message
    # A replacement that never comes: its instance was never terminated.
    member = next(i for i in inv.instances if i.group == "api")
    replace = provider.plan_replace(inv, member.id)
    events = list(run_steps(provider, replace, done=[replace.steps[0].key]))
    assert events[-2].step == replace.steps[1].key and events[-2].status == "failed"
    assert "after 60 s, 0 of 1 replacement(s) run 1.4.0" in events[-2].message
    provider.close()
