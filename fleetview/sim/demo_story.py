"""What `fleetview --demo` shows: five releases over 30 days on two clouds, seeded live.

The last release, 2.4.0, is bad (it returns 500s), and the demo opens with it rolling out on
each cloud, started as a deploy pipeline would start it: an instance refresh on AWS `api`, a
managed instance group update on GCP `frontend`. Both take a few minutes on their own, time
enough to spot them, stop them and roll back.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

VERSIONS: tuple[str, ...] = ("2.0.0", "2.1.0", "2.2.0", "2.3.0", "2.4.0")
# When each build was made: the history starts with 2.0.0 everywhere, HISTORY_DAYS ago.
RELEASED_DAYS_AGO: dict[str, float] = {
    "2.0.0": 31.0, "2.1.0": 24.2, "2.2.0": 17.1, "2.3.0": 10.2, "2.4.0": 0.2}
# The build of this morning, rolling out when the demo opens: it returns 500s.
BAD_VERSION = "2.4.0"
BAD_SYMPTOM = "returns 500s"
HISTORY_DAYS = 30.0

AWS_SCOPE = "demo-aws"
GCP_SCOPE = "demo-gcp"
FAILING_SCOPE = "legacy-aws"
# A scope FleetView never watched: the window's collector rebuilds its 30 days from CloudTrail
# and Auto Scaling activities on its first poll (backfill), so a newcomer sees it work.
BACKFILLED_SCOPE = "new-aws"
BACKFILLED_REGION = "ca-central-1"
BACKFILLED_GROUPS = ("checkout", "search")
GCP_PROJECT = "demo-project"
AWS_REGIONS = ("us-east-1", "eu-west-1")
GCP_REGION = "us-central1"
GCP_ZONES = ("us-central1-a", "us-central1-b")

Size = Literal["small", "large"]
SIZES: tuple[str, ...] = ("small", "large")


@dataclass(frozen=True)
class GroupStory:
    """One group's 30 days.

    `rollouts` are (days ago, version): the group's desired version changed then and its
    instances were replaced by the new version's. `template_moves` changed only the desired
    version (drift: nobody replaced the instances). `live_rollout` is a version a deploy
    rolls out when the demo opens (an instance refresh on AWS, a MIG update on GCP), slowly
    enough to watch, stop and roll back.
    """

    provider: Literal["aws", "gcp"]
    name: str
    region: str
    sizes: dict[str, int]
    rollouts: tuple[tuple[float, str], ...]
    zone: str | None = None  # a zonal MIG
    template_moves: tuple[tuple[float, str], ...] = ()
    live_rollout: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    role: str = ""

    @property
    def running(self) -> str:
        return self.rollouts[-1][1]

    @property
    def desired(self) -> str:
        return self.template_moves[-1][1] if self.template_moves else self.running

    def size(self, size: str) -> int:
        return self.sizes[size]


@dataclass(frozen=True)
class StandaloneStory:
    """An instance outside any group, launched `days_ago` on `version`."""

    provider: Literal["aws", "gcp"]
    name: str
    region: str
    version: str
    days_ago: float
    zone: str | None = None


@dataclass(frozen=True)
class FailingStory:
    """The scope whose endpoint is down: instances it had, and how long polls have failed."""

    region: str = "us-west-2"
    account: str = "210987654321"
    instances: tuple[tuple[str, str, float], ...] = (  # (name, version, launched days ago)
        ("legacy-batch-1", "2.0.0", 30.0), ("legacy-batch-2", "2.0.0", 30.0),
        ("legacy-batch-3", "2.1.0", 22.5), ("legacy-batch-4", "2.1.0", 22.5))
    outage_hours: float = 2.5


GROUPS: tuple[GroupStory, ...] = (
    GroupStory("aws", "web", "us-east-1", {"small": 10, "large": 400},
               ((30.0, "2.0.0"), (23.8, "2.1.0"), (16.7, "2.2.0"), (9.8, "2.3.0")),
               tags={"app": "web", "team": "storefront"}, role="steady on 2.3.0"),
    GroupStory("aws", "api", "us-east-1", {"small": 8, "large": 300},
               ((30.0, "2.0.0"), (23.6, "2.1.0"), (16.5, "2.2.0"), (9.6, "2.3.0")),
               live_rollout=BAD_VERSION, tags={"app": "api", "team": "platform"},
               role=f"the deploy's instance refresh rolls out {BAD_VERSION}, which "
                    f"{BAD_SYMPTOM}: stop it and roll back to 2.3.0"),
    GroupStory("aws", "worker", "eu-west-1", {"small": 8, "large": 300},
               ((30.0, "2.0.0"), (23.4, "2.1.0"), (16.4, "2.2.0")),
               template_moves=((9.5, "2.3.0"),), tags={"app": "worker", "team": "data"},
               role="drift: its template launches 2.3.0, its instances still run 2.2.0"),
    GroupStory("gcp", "frontend", GCP_REGION, {"small": 10, "large": 4000},
               ((30.0, "2.0.0"), (23.9, "2.1.0"), (16.8, "2.2.0"), (9.9, "2.3.0")),
               zone="us-central1-b", live_rollout=BAD_VERSION,
               role=f"the deploy's MIG update rolls out {BAD_VERSION}, which {BAD_SYMPTOM}: "
                    "stop it and roll back to 2.3.0"),
    GroupStory("gcp", "api", GCP_REGION, {"small": 8, "large": 3000},
               ((30.0, "2.0.0"), (23.7, "2.1.0"), (16.6, "2.2.0"), (9.7, "2.3.0")),
               role="regional MIG over two zones, steady on 2.3.0"),
    GroupStory("gcp", "batch", GCP_REGION, {"small": 6, "large": 3000},
               ((30.0, "2.0.0"), (23.5, "2.1.0"), (16.3, "2.2.0"), (9.4, "2.3.0")),
               zone="us-central1-a", role="steady on 2.3.0"),
)

STANDALONE: tuple[StandaloneStory, ...] = (
    StandaloneStory("aws", "bastion", "us-east-1", "2.2.0", 16.0),
    StandaloneStory("aws", "bastion", "eu-west-1", "2.0.0", 29.0),
    StandaloneStory("gcp", "bastion", GCP_REGION, "2.1.0", 23.0, zone="us-central1-b"),
    StandaloneStory("gcp", "tools", GCP_REGION, "2.3.0", 8.0, zone="us-central1-a"),
)

FAILING = FailingStory()


def groups_of(provider: str) -> list[GroupStory]:
    return [g for g in GROUPS if g.provider == provider]


def standalone_of(provider: str) -> list[StandaloneStory]:
    return [s for s in STANDALONE if s.provider == provider]


def check_size(size: str) -> str:
    if size not in SIZES:
        raise ValueError(f"demo size must be one of {', '.join(SIZES)}, not {size!r}")
    return size


def gce_image_name(version: str) -> str:
    return "app-" + version.replace(".", "-")


def gce_template_name(version: str) -> str:
    return gce_image_name(version) + "-tmpl"


# -- AWS ------------------------------------------------------------------------------------

@dataclass
class AwsSeeded:
    """What the AWS part of the story made on the moto server."""

    endpoint_url: str
    images: dict[tuple[str, str], str] = field(default_factory=dict)  # (region, version) -> AMI
    instances: int = 0


def seed_aws(endpoint_url: str, size: str) -> AwsSeeded:
    """Groups, AMIs of every version and standalone instances, one thread per region."""
    check_size(size)
    seeded = AwsSeeded(endpoint_url)
    with ThreadPoolExecutor(max_workers=len(AWS_REGIONS)) as pool:
        results = list(pool.map(lambda r: _seed_aws_region(endpoint_url, r, size), AWS_REGIONS))
    for region, images, count in results:
        for version, image_id in images.items():
            seeded.images[(region, version)] = image_id
        seeded.instances += count
    return seeded


def _seed_aws_region(endpoint_url: str, region: str, size: str
                     ) -> tuple[str, dict[str, str], int]:
    from fleetview.sim.aws_fleet import GroupSpec, clients, seed_aws_fleet

    specs = [GroupSpec(g.name, size=g.size(size), version=g.desired, running=g.running,
                       tags=dict(g.tags))
             for g in groups_of("aws") if g.region == region]
    fleet = seed_aws_fleet(endpoint_url, regions=[region], groups=specs, versions=VERSIONS,
                           standalone=0, unlabelled=0)
    made = fleet.regions[region]
    count = sum(len(ids) for ids in made.groups.values())
    ec2, _ = clients(endpoint_url, region)
    for story in standalone_of("aws"):
        if story.region != region:
            continue
        ec2.run_instances(
            ImageId=made.images[story.version], MinCount=1, MaxCount=1,
            InstanceType="t3.micro", TagSpecifications=[{
                "ResourceType": "instance",
                "Tags": [{"Key": "Name", "Value": story.name},
                         {"Key": "role", "Value": story.name}]}])
        count += 1
    return region, dict(made.images), count


# -- GCP ------------------------------------------------------------------------------------

def seed_gce(state, size: str) -> int:
    """Images and templates of every version, the MIGs and standalone instances, back-dated
    to when the story says they were made; returns the number of instances."""
    check_size(size)
    for version in VERSIONS:
        days = timedelta(days=RELEASED_DAYS_AGO[version])
        state.create_image(gce_image_name(version), family="app",
                           labels={"version": gce_image_name(version).removeprefix("app-")},
                           created=days, description=f"app build {version}")
        state.create_instance_template(gce_template_name(version), gce_image_name(version),
                                       labels={"app": "shop"}, created=days)
    count = 0
    # Standalone instances first and the rolling group last: the emulator pages lists by
    # offset, so instances coming and going shift only what was made after them, and a
    # poll during the rollout never misses an instance of another group.
    for story in standalone_of("gcp"):
        state.create_instance(story.name, story.zone, gce_image_name(story.version),
                              labels={"role": story.name},
                              created=timedelta(days=story.days_ago))
        count += 1
    for story in sorted(groups_of("gcp"), key=lambda g: g.live_rollout is not None):
        since = timedelta(days=story.rollouts[-1][0])
        where = {"zone": story.zone} if story.zone else {
            "region": story.region, "zones": list(GCP_ZONES)}
        state.create_mig(story.name, gce_template_name(story.running),
                         target_size=story.size(size), created=since, **where)
        count += story.size(size)
    return count


# A live rollout replaces this share of the group per wave: ten waves or so, whatever the size.
LIVE_SURGE_SHARE = 0.1
# The AWS deploy's instance refresh: one instance at a time on the small demo (90% of 8 kept in
# service), each counted only after its warm-up: a few minutes for the group. FleetView's own
# rollback sets no warm-up, and AWS's rollback of the refresh goes without it (see aws_refresh).
DEPLOY_MIN_HEALTHY = 90
DEPLOY_WARMUP_S = 20


def start_aws_rollouts(endpoint_url: str, image_of, stories: Sequence[GroupStory] = GROUPS
                       ) -> list[str]:
    """Roll every AWS group with a `live_rollout` out to that version as a deploy pipeline
    does: a new launch template version with the build's AMI, then StartInstanceRefresh with a
    DesiredConfiguration naming it (the group keeps its own version until the refresh
    succeeds). `image_of(region, version)` is the AMI of a version."""
    from fleetview.sim.aws_fleet import clients

    started = []
    for story in stories:
        if story.provider != "aws" or story.live_rollout is None:
            continue
        ec2, asg = clients(endpoint_url, story.region)
        group = asg.describe_auto_scaling_groups(
            AutoScalingGroupNames=[story.name])["AutoScalingGroups"][0]
        template = group["LaunchTemplate"]
        made = ec2.create_launch_template_version(
            LaunchTemplateId=template["LaunchTemplateId"], SourceVersion=template["Version"],
            VersionDescription=f"deploy {story.live_rollout}",
            LaunchTemplateData={"ImageId": image_of(story.region, story.live_rollout)},
        )["LaunchTemplateVersion"]
        asg.start_instance_refresh(
            AutoScalingGroupName=story.name, Strategy="Rolling",
            DesiredConfiguration={"LaunchTemplate": {
                "LaunchTemplateId": template["LaunchTemplateId"],
                "Version": str(made["VersionNumber"])}},
            Preferences={"MinHealthyPercentage": DEPLOY_MIN_HEALTHY,
                         "InstanceWarmup": DEPLOY_WARMUP_S, "SkipMatching": True})
        started.append(story.name)
    return started


def start_live_rollouts(state, stories: Sequence[GroupStory] = GROUPS) -> list[str]:
    """Patch every group with a `live_rollout` to that version's template, PROACTIVE, as an
    operator would; the emulator replaces its instances over the next minute or two."""
    started = []
    for story in stories:
        if story.provider != "gcp" or story.live_rollout is None:
            continue
        group = state.find_group(story.name)
        surge = max(1, int(group.target_size * LIVE_SURGE_SHARE))
        state.patch_group(group, {
            "versions": [{"instanceTemplate": state.template_link(
                gce_template_name(story.live_rollout))}],
            "updatePolicy": {"type": "PROACTIVE", "minimalAction": "REPLACE",
                             "maxSurge": {"fixed": surge}, "maxUnavailable": {"fixed": 0}},
        })
        started.append(story.name)
    return started
