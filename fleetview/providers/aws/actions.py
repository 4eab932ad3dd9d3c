"""AWS's half of replace and rollback: plans once the shared refusals have passed, and the steps
(launch template versions, instance refresh, or FleetView's own batches where there is none;
a refresh under way rolled back by AWS or cancelled first), and stopping them."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from fleetview.domain.actions import ActionPlan, ActionRefused, PlanStep, ProgressEvent, StepResult
from fleetview.domain.errors import FleetViewError
from fleetview.domain.model import Group, Image, Instance, Inventory, State
from fleetview.domain.timing import TimedOut, Timing, waiting
from fleetview.providers.aws.clients import Clients
from fleetview.providers.aws.errors import error_code, explain, is_unsupported
from fleetview.providers.aws.inventory import Poller
from fleetview.providers.aws.shapes import (
    REFRESH_ACTIVE,
    REFRESH_CANCELLABLE,
    REFRESH_FAILED,
    REFRESH_REVERSIBLE,
    STATE_MAP,
    template_spec,
)

Steps = Generator[ProgressEvent, None, StepResult | None]

NO_REFRESH = "this endpoint has no instance refresh; replacing the instances in batches instead"
# FleetView's refreshes wait for instances in Standby or protected from scale in (AWS fails the
# refresh after an hour of waiting): Ignore would leave them on the old version unsaid, and
# Terminate / Refresh would override what an operator set on purpose. The plan warns instead.
WAIT_FOR = {"ScaleInProtectedInstances": "Wait", "StandbyInstances": "Wait"}


class StepFailed(FleetViewError):
    """A step that could not finish, and why."""


def _progress(step: PlanStep, message: str, done: int = 0, total: int = 0) -> ProgressEvent:
    return ProgressEvent(step.key, "progress", message, done, total, datetime.now(UTC))


def batch_steps(batches: list[list[str]], version: str | None) -> list[PlanStep]:
    return [PlanStep(f"batch:{n + 1}", f"Replace {', '.join(b)} and wait until their "
                     f"replacements run {version}", tuple(b))
            for n, b in enumerate(batches)]


def point_step(group: str) -> PlanStep:
    return PlanStep("point", f"Point group {group} at that version")


def refresh_steps(min_healthy_percent: int, instances: tuple[str, ...]) -> list[PlanStep]:
    return [
        PlanStep("refresh:start", "Start an instance refresh to that version "
                 f"(DesiredConfiguration; MinHealthyPercentage {min_healthy_percent}, "
                 "SkipMatching, waiting for instances in Standby or protected from scale in); "
                 "the group takes the version once the refresh succeeds", instances),
        PlanStep("refresh:track", "Wait until the instance refresh succeeds"),
    ]


def cancel_step(refresh_id: str | None, on_rollout: int, rollout: str) -> PlanStep:
    return PlanStep("refresh:cancel", f"Stop the update under way: cancel instance refresh "
                    f"{refresh_id} (CancelInstanceRefresh) and wait until it is Cancelled; the "
                    f"{on_rollout} instance{'s' if on_rollout != 1 else ''} already on {rollout} "
                    "stay until the rollback replaces them")


def waits(group: Group, replaced: list[Instance], refreshes: bool) -> list[str]:
    """Warnings for instances that would hold up the rollback: in Standby (named), or
    protected from scale in."""
    ids = {i.id for i in replaced}
    standby = [i for i in group.extra.get("standby") or () if i in ids]
    protected = [i for i in group.extra.get("scale_in_protected") or () if i in ids]
    notes = []
    if standby and refreshes:
        notes.append(f"{_count(standby)} in Standby ({', '.join(standby)}) would make the "
                     "refresh wait until back in service (StandbyInstances Wait; AWS fails the "
                     "refresh after an hour): put them back in service or detach them first")
    elif standby:
        notes.append(f"{_count(standby)} in Standby ({', '.join(standby)}): FleetView's batches "
                     "do not terminate them, and the batch holding them waits until its "
                     "deadline: put them back in service or detach them first")
    if protected and refreshes:
        notes.append(f"{_count(protected)} protected from scale in ({', '.join(protected)}) "
                     "would make the refresh wait until the protection is removed "
                     "(ScaleInProtectedInstances Wait; AWS fails the refresh after an hour)")
    return notes


def enable_step(image_id: str, version: str | None) -> PlanStep:
    return PlanStep(f"image:enable:{image_id}", f"Re-enable AMI {image_id} ({version}) "
                    "(EnableImage): it is disabled, and nothing boots from a disabled AMI")


def enable_note(image_id: str, version: str | None) -> str:
    return (f"AMI {image_id} ({version}) is disabled, not deregistered: it must be re-enabled "
            "(EnableImage) before an instance can boot from it; the plan does that first")


def warm_pool_note(inventory: Inventory, group: Group, image_id: str | None,
                   refreshes: bool) -> str | None:
    """What happens to the group's warm pool instances that run another AMI than `image_id`."""
    pool = group.extra.get("warm_pool")
    if not pool:
        return None
    behind = sorted(i.id for i in inventory.instances if i.warm and i.group == group.name
                    and i.region == group.region and i.image_id != image_id)
    if not behind:
        return None
    ids = ", ".join(behind)
    if refreshes:
        return (f"{_count(behind)} of the warm pool run another version ({ids}): the instance "
                "refresh replaces the warm pool too, after the group's instances")
    return (f"{_count(behind)} of the warm pool run another version ({ids}): the group draws "
            "replacements from its warm pool first, so FleetView's batches would bring these "
            "in on their old version (and fail their check); empty the pool first "
            "(DeleteWarmPool, then PutWarmPool once the group runs the new version)")


def warm_replacement_note(inventory: Inventory, group: Group) -> str | None:
    """What a replace must say of a warm pool: the replacement comes from it."""
    # Warm instances wait stopped or running; stopping or terminated ones are leaving.
    warm = sorted((i for i in inventory.instances if i.warm and i.group == group.name
                   and i.region == group.region
                   and i.state not in (State.STOPPING, State.TERMINATED)),
                  key=lambda i: i.id)
    if not warm:
        return None
    behind = [i.id for i in warm if i.image_id != group.desired_image_id]
    head = (f"group {group.name} has a warm pool ({_count([i.id for i in warm])}): it takes "
            "the replacement from the pool, not from a fresh launch")
    if not behind:
        return head
    return (f"{head}; {_count(behind)} of the pool run another version than "
            f"{group.desired_version} ({', '.join(behind)}), so the replacement may come up "
            "on it: empty the pool first (DeleteWarmPool) to launch fresh")


def sharers(inventory: Inventory, group: Group, templates: set[str]) -> list[str]:
    """Warnings for other groups that follow $Latest or $Default of a template a rollback
    adds a version to."""
    out = []
    for other in inventory.groups:
        if other.region != group.region or other.name == group.name:
            continue
        template = other.extra.get("launch_template_id")
        pointer = str(other.extra.get("launch_template_pointer") or "")
        if template not in templates or not pointer.startswith("$"):
            continue
        if pointer == "$Latest":
            out.append(f"group {other.name} follows $Latest of the same launch template "
                       f"{template}: the version this rollback creates becomes its $Latest, "
                       "so it launches that AMI from its next launch on")
        else:
            out.append(f"group {other.name} follows $Default of the same launch template "
                       f"{template}: FleetView leaves the default version as it is, so it "
                       "keeps launching what it launches now")
    return out


def _count(ids: list[str]) -> str:
    return f"{len(ids)} instance{'s' if len(ids) != 1 else ''}"


def _label(inventory: Inventory, image_id: str | None) -> str | None:
    """An AMI's version, or its id where it has none."""
    image = inventory.images.get(image_id) if image_id else None
    return (image.version if image is not None and image.version else image_id) or None


def _replaced_before(plan: ActionPlan, step: PlanStep) -> int:
    if not step.key.startswith("batch:"):
        return 0
    n = int(step.key.split(":", 1)[1])
    return sum(len(b) for b in (plan.params.get("batches") or [])[:n - 1])


@dataclass(frozen=True)
class _Stop:
    """How a rollback stops the refresh under way: "rollback" (RollbackInstanceRefresh) or
    "cancel" (CancelInstanceRefresh, then a refresh of FleetView's own)."""

    via: str
    steps: tuple[PlanStep, ...]
    note: str
    irreversible: tuple[str, ...]
    version: str | None  # the version the refresh rolls out, where known
    params: dict


class Actions:
    """Plans and runs replace (terminate in the group) and rollback (a launch template version,
    then an instance refresh or batches) for one scope.

    It reads what polls learned (template versions, where an AMI lives, whether a region has
    instance refresh) from the poller, and waits by `timing`. `inventory` is a labelled poll,
    read to say where a stopped action left its group.
    """

    def __init__(self, config, clients: Clients, poller: Poller, timing: Timing,
                 inventory: Callable[[], Inventory] | None = None) -> None:
        self.config = config
        self.clients = clients
        self.poller = poller
        self.timing = timing
        self.inventory = inventory or poller.poll

    # -- replace --------------------------------------------------------------------------

    def plan_replace(self, inventory: Inventory, inst: Instance, group: Group) -> ActionPlan:
        if inst.standby:
            raise ActionRefused(f"{inst.id} is in Standby in group {group.name}: it serves "
                                "nothing, and the group launches no replacement for it; put "
                                "it back in service (ExitStandby) or detach it first")
        if inst.warm:
            raise ActionRefused(f"{inst.id} waits in the warm pool of group {group.name}, not "
                                "in the group: the group would not replace it")
        disabled = bool(group.desired_image_id) and self.poller.state.image_disabled(
            inst.region, group.desired_image_id)
        size = group.target_size
        kept = f"{max(size - 1, 0)} of {size} instances stay in service until the replacement runs"
        return ActionPlan(
            kind="replace", provider="aws", scope=self.config.name, region=inst.region,
            group=group.name, instances=(inst.id,), from_versions=(inst.version or "?",),
            to_version=group.desired_version, to_image_id=group.desired_image_id,
            steps=(*((enable_step(group.desired_image_id, group.desired_version),)
                     if disabled else ()),
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
            notes=tuple(n for n in (
                enable_note(group.desired_image_id, group.desired_version) if disabled
                else None,
                warm_replacement_note(inventory, group)) if n),
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
        """Roll `group` back to `version`: an instance refresh to a launch template version
        with its AMI (or FleetView's batches where the endpoint has no instance refresh). A
        refresh under way is stopped first: rolled back by AWS where AWS can, else cancelled."""
        region = group.region
        template = group.extra.get("launch_template_id")
        if not template:
            raise ActionRefused(f"group {group.name} uses a launch configuration, not a launch "
                                "template; FleetView rolls back through launch template "
                                "versions only: migrate the group to a launch template first")
        overrides = group.extra.get("overrides") or ()
        if overrides:
            own = "; ".join(
                f"{o.get('instance_type') or '?'} from "
                + (f"launch template {o['id']}" if o.get("id") else f"AMI {o.get('image')}")
                for o in overrides)
            raise ActionRefused(
                f"group {group.name}'s mixed instances policy has overrides that launch "
                f"something of their own ({own}): a rollback must change every template and "
                "AMI the group launches (an override often names its own AMI for another "
                "architecture, so one AMI cannot serve them all), and FleetView changes only "
                "the group's own launch template, so it does not roll back this group; roll "
                "those overrides back where they are defined, or remove them")
        image = self._image_for(inventory, region, version, known_images)
        members = inventory.members(group)
        stale = [i for i in members if i.image_id != image.id]
        under_way = self._refresh_under_way(group)
        if under_way is None and not stale and group.desired_image_id == image.id:
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
        refreshes = under_way is not None or self.poller.state.refresh_supported.get(region,
                                                                                       True)
        from_versions = {i.version or "?" for i in stale}
        if group.desired_version and group.desired_image_id != image.id:
            from_versions.add(group.desired_version)
        steps: list[PlanStep] = []
        notes: list[str] = []
        irreversible: list[str] = []
        params: dict[str, object] = {}
        stop = None
        if self.poller.state.image_disabled(region, image.id):
            steps.append(enable_step(image.id, version))
            notes.append(enable_note(image.id, version))
        if under_way is not None:
            stop = self._stop_first(inventory, group, image, version, members, under_way)
            steps += stop.steps
            notes.append(stop.note)
            irreversible += stop.irreversible
            params.update(stop.params)
            if stop.version and stop.version != version:
                from_versions.add(stop.version)
        if stop is None or stop.via == "cancel":
            if refreshes:
                steps += [first, *refresh_steps(min_healthy_percent, tuple(i.id for i in stale))]
                notes.append(
                    "AWS replaces the instances and keeps the healthy percentage; the group "
                    "takes the new launch template version only once the refresh succeeds (a "
                    "cancelled or failed refresh leaves it on its current one). Where the "
                    "endpoint has no instance refresh (plain moto), FleetView points the group "
                    f"at the version and replaces the instances itself in batches of "
                    f"{batch_size} instead")
            else:
                steps += [first, point_step(group.name), *batch_steps(batches, version)]
                notes.append("this endpoint has no instance refresh: FleetView replaces the "
                             "instances itself, a batch at a time")
            notes += waits(group, stale, refreshes)
        pointer = str(group.extra.get("launch_template_pointer") or "")
        if pointer.startswith("$") and (stop is None or stop.via == "cancel"):
            notes.append(f"the group follows {pointer} of its template today; afterwards it "
                         "names a version number, so the next deploy must point it at its new "
                         "version")
        parameter = group.extra.get("image_parameter")
        if parameter and (stop is None or stop.via == "cancel"):
            notes.append(f"the group's launch template takes its image from SSM parameter "
                         f"{parameter}; the new template version pins AMI {image.id} instead, "
                         "replacing the parameter reference: changes to the parameter no "
                         "longer reach this group until a template version names it again")
        if stop is None or stop.via == "cancel":
            if not existing:
                notes += sharers(inventory, group, {str(template)})
            warm = warm_pool_note(inventory, group, image.id, refreshes)
            if warm:
                notes.append(warm)
        irreversible += [f"{i.id} is terminated: its local disks are lost" for i in stale]
        return ActionPlan(
            kind="rollback", provider="aws", scope=self.config.name, region=region,
            group=group.name, instances=tuple(i.id for i in stale),
            from_versions=tuple(sorted(from_versions)), to_version=version,
            to_image_id=image.id, steps=tuple(steps),
            mechanism="instance-refresh" if refreshes else "rolling-replacement",
            batch_size=batch_size, min_healthy_percent=min_healthy_percent,
            capacity_kept=f"at least {size - batch_size} of {size} instances in service "
                          f"({min_healthy_percent}% healthy)",
            irreversible=tuple(irreversible), notes=tuple(notes),
            params={"group": group.name, "launch_template_id": template,
                    "source_version": source, "image_id": image.id, "version": version,
                    "mixed_instances_policy": group.extra.get("mixed_instances_policy"),
                    "desired_capacity": group.target_size,
                    "members": [i.id for i in members], "batches": batches, **params},
        )

    def _refresh_under_way(self, group: Group) -> dict | None:
        """The group's instance refresh under way (`Poller.refresh_detail`), or None."""
        if group.updating:
            return dict(group.extra.get("instance_refresh_detail")
                        or {"status": group.extra.get("instance_refresh")})
        if self.poller.state.refresh_supported.get(group.region) is not True:
            return None
        # The poll asks about refreshes only where it sees drift, and a refresh with a
        # DesiredConfiguration shows none until its first batch: ask once more (a read).
        try:
            latest = self.poller.latest_refresh(group.region, group.name)
        except Exception:  # noqa: BLE001 - the check before the first step asks again
            return None
        if latest is None or latest.get("Status") not in REFRESH_ACTIVE:
            return None
        spec = {"id": group.extra.get("launch_template_id"),
                "name": group.extra.get("launch_template_name")}
        return self.poller.refresh_detail(group.region, latest, spec)

    def _stop_first(self, inventory: Inventory, group: Group, image: Image, version: str,
                    members: list[Instance], refresh: dict) -> _Stop:
        """How the refresh under way stops before the rollback, in the plan's words."""
        status = refresh.get("status") or "in progress"
        refresh_id = refresh.get("id")
        desired = bool(refresh.get("desired"))
        # Without a DesiredConfiguration, the deploy pointed the group at what it rolls out.
        rollout_image = refresh.get("desired_image") if desired else group.desired_image_id
        if rollout_image == image.id:
            rollout_image = None
        label = _label(inventory, rollout_image) if rollout_image else None
        rollout = label or "its new configuration"
        if rollout_image:
            on_new = [i for i in members if i.image_id == rollout_image]
        else:
            on_new = [i for i in members if i.image_id not in (image.id, group.desired_image_id)]
        starting = sum(1 for i in on_new if i.state != State.RUNNING or i.healthy is False)
        others = [i for i in members if i.image_id != image.id and i not in on_new]
        why_not = self._why_not_aws_rollback(inventory, group, image, version, status, desired,
                                             others)
        done = f" ({refresh['percent']}% done)" if refresh.get("percent") is not None else ""
        n = len(on_new)
        head = (f"stops the update under way, then rolls back: group {group.name} has an "
                f"instance refresh {status} to {rollout}{done}; {n} of its {len(members)} "
                f"instances {'are' if n != 1 else 'is'} already on {rollout}"
                + (f" ({starting} still starting)" if starting else ""))
        ids = tuple(i.id for i in on_new)
        if why_not is None:
            via = "rollback"
            note = (f"{head}: AWS rolls the refresh back (RollbackInstanceRefresh) and replaces "
                    f"them with {version}, which the group launched before the refresh and "
                    "launches still")
            steps: tuple[PlanStep, ...] = (
                PlanStep("refresh:rollback", f"Stop the update under way: roll back instance "
                         f"refresh {refresh_id} (RollbackInstanceRefresh); AWS replaces the "
                         f"instances it launched with {version} (launch template "
                         f"{group.extra.get('launch_template_id')} version "
                         f"{group.extra.get('launch_template_pointer')}, which the group keeps)",
                         ids),
                PlanStep("refresh:rollback-track", "Wait until the rollback is "
                         "RollbackSuccessful"),
            )
        else:
            via = "cancel"
            note = (f"{head}: FleetView cancels the refresh (CancelInstanceRefresh) and waits "
                    f"until it is cancelled, then an instance refresh replaces them with "
                    f"{version}. AWS's own rollback cannot be used: {why_not}")
            steps = (cancel_step(refresh_id, n, rollout),)
        return _Stop(
            via=via, steps=steps, note=note, version=label,
            irreversible=(f"the {n} instance{'s' if n != 1 else ''} already on {rollout} "
                          f"{'are' if n != 1 else 'is'} replaced by the rollback",) if n else (),
            params={"in_flight": True, "refresh_id": refresh_id, "stop_with": via,
                    "rollout_image": rollout_image, "on_rollout": n})

    def _why_not_aws_rollback(self, inventory: Inventory, group: Group, image: Image,
                              version: str, status: str, desired: bool,
                              others: list[Instance]) -> str | None:
        """Why RollbackInstanceRefresh cannot take this group to `version`, or None."""
        pointer = str(group.extra.get("launch_template_pointer") or "")
        if status not in REFRESH_REVERSIBLE | {"RollbackInProgress"}:
            return f"the refresh is {status}"
        if not desired:
            return ("the refresh was started without a desired configuration (the group was "
                    "pointed at the new version first)")
        if not pointer.isdigit():
            return (f"the group names launch template version {pointer or '?'}; AWS rolls "
                    "back only to a version number")
        # What the group names itself, not what the refresh deploys: AWS goes back to that.
        own = group.extra.get("group_image_id", group.desired_image_id)
        if own != image.id:
            before = _label(inventory, own) or "an AMI FleetView cannot read"
            return (f"the configuration the group had before the refresh launches {before}, "
                    f"not {version}")
        if others:
            counts = Counter(_label(inventory, i.image_id) or "?" for i in others)
            return (f"{len(others)} instance{'s' if len(others) != 1 else ''} run"
                    f"{'s' if len(others) == 1 else ''} "
                    f"{', '.join(sorted(counts))}, which AWS's rollback would not replace")
        return None

    # -- before the first step, and after a failed one ------------------------------------

    def refuse_active_refresh(self, plan: ActionPlan) -> None:
        """Refuse to start while the group has an instance refresh the plan does not stop."""
        if plan.group is None or self.poller.state.refresh_supported.get(plan.region) is False:
            return
        try:
            latest = self.poller.latest_refresh(plan.region, plan.group)
        except Exception as exc:
            raise ActionRefused(f"cannot tell whether group {plan.group} has an instance "
                                "refresh running, so nothing was changed: " + explain(
                                    exc, self.config.profile, service="autoscaling")) from None
        status = latest.get("Status") if latest else None
        if status not in REFRESH_ACTIVE:
            return
        planned = plan.params.get("refresh_id")
        if plan.params.get("in_flight") and planned in (None, latest.get("InstanceRefreshId")):
            return  # the plan stops this one first
        if plan.kind == "rollback":
            raise ActionRefused(f"group {plan.group} has an instance refresh {status} that the "
                                "plan did not see, so nothing was changed: plan the rollback "
                                "again (it then stops that refresh first)")
        raise ActionRefused(f"group {plan.group} has an instance refresh {status}: wait "
                            "for it to finish or cancel it first")

    def what_is_left(self, plan: ActionPlan, reason: str) -> str:
        if plan.kind == "replace":
            return f"replace of {plan.instances[0]} stopped: {reason}"
        try:
            raw = self._read_group(plan)
            behind = [i for i, (image, _) in self._group_images(plan, raw)[0].items()
                      if image != plan.to_image_id]
            launches = self._launches(plan, raw)
        except Exception:  # noqa: BLE001 - the plan's own list is the next best answer
            behind, launches = list(plan.instances), None
        left = ", ".join(behind) if behind else "none"
        if launches is None:
            now = "What the group launches now could not be read"
        elif launches == plan.to_image_id:
            now = f"The group launches {plan.to_version} ({plan.to_image_id})"
        else:
            now = f"The group still launches {launches}, not {plan.to_version}"
        return (f"rollback of {plan.group} stopped: {reason}. {now}; instances not yet on "
                f"{plan.to_version}: {left}")

    # -- stop -----------------------------------------------------------------------------

    def stop(self, plan: ActionPlan, done: frozenset[str]) -> Generator[ProgressEvent, None, str]:
        """Cancel the instance refresh FleetView started for the plan, or the one the plan
        meant to stop (waiting until it is cancelled), and say where the group is left.
        FleetView's own batches stop at their boundary: nothing runs in the cloud for them."""
        if plan.kind == "replace":
            victim = plan.instances[0]
            if f"terminate:{victim}" in done:
                return (f"nothing to stop: {victim} was terminated and group {plan.group} "
                        "launches its replacement on its own")
            return f"FleetView stopped before terminating {victim}; group {plan.group} was " \
                   "not changed"
        latest = self.poller.latest_refresh(plan.region, plan.group)
        status = latest.get("Status") if latest else None
        if latest is not None and status in REFRESH_ACTIVE:
            refresh_id = latest.get("InstanceRefreshId")
            ours = self._is_ours(plan, latest)
            if ours or refresh_id == plan.params.get("refresh_id"):
                ended = yield from self._cancel_and_wait(plan, None, latest)
                whose = "FleetView's rollback" if ours else "the update the plan meant to stop"
                what = f"instance refresh {refresh_id} ({whose}) is {ended}"
            else:
                what = (f"group {plan.group} has an instance refresh {status} ({refresh_id}) "
                        "that FleetView did not start; FleetView left it alone: cancel it in the "
                        "console if it must stop")
        elif (plan.mechanism == "rolling-replacement" or any(k.startswith("batch:") for k in done)
              or self.poller.state.refresh_supported.get(plan.region) is False):
            what = ("FleetView's own batches stopped before the next batch; nothing was running "
                    "in the cloud to stop")
        else:
            what = "no instance refresh was under way; nothing in the cloud to stop"
        return f"{what}. {self.where_left(plan)}"

    def where_left(self, plan: ActionPlan) -> str:
        """How many of the group's instances run which version, and what it launches now."""
        try:
            inventory = self.inventory()
        except Exception as exc:  # noqa: BLE001 - the stop is done; only the words are missing
            return f"Where group {plan.group} stands could not be read: {exc}"
        group = inventory.group(plan.group or "", plan.region)
        if group is None:
            return (f"Where group {plan.group} stands could not be read (the poll did not see "
                    f"it in {plan.region})")
        counts = Counter(i.version or i.image_id or "?" for i in inventory.members(group))
        parts = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        words = [f"{n} instance{'s' if n != 1 else ''} of {v}" if k == 0 else f"{n} of {v}"
                 for k, (v, n) in enumerate(parts)]
        on = (words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]) \
            if words else "no instances"
        launches = group.desired_version or group.desired_image_id or "?"
        number = group.extra.get("launch_template_version")
        source = (f" (launch template {group.extra.get('launch_template_id')} version {number})"
                  if number is not None else "")
        return (f"Group {group.name} stays on {on}; it launches {launches}{source} for new "
                "instances")

    # -- steps ----------------------------------------------------------------------------

    def run(self, plan: ActionPlan, step: PlanStep) -> Steps:
        """Run one step, yielding its progress; where the endpoint has no instance refresh,
        the refresh steps hand back the plan's batches instead."""
        kind = step.key.split(":", 1)[0]
        if kind == "terminate":
            self._terminate(plan, list(step.instances))
        elif kind in ("track", "batch"):
            yield from self._replace_batch(plan, step)
        elif step.key.startswith("image:enable:"):
            self._enable_image(plan, step.key.split(":", 2)[2])
        elif step.key == "template":
            self._ensure_template_version(plan)
        elif step.key == "point":
            self._point_group(plan)
        elif step.key == "refresh:start":
            return self._start_refresh(plan)
        elif step.key == "refresh:track":
            return (yield from self._track_refresh(plan, step))
        elif step.key == "refresh:cancel":
            return (yield from self._cancel_refresh(plan, step))
        elif step.key == "refresh:rollback":
            return self._rollback_refresh(plan)
        elif step.key == "refresh:rollback-track":
            return (yield from self._track_rollback(plan, step))
        else:
            raise StepFailed(f"step {step.key} is unknown to this version of FleetView; "
                             "upgrade it, or abandon the action")
        return None

    def _enable_image(self, plan: ActionPlan, image_id: str) -> None:
        ec2 = self.clients.client("ec2", plan.region)
        found = ec2.describe_images(Filters=[{"Name": "image-id", "Values": [image_id]}],
                                    IncludeDeprecated=True, IncludeDisabled=True).get("Images")
        if not found:
            raise StepFailed(f"AMI {image_id} no longer exists in {plan.region}: it was "
                             "deregistered since the plan; plan again with another version")
        if found[0].get("State") == "disabled":  # a repeated step must not fail
            ec2.enable_image(ImageId=image_id)
        self.poller.state.disabled.discard((plan.region, image_id))

    def _batches_instead(self, plan: ActionPlan) -> StepResult:
        # FleetView's batches launch from the group's own configuration: it is pointed first.
        steps = (point_step(plan.group or "?"),
                 *batch_steps(plan.params.get("batches") or [], plan.to_version))
        return StepResult(NO_REFRESH, instead=steps, drop_prefix="refresh:")

    def _find_version(self, plan: ActionPlan) -> int | None:
        ec2 = self.clients.client("ec2", plan.region)
        found = []
        for page in ec2.get_paginator("describe_launch_template_versions").paginate(
                LaunchTemplateId=plan.params["launch_template_id"]):
            for v in page.get("LaunchTemplateVersions", []):
                if (v.get("LaunchTemplateData") or {}).get("ImageId") == plan.to_image_id:
                    found.append(int(v["VersionNumber"]))
        return max(found) if found else None

    def _target_version(self, plan: ActionPlan) -> int:
        number = self._find_version(plan)
        if number is None:
            raise StepFailed(f"launch template {plan.params['launch_template_id']} has no "
                             f"version with {plan.to_image_id}; run the template step again")
        return number

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

    def _configuration(self, plan: ActionPlan, number: int) -> dict:
        """The group's configuration on template version `number`, in the shape both
        UpdateAutoScalingGroup and DesiredConfiguration take (a mixed group keeps its policy)."""
        spec = {"LaunchTemplateId": plan.params["launch_template_id"], "Version": str(number)}
        policy = plan.params.get("mixed_instances_policy")
        if not policy:
            return {"LaunchTemplate": spec}
        policy = dict(policy)
        template = dict(policy.get("LaunchTemplate") or {})
        template["LaunchTemplateSpecification"] = spec
        policy["LaunchTemplate"] = template
        return {"MixedInstancesPolicy": policy}

    def _point_group(self, plan: ActionPlan) -> None:
        self.clients.client("autoscaling", plan.region).update_auto_scaling_group(
            AutoScalingGroupName=plan.group,
            **self._configuration(plan, self._target_version(plan)))

    def _start_refresh(self, plan: ActionPlan) -> StepResult | None:
        supported = self.poller.state.refresh_supported
        asg = self.clients.client("autoscaling", plan.region)
        try:
            # The group is not pointed first: AWS gives it the desired configuration once the
            # refresh succeeds, and can roll such a refresh back.
            asg.start_instance_refresh(
                AutoScalingGroupName=plan.group, Strategy="Rolling",
                DesiredConfiguration=self._configuration(plan, self._target_version(plan)),
                Preferences={"MinHealthyPercentage": plan.min_healthy_percent,
                             "SkipMatching": True, **WAIT_FOR})
        except Exception as exc:
            if is_unsupported(exc):
                supported[plan.region] = False
                return self._batches_instead(plan)
            if error_code(exc) == "InstanceRefreshInProgress":
                latest = self.poller.latest_refresh(plan.region, plan.group)
                if latest is not None and self._is_ours(plan, latest):
                    # Started before a restart that came before the step was journaled.
                    return StepResult(f"instance refresh {latest.get('InstanceRefreshId')} to "
                                      f"{plan.to_version} is already under way")
            raise
        supported[plan.region] = True
        return None

    def _is_ours(self, plan: ActionPlan, refresh: dict) -> bool:
        """Whether an instance refresh rolls the plan's group out to the plan's AMI."""
        spec = {"id": plan.params.get("launch_template_id"), "name": None}
        detail = self.poller.refresh_detail(plan.region, refresh, spec)
        return bool(detail["desired_image"]) and detail["desired_image"] == plan.to_image_id

    def _refresh(self, plan: ActionPlan, refresh_id: str | None) -> dict | None:
        """The group's instance refresh of that id (its latest for None)."""
        if refresh_id is None:
            return self.poller.latest_refresh(plan.region, plan.group or "")
        found = self.clients.client("autoscaling", plan.region).describe_instance_refreshes(
            AutoScalingGroupName=plan.group, InstanceRefreshIds=[refresh_id])
        refreshes = found.get("InstanceRefreshes", [])
        return refreshes[0] if refreshes else None

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

    def _rollback_refresh(self, plan: ActionPlan) -> StepResult | None:
        """RollbackInstanceRefresh on the refresh the plan stops; where AWS refuses it (or the
        refresh has ended since the plan), cancel and roll back with a refresh instead."""
        planned = plan.params.get("refresh_id")
        latest = self.poller.latest_refresh(plan.region, plan.group or "")
        status = latest.get("Status") if latest else None
        if latest is None or latest.get("InstanceRefreshId") != planned:
            why = (f"the group's latest instance refresh is "
                   f"{latest.get('InstanceRefreshId') if latest else 'gone'}, not {planned}")
        elif status in ("RollbackInProgress", "RollbackSuccessful"):
            # Sent before a restart that came before the step was journaled, or by someone else.
            return StepResult(f"instance refresh {planned} is already {status}")
        elif status in REFRESH_REVERSIBLE:
            try:
                self.clients.client("autoscaling", plan.region).rollback_instance_refresh(
                    AutoScalingGroupName=plan.group)
                return None
            except Exception as exc:
                if error_code(exc) not in ("IrreversibleInstanceRefresh",
                                           "ActiveInstanceRefreshNotFound"):
                    raise
                why = explain(exc, self.config.profile, service="autoscaling")
        else:
            why = f"it is {status} since the plan"
        steps = (cancel_step(planned, int(plan.params.get("on_rollout") or 0), "the new version"),
                 PlanStep("template", f"Use or create a version of launch template "
                          f"{plan.params['launch_template_id']} with AMI {plan.to_image_id} "
                          f"({plan.to_version})"),
                 *refresh_steps(plan.min_healthy_percent, plan.instances))
        return StepResult(f"AWS cannot roll back instance refresh {planned} ({why}): FleetView "
                          "cancels it and rolls back with an instance refresh instead",
                          instead=steps, drop_prefix="refresh:rollback")

    def _track_rollback(self, plan: ActionPlan, step: PlanStep) -> Steps:
        planned = plan.params.get("refresh_id")
        status = None
        try:
            for _ in waiting(self.timing, "the rollback of the instance refresh"):
                found = self._refresh(plan, planned)
                status = found.get("Status") if found else None
                if status == "RollbackSuccessful":
                    return None
                if status != "RollbackInProgress":
                    reason = (found or {}).get("StatusReason") or "none given"
                    raise StepFailed(f"the rollback of instance refresh {planned} ended "
                                     f"{status}: {reason}")
                details = found.get("RollbackDetails") or {}
                percent = int(details.get("PercentageCompleteOnRollback") or 0)
                yield _progress(step, f"rollback {percent}% done", percent, 100)
        except TimedOut:
            raise StepFailed(f"the rollback of instance refresh {planned} is still {status} "
                             f"after {self.timing.timeout_s:.0f} s; it goes on in AWS") from None
        raise AssertionError("unreachable")  # pragma: no cover - waiting() raises at the deadline

    def _cancel_refresh(self, plan: ActionPlan, step: PlanStep) -> Steps:
        planned = plan.params.get("refresh_id")
        latest = self.poller.latest_refresh(plan.region, plan.group or "")
        status = latest.get("Status") if latest else None
        if latest is None or status not in REFRESH_ACTIVE:
            return StepResult(f"the instance refresh had already ended ({status or 'none'}); "
                              "nothing to cancel")
        if planned and latest.get("InstanceRefreshId") != planned:
            raise StepFailed(f"group {plan.group} has another instance refresh {status} "
                             f"({latest.get('InstanceRefreshId')}), started after the plan; "
                             "nothing was changed: plan the rollback again")
        ended = yield from self._cancel_and_wait(plan, step.key, latest)
        return StepResult(f"instance refresh {latest.get('InstanceRefreshId')} is {ended}")

    def _cancel_and_wait(self, plan: ActionPlan, key: str | None, refresh: dict
                         ) -> Generator[ProgressEvent, None, str]:
        """CancelInstanceRefresh, then wait until the refresh has ended; its final status."""
        refresh_id = refresh.get("InstanceRefreshId")
        status = refresh.get("Status")
        if status in REFRESH_CANCELLABLE:
            try:
                self.clients.client("autoscaling", plan.region).cancel_instance_refresh(
                    AutoScalingGroupName=plan.group)
            except Exception as exc:
                # Cancelling already, or ended between the two calls: the wait tells which.
                if error_code(exc) != "ActiveInstanceRefreshNotFound":
                    raise
        try:
            for _ in waiting(self.timing, f"instance refresh {refresh_id} to be cancelled"):
                found = self._refresh(plan, refresh_id)
                status = found.get("Status") if found else None
                if status not in REFRESH_ACTIVE:
                    return status or "gone"
                yield ProgressEvent(key, "progress", f"instance refresh {status}: the "
                                    "instances in flight finish first", 0, 0, datetime.now(UTC))
        except TimedOut:
            raise StepFailed(f"instance refresh {refresh_id} is still {status} after "
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

    def _read_group(self, plan: ActionPlan) -> dict:
        """The group as DescribeAutoScalingGroups tells it now."""
        response = self.clients.client("autoscaling", plan.region).describe_auto_scaling_groups(
            AutoScalingGroupNames=[plan.group])
        groups = response.get("AutoScalingGroups", [])
        if not groups:
            raise StepFailed(f"group {plan.group} no longer exists in {plan.region}")
        return groups[0]

    def _launches(self, plan: ActionPlan, raw: dict) -> str | None:
        """The AMI the described group launches now (None: a launch configuration)."""
        spec = template_spec(raw)
        if spec is None:
            return None
        return self.poller.template_version(plan.region, spec["id"], spec["version"])[1]

    def _group_instances(self, plan: ActionPlan, raw: dict | None = None
                         ) -> tuple[dict[str, str], int]:
        """The group's instances now -> lifecycle state, and its desired capacity now."""
        group = raw if raw is not None else self._read_group(plan)
        return ({i["InstanceId"]: i.get("LifecycleState", "") for i in group.get("Instances", [])},
                int(group.get("DesiredCapacity") or 0))

    def _group_images(self, plan: ActionPlan, raw: dict | None = None
                      ) -> tuple[dict[str, tuple[str | None, str]], int]:
        """The group's live instances -> (AMI, EC2 state), read from EC2 (moto reports the
        template's default version on ASG instances, not the one used, so the AMI is the only
        truth), and the group's desired capacity."""
        live, desired = self._group_instances(plan, raw)
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
