"""AWS actions: replace one ASG instance, roll a group back; plans first, then execution."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from fleetview.domain.actions import ActionPlan, ActionRefused, PlanStep, ProgressEvent
from fleetview.domain.errors import FleetViewError
from fleetview.domain.model import Group, Image, Instance, Inventory, State
from fleetview.providers.aws.errors import explain, is_unsupported

if TYPE_CHECKING:
    from fleetview.providers.aws.provider import AwsProvider

# Instance refresh states during which a group must not be touched by another action.
REFRESH_ACTIVE = {"Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking"}
REFRESH_FAILED = {"Failed", "Cancelled", "RollbackSuccessful", "RollbackFailed"}
GONE_STATES = {"terminated", "shutting-down", "stopping", "stopped"}


class StepFailed(FleetViewError):
    """A step that could not finish, and why."""


# -- refusals -------------------------------------------------------------------------------

def _guard_scope(provider: AwsProvider) -> None:
    if not provider.config.actions:
        raise ActionRefused(
            f"scope {provider.config.name!r} is read-only: set `actions = true` in its [[aws]] "
            "table of the config to allow replace and rollback")


# A group matched by `protect` selectors is not refused here: the operator confirms it by
# typing its name (fleetview.actions.runner), which every provider shares.
def _guard_group(provider: AwsProvider, group: Group) -> None:
    if group.updating:
        status = group.extra.get("instance_refresh") or "in progress"
        raise ActionRefused(f"group {group.name} has an instance refresh {status}: wait for it "
                            "to finish or cancel it (aws autoscaling cancel-instance-refresh) "
                            "first")


def _members(inventory: Inventory, group: Group) -> list[Instance]:
    """The group's live instances, in a stable order."""
    return sorted((i for i in inventory.instances
                   if i.group == group.name and i.region == group.region
                   and i.state not in (State.TERMINATED, State.STOPPING, State.STOPPED)),
                  key=lambda i: i.id)


# -- replace --------------------------------------------------------------------------------

def plan_replace(provider: AwsProvider, inventory: Inventory, instance_id: str) -> ActionPlan:
    _guard_scope(provider)
    inst = inventory.instance(instance_id)
    if inst is None:
        raise ActionRefused(f"instance {instance_id} is not in the last poll of scope "
                            f"{provider.config.name!r}; poll again and pick a listed instance")
    if inst.group is None:
        raise ActionRefused(
            f"{instance_id} is a standalone instance (not in an Auto Scaling group): nothing "
            "would launch its replacement, so FleetView will not terminate it")
    group = inventory.group(inst.group, inst.region)
    if group is None:
        raise ActionRefused(f"{instance_id} names group {inst.group}, which the last poll did "
                            f"not see in {inst.region}; poll again")
    _guard_group(provider, group)
    image = inventory.images.get(group.desired_image_id or "")
    if not group.desired_image_id:
        raise ActionRefused(f"group {group.name}'s launch template version names no AMI "
                            "FleetView can read; a replacement's image cannot be known")
    if image is not None and image.gone:
        raise ActionRefused(f"group {group.name} launches {group.desired_image_id} "
                            f"({group.desired_version}), which is deregistered: a replacement "
                            "would fail to launch; roll the group to an available version")
    size = group.target_size
    kept = f"{max(size - 1, 0)} of {size} instances stay in service until the replacement runs"
    return ActionPlan(
        kind="replace", provider="aws", scope=provider.config.name, region=inst.region,
        group=group.name, instances=(instance_id,), from_versions=(inst.version or "?",),
        to_version=group.desired_version, to_image_id=group.desired_image_id,
        steps=(
            PlanStep(f"terminate:{instance_id}",
                     f"Terminate {instance_id} in {group.name}, desired capacity kept at "
                     f"{size}", (instance_id,)),
            PlanStep(f"track:{instance_id}",
                     f"Wait until its replacement runs {group.desired_version} "
                     f"({group.desired_image_id})", (instance_id,)),
        ),
        mechanism="terminate-in-asg", batch_size=1,
        min_healthy_percent=math.floor(100 * max(size - 1, 0) / size) if size else 0,
        capacity_kept=kept,
        irreversible=(f"{instance_id} is terminated: its local and non-persistent disks "
                      "are lost",),
        params={"group": group.name, "instance_id": instance_id,
                "image_id": group.desired_image_id, "desired_capacity": size,
                "members": [i.id for i in _members(inventory, group)],
                "batches": [[instance_id]]},
    )


# -- rollback -------------------------------------------------------------------------------

def _image_for(provider: AwsProvider, inventory: Inventory, region: str, version: str,
               known_images: Mapping[str, Image] | None) -> Image:
    seen_here = {i.image_id for i in inventory.instances if i.region == region}
    seen_here |= {g.desired_image_id for g in inventory.groups if g.region == region}
    candidates: dict[str, Image] = {}
    for source in (known_images or {}, inventory.images):
        for image in source.values():
            if image.version == version:
                candidates[image.id] = image
    if not candidates:
        raise ActionRefused(f"no image of version {version} is known; FleetView knows "
                            "versions from polls and history only")

    def here(image: Image) -> bool:
        return image.id in seen_here or provider.image_region(image.id) == region

    local = [img for img in candidates.values() if here(img)] or [
        img for img in candidates.values() if provider.image_region(img.id) is None]
    if not local:
        raise ActionRefused(f"the images of version {version} ({', '.join(sorted(candidates))}) "
                            f"are in other regions; copy the AMI to {region} first")
    available = [img for img in local if not img.gone]
    if not available:
        ids = ", ".join(sorted(img.id for img in local))
        raise ActionRefused(f"version {version}'s AMI ({ids}) is deregistered in {region}; it "
                            "cannot launch again: pick another version")
    # The newest build of a version wins if it was built more than once.
    return max(available, key=lambda img: (img.created_at or datetime.min.replace(tzinfo=UTC),
                                           img.id))


def plan_rollback(provider: AwsProvider, inventory: Inventory, group_name: str, region: str,
                  version: str, known_images: Mapping[str, Image] | None,
                  min_healthy_percent: int = 90) -> ActionPlan:
    _guard_scope(provider)
    group = inventory.group(group_name, region)
    if group is None:
        raise ActionRefused(f"group {group_name} is not in the last poll of {region}; "
                            "poll again")
    _guard_group(provider, group)
    template = group.extra.get("launch_template_id")
    if not template:
        raise ActionRefused(f"group {group_name} uses a launch configuration, not a launch "
                            "template; FleetView rolls back through launch template versions "
                            "only: migrate the group to a launch template first")
    image = _image_for(provider, inventory, region, version, known_images)
    members = _members(inventory, group)
    stale = [i for i in members if i.image_id != image.id]
    if not stale and group.desired_image_id == image.id:
        raise ActionRefused(f"group {group_name} already runs and launches {version}; "
                            "nothing to roll back")
    min_healthy_percent = max(0, min(100, int(min_healthy_percent)))
    size = max(group.target_size, len(members), 1)
    batch_size = max(1, math.floor(size * (100 - min_healthy_percent) / 100))
    batches = [[i.id for i in stale[n:n + batch_size]] for n in range(0, len(stale), batch_size)]
    source = group.extra.get("launch_template_version")
    existing = provider.template_versions_with_image(region, template, image.id)
    if existing:
        first = PlanStep("template", f"Use launch template {template} version {existing[-1]}, "
                         f"which launches {image.id} ({version})")
    else:
        first = PlanStep("template", f"Create a version of launch template {template} from "
                         f"version {source} with AMI {image.id} ({version}), unless one exists")
    steps = [first, PlanStep("point", f"Point group {group_name} at that version")]
    refresh = provider.refresh_supported.get(region, True)
    if refresh:
        mechanism = "instance-refresh"
        steps += [
            PlanStep("refresh:start", f"Start an instance refresh (MinHealthyPercentage "
                     f"{min_healthy_percent}, SkipMatching)", tuple(i.id for i in stale)),
            PlanStep("refresh:track", "Wait until the instance refresh succeeds"),
        ]
        notes = ("AWS replaces the instances and keeps the healthy percentage; where the "
                 "endpoint has no instance refresh (moto), FleetView replaces them itself in "
                 f"batches of {batch_size} instead",)
    else:
        mechanism = "rolling-replacement"
        steps += _batch_steps_of(batches, version)
        notes = ("this endpoint has no instance refresh: FleetView replaces the instances "
                 "itself, a batch at a time",)
    pointer = str(group.extra.get("launch_template_pointer") or "")
    if pointer.startswith("$"):
        notes += (f"the group follows {pointer} of its template today; afterwards it names a "
                  "version number, so the next deploy must point it at its new version",)
    from_versions = sorted({i.version or "?" for i in stale} | (
        {group.desired_version} if group.desired_version and group.desired_image_id != image.id
        else set()))
    return ActionPlan(
        kind="rollback", provider="aws", scope=provider.config.name, region=region,
        group=group_name, instances=tuple(i.id for i in stale),
        from_versions=tuple(from_versions), to_version=version, to_image_id=image.id,
        steps=tuple(steps), mechanism=mechanism, batch_size=batch_size,
        min_healthy_percent=min_healthy_percent,
        capacity_kept=f"at least {size - batch_size} of {size} instances in service "
                      f"({min_healthy_percent}% healthy)",
        irreversible=tuple(f"{i.id} is terminated: its local disks are lost" for i in stale),
        notes=notes,
        params={"group": group_name, "launch_template_id": template,
                "source_version": source, "image_id": image.id, "version": version,
                "mixed_instances_policy": group.extra.get("mixed_instances_policy"),
                "desired_capacity": group.target_size,
                "members": [i.id for i in members], "batches": batches},
    )


# -- execution ------------------------------------------------------------------------------

def _event(step: str | None, status: str, message: str = "", done: int = 0,
           total: int = 0) -> ProgressEvent:
    return ProgressEvent(step, status, message, done, total, datetime.now(UTC))  # type: ignore[arg-type]


def execute(provider: AwsProvider, plan: ActionPlan, done: Iterable[str] = ()
            ) -> Iterator[ProgressEvent]:
    _guard_scope(provider)
    done = set(done)
    if not done:
        status = _refresh_now(provider, plan)
        if status in REFRESH_ACTIVE:
            raise ActionRefused(f"group {plan.group} has an instance refresh {status}: wait "
                                "for it to finish or cancel it first")
    queue = list(plan.steps)
    while queue:
        step = queue.pop(0)
        if step.key in done:
            continue
        yield _event(step.key, "started", step.description)
        try:
            outcome = yield from _run(provider, plan, step)
        except Exception as exc:
            message = str(exc) if isinstance(exc, FleetViewError) else explain(
                exc, provider.config.profile, f"{plan.region} {step.key}")
            yield _event(step.key, "failed", message)
            yield _event(None, "failed", _what_is_left(provider, plan, message))
            return
        if outcome == "unsupported":
            # The endpoint has no instance refresh (moto): the plan's batches do it instead.
            queue = [s for s in queue if not s.key.startswith("refresh:")]
            queue += [s for s in _batch_steps(plan) if s.key not in done]
            yield _event(step.key, "done", "this endpoint has no instance refresh; replacing "
                         "the instances in batches instead")
            continue
        yield _event(step.key, "done", step.description)
    yield _event(None, "finished", f"{plan.kind} of {plan.group or plan.instances[0]} done")


def _run(provider: AwsProvider, plan: ActionPlan, step: PlanStep
         ) -> Iterator[ProgressEvent]:
    """Run one step, yielding its progress; returns "unsupported" when the endpoint lacks
    instance refresh."""
    if step.key.startswith("terminate:"):
        _terminate(provider, plan, list(step.instances))
        return None
    if step.key.startswith(("track:", "batch:")):
        yield from _step_batch(provider, plan, step)
        return None
    runners = {"template": _step_template, "point": _step_point,
               "refresh:start": _step_refresh_start, "refresh:track": _step_refresh_track}
    return runners[step.key](provider, plan)


def _batch_steps(plan: ActionPlan) -> list[PlanStep]:
    return _batch_steps_of(plan.params.get("batches") or [], plan.to_version)


def _batch_steps_of(batches, version) -> list[PlanStep]:
    return [PlanStep(f"batch:{n + 1}", f"Replace {', '.join(b)} and wait until their "
                     f"replacements run {version}", tuple(b))
            for n, b in enumerate(batches)]


def _refresh_now(provider: AwsProvider, plan: ActionPlan) -> str | None:
    if plan.group is None or provider.refresh_supported.get(plan.region) is False:
        return None
    try:
        return provider._refresh_status(plan.region, plan.group)
    except Exception as exc:
        raise ActionRefused("cannot tell whether group " f"{plan.group} has an instance refresh "
                            "running, so nothing was changed: " + explain(
                                exc, provider.config.profile, service="autoscaling")) from None


def _what_is_left(provider: AwsProvider, plan: ActionPlan, reason: str) -> str:
    if plan.kind == "replace":
        return f"replace of {plan.instances[0]} stopped: {reason}"
    try:
        behind = [i for i, (image, _) in _group_images(provider, plan)[0].items()
                  if image != plan.to_image_id]
    except Exception:
        behind = list(plan.instances)
    left = ", ".join(behind) if behind else "none"
    return (f"rollback of {plan.group} stopped: {reason}. The group stays pointed at "
            f"{plan.to_version} ({plan.to_image_id}) if that step was done; instances not yet "
            f"on {plan.to_version}: {left}")


def _find_version(provider: AwsProvider, plan: ActionPlan) -> int | None:
    ec2 = provider.client("ec2", plan.region)
    found = []
    for page in ec2.get_paginator("describe_launch_template_versions").paginate(
            LaunchTemplateId=plan.params["launch_template_id"]):
        for v in page.get("LaunchTemplateVersions", []):
            if (v.get("LaunchTemplateData") or {}).get("ImageId") == plan.to_image_id:
                found.append(int(v["VersionNumber"]))
    return max(found) if found else None


def _step_template(provider: AwsProvider, plan: ActionPlan) -> None:
    # Looked up again, not taken from the plan: a restart after a create that was not yet
    # journaled must reuse that version, not make another.
    if _find_version(provider, plan) is not None:
        return
    source = plan.params.get("source_version")
    provider.client("ec2", plan.region).create_launch_template_version(
        LaunchTemplateId=plan.params["launch_template_id"],
        SourceVersion=str(source) if source is not None else "$Default",
        VersionDescription=f"FleetView rollback to {plan.to_version}"[:255],
        LaunchTemplateData={"ImageId": plan.to_image_id},
    )


def _step_point(provider: AwsProvider, plan: ActionPlan) -> None:
    number = _find_version(provider, plan)
    if number is None:
        raise StepFailed(f"launch template {plan.params['launch_template_id']} has no version "
                         f"with {plan.to_image_id}; run the template step again")
    spec = {"LaunchTemplateId": plan.params["launch_template_id"], "Version": str(number)}
    policy = plan.params.get("mixed_instances_policy")
    if policy:
        policy = dict(policy)
        template = dict(policy.get("LaunchTemplate") or {})
        template["LaunchTemplateSpecification"] = spec
        policy["LaunchTemplate"] = template
        update = {"MixedInstancesPolicy": policy}
    else:
        update = {"LaunchTemplate": spec}
    provider.client("autoscaling", plan.region).update_auto_scaling_group(
        AutoScalingGroupName=plan.group, **update)


def _step_refresh_start(provider: AwsProvider, plan: ActionPlan) -> str | None:
    try:
        provider.client("autoscaling", plan.region).start_instance_refresh(
            AutoScalingGroupName=plan.group, Strategy="Rolling",
            Preferences={"MinHealthyPercentage": plan.min_healthy_percent,
                         "SkipMatching": True})
    except Exception as exc:
        if is_unsupported(exc):
            provider.refresh_supported[plan.region] = False
            return "unsupported"
        raise
    provider.refresh_supported[plan.region] = True
    return None


def _step_refresh_track(provider: AwsProvider, plan: ActionPlan) -> str | None:
    deadline = time.monotonic() + provider.track_timeout_s
    asg = provider.client("autoscaling", plan.region)
    while True:
        try:
            response = asg.describe_instance_refreshes(AutoScalingGroupName=plan.group,
                                                       MaxRecords=1)
        except Exception as exc:
            if is_unsupported(exc):
                return "unsupported"
            raise
        refreshes = response.get("InstanceRefreshes", [])
        status = refreshes[0].get("Status") if refreshes else None
        if status == "Successful":
            return None
        if status in REFRESH_FAILED or status is None:
            reason = refreshes[0].get("StatusReason", "") if refreshes else "none found"
            raise StepFailed(f"the instance refresh ended {status}: {reason}")
        if time.monotonic() > deadline:
            raise StepFailed(f"the instance refresh is still {status} after "
                             f"{provider.track_timeout_s:.0f} s; it goes on in AWS")
        provider.sleep(provider.poll_interval_s)


def _terminate(provider: AwsProvider, plan: ActionPlan, instance_ids: list[str]) -> None:
    asg = provider.client("autoscaling", plan.region)
    live, _ = _group_instances(provider, plan)
    for instance_id in instance_ids:
        if not live.get(instance_id, "Terminating").startswith(("Pending", "InService")):
            continue  # already gone: a step repeated after a restart must not fail
        asg.terminate_instance_in_auto_scaling_group(
            InstanceId=instance_id, ShouldDecrementDesiredCapacity=False)


def _group_instances(provider: AwsProvider, plan: ActionPlan) -> tuple[dict[str, str], int]:
    """The group's instances now -> lifecycle state, and its desired capacity now."""
    response = provider.client("autoscaling", plan.region).describe_auto_scaling_groups(
        AutoScalingGroupNames=[plan.group])
    groups = response.get("AutoScalingGroups", [])
    if not groups:
        raise StepFailed(f"group {plan.group} no longer exists in {plan.region}")
    instances = groups[0].get("Instances", [])
    return ({i["InstanceId"]: i.get("LifecycleState", "") for i in instances},
            int(groups[0].get("DesiredCapacity") or 0))


def _group_images(provider: AwsProvider, plan: ActionPlan
                  ) -> tuple[dict[str, tuple[str | None, str]], int]:
    """The group's live instances -> (AMI, EC2 state), read from EC2 (moto reports the
    template's default version on ASG instances, not the one used, so the AMI is the only
    truth), and the group's desired capacity."""
    live, desired = _group_instances(provider, plan)
    if not live:
        return {}, desired
    ec2 = provider.client("ec2", plan.region)
    out: dict[str, tuple[str | None, str]] = {}
    ids = sorted(live)
    for start in range(0, len(ids), 200):  # at most 200 values in one EC2 filter
        for page in ec2.get_paginator("describe_instances").paginate(
                Filters=[{"Name": "instance-id", "Values": ids[start:start + 200]}]):
            for reservation in page.get("Reservations", []):
                for raw in reservation.get("Instances", []):
                    state = (raw.get("State") or {}).get("Name", "")
                    if state not in GONE_STATES:
                        out[raw["InstanceId"]] = (raw.get("ImageId"), state)
    return out, desired


def _step_batch(provider: AwsProvider, plan: ActionPlan, step: PlanStep
                ) -> Iterator[ProgressEvent]:
    """Replace the step's instances, then wait until the group is whole again and every
    instance launched since the plan runs the target image."""
    batch = list(step.instances)
    if step.key.startswith("batch:"):
        _terminate(provider, plan, batch)
    members = set(plan.params.get("members") or [])
    replaced_so_far = _replaced_before(plan, step) + len(batch)
    deadline = time.monotonic() + provider.track_timeout_s
    while True:
        images, wanted = _group_images(provider, plan)
        newcomers = {i: img for i, (img, _) in images.items() if i not in members}
        wrong = {i: img for i, img in newcomers.items() if img != plan.to_image_id}
        if wrong:
            raise StepFailed(", ".join(f"{i} launched with {img}" for i, img in wrong.items())
                             + f", not {plan.to_image_id} ({plan.to_version}); check the "
                             "group's launch template")
        running = [i for i in newcomers if images[i][1] == "running"]
        still = [i for i in batch if i in images]
        if not still and len(running) >= replaced_so_far and len(images) >= wanted:
            yield _event(step.key, "progress", f"{len(running)} replacement(s) run "
                         f"{plan.to_version}", len(running), replaced_so_far)
            return
        if time.monotonic() > deadline:
            raise StepFailed(f"after {provider.track_timeout_s:.0f} s, {len(running)} of "
                             f"{replaced_so_far} replacement(s) run {plan.to_version}")
        yield _event(step.key, "progress", f"waiting: {len(running)} of {replaced_so_far} "
                     f"replacement(s) run {plan.to_version}", len(running), replaced_so_far)
        provider.sleep(provider.poll_interval_s)


def _replaced_before(plan: ActionPlan, step: PlanStep) -> int:
    if not step.key.startswith("batch:"):
        return 0
    n = int(step.key.split(":", 1)[1])
    return sum(len(b) for b in (plan.params.get("batches") or [])[:n - 1])
