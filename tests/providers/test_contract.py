"""One contract, every provider: the same behaviour from the AWS provider on moto, the GCP
provider on the Compute Engine emulator (each driven through its real SDK), and the in-memory
third cloud that lives only under tests/ (registered with one registry line)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import boto3
import pytest

from fleetview import providers
from fleetview.actions.steps import run_steps
from fleetview.domain.actions import ActionRefused
from fleetview.domain.model import Instance, Inventory, State
from fleetview.domain.timing import FakeClock, Timing
from fleetview.domain.versions import VersionRules
from fleetview.providers.aws.provider import AwsProvider
from fleetview.providers.aws.scope import AwsScopeConfig
from fleetview.providers.gcp.provider import GcpProvider
from fleetview.providers.gcp.scope import GcpScopeConfig
from fleetview.sim.aws_fleet import GroupSpec, seed_aws_fleet
from tests.helpers import gce as gce_fixtures
from tests.helpers import memory_cloud as mem
from tests.helpers.aws import moto_refresh_server, moto_server  # noqa: F401

gce_emulator = gce_fixtures.gce_emulator
OLD, NEW = "1.3.0", "1.4.0"


@dataclass
class Cloud:
    """A seeded cloud: group "web" of 3 running NEW after running OLD in full, and one
    standalone instance."""

    name: str
    make: Any  # actions: bool -> Provider
    region: str
    group: str = "web"
    # Makes group "web" one another system deploys; returns the words naming that owner.
    own: Callable[[], str] | None = None
    # Stops one member of "web" outside FleetView, as a person or the cloud itself would.
    stop: Callable[[Instance], None] | None = None

    def provider(self, actions: bool = True):
        return self.make(actions)


def _aws(moto) -> Cloud:
    seed_aws_fleet(moto.url, regions=("us-east-1",),
                   groups=(GroupSpec("web", size=3, version=NEW),), standalone=1, unlabelled=0,
                   versions=(OLD, NEW))

    def make(actions: bool):
        config = AwsScopeConfig("aws-c", ("us-east-1",), endpoint_url=moto.url, actions=actions)
        return AwsProvider(config, VersionRules(),
                           timing=FakeClock().timing(interval_s=1.0, timeout_s=60.0))

    def own() -> str:
        autoscaling = boto3.client("autoscaling", region_name="us-east-1", endpoint_url=moto.url)
        autoscaling.create_or_update_tags(Tags=[{
            "ResourceId": "web", "ResourceType": "auto-scaling-group", "PropagateAtLaunch": False,
            "Key": "aws:cloudformation:stack-name", "Value": "web-prod"}])
        return "CloudFormation stack web-prod"

    def stop(instance: Instance) -> None:
        boto3.client("ec2", region_name="us-east-1", endpoint_url=moto.url).stop_instances(
            InstanceIds=[instance.id])

    return Cloud("aws", make, "us-east-1", own=own, stop=stop)


def _gcp(emulator) -> Cloud:
    state = emulator.state
    for version in (OLD, NEW):
        state.create_image(f"app-{version.replace('.', '-')}",
                           labels={"version": version.replace(".", "-")})
        state.create_instance_template(f"app-t-{version.replace('.', '-')}",
                                       f"app-{version.replace('.', '-')}")
    state.create_mig("web", f"app-t-{NEW.replace('.', '-')}", zone="us-central1-a",
                     target_size=3)
    state.create_instance("bastion", "us-central1-b", f"app-{OLD.replace('.', '-')}")
    emulator.clock.advance(120)  # the MIG's instances are created and running

    def make(actions: bool):
        config = GcpScopeConfig("gcp-c", gce_fixtures.PROJECT, api_endpoint=emulator.endpoint,
                                credentials="anonymous", actions=actions)
        # Every pause lets the emulated rollout move on by at least 15 s.
        return GcpProvider(config, VersionRules(), timing=Timing(
            interval_s=0.0, timeout_s=3600, clock=emulator.clock.now,
            sleep=lambda s: emulator.clock.advance(max(s, 15))))

    def web_instances():
        return [i for i in state.instances[gce_fixtures.PROJECT]["us-central1-a"].values()
                if i.created_by and i.created_by.endswith("/web")]

    def own() -> str:
        # GKE labels its node pools' instances (and templates) with their cluster.
        for inst in web_instances():
            inst.labels.update({"goog-gke-node": "", "goog-k8s-cluster-name": "prod"})
            inst.touch()
        return "GKE cluster prod"

    def stop(instance: Instance) -> None:
        state.set_instance_status(gce_fixtures.PROJECT, "us-central1-a", instance.name,
                                  "TERMINATED")

    return Cloud("gcp", make, "us-central1", own=own, stop=stop)


def _memory(monkeypatch) -> Cloud:
    monkeypatch.setitem(providers.REGISTRY, "memory", "tests.helpers.memory_cloud")
    world = mem.MemoryCloud("contract")
    for version in (OLD, NEW):
        world.add_image(version)
    world.add_group("web", NEW, size=3)
    world.add_instance(group=None, version=OLD)
    monkeypatch.setitem(mem.WORLDS, world.account, world)

    def make(actions: bool):
        config = mem.MemoryScopeConfig(name="mem-c", account="contract", regions=("mem-1",),
                                       actions=actions)
        return providers.make_provider(config, mem.RULES)

    def own() -> str:
        world.groups[("mem-1", "web")].owner = "Pipeline web-deploy"
        return "Pipeline web-deploy"

    return Cloud("memory", make, "mem-1", own=own)


@pytest.fixture(params=["aws", "gcp", "memory"])
def cloud(request) -> Cloud:
    if request.param == "aws":
        return _aws(request.getfixturevalue("moto_server"))
    if request.param == "gcp":
        return _gcp(request.getfixturevalue("gce_emulator"))
    return _memory(request.getfixturevalue("monkeypatch"))


def members(inventory: Inventory, cloud: Cloud):
    return [i for i in inventory.instances if i.group == cloud.group
            and i.state not in (State.TERMINATED, State.STOPPING)]


def test_poll_labels_instances_groups_and_standalones(cloud):
    inventory = cloud.provider().poll()
    assert inventory.ok and cloud.region in inventory.regions_ok and inventory.api_calls > 0
    assert inventory.scope.provider == cloud.name and inventory.scope.account
    group = inventory.group(cloud.group, cloud.region)
    assert group is not None and group.desired_version == NEW and group.target_size == 3
    web = members(inventory, cloud)
    assert len(web) == 3 and {i.version for i in web} == {NEW}
    standalone = [i for i in inventory.instances if i.group is None]
    assert standalone and all(i.version in (OLD, NEW) for i in standalone)
    assert all(i.region == cloud.region or i.group is None for i in inventory.instances)


def test_identity_names_who_acts(cloud):
    assert cloud.provider().identity()


def test_standalone_instance_is_refused_with_the_reason(cloud):
    provider = cloud.provider()
    inventory = provider.poll()
    standalone = next(i for i in inventory.instances if i.group is None)
    with pytest.raises(ActionRefused, match="(?i)standalone|not in any|no group|outside"):
        provider.plan_replace(inventory, standalone.id)


def test_read_only_scope_refuses_rollback(cloud):
    provider = cloud.provider(actions=False)
    with pytest.raises(ActionRefused, match="(?i)read-only|actions"):
        provider.plan_rollback(provider.poll(), cloud.group, cloud.region, OLD)


def test_unknown_version_is_refused(cloud):
    provider = cloud.provider()
    with pytest.raises(ActionRefused):
        provider.plan_rollback(provider.poll(), cloud.group, cloud.region, "9.9.9")


def test_rollback_converges_and_runs_each_step_once(cloud):
    provider = cloud.provider()
    plan = provider.plan_rollback(provider.poll(), cloud.group, cloud.region, OLD)
    assert plan.kind == "rollback" and plan.to_version == OLD and plan.steps
    assert set(plan.from_versions) == {NEW}
    events = list(run_steps(provider, plan))
    started = [e.step for e in events if e.status == "started"]
    assert len(started) == len(set(started)), "a step ran twice"
    assert not [e for e in events if e.status == "failed"], events
    web = members(provider.poll(), cloud)
    assert len(web) == 3 and {i.version for i in web} == {OLD}
    assert all(i.state == State.RUNNING for i in web)
    # Steps journaled as done are never run again.
    assert not [e for e in run_steps(provider, plan, done={s.key for s in plan.steps})
                if e.status == "started"]


def test_replace_brings_a_new_instance_on_the_desired_version(cloud):
    provider = cloud.provider()
    inventory = provider.poll()
    victim = members(inventory, cloud)[0]
    plan = provider.plan_replace(inventory, victim.id)
    assert plan.kind == "replace" and plan.instances == (victim.id,)
    events = list(run_steps(provider, plan))
    assert not [e for e in events if e.status == "failed"], events
    web = members(provider.poll(), cloud)
    assert victim.id not in {i.id for i in web}
    assert len(web) == 3 and {i.version for i in web} == {NEW}


def test_a_group_another_system_deploys_is_refused_unless_the_scope_allows_it(cloud):
    if cloud.own is None:
        pytest.skip(f"no group of {cloud.name} is made one another system deploys yet")
    owner = cloud.own()
    provider = cloud.provider()
    inventory = provider.poll()
    assert owner in (inventory.group(cloud.group, cloud.region).owner or "")
    victim = members(inventory, cloud)[0]
    with pytest.raises(ActionRefused, match="act_on_owned_groups = true"):
        provider.plan_rollback(inventory, cloud.group, cloud.region, OLD)
    with pytest.raises(ActionRefused, match="act_on_owned_groups = true"):
        provider.plan_replace(inventory, victim.id)
    # The scope allows it: the plans say the owner's next deployment can undo them.
    allowed = type(provider)(replace(provider.config, act_on_owned_groups=True),
                             provider.rules, timing=provider.timing)
    inventory = allowed.poll()
    for plan in (allowed.plan_rollback(inventory, cloud.group, cloud.region, OLD),
                 allowed.plan_replace(inventory, victim.id)):
        assert owner in plan.notes[0] and "next deployment can undo" in plan.notes[0]


def test_a_stopped_member_is_shown_stopped_and_no_longer_counts(cloud):
    if cloud.stop is None:
        pytest.skip(f"no member of {cloud.name} is stopped by this suite yet")
    provider = cloud.provider()
    before = provider.poll()
    victim = members(before, cloud)[0]
    cloud.stop(victim)
    inventory = provider.poll()
    group = inventory.group(cloud.group, cloud.region)
    stopped = inventory.instance(victim.id)
    assert stopped is not None and stopped.state is State.STOPPED and not stopped.state.live
    assert victim.id not in {i.id for i in inventory.members(group)}
    assert len(inventory.members(group)) == 2
    # A rollback does not count on it, nor name it among what it replaces.
    plan = provider.plan_rollback(inventory, cloud.group, cloud.region, OLD)
    assert victim.id not in plan.instances and len(plan.instances) == 2


# -- the cloud takes a spot VM back ------------------------------------------------------------

@dataclass
class Interruptible:
    """A cloud holding one spot (or preemptible) VM, and how it takes that VM back."""

    provider: Any
    instance_id: Callable[[Inventory], str]
    interrupt: Callable[[str], None]
    lifecycle: str
    reason: str


def _aws_spot(moto) -> Interruptible:
    import urllib.request
    from urllib.parse import urlencode

    from fleetview.sim.aws_refresh_server import SPOT_INTERRUPTION_PATH

    seeded = seed_aws_fleet(moto.url, regions=("us-east-1",), groups=(), standalone=0,
                            unlabelled=0, versions=(NEW,)).regions["us-east-1"]
    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=moto.url)
    spot = ec2.run_instances(ImageId=seeded.images[NEW], MinCount=1, MaxCount=1,
                             InstanceType="t3.micro",
                             InstanceMarketOptions={"MarketType": "spot"})["Instances"][0]
    account = boto3.client("sts", region_name="us-east-1", endpoint_url=moto.url
                           ).get_caller_identity()["Account"]
    config = AwsScopeConfig("aws-c", ("us-east-1",), endpoint_url=moto.url)

    def interrupt(instance_id: str) -> None:
        urllib.request.urlopen(moto.url + SPOT_INTERRUPTION_PATH, data=urlencode({
            "account": account, "region": "us-east-1", "instance": instance_id}).encode())

    return Interruptible(AwsProvider(config, VersionRules()), lambda _inv: spot["InstanceId"],
                         interrupt, "spot", "Spot interruption")


def _gcp_spot(emulator) -> Interruptible:
    state = emulator.state
    state.create_image("app-1-4-0", labels={"version": "1-4-0"})
    state.create_instance("batch-1", "us-central1-a", "app-1-4-0",
                          scheduling={"provisioningModel": "SPOT"})
    config = GcpScopeConfig("gcp-c", gce_fixtures.PROJECT, api_endpoint=emulator.endpoint,
                            credentials="anonymous")

    def interrupt(_instance_id: str) -> None:
        emulator.clock.advance(60)
        state.preempt("us-central1-a", "batch-1")

    def instance_id(inventory: Inventory) -> str:
        return next(i.id for i in inventory.instances if i.name == "batch-1")

    return Interruptible(GcpProvider(config, VersionRules()), instance_id, interrupt, "spot",
                         "Preempted")


@pytest.fixture(params=["aws", "gcp"])
def interruptible(request) -> Interruptible:
    if request.param == "aws":
        return _aws_spot(request.getfixturevalue("moto_refresh_server"))
    return _gcp_spot(request.getfixturevalue("gce_emulator"))


def test_a_spot_vm_the_cloud_takes_back_is_shown_as_taken_back(interruptible):
    """Not unexplained churn: the poll says the VM was interrupted, in the cloud's words."""
    provider = interruptible.provider
    before = provider.poll()
    instance_id = interruptible.instance_id(before)
    running = before.instance(instance_id)
    assert running.lifecycle == interruptible.lifecycle and running.state_reason is None
    interruptible.interrupt(instance_id)
    after = provider.poll().instance(instance_id)
    assert after is not None and not after.state.live
    assert after.lifecycle == interruptible.lifecycle
    assert after.state_reason == interruptible.reason
