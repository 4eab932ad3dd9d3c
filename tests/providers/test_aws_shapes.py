"""The shapes production AWS fleets use, through boto3 on moto behind FleetView's local layer:
SSM image parameters, overrides with their own templates, warm pools, standby, disabled and
shared AMIs, shared launch templates, spot interruptions and groups another system owns."""

from __future__ import annotations

import urllib.request
from dataclasses import replace
from urllib.parse import urlencode

import boto3
import pytest

from fleetview.actions.steps import run_steps
from fleetview.domain.actions import ActionRefused, converge_state
from fleetview.domain.model import State
from fleetview.domain.timing import Timing
from fleetview.domain.versions import VersionRules
from fleetview.providers.aws.provider import AwsProvider
from fleetview.providers.aws.scope import AwsScopeConfig
from fleetview.sim.aws_fleet import GroupSpec, seed_aws_fleet
from fleetview.sim.aws_refresh_server import SPOT_INTERRUPTION_PATH
from fleetview.store import Store
from tests.helpers.aws import REFRESH_STEP_S, moto_refresh_server  # noqa: F401

REGION = "us-east-1"
OLD, NEW = "1.3.0", "1.4.0"
ACCOUNT = "123456789012"
AMAZON_AMI = "ami-03cf127a"
# Real time: the layer replaces one batch every REFRESH_STEP_S seconds.
FAST = Timing(interval_s=0.1, timeout_s=60 * REFRESH_STEP_S)


def clients(url: str):
    kwargs = {"region_name": REGION, "endpoint_url": url}
    return (boto3.client("ec2", **kwargs), boto3.client("autoscaling", **kwargs),
            boto3.client("ssm", **kwargs))


def seed(url: str, *groups: GroupSpec):
    # One standalone instance on OLD: a poll knows that version's AMI from it.
    return seed_aws_fleet(url, (REGION,), groups=groups or (GroupSpec("web", size=2,
                                                                      version=NEW),),
                          versions=(OLD, NEW), standalone=1, unlabelled=0).regions[REGION]


def make_provider(url: str, **options) -> AwsProvider:
    config = AwsScopeConfig(name="prod", regions=(REGION,), endpoint_url=url, actions=True,
                            **options)
    return AwsProvider(config, VersionRules(), timing=FAST)


@pytest.fixture
def url(moto_refresh_server):  # noqa: F811
    return moto_refresh_server.url


@pytest.fixture
def provider(url):
    p = make_provider(url)
    yield p
    p.close()


def run(provider, plan):
    events = list(run_steps(provider, plan))
    failed = [e for e in events if e.status == "failed"]
    assert not failed, failed
    return events


def test_an_ssm_image_parameter_is_read_and_a_rollback_pins_the_ami(url, provider):
    seeded = seed(url)
    ec2, asg, ssm = clients(url)
    ssm.put_parameter(Name="/app/ami", Value=seeded.images[NEW], Type="String",
                      DataType="aws:ec2:image")
    template = ec2.create_launch_template(LaunchTemplateName="ssm-app", LaunchTemplateData={
        "ImageId": "resolve:ssm:/app/ami", "InstanceType": "t3.micro"})["LaunchTemplate"]
    asg.create_auto_scaling_group(
        AutoScalingGroupName="ssm", MinSize=0, MaxSize=4, DesiredCapacity=2,
        AvailabilityZones=[f"{REGION}a"],
        LaunchTemplate={"LaunchTemplateId": template["LaunchTemplateId"], "Version": "$Latest"})

    inventory = provider.poll()
    group = inventory.group("ssm", REGION)
    assert group.desired_image_id == seeded.images[NEW] and group.desired_version == NEW
    assert any("SSM parameter /app/ami" in n for n in group.notes), group.notes
    assert {i.version for i in inventory.members(group)} == {NEW}

    plan = provider.plan_rollback(inventory, "ssm", REGION, OLD)
    assert any("replacing the parameter reference" in n for n in plan.notes), plan.notes
    run(provider, plan)
    after = provider.poll()
    group = after.group("ssm", REGION)
    assert {i.version for i in after.members(group)} == {OLD}
    assert group.desired_version == OLD and "image_parameter" not in group.extra
    pinned = ec2.describe_launch_template_versions(
        LaunchTemplateId=template["LaunchTemplateId"],
        Versions=[str(group.extra["launch_template_version"])])["LaunchTemplateVersions"][0]
    assert pinned["LaunchTemplateData"]["ImageId"] == seeded.images[OLD]


def test_a_missing_ssm_parameter_is_said_not_guessed(url, provider):
    seed(url)
    ec2, asg, _ = clients(url)
    template = ec2.create_launch_template(LaunchTemplateName="lost", LaunchTemplateData={
        "ImageId": "resolve:ssm:/app/gone", "InstanceType": "t3.micro"})["LaunchTemplate"]
    asg.create_auto_scaling_group(
        AutoScalingGroupName="lost", MinSize=0, MaxSize=2, DesiredCapacity=0,
        AvailabilityZones=[f"{REGION}a"],
        LaunchTemplate={"LaunchTemplateId": template["LaunchTemplateId"], "Version": "1"})
    inventory = provider.poll()
    group = inventory.group("lost", REGION)
    assert inventory.ok and group.desired_image_id is None
    assert any("/app/gone, which does not exist" in n for n in group.notes), group.notes


def test_overrides_with_their_own_template_are_read_and_a_rollback_refuses(url, provider):
    seeded = seed(url)
    ec2, asg, _ = clients(url)
    big = ec2.create_launch_template(LaunchTemplateName="big", LaunchTemplateData={
        "ImageId": seeded.images[OLD], "InstanceType": "m5.large"})["LaunchTemplate"]
    asg.update_auto_scaling_group(AutoScalingGroupName="web", MixedInstancesPolicy={
        "LaunchTemplate": {
            "LaunchTemplateSpecification": {"LaunchTemplateId": seeded.templates["web"],
                                            "Version": "1"},
            "Overrides": [{"InstanceType": "t3.micro"},
                          {"InstanceType": "m5.large", "LaunchTemplateSpecification": {
                              "LaunchTemplateId": big["LaunchTemplateId"], "Version": "1"}}]},
        "InstancesDistribution": {"OnDemandPercentageAboveBaseCapacity": 100}})
    inventory = provider.poll()
    group = inventory.group("web", REGION)
    override = group.extra["overrides"][0]
    assert override["instance_type"] == "m5.large" and override["image"] == seeded.images[OLD]
    assert any(f"m5.large launches from its own launch template {big['LaunchTemplateId']}"
               in n for n in group.notes), group.notes
    with pytest.raises(ActionRefused, match="m5.large from launch template"):
        provider.plan_rollback(inventory, "web", REGION, OLD)


def test_an_override_type_on_its_overrides_ami_is_not_drift_and_on_another_is(url, provider,
                                                                             tmp_path):
    seeded = seed(url)
    ec2, asg, _ = clients(url)
    big = ec2.create_launch_template(LaunchTemplateName="big-first", LaunchTemplateData={
        "ImageId": seeded.images[OLD], "InstanceType": "m5.large"})["LaunchTemplate"]
    # m5.large first: the group launches it (prioritized), from its own template's AMI.
    asg.update_auto_scaling_group(AutoScalingGroupName="web", MixedInstancesPolicy={
        "LaunchTemplate": {
            "LaunchTemplateSpecification": {"LaunchTemplateId": seeded.templates["web"],
                                            "Version": "1"},
            "Overrides": [{"InstanceType": "m5.large", "LaunchTemplateSpecification": {
                              "LaunchTemplateId": big["LaunchTemplateId"], "Version": "1"}},
                          {"InstanceType": "t3.micro"}]},
        "InstancesDistribution": {"OnDemandPercentageAboveBaseCapacity": 100}})
    asg.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=3)
    # An m5.large someone launched by hand on the group's own AMI, then attached: drift.
    wrong = ec2.run_instances(ImageId=seeded.images[NEW], InstanceType="m5.large", MinCount=1,
                              MaxCount=1)["Instances"][0]["InstanceId"]
    asg.attach_instances(AutoScalingGroupName="web", InstanceIds=[wrong])

    inventory = provider.poll()
    group = inventory.group("web", REGION)
    members = {i.id: i for i in inventory.members(group)}
    launched = [i for i in members.values() if i.instance_type == "m5.large" and i.id != wrong]
    assert len(launched) == 1 and launched[0].image_id == seeded.images[OLD]
    assert launched[0].desired_version == OLD and launched[0].version == OLD
    assert members[wrong].desired_version == OLD and members[wrong].version == NEW
    small = [i for i in members.values() if i.instance_type == "t3.micro"]
    assert len(small) == 2 and all(i.desired_image_id is None for i in small)
    drift = {i.id for i in members.values() if i.image_id != i.wanted_image(group)}
    assert drift == {wrong}
    # Replacing the wrong one: the others are done, each on what its type launches.
    state = converge_state(inventory, provider.plan_replace(inventory, wrong))
    assert state.on_target == 3 and not state.others, state

    # The same rule in the store, as the fleet table reads it.
    with Store.open(f"sqlite:///{tmp_path / 'history.db'}") as store:
        store.record_poll(inventory, inventory.polled_at, inventory.polled_at)
        fleet = store.fleet_at().set_index("instance_id")
    assert set(fleet.index[fleet["drift"]]) == {wrong}
    assert fleet.loc[launched[0].id, "desired_version"] == OLD
    assert {fleet.loc[i.id, "desired_version"] for i in small} == {NEW}


def test_warm_pool_instances_are_not_members_and_a_refresh_replaces_them(url, provider):
    seeded = seed(url)
    _, asg, _ = clients(url)
    asg.put_warm_pool(AutoScalingGroupName="web", MinSize=2, MaxGroupPreparedCapacity=4,
                      PoolState="Running")
    inventory = provider.poll()
    group = inventory.group("web", REGION)
    warm = [i for i in inventory.instances if i.warm]
    assert len(warm) == 2 and all(i.group == "web" and i.state == State.RUNNING for i in warm)
    members = inventory.members(group)
    assert len(members) == 2 and not {i.id for i in warm} & {i.id for i in members}
    assert group.extra["warm_pool"]["state"] == "Running"
    assert not group.updating  # no drift seen, no rollout asked about
    replace_plan = provider.plan_replace(inventory, members[0].id)
    assert any("takes the replacement from the pool" in n for n in replace_plan.notes)

    plan = provider.plan_rollback(inventory, "web", REGION, OLD)
    note = next(n for n in plan.notes if "warm pool" in n)
    assert "the instance refresh replaces the warm pool too" in note
    assert all(i.id in note for i in warm)
    run(provider, plan)
    after = provider.poll()
    warm_after = [i for i in after.instances if i.warm and i.state.live]
    assert len(warm_after) == 2 and {i.image_id for i in warm_after} == {seeded.images[OLD]}
    assert {i.version for i in after.members(after.group("web", REGION))} == {OLD}


def test_standby_is_named_refused_for_replace_and_never_counted_converged(url, provider):
    seeded = seed(url)
    _, asg, _ = clients(url)
    held = seeded.groups["web"][0]
    asg.enter_standby(AutoScalingGroupName="web", InstanceIds=[held],
                      ShouldDecrementDesiredCapacity=True)
    inventory = provider.poll()
    standby = inventory.instance(held)
    assert standby.standby and standby.healthy is False and standby.state == State.RUNNING
    with pytest.raises(ActionRefused, match="Standby"):
        provider.plan_replace(inventory, held)
    plan = provider.plan_rollback(inventory, "web", REGION, OLD)
    assert any("Standby" in n and held in n for n in plan.notes), plan.notes
    # Running on EC2 and on the target's version is not enough: only InService converges.
    on_target = replace(plan, to_version=NEW)
    state = converge_state(inventory, on_target)
    assert state.on_target == 1 and state.others.get("starting") == 1


def test_a_disabled_ami_is_not_deregistered_and_the_plan_enables_it(url, provider):
    seeded = seed(url)
    ec2, _, _ = clients(url)
    ec2.disable_image(ImageId=seeded.images[OLD])
    # Without IncludeDisabled, AWS (and the local layer) leaves a disabled AMI out.
    assert not ec2.describe_images(ImageIds=[seeded.images[OLD]])["Images"]
    inventory = provider.poll()
    image = inventory.images[seeded.images[OLD]]
    assert not image.gone and image.version == OLD

    plan = provider.plan_rollback(inventory, "web", REGION, OLD)
    assert plan.steps[0].key == f"image:enable:{seeded.images[OLD]}"
    assert any("must be re-enabled (EnableImage)" in n for n in plan.notes), plan.notes
    run(provider, plan)
    assert ec2.describe_images(ImageIds=[seeded.images[OLD]])["Images"][0]["State"] == \
        "available"
    after = provider.poll()
    assert {i.version for i in after.members(after.group("web", REGION))} == {OLD}


def test_a_disabled_desired_ami_is_noted_on_the_group_and_a_replace_enables_it(url, provider):
    seeded = seed(url)
    ec2, _, _ = clients(url)
    ec2.disable_image(ImageId=seeded.images[NEW])
    inventory = provider.poll()
    group = inventory.group("web", REGION)
    assert any("is disabled" in n for n in group.notes), group.notes
    plan = provider.plan_replace(inventory, seeded.groups["web"][0])
    assert plan.steps[0].key.startswith("image:enable:")


def test_a_shared_template_warns_groups_that_follow_latest(url, provider):
    seeded = seed(url)
    _, asg, _ = clients(url)
    asg.create_auto_scaling_group(
        AutoScalingGroupName="canary", MinSize=0, MaxSize=2, DesiredCapacity=1,
        AvailabilityZones=[f"{REGION}a"],
        LaunchTemplate={"LaunchTemplateId": seeded.templates["web"], "Version": "$Latest"})
    inventory = provider.poll()
    plan = provider.plan_rollback(inventory, "web", REGION, OLD)
    assert any("group canary follows $Latest" in n for n in plan.notes), plan.notes


def test_a_spot_interruption_is_shown_as_one(url, provider):
    seeded = seed(url)
    ec2, _, _ = clients(url)
    spot = ec2.run_instances(ImageId=seeded.images[NEW], MinCount=1, MaxCount=1,
                             InstanceType="t3.micro",
                             InstanceMarketOptions={"MarketType": "spot"})["Instances"][0]
    assert provider.poll().instance(spot["InstanceId"]).lifecycle == "spot"
    urllib.request.urlopen(url + SPOT_INTERRUPTION_PATH, data=urlencode({
        "account": ACCOUNT, "region": REGION, "instance": spot["InstanceId"]}).encode())
    ended = provider.poll().instance(spot["InstanceId"])
    assert ended.state == State.TERMINATED and ended.lifecycle == "spot"
    assert ended.state_reason == "Spot interruption"


def test_groups_another_system_deploys_name_it_and_are_refused_unless_allowed(url, provider):
    seed(url,
         GroupSpec("web", size=2, version=NEW, tags={"aws:cloudformation:stack-name": "web-prod"}),
         GroupSpec("nodes", size=1, version=NEW,
                   tags={"eks:nodegroup-name": "ng-1", "eks:cluster-name": "prod"}),
         GroupSpec("eb", size=1, version=NEW,
                   tags={"elasticbeanstalk:environment-name": "web-env"}))
    inventory = provider.poll()
    assert {g.name: g.owner for g in inventory.groups} == {
        "web": "CloudFormation stack web-prod", "nodes": "EKS node group ng-1 of cluster prod",
        "eb": "Elastic Beanstalk environment web-env"}
    with pytest.raises(ActionRefused, match="act_on_owned_groups"):
        provider.plan_rollback(inventory, "web", REGION, OLD)
    allowed = make_provider(url, act_on_owned_groups=True)
    try:
        plan = allowed.plan_rollback(allowed.poll(), "web", REGION, OLD)
    finally:
        allowed.close()
    assert "CloudFormation stack web-prod" in plan.notes[0] and "undo" in plan.notes[0]


def test_a_shared_ami_falls_back_with_a_note_and_reads_its_owner_tags_when_told(url):
    seed(url)
    ec2, asg, _ = clients(url)
    # One of the public AMIs moto serves in every account, owned by Amazon's account.
    amazon = ec2.describe_images(ImageIds=[AMAZON_AMI])["Images"][0]
    assert amazon["OwnerId"] != ACCOUNT
    template = ec2.create_launch_template(LaunchTemplateName="shared", LaunchTemplateData={
        "ImageId": amazon["ImageId"], "InstanceType": "t3.micro"})["LaunchTemplate"]
    asg.create_auto_scaling_group(
        AutoScalingGroupName="shared", MinSize=0, MaxSize=2, DesiredCapacity=1,
        AvailabilityZones=[f"{REGION}a"],
        LaunchTemplate={"LaunchTemplateId": template["LaunchTemplateId"], "Version": "1"})
    owner_role = f"arn:aws:iam::{amazon['OwnerId']}:role/fleetview-images"
    sts = boto3.client("sts", region_name=REGION, endpoint_url=url)
    creds = sts.assume_role(RoleArn=owner_role, RoleSessionName="owner")["Credentials"]
    boto3.client("ec2", region_name=REGION, endpoint_url=url,
                 aws_access_key_id=creds["AccessKeyId"],
                 aws_secret_access_key=creds["SecretAccessKey"],
                 aws_session_token=creds["SessionToken"]).create_tags(
        Resources=[amazon["ImageId"]], Tags=[{"Key": "version", "Value": "9.1.0"}])

    plain = make_provider(url)
    told = make_provider(url, image_tags_from=owner_role)
    broken = make_provider(url, image_tags_from="no-such-profile")
    try:
        group = plain.poll().group("shared", REGION)
        assert group.desired_version != "9.1.0"
        assert any(f"shared by account {amazon['OwnerId']}" in n for n in group.notes)
        group = told.poll().group("shared", REGION)
        assert group.desired_version == "9.1.0" and not group.notes
        # A tag source that does not work costs the region nothing but the tags, and says so.
        inventory = broken.poll()
        group = inventory.group("shared", REGION)
        assert inventory.ok and group.desired_version != "9.1.0"
        assert any("image_tags_from could not read them" in n and "no-such-profile" in n
                   for n in group.notes), group.notes
    finally:
        plain.close()
        told.close()
        broken.close()


def test_a_launch_hook_holds_convergence_until_in_service(url, provider):
    seeded = seed(url)
    _, asg, _ = clients(url)
    asg.put_lifecycle_hook(AutoScalingGroupName="web", LifecycleHookName="warm-up",
                           LifecycleTransition="autoscaling:EC2_INSTANCE_LAUNCHING")
    victim = seeded.groups["web"][0]
    plan = provider.plan_replace(provider.poll(), victim)
    run(provider, plan)
    # EC2 runs the replacement, but the hook holds it in Pending:Wait: not converged.
    state = provider.convergence(plan)
    assert (state.on_target, state.needed) == (1, 2) and state.others == {"starting": 1}
    waiting = [i for i in asg.describe_auto_scaling_groups(AutoScalingGroupNames=["web"])[
        "AutoScalingGroups"][0]["Instances"] if i["LifecycleState"] == "Pending:Wait"]
    assert len(waiting) == 1
    asg.complete_lifecycle_action(AutoScalingGroupName="web", LifecycleHookName="warm-up",
                                  InstanceId=waiting[0]["InstanceId"],
                                  LifecycleActionResult="CONTINUE")
    state = provider.convergence(plan)
    assert (state.on_target, state.needed) == (2, 2)


def test_the_scope_keys_parse_and_a_bad_owner_role_is_named():
    from fleetview.config import ConfigError, parse_config

    table = '[[aws]]\nname = "p"\nregions = ["us-east-1"]\n'
    scope = parse_config(table + 'act_on_owned_groups = true\nimage_tags_from = "images"\n'
                         ).scopes[0]
    assert scope.act_on_owned_groups and scope.image_tags_from == "images"
    assert not parse_config(table).scopes[0].act_on_owned_groups
    with pytest.raises(ConfigError, match="image_tags_from.*role ARN"):
        parse_config(table + 'image_tags_from = "arn:aws:iam::12:role/x"\n')
    with pytest.raises(ConfigError, match="act_on_owned_groups.*true or false"):
        parse_config(table + 'act_on_owned_groups = "yes"\n')


def test_doctor_says_whether_the_shared_ami_tag_source_works(url):
    from fleetview import doctor

    def notes(source: str) -> list[str]:
        scope = AwsScopeConfig(name="prod", regions=(REGION,), endpoint_url=url,
                               image_tags_from=source)
        return [n for n in doctor.check_scope(scope).notes if "image_tags_from" in n]

    assert notes("arn:aws:iam::801119661308:role/fleetview-images") == [
        "image_tags_from arn:aws:iam::801119661308:role/fleetview-images: may read the owner "
        "account's AMI tags"]
    broken = notes("no-such-profile")
    assert len(broken) == 1 and "cannot read" in broken[0] and "no-such-profile" in broken[0]


def test_owner_tags_and_state_reasons_read_as_words():
    from fleetview.providers.aws.shapes import owner_of, state_reason_of

    assert owner_of({"app": "web"}) is None
    assert owner_of({"eks:cluster-name": "prod"}) == "EKS cluster prod"
    assert owner_of({"aws:cloudformation:stack-name": "s", "eks:nodegroup-name": "n"}) == \
        "CloudFormation stack s"
    assert state_reason_of({"StateReason": {"Code": "", "Message": ""}}) is None
    assert state_reason_of({"StateReason": {"Code": "Server.SpotInstanceShutdown"}}) == \
        "Spot interruption (stopped)"
    # A code FleetView does not know keeps AWS's own message.
    assert state_reason_of({"StateReason": {"Code": "Server.New", "Message": "Server.New: x"}}) \
        == "Server.New: x"
