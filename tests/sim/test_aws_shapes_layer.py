"""The production shapes FleetView's layer adds to moto, through real boto3: SSM image references
at launch, IncludeDisabled, warm pools with instances, launch lifecycle hooks."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.helpers.aws import moto_refresh_server  # noqa: F401

REGION = "us-east-1"


@pytest.fixture
def aws(moto_refresh_server):  # noqa: F811
    kwargs = {"region_name": REGION, "endpoint_url": moto_refresh_server.url}
    return (boto3.client("ec2", **kwargs), boto3.client("autoscaling", **kwargs),
            boto3.client("ssm", **kwargs))


def group(ec2, asg, image: str, name: str = "g", size: int = 2) -> str:
    template = ec2.create_launch_template(LaunchTemplateName=f"{name}-t", LaunchTemplateData={
        "ImageId": image, "InstanceType": "t3.micro"})["LaunchTemplate"]["LaunchTemplateId"]
    asg.create_auto_scaling_group(AutoScalingGroupName=name, MinSize=0, MaxSize=4,
                                  DesiredCapacity=size, AvailabilityZones=[f"{REGION}a"],
                                  LaunchTemplate={"LaunchTemplateId": template, "Version": "1"})
    return template


def images_of(ec2, asg, name: str) -> dict[str, str]:
    ids = [i["InstanceId"] for i in asg.describe_auto_scaling_groups(
        AutoScalingGroupNames=[name])["AutoScalingGroups"][0]["Instances"]]
    return {i["InstanceId"]: i["ImageId"] for r in ec2.describe_instances(
        InstanceIds=ids)["Reservations"] for i in r["Instances"]}


def test_a_template_naming_an_ssm_parameter_launches_its_ami_and_keeps_the_reference(aws):
    ec2, asg, ssm = aws
    ami = ec2.register_image(Name="app-1.0")["ImageId"]
    ssm.put_parameter(Name="/app/ami", Value=ami, Type="String", DataType="aws:ec2:image")
    template = group(ec2, asg, "resolve:ssm:/app/ami")
    assert set(images_of(ec2, asg, "g").values()) == {ami}
    version = ec2.describe_launch_template_versions(
        LaunchTemplateId=template, Versions=["1"])["LaunchTemplateVersions"][0]
    assert version["LaunchTemplateData"]["ImageId"] == "resolve:ssm:/app/ami"


def test_a_disabled_ami_is_described_only_when_asked(aws):
    ec2, _, _ = aws
    ami = ec2.register_image(Name="app-1.0")["ImageId"]
    ec2.disable_image(ImageId=ami)
    by_id = [{"Name": "image-id", "Values": [ami]}]
    assert ec2.describe_images(Filters=by_id)["Images"] == []
    found = ec2.describe_images(Filters=by_id, IncludeDisabled=True)["Images"]
    assert [i["State"] for i in found] == ["disabled"]
    ec2.enable_image(ImageId=ami)
    assert ec2.describe_images(Filters=by_id)["Images"][0]["State"] == "available"


def test_a_warm_pool_has_instances_outside_the_group_until_deleted(aws):
    ec2, asg, _ = aws
    ami = ec2.register_image(Name="app-1.0")["ImageId"]
    group(ec2, asg, ami)
    asg.put_warm_pool(AutoScalingGroupName="g", MinSize=1, PoolState="Stopped")
    pool = asg.describe_warm_pool(AutoScalingGroupName="g")
    assert pool["WarmPoolConfiguration"]["PoolState"] == "Stopped"
    warm = {i["InstanceId"]: i for i in pool["Instances"]}
    assert len(warm) == 2  # MaxSize 4 - DesiredCapacity 2, at least MinSize 1
    assert {i["LifecycleState"] for i in warm.values()} == {"Warmed:Stopped"}
    assert not warm.keys() & images_of(ec2, asg, "g").keys()
    described = ec2.describe_instances(InstanceIds=list(warm))["Reservations"]
    instances = [i for r in described for i in r["Instances"]]
    assert {i["State"]["Name"] for i in instances} == {"stopped"}
    assert all({"Key": "aws:autoscaling:groupName", "Value": "g"} in i["Tags"]
               for i in instances)
    asg.delete_warm_pool(AutoScalingGroupName="g")
    assert asg.describe_warm_pool(AutoScalingGroupName="g")["Instances"] == []
    gone = ec2.describe_instances(InstanceIds=list(warm))["Reservations"]
    assert {i["State"]["Name"] for r in gone for i in r["Instances"]} == {"terminated"}


def test_a_launch_hook_holds_new_instances_until_the_action_completes(aws):
    ec2, asg, _ = aws
    ami = ec2.register_image(Name="app-1.0")["ImageId"]
    group(ec2, asg, ami, size=1)
    asg.put_lifecycle_hook(AutoScalingGroupName="g", LifecycleHookName="h",
                           LifecycleTransition="autoscaling:EC2_INSTANCE_LAUNCHING")
    asg.set_desired_capacity(AutoScalingGroupName="g", DesiredCapacity=3)
    states = {i["InstanceId"]: i["LifecycleState"] for i in asg.describe_auto_scaling_groups(
        AutoScalingGroupNames=["g"])["AutoScalingGroups"][0]["Instances"]}
    held = sorted(i for i, s in states.items() if s == "Pending:Wait")
    assert len(held) == 2 and list(states.values()).count("InService") == 1
    asg.complete_lifecycle_action(AutoScalingGroupName="g", LifecycleHookName="h",
                                  InstanceId=held[0], LifecycleActionResult="CONTINUE")
    asg.complete_lifecycle_action(AutoScalingGroupName="g", LifecycleHookName="h",
                                  InstanceId=held[1], LifecycleActionResult="ABANDON")
    states = {i["InstanceId"]: i["LifecycleState"] for i in asg.describe_auto_scaling_groups(
        AutoScalingGroupNames=["g"])["AutoScalingGroups"][0]["Instances"]}
    assert states.get(held[0]) == "InService" and held[1] not in states
    with pytest.raises(ClientError, match="No active Lifecycle Action"):
        asg.complete_lifecycle_action(AutoScalingGroupName="g", LifecycleHookName="h",
                                      InstanceId=held[0], LifecycleActionResult="CONTINUE")
