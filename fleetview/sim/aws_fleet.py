"""Seed a realistic fleet on a moto server: AMIs of several versions, templates, groups, strays."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import boto3
from botocore.config import Config

Labelled = Literal["tag", "name", "none"]

# The order versions are built in; a group "moved on" points at a later one than it runs.
DEFAULT_VERSIONS: tuple[str, ...] = ("1.2.0", "1.3.0", "1.4.0")


@dataclass(frozen=True)
class GroupSpec:
    """One Auto Scaling group to create.

    Its instances launch from `running` (default: `version`); then, if `version` differs, the
    template gets a new version with `version`'s AMI and the group is pointed at it, so the
    group shows drift (a rollout not yet done). `pointer` is how the group names its template
    version: "number" (the exact number), "$Latest" or "$Default". `mixed` puts the template
    inside a mixed instances policy.
    """

    name: str
    size: int = 3
    version: str = DEFAULT_VERSIONS[-1]
    running: str | None = None
    pointer: Literal["number", "$Latest", "$Default"] = "number"
    mixed: bool = False
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class SeededRegion:
    """What `seed_aws_fleet` made in one region."""

    region: str
    images: dict[str, str] = field(default_factory=dict)  # version -> AMI id
    unlabelled_image: str = ""  # an AMI whose version no rule finds (its id is its label)
    templates: dict[str, str] = field(default_factory=dict)  # group -> launch template id
    groups: dict[str, list[str]] = field(default_factory=dict)  # group -> instance ids
    # instance id -> version (the AMI id for the unlabelled image, as FleetView labels it)
    standalone: dict[str, str] = field(default_factory=dict)


@dataclass
class SeededFleet:
    endpoint_url: str
    regions: dict[str, SeededRegion] = field(default_factory=dict)

    @property
    def instance_count(self) -> int:
        return sum(sum(len(v) for v in r.groups.values()) + len(r.standalone)
                   for r in self.regions.values())


DEFAULT_GROUPS: tuple[GroupSpec, ...] = (
    GroupSpec("web", size=3, version="1.4.0", tags={"app": "web"}),
    GroupSpec("api", size=2, version="1.4.0", running="1.3.0", pointer="$Latest",
              tags={"app": "api"}),
    GroupSpec("worker", size=2, version="1.3.0", pointer="$Default", mixed=True,
              tags={"app": "worker"}),
)


def clients(endpoint_url: str, region: str) -> tuple:
    config = Config(retries={"mode": "standard", "total_max_attempts": 3})
    kwargs = {"region_name": region, "endpoint_url": endpoint_url, "config": config,
              "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    return boto3.client("ec2", **kwargs), boto3.client("autoscaling", **kwargs)


def register_version(ec2, version: str, labelled: Labelled, app: str = "app") -> str:
    """Register an AMI of `version`, its version found by a tag, its name, or neither.

    moto's RegisterImage ignores TagSpecifications, so the tag is set with CreateTags.
    """
    if labelled == "name":
        name = f"{app}-{version}-20261101"
    else:
        name = f"{app}-golden-{version.replace('.', 'x')}"
    image_id = ec2.register_image(Name=name, Description=f"{app} build")["ImageId"]
    if labelled == "tag":
        ec2.create_tags(Resources=[image_id], Tags=[{"Key": "version", "Value": version}])
    return image_id


def seed_aws_fleet(
    endpoint_url: str,
    regions: Sequence[str] = ("us-east-1", "eu-west-1"),
    groups: Sequence[GroupSpec] = DEFAULT_GROUPS,
    versions: Sequence[str] = DEFAULT_VERSIONS,
    labels: dict[str, Labelled] | None = None,
    standalone: int = 2,
    standalone_reservations: int | None = None,
    unlabelled: int = 1,
    instance_type: str = "t3.micro",
) -> SeededFleet:
    """Create the fleet in each region and return what was made.

    `labels` says how each version's AMI carries its version (default: alternately a tag
    and the name). `standalone` instances run the versions in turn, each in its own
    reservation unless `standalone_reservations` packs them into fewer (moto pages
    DescribeInstances by reservation, so many small reservations make many pages).
    `unlabelled` more standalone instances run an AMI whose version no default rule finds.
    """
    labels = labels or {v: ("tag" if n % 2 == 0 else "name") for n, v in enumerate(versions)}
    fleet = SeededFleet(endpoint_url)
    for region in regions:
        ec2, asg = clients(endpoint_url, region)
        seeded = SeededRegion(region)
        for version in versions:
            seeded.images[version] = register_version(ec2, version, labels.get(version, "tag"))
        seeded.unlabelled_image = ec2.register_image(Name="app-golden", Description="")[
            "ImageId"]
        zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]]
        for spec in groups:
            _seed_group(ec2, asg, spec, seeded, zones[:2], instance_type, region)
        _seed_standalone(ec2, seeded, versions, standalone, standalone_reservations,
                         instance_type)
        if unlabelled > 0:
            response = ec2.run_instances(
                ImageId=seeded.unlabelled_image, MinCount=unlabelled, MaxCount=unlabelled,
                InstanceType=instance_type, TagSpecifications=[{
                    "ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "legacy"}]}])
            for inst in response["Instances"]:
                seeded.standalone[inst["InstanceId"]] = seeded.unlabelled_image
        fleet.regions[region] = seeded
    return fleet


def _seed_group(ec2, asg, spec: GroupSpec, seeded: SeededRegion, zones: list[str],
                instance_type: str, region: str) -> None:
    first = spec.running or spec.version
    template = ec2.create_launch_template(
        LaunchTemplateName=f"{spec.name}-{region}",
        LaunchTemplateData={"ImageId": seeded.images[first], "InstanceType": instance_type},
    )["LaunchTemplate"]
    template_id = template["LaunchTemplateId"]
    seeded.templates[spec.name] = template_id
    pointer = "1" if spec.pointer == "number" else spec.pointer
    lt_spec = {"LaunchTemplateId": template_id, "Version": pointer}
    kwargs: dict = {
        "AutoScalingGroupName": spec.name, "MinSize": 0, "MaxSize": max(spec.size * 2, 1),
        "DesiredCapacity": spec.size, "AvailabilityZones": zones,
        "Tags": [{"Key": k, "Value": v, "PropagateAtLaunch": True, "ResourceId": spec.name,
                  "ResourceType": "auto-scaling-group"} for k, v in spec.tags.items()],
    }
    if spec.mixed:
        kwargs["MixedInstancesPolicy"] = _mixed(lt_spec, instance_type)
    else:
        kwargs["LaunchTemplate"] = lt_spec
    asg.create_auto_scaling_group(**kwargs)
    if first != spec.version:
        created = ec2.create_launch_template_version(
            LaunchTemplateId=template_id, SourceVersion="1",
            LaunchTemplateData={"ImageId": seeded.images[spec.version]},
        )["LaunchTemplateVersion"]
        number = str(created["VersionNumber"])
        if spec.pointer == "$Default":
            ec2.modify_launch_template(LaunchTemplateId=template_id, DefaultVersion=number)
        elif spec.pointer == "number":
            moved = {"LaunchTemplateId": template_id, "Version": number}
            update = ({"MixedInstancesPolicy": _mixed(moved, instance_type)} if spec.mixed
                      else {"LaunchTemplate": moved})
            asg.update_auto_scaling_group(AutoScalingGroupName=spec.name, **update)
    described = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[spec.name])
    seeded.groups[spec.name] = [i["InstanceId"] for i in
                                described["AutoScalingGroups"][0]["Instances"]]


def _mixed(lt_spec: dict, instance_type: str) -> dict:
    return {
        "LaunchTemplate": {"LaunchTemplateSpecification": lt_spec,
                           "Overrides": [{"InstanceType": instance_type}]},
        "InstancesDistribution": {"OnDemandPercentageAboveBaseCapacity": 100},
    }


def _seed_standalone(ec2, seeded: SeededRegion, versions: Sequence[str], count: int,
                     reservations: int | None, instance_type: str) -> None:
    if count <= 0:
        return
    chunks = reservations or count
    per = -(-count // chunks)
    made = 0
    n = 0
    while made < count:
        take = min(per, count - made)
        version = versions[n % len(versions)]
        response = ec2.run_instances(
            ImageId=seeded.images[version], MinCount=take, MaxCount=take,
            InstanceType=instance_type,
            TagSpecifications=[{"ResourceType": "instance", "Tags": [
                {"Key": "Name", "Value": f"bastion-{n}"}, {"Key": "role", "Value": "bastion"}]}],
        )
        for inst in response["Instances"]:
            seeded.standalone[inst["InstanceId"]] = version
        made += take
        n += 1
