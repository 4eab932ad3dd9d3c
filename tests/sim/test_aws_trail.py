"""The local AWS layer's CloudTrail and Auto Scaling activities, through boto3: calls passed to
moto are recorded with their time, LookupEvents answers in CloudTrail's shape and rate."""

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from fleetview.sim import aws_trail
from fleetview.sim.aws_fleet import register_version
from tests.helpers.aws import moto_refresh_server  # noqa: F401

REGION = "us-east-1"


def _client(url: str, service: str, attempts: int = 1):
    return boto3.client(service, region_name=REGION, endpoint_url=url,
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=Config(retries={"mode": "standard",
                                               "total_max_attempts": attempts}))


def _events(trail, name: str) -> list[dict]:
    found = trail.lookup_events(LookupAttributes=[
        {"AttributeKey": "EventName", "AttributeValue": name}])["Events"]
    return [{**e, "body": json.loads(e["CloudTrailEvent"])} for e in found]


def test_calls_passed_to_moto_are_recorded_as_cloudtrail_events(moto_refresh_server):  # noqa: F811
    url = moto_refresh_server.url
    ec2, asg = _client(url, "ec2", 3), _client(url, "autoscaling", 3)
    trail = _client(url, "cloudtrail", 3)
    before = datetime.now(UTC) - timedelta(seconds=1)
    old, new = register_version(ec2, "1.0.0", "tag"), register_version(ec2, "2.0.0", "tag")
    ran = ec2.run_instances(ImageId=old, MinCount=2, MaxCount=2)["Instances"]
    ec2.terminate_instances(InstanceIds=[ran[0]["InstanceId"]])
    template = ec2.create_launch_template(LaunchTemplateName="web", LaunchTemplateData={
        "ImageId": old})["LaunchTemplate"]["LaunchTemplateId"]
    ec2.create_launch_template_version(LaunchTemplateId=template, SourceVersion="1",
                                       LaunchTemplateData={"ImageId": new})
    asg.create_auto_scaling_group(
        AutoScalingGroupName="web", MinSize=0, MaxSize=4, DesiredCapacity=2,
        AvailabilityZones=[f"{REGION}a"],
        LaunchTemplate={"LaunchTemplateId": template, "Version": "1"})
    asg.update_auto_scaling_group(AutoScalingGroupName="web", LaunchTemplate={
        "LaunchTemplateId": template, "Version": "2"})

    [by_asg, mine] = sorted(_events(trail, "RunInstances"),  # AWSService < IAMUser
                            key=lambda e: e["body"]["userIdentity"]["type"])
    assert mine["EventTime"] >= before and mine["EventSource"] == "ec2.amazonaws.com"
    items = mine["body"]["responseElements"]["instancesSet"]["items"]
    assert {(i["instanceId"], i["imageId"]) for i in items} == {
        (r["InstanceId"], old) for r in ran}
    # Auto Scaling's own launches: recorded as AWS records them, and as activities.
    assert by_asg["body"]["userIdentity"]["invokedBy"] == "autoscaling.amazonaws.com"
    members = {i["InstanceId"] for i in asg.describe_auto_scaling_groups(
        AutoScalingGroupNames=["web"])["AutoScalingGroups"][0]["Instances"]}
    launched = {i["instanceId"] for i in by_asg["body"]["responseElements"]["instancesSet"][
        "items"]}
    assert launched == members
    activities = asg.describe_scaling_activities(AutoScalingGroupName="web")["Activities"]
    assert {a["Description"].rsplit(" ", 1)[1] for a in activities} == members
    assert all(a["StatusCode"] == "Successful" for a in activities)

    [ended] = _events(trail, "TerminateInstances")
    assert ended["Resources"] == [{"ResourceType": "AWS::EC2::Instance",
                                   "ResourceName": ran[0]["InstanceId"]}]
    [version] = _events(trail, "CreateLaunchTemplateVersion")
    made = version["body"]["responseElements"]["CreateLaunchTemplateVersionResponse"][
        "launchTemplateVersion"]
    assert (made["launchTemplateId"], str(made["versionNumber"]),
            made["launchTemplateData"]["imageId"]) == (template, "2", new)
    [update] = _events(trail, "UpdateAutoScalingGroup")
    assert update["body"]["requestParameters"]["launchTemplate"] == {
        "launchTemplateId": template, "version": "2"}


def test_seeded_past_is_paged_newest_first_within_the_asked_range(moto_refresh_server):  # noqa: F811
    url = moto_refresh_server.url
    now = datetime.now(UTC).replace(microsecond=0)
    events = [aws_trail.terminate_instances(now - timedelta(days=d), [f"i-{d:017x}"])
              for d in range(1, 121)]
    aws_trail.seed(url, REGION, events=events, replace=True)
    trail = _client(url, "cloudtrail", 4)
    pages = trail.get_paginator("lookup_events").paginate(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "TerminateInstances"}],
        StartTime=now - timedelta(days=90), EndTime=now)
    found = [e for page in pages for e in page["Events"]]
    assert len(found) == 90
    times = [e["EventTime"] for e in found]
    assert times == sorted(times, reverse=True)
    with pytest.raises(ClientError, match="InvalidLookupAttributes"):
        trail.lookup_events(LookupAttributes=[
            {"AttributeKey": "EventName", "AttributeValue": "RunInstances"},
            {"AttributeKey": "Username", "AttributeValue": "x"}])


def test_lookup_events_is_throttled_past_two_a_second(moto_refresh_server):  # noqa: F811
    trail = _client(moto_refresh_server.url, "cloudtrail", attempts=1)
    codes = []
    for _ in range(4):
        try:
            trail.lookup_events(MaxResults=1)
            codes.append("ok")
        except ClientError as exc:
            codes.append(exc.response["Error"]["Code"])
    assert codes[:2] == ["ok", "ok"] and "ThrottlingException" in codes[2:]
    calls = aws_trail.calls(moto_refresh_server.url)
    assert aws_trail.peak_rate(calls, "LookupEvents") == 4


def test_seeding_moves_moto_s_clocks_back(moto_refresh_server):  # noqa: F811
    url = moto_refresh_server.url
    ec2 = _client(url, "ec2", 3)
    image = register_version(ec2, "1.0.0", "tag")
    [inst] = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"]
    then = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
    aws_trail.seed(url, REGION, times={"instances": {inst["InstanceId"]: then.isoformat()}})
    described = ec2.describe_instances(InstanceIds=[inst["InstanceId"]])
    assert described["Reservations"][0]["Instances"][0]["LaunchTime"] == then
