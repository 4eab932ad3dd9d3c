"""The AWS provider's poll as the fleet changes between polls, on moto."""

import boto3
import pytest

from fleetview.domain.versions import VersionRules
from fleetview.providers.aws.provider import AwsProvider
from fleetview.providers.aws.scope import AwsScopeConfig
from fleetview.sim.aws_fleet import GroupSpec, seed_aws_fleet
from tests.helpers.aws import moto_server  # noqa: F401


def scope(url, regions=("us-east-1",), **kw) -> AwsScopeConfig:
    return AwsScopeConfig(name="prod", regions=regions, endpoint_url=url, **kw)


@pytest.fixture
def provider(moto_server):  # noqa: F811
    p = AwsProvider(scope(moto_server.url), VersionRules())
    yield p
    p.close()


def test_default_version_moving_is_seen_on_the_next_poll(moto_server, provider):  # noqa: F811
    fleet = seed_aws_fleet(moto_server.url, ("us-east-1",),
                           groups=[GroupSpec("svc", size=1, version="1.2.0",
                                             pointer="$Default")])
    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=moto_server.url)
    template = fleet.regions["us-east-1"].templates["svc"]
    assert provider.poll().group("svc", "us-east-1").desired_version == "1.2.0"
    ec2.create_launch_template_version(
        LaunchTemplateId=template, SourceVersion="1",
        LaunchTemplateData={"ImageId": fleet.regions["us-east-1"].images["1.4.0"]})
    ec2.modify_launch_template(LaunchTemplateId=template, DefaultVersion="2")
    group = provider.poll().group("svc", "us-east-1")
    assert group.desired_version == "1.4.0" and group.extra["launch_template_version"] == 2


def test_launch_configuration_groups_have_a_desired_image(moto_server, provider):  # noqa: F811
    fleet = seed_aws_fleet(moto_server.url, ("us-east-1",), groups=[], standalone=0,
                           unlabelled=0)
    asg = boto3.client("autoscaling", region_name="us-east-1", endpoint_url=moto_server.url)
    asg.create_launch_configuration(LaunchConfigurationName="old-style",
                                    ImageId=fleet.regions["us-east-1"].images["1.2.0"],
                                    InstanceType="t3.micro")
    asg.create_auto_scaling_group(AutoScalingGroupName="legacy", MinSize=1, MaxSize=1,
                                  LaunchConfigurationName="old-style",
                                  AvailabilityZones=["us-east-1a"])
    inv = provider.poll()
    group = inv.group("legacy", "us-east-1")
    assert group.desired_version == "1.2.0"
    assert group.extra["launch_configuration"] == "old-style"
    assert [i.version for i in inv.instances if i.group == "legacy"] == ["1.2.0"]


def test_pagination_across_many_reservations(moto_server):  # noqa: F811
    fleet = seed_aws_fleet(moto_server.url, ("us-east-1",),
                           groups=[GroupSpec("web", size=2)], standalone=23, unlabelled=0)
    p = AwsProvider(scope(moto_server.url), VersionRules(), page_size=5)
    calls = []
    p.clients.client("ec2", "us-east-1").meta.events.register(
        "before-send.ec2.DescribeInstances", lambda **kw: calls.append(1))
    inv = p.poll()
    p.close()
    # 24 reservations (23 standalone, 1 for the group) at 5 a page
    assert len(calls) == 5
    assert {i.id for i in inv.instances} == (set(fleet.regions["us-east-1"].standalone)
                                             | set(fleet.regions["us-east-1"].groups["web"]))


def test_a_deregistered_ami_keeps_its_version_and_is_marked_gone(moto_server):  # noqa: F811
    import fleetview.providers.aws.inventory as aws

    fleet = seed_aws_fleet(moto_server.url, ("us-east-1",))
    p = AwsProvider(scope(moto_server.url), VersionRules())
    east = fleet.regions["us-east-1"]
    old = east.images["1.2.0"]
    assert p.poll().images[old].gone is False
    boto3.client("ec2", region_name="us-east-1", endpoint_url=moto_server.url
                 ).deregister_image(ImageId=old)
    aws.IMAGE_RECHECK_S, saved = 0.0, aws.IMAGE_RECHECK_S
    try:
        image = p.poll().images[old]
    finally:
        aws.IMAGE_RECHECK_S = saved
        p.close()
    assert image.gone is True and image.version == "1.2.0"
    assert image.tags == {"version": "1.2.0"}



def test_a_group_under_instance_refresh_is_updating(moto_server):  # noqa: F811
    from botocore.stub import Stubber

    seed_aws_fleet(moto_server.url, ("us-east-1",), groups=[
        GroupSpec("api", size=2, version="1.4.0", running="1.3.0", pointer="$Latest")],
        standalone=0, unlabelled=0)
    real = boto3.client("autoscaling", region_name="us-east-1", endpoint_url=moto_server.url)
    groups = real.describe_auto_scaling_groups()
    # Every AWS answer has a request id; the poll takes one without it for a proxy's page.
    groups["ResponseMetadata"] = {"RequestId": "stubbed"}
    p = AwsProvider(scope(moto_server.url), VersionRules())
    # moto has no instance refresh: the Auto Scaling answers come from the Stubber, EC2 from moto
    with Stubber(p.clients.client("autoscaling", "us-east-1")) as stub:
        stub.add_response("describe_auto_scaling_groups", groups)
        stub.add_response("describe_instance_refreshes", {"InstanceRefreshes": [{
            "InstanceRefreshId": "r-1", "AutoScalingGroupName": "api",
            "Status": "InProgress", "PercentageComplete": 50}]},
            {"AutoScalingGroupName": "api", "MaxRecords": 1})
        inventory = p.poll()
        stub.assert_no_pending_responses()
    p.close()
    group = inventory.group("api", "us-east-1")
    assert group.updating is True and group.extra["instance_refresh"] == "InProgress"
    assert p.poller.state.refresh_supported["us-east-1"] is True
