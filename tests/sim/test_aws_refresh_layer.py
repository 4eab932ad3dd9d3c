"""The instance-refresh layer in front of moto, through real boto3: batches over time, the
healthy percentages, skip matching, cancel, rollback, Auto Scaling's faults, and pass-through."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from fleetview.sim.aws_refresh import batch_size
from tests.helpers.aws import REFRESH_STEP_S, moto_refresh_server, moto_server  # noqa: F401

REGION = "us-east-1"
TERMINAL = {"Successful", "Failed", "Cancelled", "RollbackSuccessful", "RollbackFailed"}


@dataclass
class Group:
    name: str
    template: str
    old_image: str
    new_image: str
    ids: list[str]


@dataclass
class Seen:
    """One look at the refresh and at the group's members, taken together."""

    refresh: dict
    states: list[str]  # the members' lifecycle states

    @property
    def in_service(self) -> int:
        return self.states.count("InService")


def clients(url: str, **config):
    kwargs = {"region_name": REGION, "endpoint_url": url}
    if config:
        kwargs["config"] = Config(**config)
    return boto3.client("ec2", **kwargs), boto3.client("autoscaling", **kwargs)


def make_group(ec2, asg, name: str = "web", size: int = 4, pointer: str = "1",
               image_id: str | None = None) -> Group:
    """A group of `size` on version 1 of its template (the old AMI); version 2 has the new."""
    old = image_id or ec2.register_image(Name=f"{name}-1.0")["ImageId"]
    new = ec2.register_image(Name=f"{name}-2.0")["ImageId"]
    template = ec2.create_launch_template(
        LaunchTemplateName=f"{name}-lt",
        LaunchTemplateData={"ImageId": old, "InstanceType": "t3.micro"},
    )["LaunchTemplate"]["LaunchTemplateId"]
    ec2.create_launch_template_version(LaunchTemplateId=template, SourceVersion="1",
                                       LaunchTemplateData={"ImageId": new,
                                                           "InstanceType": "t3.micro"})
    asg.create_auto_scaling_group(
        AutoScalingGroupName=name, MinSize=0, MaxSize=size * 2, DesiredCapacity=size,
        AvailabilityZones=[f"{REGION}a"],
        LaunchTemplate={"LaunchTemplateId": template, "Version": pointer})
    return Group(name, template, old, new, member_ids(asg, name))


def to_version(group: Group, version: str = "2") -> dict:
    return {"LaunchTemplate": {"LaunchTemplateId": group.template, "Version": version}}


def describe_group(asg, name: str) -> dict:
    return asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]


def member_ids(asg, name: str) -> list[str]:
    return [i["InstanceId"] for i in describe_group(asg, name)["Instances"]]


def images(ec2, ids: list[str]) -> dict[str, str]:
    """Instance id -> the AMI EC2 says it runs."""
    reservations = ec2.describe_instances(InstanceIds=ids)["Reservations"]
    return {i["InstanceId"]: i["ImageId"] for r in reservations for i in r["Instances"]}


def latest(asg, name: str) -> dict:
    return asg.describe_instance_refreshes(AutoScalingGroupName=name,
                                           MaxRecords=1)["InstanceRefreshes"][0]


def watch(asg, name: str, until=TERMINAL, timeout_s: float = 30 * REFRESH_STEP_S) -> list[Seen]:
    """Look at the refresh and the group until the refresh reaches a status in `until`."""
    seen: list[Seen] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        refresh = latest(asg, name)
        states = [i["LifecycleState"] for i in describe_group(asg, name)["Instances"]]
        seen.append(Seen(refresh, states))
        if refresh["Status"] in until:
            return seen
        time.sleep(0.05)
    raise AssertionError(f"the refresh of {name} is still {seen[-1].refresh['Status']}")


def until_percent(asg, name: str, percent: int) -> dict:
    """Wait until the refresh has done `percent`, and return it."""
    deadline = time.monotonic() + 30 * REFRESH_STEP_S
    while time.monotonic() < deadline:
        refresh = latest(asg, name)
        if refresh["PercentageComplete"] >= percent:
            return refresh
        time.sleep(0.05)
    raise AssertionError(f"the refresh of {name} did not reach {percent}%")


def statuses(seen: list[Seen]) -> list[str]:
    out: list[str] = []
    for s in seen:
        if not out or out[-1] != s.refresh["Status"]:
            out.append(s.refresh["Status"])
    return out


def code(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Code"]


# -- the batch arithmetic ---------------------------------------------------------------------

@pytest.mark.parametrize(("desired", "min_healthy", "max_healthy", "expected"), [
    (4, 50, None, (2, 0)),  # terminate and launch together, keeping half in service
    (10, 90, None, (1, 0)),
    (4, 100, None, (1, 0)),  # one at a time, even at 100%
    (4, 0, None, (4, 0)),
    (3, 50, None, (1, 0)),  # 50% of 3 rounds up to 2 in service
    (4, 100, 150, (2, 2)),  # launch two before terminating two
    (4, 50, 150, (4, 2)),
    (4, 100, 100, (1, 1)),  # both bounds cannot hold: launch one first
    (0, 90, None, (1, 0)),
])
def test_batch_size_follows_the_healthy_percentages(desired, min_healthy, max_healthy,
                                                    expected):
    assert batch_size(desired, min_healthy, max_healthy) == expected


# -- a refresh from start to end --------------------------------------------------------------

def test_a_refresh_goes_from_pending_to_successful_and_ends_on_the_desired_ami(
        moto_refresh_server):  # noqa: F811
    ec2, asg = clients(moto_refresh_server.url)
    group = make_group(ec2, asg, size=4)
    assert asg.describe_instance_refreshes(AutoScalingGroupName="web")["InstanceRefreshes"] == []

    refresh_id = asg.start_instance_refresh(
        AutoScalingGroupName="web", DesiredConfiguration=to_version(group),
        Preferences={"MinHealthyPercentage": 50})["InstanceRefreshId"]
    seen = watch(asg, "web")

    assert statuses(seen) == ["Pending", "InProgress", "Successful"]
    percents = [s.refresh["PercentageComplete"] for s in seen]
    assert percents == sorted(percents) and percents[0] == 0 and percents[-1] == 100
    assert any(0 < p < 100 for p in percents)  # two batches of two: 50% in between
    to_update = [s.refresh["InstancesToUpdate"] for s in seen]
    assert to_update[0] == 4 and to_update[-1] == 0 and to_update == sorted(to_update,
                                                                            reverse=True)
    for s in seen:
        live = s.refresh["ProgressDetails"]["LivePoolProgress"]
        assert live == {"PercentageComplete": s.refresh["PercentageComplete"],
                        "InstancesToUpdate": s.refresh["InstancesToUpdate"]}
    in_flight = [s.refresh for s in seen if s.refresh["Status"] == "InProgress"]
    assert all("warming up" in r["StatusReason"] for r in in_flight)
    done = seen[-1].refresh
    assert done["InstanceRefreshId"] == refresh_id and done["AutoScalingGroupName"] == "web"
    assert done["StartTime"] <= done["EndTime"] and "EndTime" not in seen[0].refresh
    assert done["Strategy"] == "Rolling"
    assert done["DesiredConfiguration"] == to_version(group)
    assert done["Preferences"]["MinHealthyPercentage"] == 50
    assert done["Preferences"]["SkipMatching"] is False

    # Every member is new, on the desired AMI as EC2 reports it, and in service.
    final = describe_group(asg, "web")
    ids = [i["InstanceId"] for i in final["Instances"]]
    assert len(ids) == 4 and not set(ids) & set(group.ids)
    assert set(images(ec2, ids).values()) == {group.new_image}
    assert {i["LifecycleState"] for i in final["Instances"]} == {"InService"}
    assert {i["LaunchTemplate"]["Version"] for i in final["Instances"]} == {"2"}
    # As in AWS, the group takes the desired configuration once the refresh succeeds.
    assert final["LaunchTemplate"]["Version"] == "2"
    old = ec2.describe_instances(InstanceIds=group.ids)["Reservations"]
    assert {i["State"]["Name"] for r in old for i in r["Instances"]} == {"terminated"}


def test_the_group_keeps_its_configuration_until_the_refresh_succeeds(
        moto_refresh_server):  # noqa: F811
    ec2, asg = clients(moto_refresh_server.url)
    group = make_group(ec2, asg, size=4)
    asg.start_instance_refresh(AutoScalingGroupName="web", DesiredConfiguration=to_version(group),
                               Preferences={"MinHealthyPercentage": 75})
    watch(asg, "web", until={"InProgress"})
    assert describe_group(asg, "web")["LaunchTemplate"]["Version"] == "1"
    watch(asg, "web")
    assert describe_group(asg, "web")["LaunchTemplate"]["Version"] == "2"


def test_min_healthy_percentage_keeps_enough_instances_in_service(
        moto_refresh_server):  # noqa: F811
    ec2, asg = clients(moto_refresh_server.url)
    group = make_group(ec2, asg, size=4)
    asg.start_instance_refresh(AutoScalingGroupName="web", DesiredConfiguration=to_version(group),
                               Preferences={"MinHealthyPercentage": 50})
    seen = watch(asg, "web")
    allowed = math.ceil(4 * 50 / 100)
    assert min(s.in_service for s in seen) == allowed  # never fewer, and batches of two
    # Terminate-and-launch: the group never holds more than its desired capacity in service
    # or pending.
    assert max(s.states.count("InService") + s.states.count("Pending") for s in seen) == 4
    assert any("Terminating" in s.states for s in seen)


def test_max_healthy_percentage_launches_before_terminating(moto_refresh_server):  # noqa: F811
    ec2, asg = clients(moto_refresh_server.url)
    group = make_group(ec2, asg, size=4)
    asg.start_instance_refresh(AutoScalingGroupName="web", DesiredConfiguration=to_version(group),
                               Preferences={"MinHealthyPercentage": 100,
                                            "MaxHealthyPercentage": 150})
    seen = watch(asg, "web")
    assert seen[-1].refresh["Status"] == "Successful"
    assert min(s.in_service for s in seen) == 4
    assert max(s.states.count("InService") + s.states.count("Pending") for s in seen) == 6
    assert not any("Terminating" in s.states for s in seen)
    ids = member_ids(asg, "web")
    assert set(images(ec2, ids).values()) == {group.new_image}


def test_skip_matching_leaves_instances_already_on_the_desired_ami(
        moto_refresh_server):  # noqa: F811
    ec2, asg = clients(moto_refresh_server.url)
    group = make_group(ec2, asg, size=2)
    # Two more members launched from version 2: half the group already runs the new AMI.
    asg.update_auto_scaling_group(AutoScalingGroupName="web", DesiredCapacity=4,
                                  LaunchTemplate={"LaunchTemplateId": group.template,
                                                  "Version": "2"})
    asg.update_auto_scaling_group(AutoScalingGroupName="web",
                                  LaunchTemplate={"LaunchTemplateId": group.template,
                                                  "Version": "1"})
    on_new = [i for i, image in images(ec2, member_ids(asg, "web")).items()
              if image == group.new_image]
    assert len(on_new) == 2

    asg.start_instance_refresh(AutoScalingGroupName="web", DesiredConfiguration=to_version(group),
                               Preferences={"MinHealthyPercentage": 50, "SkipMatching": True})
    first = latest(asg, "web")
    assert first["InstancesToUpdate"] == 2 and first["Preferences"]["SkipMatching"] is True
    seen = watch(asg, "web")
    assert seen[-1].refresh["Status"] == "Successful"
    ids = member_ids(asg, "web")
    assert set(on_new) <= set(ids) and len(ids) == 4  # the matching two were not replaced
    assert set(images(ec2, ids).values()) == {group.new_image}


def test_without_skip_matching_every_instance_is_replaced(moto_refresh_server):  # noqa: F811
    ec2, asg = clients(moto_refresh_server.url)
    group = make_group(ec2, asg, size=2, pointer="2")  # already on version 2
    asg.start_instance_refresh(AutoScalingGroupName="web", DesiredConfiguration=to_version(group),
                               Preferences={"MinHealthyPercentage": 50})
    assert latest(asg, "web")["InstancesToUpdate"] == 2
    watch(asg, "web")
    assert not set(member_ids(asg, "web")) & set(group.ids)


def test_skip_matching_with_nothing_to_do_succeeds_at_once(moto_refresh_server):  # noqa: F811
    ec2, asg = clients(moto_refresh_server.url)
    group = make_group(ec2, asg, size=2, pointer="2")
    asg.start_instance_refresh(AutoScalingGroupName="web",
                               Preferences={"SkipMatching": True})  # the group's own config
    assert latest(asg, "web")["InstancesToUpdate"] == 0
    seen = watch(asg, "web")
    assert statuses(seen) == ["Pending", "Successful"]
    assert seen[-1].refresh["PercentageComplete"] == 100
    assert sorted(member_ids(asg, "web")) == sorted(group.ids)


def test_instance_warmup_slows_each_batch_but_not_the_rollback(
        moto_refresh_server):  # noqa: F811
    """A deploy's InstanceWarmup adds its seconds to every batch, as AWS waits it out before
    counting a new instance; rolling that refresh back goes at the layer's own pace."""
    ec2, asg = clients(moto_refresh_server.url)
    group = make_group(ec2, asg, size=4)
    warmup = 10 * REFRESH_STEP_S
    started = time.monotonic()
    asg.start_instance_refresh(
        AutoScalingGroupName="web", DesiredConfiguration=to_version(group),
        Preferences={"MinHealthyPercentage": 75, "InstanceWarmup": int(warmup)})
    assert latest(asg, "web")["Preferences"]["InstanceWarmup"] == int(warmup)
    until_percent(asg, "web", 25)  # the first batch: one step, then the warm-up
    first = time.monotonic() - started
    assert first >= int(warmup), first
    # Without the warm-up, four batches of one would be done by now; with it, one is.
    assert latest(asg, "web")["PercentageComplete"] == 25

    asg.rollback_instance_refresh(AutoScalingGroupName="web")
    rolling_back = time.monotonic()
    seen = watch(asg, "web", timeout_s=int(warmup))
    assert statuses(seen)[-1] == "RollbackSuccessful"
    # The batch in flight and the rollback's batch, a step each, and no warm-up.
    assert time.monotonic() - rolling_back < int(warmup) - REFRESH_STEP_S
    assert set(images(ec2, member_ids(asg, "web")).values()) == {group.old_image}


# -- cancel and rollback ----------------------------------------------------------------------

def test_cancel_stops_the_refresh_and_leaves_the_instances_as_they_are(
        moto_refresh_server):  # noqa: F811
    ec2, asg = clients(moto_refresh_server.url)
    group = make_group(ec2, asg, size=4)
    refresh_id = asg.start_instance_refresh(
        AutoScalingGroupName="web", DesiredConfiguration=to_version(group),
        Preferences={"MinHealthyPercentage": 75})["InstanceRefreshId"]  # one at a time
    until_percent(asg, "web", 25)

    assert asg.cancel_instance_refresh(AutoScalingGroupName="web")["InstanceRefreshId"] == \
        refresh_id
    # Cancelling until the batch in flight is done (the next step may already have come).
    seen = watch(asg, "web")
    assert statuses(seen) in (["Cancelling", "Cancelled"], ["Cancelled"])
    cancelled = seen[-1].refresh
    assert "EndTime" in cancelled and 0 < cancelled["PercentageComplete"] < 100

    ids = member_ids(asg, "web")
    running = images(ec2, ids)
    assert set(running.values()) == {group.old_image, group.new_image}  # half done, left so
    assert describe_group(asg, "web")["LaunchTemplate"]["Version"] == "1"
    time.sleep(3 * REFRESH_STEP_S)
    assert member_ids(asg, "web") == ids and latest(asg, "web")["Status"] == "Cancelled"

    with pytest.raises(ClientError) as exc:
        asg.cancel_instance_refresh(AutoScalingGroupName="web")
    assert code(exc) == "ActiveInstanceRefreshNotFound"


def test_cancel_without_waiting_for_transitioning_instances_ends_at_once(
        moto_refresh_server):  # noqa: F811
    ec2, asg = clients(moto_refresh_server.url)
    group = make_group(ec2, asg, size=4)
    asg.start_instance_refresh(AutoScalingGroupName="web", DesiredConfiguration=to_version(group),
                               Preferences={"MinHealthyPercentage": 50})
    watch(asg, "web", until={"InProgress"})
    asg.cancel_instance_refresh(AutoScalingGroupName="web", WaitForTransitioningInstances=False)
    assert latest(asg, "web")["Status"] == "Cancelled"
    states = [i["LifecycleState"] for i in describe_group(asg, "web")["Instances"]]
    assert states == ["InService"] * 4  # the batch in flight was completed, not abandoned


def test_rollback_brings_the_group_back_to_its_old_configuration(
        moto_refresh_server):  # noqa: F811
    ec2, asg = clients(moto_refresh_server.url)
    group = make_group(ec2, asg, size=4)
    refresh_id = asg.start_instance_refresh(
        AutoScalingGroupName="web", DesiredConfiguration=to_version(group),
        Preferences={"MinHealthyPercentage": 75})["InstanceRefreshId"]  # one at a time
    until_percent(asg, "web", 50)  # two replaced, the third in flight

    assert asg.rollback_instance_refresh(AutoScalingGroupName="web")["InstanceRefreshId"] == \
        refresh_id
    rolling = latest(asg, "web")
    assert rolling["Status"] == "RollbackInProgress"
    assert rolling["RollbackDetails"]["RollbackReason"]
    assert rolling["RollbackDetails"]["RollbackStartTime"] >= rolling["StartTime"]
    seen = watch(asg, "web")
    assert statuses(seen) == ["RollbackInProgress", "RollbackSuccessful"]
    # PercentageComplete goes back down to zero while the rollback's own percentage rises.
    percents = [s.refresh["PercentageComplete"] for s in seen]
    assert percents == sorted(percents, reverse=True) and percents[-1] == 0
    details = seen[-1].refresh["RollbackDetails"]
    assert details["PercentageCompleteOnRollback"] == 100
    assert details["InstancesToUpdateOnRollback"] == 0

    final = describe_group(asg, "web")
    assert final["LaunchTemplate"] == {"LaunchTemplateId": group.template,
                                       "LaunchTemplateName": "web-lt", "Version": "1"}
    ids = [i["InstanceId"] for i in final["Instances"]]
    assert len(ids) == 4 and {i["LifecycleState"] for i in final["Instances"]} == {"InService"}
    assert set(images(ec2, ids).values()) == {group.old_image}

    with pytest.raises(ClientError) as exc:
        asg.rollback_instance_refresh(AutoScalingGroupName="web")
    assert code(exc) == "ActiveInstanceRefreshNotFound"


# -- faults -----------------------------------------------------------------------------------

def test_a_second_refresh_while_one_runs_is_refused(moto_refresh_server):  # noqa: F811
    ec2, asg = clients(moto_refresh_server.url)
    group = make_group(ec2, asg, size=2)
    asg.start_instance_refresh(AutoScalingGroupName="web", DesiredConfiguration=to_version(group))
    with pytest.raises(asg.exceptions.InstanceRefreshInProgressFault) as exc:
        asg.start_instance_refresh(AutoScalingGroupName="web")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "already in progress" in exc.value.response["Error"]["Message"]


def test_cancel_and_rollback_without_a_refresh_in_progress(moto_refresh_server):  # noqa: F811
    ec2, asg = clients(moto_refresh_server.url)
    make_group(ec2, asg, size=1)
    with pytest.raises(asg.exceptions.ActiveInstanceRefreshNotFoundFault):
        asg.cancel_instance_refresh(AutoScalingGroupName="web")
    with pytest.raises(asg.exceptions.ActiveInstanceRefreshNotFoundFault):
        asg.rollback_instance_refresh(AutoScalingGroupName="web")


def test_rollback_is_refused_where_aws_refuses_it(moto_refresh_server):  # noqa: F811
    ec2, asg = clients(moto_refresh_server.url)
    # No desired configuration: nothing to roll back to.
    make_group(ec2, asg, "plain", size=2)
    asg.start_instance_refresh(AutoScalingGroupName="plain")
    with pytest.raises(asg.exceptions.IrreversibleInstanceRefreshFault) as exc:
        asg.rollback_instance_refresh(AutoScalingGroupName="plain")
    assert "desired configuration" in exc.value.response["Error"]["Message"]
    # The group was on $Latest or $Default: there is no specific version to go back to.
    for pointer in ("$Latest", "$Default"):
        name = f"on{pointer.strip('$').lower()}"
        group = make_group(ec2, asg, name, size=2, pointer=pointer)
        asg.start_instance_refresh(AutoScalingGroupName=name,
                                   DesiredConfiguration=to_version(group))
        with pytest.raises(asg.exceptions.IrreversibleInstanceRefreshFault) as exc:
            asg.rollback_instance_refresh(AutoScalingGroupName=name)
        assert pointer in exc.value.response["Error"]["Message"]
    # The group's template takes its AMI from a Systems Manager parameter.
    group = make_group(ec2, asg, "ssm", size=1, image_id="resolve:ssm:/fleetview/app/ami")
    asg.start_instance_refresh(AutoScalingGroupName="ssm", DesiredConfiguration=to_version(group))
    with pytest.raises(asg.exceptions.IrreversibleInstanceRefreshFault) as exc:
        asg.rollback_instance_refresh(AutoScalingGroupName="ssm")
    assert "Systems Manager" in exc.value.response["Error"]["Message"]
    # A refused rollback leaves the refresh running.
    assert latest(asg, "ssm")["Status"] in ("Pending", "InProgress", "Successful")


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"AutoScalingGroupName": "nope"}, "not found"),
    ({"Preferences": {"MaxHealthyPercentage": 150}}, "MinHealthyPercentage"),
    ({"Preferences": {"MinHealthyPercentage": 10, "MaxHealthyPercentage": 200}},
     "greater than 100"),
    ({"Preferences": {"CheckpointDelay": 60}}, "CheckpointPercentages"),
    ({"Preferences": {"CheckpointPercentages": [50, 20, 100]}}, "ascending"),
    ({"Preferences": {"AutoRollback": True}}, "DesiredConfiguration"),
    ({"DesiredConfiguration": {"LaunchTemplate": {"LaunchTemplateId": "lt-0123456789abcdef0",
                                                  "Version": "1"}}}, "does not exist"),
    ({"DesiredConfiguration": {"LaunchTemplate": {"LaunchTemplateName": "web-lt",
                                                  "Version": "9"}}}, "version 9"),
    ({"Strategy": "ReplaceRootVolume"}, "Rolling"),
])
def test_a_start_auto_scaling_would_refuse_is_a_validation_error(
        moto_refresh_server, kwargs, words):  # noqa: F811
    ec2, asg = clients(moto_refresh_server.url)
    make_group(ec2, asg, size=1)
    with pytest.raises(ClientError) as exc:
        asg.start_instance_refresh(**{"AutoScalingGroupName": "web", **kwargs})
    assert code(exc) == "ValidationError"
    assert words in exc.value.response["Error"]["Message"]
    assert asg.describe_instance_refreshes(AutoScalingGroupName="web")["InstanceRefreshes"] == []


def test_the_server_checks_the_model_constraints_boto3_would_check(
        moto_refresh_server):  # noqa: F811
    ec2, asg = clients(moto_refresh_server.url, parameter_validation=False)
    make_group(ec2, asg, size=1)
    with pytest.raises(ClientError) as exc:
        asg.start_instance_refresh(AutoScalingGroupName="web",
                                   Preferences={"MinHealthyPercentage": 150})
    assert code(exc) == "ValidationError"
    assert "preferences.minHealthyPercentage" in exc.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as exc:
        asg.describe_instance_refreshes(AutoScalingGroupName="web", MaxRecords=500)
    assert code(exc) == "ValidationError"


# -- describing, and everything else ----------------------------------------------------------

def test_refreshes_are_described_newest_first_a_page_at_a_time(moto_refresh_server):  # noqa: F811
    ec2, asg = clients(moto_refresh_server.url)
    group = make_group(ec2, asg, size=1, pointer="2")
    first = asg.start_instance_refresh(AutoScalingGroupName="web",
                                       Preferences={"SkipMatching": True})["InstanceRefreshId"]
    watch(asg, "web")
    second = asg.start_instance_refresh(
        AutoScalingGroupName="web", DesiredConfiguration=to_version(group, "1"),
        Preferences={"MinHealthyPercentage": 0})["InstanceRefreshId"]

    page = asg.describe_instance_refreshes(AutoScalingGroupName="web", MaxRecords=1)
    assert [r["InstanceRefreshId"] for r in page["InstanceRefreshes"]] == [second]
    rest = asg.describe_instance_refreshes(AutoScalingGroupName="web", MaxRecords=1,
                                           NextToken=page["NextToken"])
    assert [r["InstanceRefreshId"] for r in rest["InstanceRefreshes"]] == [first]
    assert "NextToken" not in rest
    picked = asg.describe_instance_refreshes(AutoScalingGroupName="web",
                                             InstanceRefreshIds=[first])["InstanceRefreshes"]
    assert [r["Status"] for r in picked] == ["Successful"]


def test_a_reset_forgets_the_refreshes_too(moto_refresh_server):  # noqa: F811
    ec2, asg = clients(moto_refresh_server.url)
    group = make_group(ec2, asg, size=2)
    asg.start_instance_refresh(AutoScalingGroupName="web", DesiredConfiguration=to_version(group))
    moto_refresh_server.reset()
    make_group(ec2, asg, size=1)
    assert asg.describe_instance_refreshes(AutoScalingGroupName="web")["InstanceRefreshes"] == []
    time.sleep(2 * REFRESH_STEP_S)  # the refresh thread survives its group's disappearance
    assert len(member_ids(asg, "web")) == 1


def _comparable(group: dict) -> dict:
    """A described group without what differs between two servers (ids, ARNs, times)."""
    group = {k: v for k, v in group.items() if k not in ("AutoScalingGroupARN", "CreatedTime")}
    group["LaunchTemplate"] = {k: v for k, v in group["LaunchTemplate"].items()
                               if k != "LaunchTemplateId"}
    group["Instances"] = sorted(
        (i["LifecycleState"], i["HealthStatus"], i["InstanceType"], i["LaunchTemplate"]["Version"])
        for i in group["Instances"])
    return group


def test_other_calls_pass_through_to_moto_unchanged(moto_refresh_server, moto_server):  # noqa: F811
    described = []
    for server in (moto_refresh_server, moto_server):
        ec2, asg = clients(server.url)
        make_group(ec2, asg, size=3)
        asg.create_or_update_tags(Tags=[{"ResourceId": "web", "ResourceType": "auto-scaling-group",
                                         "Key": "app", "Value": "web",
                                         "PropagateAtLaunch": True}])
        described.append(describe_group(asg, "web"))
    layered, plain = described
    assert _comparable(layered) == _comparable(plain)
    assert layered["AutoScalingGroupARN"].endswith(":autoScalingGroupName/web")


@pytest.mark.parametrize("auto_rollback", [True, False])
def test_a_refresh_that_cannot_launch_fails_or_rolls_itself_back(
        moto_refresh_server, auto_rollback):  # noqa: F811
    ec2, asg = clients(moto_refresh_server.url)
    group = make_group(ec2, asg, size=4)
    other = ec2.create_launch_template(
        LaunchTemplateName="web-next",
        LaunchTemplateData={"ImageId": group.new_image, "InstanceType": "t3.micro"},
    )["LaunchTemplate"]["LaunchTemplateId"]
    asg.start_instance_refresh(
        AutoScalingGroupName="web",
        DesiredConfiguration={"LaunchTemplate": {"LaunchTemplateId": other, "Version": "1"}},
        Preferences={"MinHealthyPercentage": 75, "AutoRollback": auto_rollback})
    until_percent(asg, "web", 25)
    ec2.delete_launch_template(LaunchTemplateId=other)  # the next batch cannot launch

    seen = watch(asg, "web")
    ended = seen[-1].refresh
    if auto_rollback:
        assert statuses(seen)[-2:] == ["RollbackInProgress", "RollbackSuccessful"]
        assert "failed" in ended["RollbackDetails"]["RollbackReason"]
        ids = member_ids(asg, "web")
        assert len(ids) == 4 and set(images(ec2, ids).values()) == {group.old_image}
    else:
        assert ended["Status"] == "Failed" and "does not exist" in ended["StatusReason"]
        assert "EndTime" in ended
    assert describe_group(asg, "web")["LaunchTemplate"]["LaunchTemplateId"] == group.template


def test_a_step_that_is_not_a_number_is_a_known_error(monkeypatch):
    from fleetview.sim.moto_server import REFRESH_STEP_ENV, MotoServer, MotoServerError

    monkeypatch.setenv(REFRESH_STEP_ENV, "soon")
    with pytest.raises(MotoServerError, match=f"{REFRESH_STEP_ENV}='soon' is not a positive"):
        MotoServer.start(refresh=True)
    with pytest.raises(ValueError, match="positive"):
        MotoServer.start(refresh=True, refresh_step_s=0)
