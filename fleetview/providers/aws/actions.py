"""AWS's half of replace and rollback: plans once the shared refusals have passed, and the steps
(launch template versions, instance refresh, or FleetView's own batches where there is none)."""

from __future__ import annotations

import math
from collections.abc import Generator, Mapping
from datetime import UTC, datetime

from fleetview.domain.actions import ActionPlan, ActionRefused, PlanStep, ProgressEvent, StepResult
from fleetview.domain.errors import FleetViewError
from fleetview.domain.model import Group, Image, Instance, Inventory, State
from fleetview.domain.timing import TimedOut, Timing, waiting
from fleetview.providers.aws.clients import Clients
from fleetview.providers.aws.errors import explain, is_unsupported
from fleetview.providers.aws.inventory import Poller
from fleetview.providers.aws.shapes import REFRESH_ACTIVE, REFRESH_FAILED, STATE_MAP

Steps = Generator[ProgressEvent, None, StepResult | None]

NO_REFRESH = "this endpoint has no instance refresh; replacing the instances in batches instead"


class StepFailed(FleetViewError):
    """A step that could not finish, and why."""


def _progress(step: PlanStep, message: str, done: int = 0, total: int = 0) -> ProgressEvent:
    return ProgressEvent(step.key, "progress", message, done, total, datetime.now(UTC))


def batch_steps(batches: list[list[str]], version: str | None) -> list[PlanStep]:
    return [PlanStep(f"batch:{n + 1}", f"Replace {', '.join(b)} and wait until their "
                     f"replacements run {version}", tuple(b))
            for n, b in enumerate(batches)]


def _replaced_before(plan: ActionPlan, step: PlanStep) -> int:
    if not step.key.startswith("batch:"):
        return 0
    n = int(step.key.split(":", 1)[1])
    return sum(len(b) for b in (plan.params.get("batches") or [])[:n - 1])


class Actions:
    """Plans and runs replace (terminate in the group) and rollback (a launch template version,
    then an instance refresh or batches) for one scope.

    It reads what polls learned (template versions, where an AMI lives, whether a region has
    instance refresh) from the poller, and waits by `timing`.
    """

    def __init__(self, config, clients: Clients, poller: Poller, timing: Timing) -> None:
        self.config = config
        self.clients = clients
        self.poller = poller
        self.timing = timing

    # -- replace --------------------------------------------------------------------------

    def plan_replace(self, inventory: Inventory, inst: Instance, group: Group) -> ActionPlan:
        size = group.target_size
        kept = f"{max(size - 1, 0)} of {size} instances stay in service until the replacement runs"
        return ActionPlan(
            kind="replace", provider="aws", scope=self.config.name, region=inst.region,
            group=group.name, instances=(inst.id,), from_versions=(inst.version or "?",),
            to_version=group.desired_version, to_image_id=group.desired_image_id,
            steps=(
                PlanStep(f"terminate:{inst.id}",
                         f"Terminate {inst.id} in {group.name}, desired capacity kept at "
                         f"{size}", (inst.id,)),
                PlanStep(f"track:{inst.id}",
                         f"Wait until its replacement runs {group.desired_version} "
                         f"({group.desired_image_id})", (inst.id,)),
            ),
            mechanism="terminate-in-asg", batch_size=1,
            min_healthy_percent=math.floor(100 * max(size - 1, 0) / size) if size else 0,
            capacity_kept=kept,
            irreversible=(f"{inst.id} is terminated: its local and non-persistent disks "
                          "are lost",),
            params={"group": group.name, "instance_id": inst.id,
                    "image_id": group.desired_image_id, "desired_capacity": size,
                    "members": [i.id for i in inventory.members(group)],
                    "batches": [[inst.id]]},
        )

    # -- rollback -------------------------------------------------------------------------

    def _image_for(self, inventory: Inventory, region: str, version: str,
                   known_images: Mapping[str, Image]) -> Image:
        seen_here = {i.image_id for i in inventory.instances if i.region == region}
        seen_here |= {g.desired_image_id for g in inventory.groups if g.region == region}
        candidates: dict[str, Image] = {}
        for source in (known_images, inventory.images):
            for image in source.values():
                if image.version == version:
                    candidates[image.id] = image
        if not candidates:
            raise ActionRefused(f"no image of version {version} is known; FleetView knows "
                                "versions from polls and history only")
        image_region = self.poller.state.image_region

        def here(image: Image) -> bool:
            return image.id in seen_here or image_region(image.id) == region

        local = [img for img in candidates.values() if here(img)] or [
            img for img in candidates.values() if image_region(img.id) is None]
        if not local:
            raise ActionRefused(f"the images of version {version} "
                                f"({', '.join(sorted(candidates))}) are in other regions; copy "
                                f"the AMI to {region} first")
        available = [img for img in local if not img.gone]
        if not available:
            ids = ", ".join(sorted(img.id for img in local))
            raise ActionRefused(f"version {version}'s AMI ({ids}) is deregistered in {region}; "
                                "it cannot launch again: pick another version")
        # The newest build of a version wins if it was built more than once.
        return max(available, key=lambda img: (
            img.created_at or datetime.min.replace(tzinfo=UTC), img.id))

    def plan_rollback(self, inventory: Inventory, group: Group, version: str,
                      known_images: Mapping[str, Image], min_healthy_percent: int = 90
                      ) -> ActionPlan:
        region = group.region
        template = group.extra.get("launch_template_id")
        if not template:
            raise ActionRefused(f"group {group.name} uses a launch configuration, not a launch "
                                "template; FleetView rolls back through launch template "
                                "versions only: migrate the group to a launch template first")
        image = self._image_for(inventory, region, version, known_images)
        members = inventory.members(group)
        stale = [i for i in members if i.image_id != image.id]
        if not stale and group.desired_image_id == image.id:
            raise ActionRefused(f"group {group.name} already runs and launches {version}; "
                                "nothing to roll back")
        min_healthy_percent = max(0, min(100, int(min_healthy_percent)))
        size = max(group.target_size, len(members), 1)
        batch_size = max(1, math.floor(size * (100 - min_healthy_percent) / 100))
        batches = [[i.id for i in stale[n:n + batch_size]]
                   for n in range(0, len(stale), batch_size)]
        source = group.extra.get("launch_template_version")
        existing = self.poller.state.template_versions_with_image(region, str(template),
                                                                  image.id)
        if existing:
            first = PlanStep("template", f"Use launch template {template} version "
                             f"{existing[-1]}, which launches {image.id} ({version})")
        else:
            first = PlanStep("template", f"Create a version of launch template {template} from "
                             f"version {source} with AMI {image.id} ({version}), unless one "
                             "exists")
        steps = [first, PlanStep("point", f"Point group {group.name} at that version")]
        if self.poller.state.refresh_supported.get(region, True):
            mechanism = "instance-refresh"
            steps += [
                PlanStep("refresh:start", f"Start an instance refresh (MinHealthyPercentage "
                         f"{min_healthy_percent}, SkipMatching)", tuple(i.id for i in stale)),
                PlanStep("refresh:track", "Wait until the instance refresh succeeds"),
            ]
            notes: tuple[str, ...] = (
                "AWS replaces the instances and keeps the healthy percentage; where the "
                "endpoint has no instance refresh (moto), FleetView replaces them itself in "
                f"batches of {batch_size} instead",)
        else:
            mechanism = "rolling-replacement"
            steps += batch_steps(batches, version)
            notes = ("this endpoint has no instance refresh: FleetView replaces the instances "
                     "itself, a batch at a time",)
        pointer = str(group.extra.get("launch_template_pointer") or "")
        if pointer.startswith("$"):
            notes += (f"the group follows {pointer} of its template today; afterwards it names "
                      "a version number, so the next deploy must point it at its new version",)
        from_versions = sorted({i.version or "?" for i in stale} | (
            {group.desired_version} if group.desired_version and group.desired_image_id
            != image.id else set()))
        return ActionPlan(
            kind="rollback", provider="aws", scope=self.config.name, region=region,
            group=group.name, instances=tuple(i.id for i in stale),
            from_versions=tuple(from_versions), to_version=version, to_image_id=image.id,
            steps=tuple(steps), mechanism=mechanism, batch_size=batch_size,
            min_healthy_percent=min_healthy_percent,
            capacity_kept=f"at least {size - batch_size} of {size} instances in service "
                          f"({min_healthy_percent}% healthy)",
            irreversible=tuple(f"{i.id} is terminated: its local disks are lost" for i in stale),
            notes=notes,
            params={"group": group.name, "launch_template_id": template,
                    "source_version": source, "image_id": image.id, "version": version,
                    "mixed_instances_policy": group.extra.get("mixed_instances_policy"),
                    "desired_capacity": group.target_size,
                    "members": [i.id for i in members], "batches": batches},
        )

    # -- before the first step, and after a failed one ------------------------------------

    def refuse_active_refresh(self, plan: ActionPlan) -> None:
        """Refuse to start while the group has an instance refresh of its own under way."""
        if plan.group is None or self.poller.state.refresh_supported.get(plan.region) is False:
            return
        try:
            status = self.poller.refresh_status(plan.region, plan.group)
        except Exception as exc:
            raise ActionRefused(f"cannot tell whether group {plan.group} has an instance "
                                "refresh running, so nothing was changed: " + explain(
                                    exc, self.config.profile, service="autoscaling")) from None
        if status in REFRESH_ACTIVE:
            raise ActionRefused(f"group {plan.group} has an instance refresh {status}: wait "
                                "for it to finish or cancel it first")

    def what_is_left(self, plan: ActionPlan, reason: str) -> str:
        if plan.kind == "replace":
            return f"replace of {plan.instances[0]} stopped: {reason}"
        try:
            behind = [i for i, (image, _) in self._group_images(plan)[0].items()
                      if image != plan.to_image_id]
        except Exception:  # noqa: BLE001 - the plan's own list is the next best answer
            behind = list(plan.instances)
        left = ", ".join(behind) if behind else "none"
        return (f"rollback of {plan.group} stopped: {reason}. The group stays pointed at "
                f"{plan.to_version} ({plan.to_image_id}) if that step was done; instances not "
                f"yet on {plan.to_version}: {left}")

    # -- steps ----------------------------------------------------------------------------

    def run(self, plan: ActionPlan, step: PlanStep) -> Steps:
        """Run one step, yielding its progress; where the endpoint has no instance refresh,
        the refresh steps hand back the plan's batches instead."""
        kind = step.key.split(":", 1)[0]
        if kind == "terminate":
            self._terminate(plan, list(step.instances))
        elif kind in ("track", "batch"):
            yield from self._replace_batch(plan, step)
        elif step.key == "template":
            self._ensure_template_version(plan)
        elif step.key == "point":
            self._point_group(plan)
        elif step.key == "refresh:start":
            return self._start_refresh(plan)
        elif step.key == "refresh:track":
            return (yield from self._track_refresh(plan, step))
        else:
            raise StepFailed(f"step {step.key} is unknown to this version of FleetView; "
                             "upgrade it, or abandon the action")
        return None

    def _batches_instead(self, plan: ActionPlan) -> StepResult:
        batches = batch_steps(plan.params.get("batches") or [], plan.to_version)
        return StepResult(NO_REFRESH, instead=tuple(batches), drop_prefix="refresh:")

    def _find_version(self, plan: ActionPlan) -> int | None:
        ec2 = self.clients.client("ec2", plan.region)
        found = []
        for page in ec2.get_paginator("describe_launch_template_versions").paginate(
                LaunchTemplateId=plan.params["launch_template_id"]):
            for v in page.get("LaunchTemplateVersions", []):
                if (v.get("LaunchTemplateData") or {}).get("ImageId") == plan.to_image_id:
                    found.append(int(v["VersionNumber"]))
        return max(found) if found else None

    def _ensure_template_version(self, plan: ActionPlan) -> None:
        # Looked up again, not taken from the plan: a restart after a create that was not yet
        # journaled must reuse that version, not make another.
        if self._find_version(plan) is not None:
            return
        source = plan.params.get("source_version")
        self.clients.client("ec2", plan.region).create_launch_template_version(
            LaunchTemplateId=plan.params["launch_template_id"],
            SourceVersion=str(source) if source is not None else "$Default",
            VersionDescription=f"FleetView rollback to {plan.to_version}"[:255],
            LaunchTemplateData={"ImageId": plan.to_image_id},
        )

    def _point_group(self, plan: ActionPlan) -> None:
        number = self._find_version(plan)
        if number is None:
            raise StepFailed(f"launch template {plan.params['launch_template_id']} has no "
                             f"version with {plan.to_image_id}; run the template step again")
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
        self.clients.client("autoscaling", plan.region).update_auto_scaling_group(
            AutoScalingGroupName=plan.group, **update)

    def _start_refresh(self, plan: ActionPlan) -> StepResult | None:
        supported = self.poller.state.refresh_supported
        try:
            self.clients.client("autoscaling", plan.region).start_instance_refresh(
                AutoScalingGroupName=plan.group, Strategy="Rolling",
                Preferences={"MinHealthyPercentage": plan.min_healthy_percent,
                             "SkipMatching": True})
        except Exception as exc:
            if is_unsupported(exc):
                supported[plan.region] = False
                return self._batches_instead(plan)
            raise
        supported[plan.region] = True
        return None

    def _track_refresh(self, plan: ActionPlan, step: PlanStep) -> Steps:
        asg = self.clients.client("autoscaling", plan.region)
        status = None
        try:
            for _ in waiting(self.timing, "the instance refresh"):
                try:
                    response = asg.describe_instance_refreshes(AutoScalingGroupName=plan.group,
                                                               MaxRecords=1)
                except Exception as exc:
                    if is_unsupported(exc):
                        return self._batches_instead(plan)
                    raise
                refreshes = response.get("InstanceRefreshes", [])
                status = refreshes[0].get("Status") if refreshes else None
                if status == "Successful":
                    return None
                if status in REFRESH_FAILED or status is None:
                    reason = refreshes[0].get("StatusReason", "") if refreshes else "none found"
                    raise StepFailed(f"the instance refresh ended {status}: {reason}")
                percent = int(refreshes[0].get("PercentageComplete") or 0)
                yield _progress(step, f"instance refresh {status}, {percent}% done", percent, 100)
        except TimedOut:
            raise StepFailed(f"the instance refresh is still {status} after "
                             f"{self.timing.timeout_s:.0f} s; it goes on in AWS") from None
        raise AssertionError("unreachable")  # pragma: no cover - waiting() raises at the deadline

    def _terminate(self, plan: ActionPlan, instance_ids: list[str]) -> None:
        asg = self.clients.client("autoscaling", plan.region)
        live, _ = self._group_instances(plan)
        for instance_id in instance_ids:
            if not live.get(instance_id, "Terminating").startswith(("Pending", "InService")):
                continue  # already gone: a step repeated after a restart must not fail
            asg.terminate_instance_in_auto_scaling_group(
                InstanceId=instance_id, ShouldDecrementDesiredCapacity=False)

    def _group_instances(self, plan: ActionPlan) -> tuple[dict[str, str], int]:
        """The group's instances now -> lifecycle state, and its desired capacity now."""
        response = self.clients.client("autoscaling", plan.region).describe_auto_scaling_groups(
            AutoScalingGroupNames=[plan.group])
        groups = response.get("AutoScalingGroups", [])
        if not groups:
            raise StepFailed(f"group {plan.group} no longer exists in {plan.region}")
        instances = groups[0].get("Instances", [])
        return ({i["InstanceId"]: i.get("LifecycleState", "") for i in instances},
                int(groups[0].get("DesiredCapacity") or 0))

    def _group_images(self, plan: ActionPlan) -> tuple[dict[str, tuple[str | None, str]], int]:
        """The group's live instances -> (AMI, EC2 state), read from EC2 (moto reports the
        template's default version on ASG instances, not the one used, so the AMI is the only
        truth), and the group's desired capacity."""
        live, desired = self._group_instances(plan)
        if not live:
            return {}, desired
        ec2 = self.clients.client("ec2", plan.region)
        out: dict[str, tuple[str | None, str]] = {}
        ids = sorted(live)
        for start in range(0, len(ids), 200):  # at most 200 values in one EC2 filter
            for page in ec2.get_paginator("describe_instances").paginate(
                    Filters=[{"Name": "instance-id", "Values": ids[start:start + 200]}]):
                for reservation in page.get("Reservations", []):
                    for raw in reservation.get("Instances", []):
                        state = (raw.get("State") or {}).get("Name", "")
                        if STATE_MAP.get(state, State.UNKNOWN).live:
                            out[raw["InstanceId"]] = (raw.get("ImageId"), state)
        return out, desired

    def _replace_batch(self, plan: ActionPlan, step: PlanStep
                       ) -> Generator[ProgressEvent, None, None]:
        """Replace the step's instances, then wait until the group is whole again and every
        instance launched since the plan runs the target image."""
        batch = list(step.instances)
        if step.key.startswith("batch:"):
            self._terminate(plan, batch)
        members = set(plan.params.get("members") or [])
        replaced_so_far = _replaced_before(plan, step) + len(batch)
        running: list[str] = []
        try:
            for _ in waiting(self.timing, "the replacements"):
                images, wanted = self._group_images(plan)
                newcomers = {i: img for i, (img, _) in images.items() if i not in members}
                wrong = {i: img for i, img in newcomers.items() if img != plan.to_image_id}
                if wrong:
                    raise StepFailed(", ".join(f"{i} launched with {img}"
                                               for i, img in wrong.items())
                                     + f", not {plan.to_image_id} ({plan.to_version}); check "
                                     "the group's launch template")
                running = [i for i in newcomers if images[i][1] == "running"]
                still = [i for i in batch if i in images]
                if not still and len(running) >= replaced_so_far and len(images) >= wanted:
                    yield _progress(step, f"{len(running)} replacement(s) run "
                                    f"{plan.to_version}", len(running), replaced_so_far)
                    return
                yield _progress(step, f"waiting: {len(running)} of {replaced_so_far} "
                                f"replacement(s) run {plan.to_version}", len(running),
                                replaced_so_far)
        except TimedOut:
            raise StepFailed(f"after {self.timing.timeout_s:.0f} s, {len(running)} of "
                             f"{replaced_so_far} replacement(s) run {plan.to_version}") from None
