"""GCP actions: plan and run the steps of replacing a MIG instance and rolling a MIG back."""

from __future__ import annotations

import hashlib
import math
import re
import uuid
from collections.abc import Generator, Mapping
from datetime import UTC, datetime

from google.cloud import compute_v1

from fleetview.domain.actions import (
    ActionPlan,
    ActionRefused,
    Convergence,
    PlanStep,
    ProgressEvent,
)
from fleetview.domain.errors import ProviderError
from fleetview.domain.model import Group, Image, Instance, Inventory, State
from fleetview.domain.timing import TimedOut, Timing, waiting
from fleetview.domain.versions import VersionRules, version_key
from fleetview.providers.gcp.clients import Compute
from fleetview.providers.gcp.errors import NotFoundError, TransientError
from fleetview.providers.gcp.inventory import Poller
from fleetview.providers.gcp.shapes import (
    UNUSABLE_IMAGE_STATES,
    Template,
    image_from_pb,
    last,
    template_from_pb,
    template_path,
)

# A step: a generator that yields progress while it waits and returns the journal's message.
Step = Generator[ProgressEvent, None, str]

# requestIds are uuid5s under this namespace: the same action and step always send the same
# id, so a retried step is ignored by Compute instead of acting twice.
REQUEST_NAMESPACE = uuid.UUID("5b0f6d1e-3c1a-4b7e-9d53-6f1e0c2a9a41")
# A stop pins at most two versions, a main one and a canary, as gcloud's start-update names
# them (--version, --canary-version); a group on more templates is left as it is.
MAX_VERSIONS = 2
SURGE_SHARE = 0.1  # a rollback adds up to 10% of the group (at least one per zone) at a time


def request_id(action_id: str, step_key: str) -> str:
    return str(uuid.uuid5(REQUEST_NAMESPACE, f"{action_id}/{step_key}"))


def action_id(scope: str, kind: str, target: str, polled_at: datetime) -> str:
    """A plan's identity: the same plan from the same poll is the same action."""
    return str(uuid.uuid5(REQUEST_NAMESPACE, f"{scope}|{kind}|{target}|{polled_at.isoformat()}"))


def rollback_template_name(source: str, version: str) -> str:
    """The template a rollback creates: "<source>-rb-<version>", at most 63 characters, the
    same every time, so a resumed step finds the one it made."""
    slug = re.sub(r"[^a-z0-9]+", "-", version.lower()).strip("-") or "version"
    name = f"{source}-rb-{slug}"
    if len(name) <= 63:
        return name
    # Cut, with a digest of the whole name so two long versions do not share one template.
    digest = hashlib.sha1(name.encode()).hexdigest()[:6]
    return f"{name[:56].rstrip('-')}-{digest}"


def _now() -> datetime:
    return datetime.now(UTC)


def rollback_policy(stateful: bool, surge: int, unavailable: int) -> dict[str, object]:
    """The update policy a rollback sets, in the shape Group.extra["update_policy"] has."""
    return {"type": "PROACTIVE", "minimal_action": "REPLACE",
            "replacement_method": "RECREATE" if stateful else "SUBSTITUTE",
            "max_surge": {"fixed": surge}, "max_unavailable": {"fixed": unavailable}}


def policy_differs(previous: Mapping[str, object], policy: Mapping[str, object]) -> bool:
    """Whether setting `policy` changes what the group had (unknown fields never count)."""
    return any(previous.get(k) not in (None, "", v) for k, v in policy.items())


def describe_policy(policy: Mapping[str, object]) -> str:
    def amount(value) -> str:
        if isinstance(value, Mapping):
            return f"{value['percent']}%" if "percent" in value else str(value.get("fixed", 0))
        return "?"

    return (f"{policy.get('type') or '?'}, {policy.get('minimal_action') or 'REPLACE'}, "
            f"{policy.get('replacement_method') or 'SUBSTITUTE'}, maxSurge "
            f"{amount(policy.get('max_surge'))}, maxUnavailable "
            f"{amount(policy.get('max_unavailable'))}")


def policy_message(policy: Mapping[str, object]) -> compute_v1.InstanceGroupManagerUpdatePolicy:
    def amount(value) -> compute_v1.FixedOrPercent | None:
        if not isinstance(value, Mapping):
            return None
        if "percent" in value:
            return compute_v1.FixedOrPercent(percent=int(value["percent"]))
        return compute_v1.FixedOrPercent(fixed=int(value.get("fixed", 0)))

    fields: dict[str, object] = {
        "type_": policy.get("type"), "minimal_action": policy.get("minimal_action"),
        "replacement_method": policy.get("replacement_method"),
        "max_surge": amount(policy.get("max_surge")),
        "max_unavailable": amount(policy.get("max_unavailable"))}
    return compute_v1.InstanceGroupManagerUpdatePolicy(
        **{k: v for k, v in fields.items() if v not in (None, "")})


def in_flight_versions(group: Group, target: str) -> tuple[str, ...]:
    """The versions an updating group is rolling out, other than `target`: what a rollback in
    flight stops spreading. () for a group that is not updating."""
    if not group.updating:
        return ()
    spreading = {v for v in (group.desired_version, group.canary_version) if v and v != target}
    return tuple(sorted(spreading, key=version_key))


class Actions:
    """Plans are computed from an inventory (plus reads); the step methods make the mutating
    calls, each waiting on `timing`."""

    def __init__(self, config, rules: VersionRules, compute: Compute, poller: Poller,
                 timing: Timing):
        self.config = config
        self.rules = rules
        self.compute = compute
        self.poller = poller
        self.timing = timing

    @property
    def project(self) -> str:
        return self.config.project

    # -- plans ---------------------------------------------------------------------------

    def _mig_location(self, group: Group) -> dict[str, str | None]:
        return {"mig": group.name, "mig_zone": group.zone,
                "mig_region": None if group.zone else group.region}

    def plan_replace(self, inventory: Inventory, inst: Instance, group: Group) -> ActionPlan:
        """Recreate `inst` through its MIG (the shared refusals have passed)."""
        size = max(group.target_size, len(inventory.members(group)), 1)
        notes = []
        if group.canary_image_id:
            notes.append(f"the group runs a canary version ({group.canary_version}); the group "
                         "picks which version the recreated instance gets")
        if size == 1:
            notes.append("the group has one instance: nothing serves while it is recreated")
        to_version, to_image_id = group.desired_version, group.desired_image_id
        lost = (f"{inst.name}'s boot disk and anything stored on it are deleted; the instance "
                "comes back with the same name and a new id")
        stateful = group.extra.get("stateful")
        if isinstance(stateful, Mapping) and stateful.get("disks"):
            kept = ", ".join(stateful["disks"])
            lost = (f"{inst.name}'s disks other than its preserved ones ({kept}) and local data "
                    "are deleted; it comes back with the same name, its preserved disks and a "
                    "new id")
        if isinstance(stateful, Mapping) and (
                stateful.get("boot_preserved") or inst.name in self._boot_kept_by_config(group)):
            # A preserved boot disk is reattached as it is: the image does not change.
            to_version, to_image_id = inst.version, inst.image_id
            notes.append(f"{inst.name}'s boot disk is preserved (stateful): it comes back on "
                         f"its own boot disk, still {inst.version or '?'}, not the group's "
                         f"{group.desired_version or '?'}")
        aid = action_id(self.config.name, "replace", f"{group.name}/{inst.id}",
                        inventory.polled_at)
        return ActionPlan(
            kind="replace", provider="gcp", scope=self.config.name, region=inst.region,
            group=group.name, instances=(inst.id,),
            from_versions=(inst.version,) if inst.version else (),
            to_version=to_version, to_image_id=to_image_id,
            steps=(
                PlanStep("recreate", f"recreate {inst.name} in {group.name} "
                         "(instanceGroupManagers.recreateInstances)", (inst.id,)),
                PlanStep("track", f"wait until {inst.name} runs again under a new id",
                         (inst.id,)),
            ),
            mechanism="recreate-instances", batch_size=1,
            min_healthy_percent=int(100 * (size - 1) / size),
            capacity_kept=f"{size - 1} of {size} instances serve while {inst.name} is recreated",
            irreversible=(lost,),
            notes=tuple(notes),
            params={"action_id": aid, "project": self.project, **self._mig_location(group),
                    "instance_name": inst.name, "instance_zone": inst.zone,
                    "instance_id": inst.id},
        )

    def plan_rollback(self, inventory: Inventory, group: Group, version: str,
                      known_images: Mapping[str, Image]) -> ActionPlan:
        """Point the MIG at a template of `version` (the shared refusals have passed)."""
        if group.kind != "mig":
            raise ActionRefused(f"{group.name} is not a managed instance group")
        members = inventory.members(group)
        if group.desired_version == version and not group.canary_image_id and all(
                i.version == version for i in members):
            raise ActionRefused(f"group {group.name} already runs version {version}")
        kept_boot = self._kept_boot_disks(group, members)

        images = self._images_of_version(inventory, version, known_images)
        if not images:
            raise ActionRefused(f"no existing image in reach of project {self.project} has "
                                f"version {version} (the ones seen were deleted or made "
                                "obsolete); restore or rebuild that image first")
        template = self._template_for(group, images)
        source = None  # the template a new one is copied from, when none boots the image
        if template is None:
            template, source = self._planned_template(group, images, version)

        zones = 1 if group.zone else max(len(group.extra.get("zones") or ()), 1)
        # GCE's rule for a regional group: a fixed maxSurge or maxUnavailable is 0 or at
        # least its number of zones.
        batch = max(zones, math.ceil(group.target_size * SURGE_SHARE))
        stateful = "stateful" in group.extra
        # A stateful group recreates its instances under their names (RECREATE, which allows
        # no surge): capacity dips by a batch instead.
        surge, unavailable = (0, batch) if stateful else (batch, 0)
        policy = rollback_policy(stateful, surge, unavailable)
        previous = group.extra.get("update_policy") or {}
        restore = policy_differs(previous, policy)
        image = images[template.image_id]
        from_versions = {i.version for i in members if i.version}
        from_versions |= {v for v in (group.desired_version, group.canary_version) if v}
        from_versions.discard(version)
        current = [v["template"] for v in group.extra.get("versions", [])]
        aid = action_id(self.config.name, "rollback",
                        f"{group.zone or group.region}/{group.name}/{template.path}",
                        inventory.polled_at)
        size = group.target_size
        first: tuple[PlanStep, ...] = ()
        notes: tuple[str, ...] = (f"uses template {template.path}",)
        # A rollout in flight is rolled back the way GCE documents: new versions patched over
        # the update under way; it stops spreading at once, with no wait for it to finish.
        rollout = in_flight_versions(group, version)
        on_new = [i for i in members if i.version in rollout]
        stopping: tuple[str, ...] = ()
        replaced_new: tuple[str, ...] = ()
        patch_prefix = ""
        if group.updating:
            spreading = ", ".join(rollout) or "its current versions"
            starting = sum(1 for i in on_new if i.state != State.RUNNING)
            added = len(members) - size  # the update's surge instances
            stopping = (
                f"stops the update under way, then rolls back: group {group.name} is rolling "
                f"out {spreading}; {len(on_new)} of its {len(members)} instances"
                + (f" ({size} wanted, {added} added by the update)" if added > 0 else "")
                + f" are already on {spreading}"
                + (f" ({starting} still starting)" if starting else "")
                + f": the rollback replaces them with {version}",)
            if on_new:
                replaced_new = (f"the {len(on_new)} instance{'s' if len(on_new) != 1 else ''} "
                                f"already on {spreading} "
                                f"{'are' if len(on_new) != 1 else 'is'} replaced by the rollback",)
            patch_prefix = f"stop the update under way to {spreading}: "
        if source is not None:
            first = (PlanStep("template", f"create instance template {template.name}: a copy "
                              f"of {source.name} booting image {image.name} "
                              "(instanceTemplates.insert)"),)
            notes = (f"no template boots image {image.name}: creates {template.path}, a copy "
                     f"of {source.path} with that image; FleetView does not delete it later",)
        shape_notes = []
        if zones > 1:
            shape_notes.append(
                f"regional group over {zones} zones (target shape "
                f"{group.extra.get('target_shape') or 'EVEN'}): GCE allows a fixed "
                f"{'maxUnavailable' if stateful else 'maxSurge'} of 0 or at least {zones}, so "
                f"{batch} {'are recreated' if stateful else 'start'} at a time")
        if stateful:
            shape_notes.append(
                f"stateful group: instances are recreated under their names (replacement "
                f"method RECREATE, maxSurge 0, maxUnavailable {unavailable}); preserved disks "
                "other than the boot disk are kept")
            if unavailable >= size > 0:
                shape_notes.append(f"all {size} instances are recreated at once: the group "
                                   "serves nothing until they are back")
        if kept_boot:
            names = ", ".join(sorted(kept_boot))
            shape_notes.append(
                f"{len(kept_boot)} instance{'s' if len(kept_boot) != 1 else ''} ({names}) "
                "preserve their boot disk by per-instance config: recreated, they keep the "
                f"image they run, so they stay off {version} and the rollback does not "
                "converge until their configs stop preserving the boot disk")
        steps = first + (
            PlanStep("patch", f"{patch_prefix}set {group.name}'s versions to template "
                     f"{template.name} (image {image.name}), update policy "
                     f"{describe_policy(policy)}"),
            PlanStep("track", f"wait until every instance of {group.name} runs "
                     f"{template.name} and the group is stable"),
        )
        restored: tuple[str, ...] = ()
        if restore:
            steps += (PlanStep("restore-policy", f"put back {group.name}'s update policy "
                               f"({describe_policy(previous)})"),)
            restored = (f"group {group.name}'s update policy is {describe_policy(previous)}: "
                        f"FleetView sets {describe_policy(policy)} for the rollback and puts "
                        "it back once the group is stable; if the rollback is stopped or does "
                        "not finish, it stays changed",)
        if stateful:
            capacity = (f"{size - min(unavailable, size)} of {size} instances keep serving: up "
                        f"to {unavailable} {'is' if unavailable == 1 else 'are'} recreated at "
                        "a time")
            healthy = int(100 * max(size - unavailable, 0) / size) if size else 0
            lost = ("each recreated instance's boot disk and unpreserved local data are "
                    "deleted; its name and preserved disks stay",)
        else:
            capacity = (f"all {size} instances keep serving: up to {surge} new "
                        f"instance{'s' if surge != 1 else ''} start beside them at a time")
            healthy = 100
            lost = ("each replaced instance's boot disk and local data are deleted",)
        return ActionPlan(
            kind="rollback", provider="gcp", scope=self.config.name, region=group.region,
            group=group.name,
            instances=tuple(i.id for i in members if i.version != version),
            from_versions=tuple(sorted(from_versions, key=version_key)),
            to_version=version, to_image_id=image.id,
            steps=steps,
            mechanism="mig-update", batch_size=batch, min_healthy_percent=healthy,
            capacity_kept=capacity,
            irreversible=(*lost,
                          f"the group's current versions ({', '.join(last(p) for p in current)}) "
                          "are replaced; going forward again needs another update",
                          *replaced_new),
            notes=stopping + notes + tuple(shape_notes) + restored + (
                (f"image {image.name} is deprecated; it still boots",) if image.deprecated
                else ()),
            params={"action_id": aid, "project": self.project, **self._mig_location(group),
                    "template": template.path, "template_name": template.name,
                    "image_id": image.id, "max_surge": surge, "max_unavailable": unavailable,
                    "policy": policy, "previous_policy": previous if restore else None,
                    "kept_boot": kept_boot,
                    "previous_templates": current, "in_flight": group.updating,
                    "rollout_versions": list(rollout), "on_rollout": len(on_new),
                    **({"template_source": source.path} if source is not None else {})},
        )

    def _kept_boot_disks(self, group: Group, members: list[Instance]) -> dict[str, str]:
        """Members whose boot disk the group preserves, by name -> version: recreating them
        keeps the image they run. Refuses when the group's policy preserves every one's."""
        stateful = group.extra.get("stateful")
        if not isinstance(stateful, Mapping):
            return {}
        versions = {i.name: i.version or "?" for i in members}
        if stateful.get("boot_preserved"):
            running = ", ".join(sorted(set(versions.values()), key=version_key)) or "?"
            raise ActionRefused(
                f"group {group.name} is stateful and its policy preserves the boot disk "
                f"({stateful.get('boot_device')}): recreated instances keep the image they "
                f"run ({running}), so neither a rollback nor a replace changes their version. "
                "Remove the boot disk from the group's stateful policy (or roll out a new "
                "group) to change it")
        return {name: versions.get(name, "?") for name in self._boot_kept_by_config(group)}

    def _boot_kept_by_config(self, group: Group) -> set[str]:
        """Members whose per-instance config preserves their boot disk (read now)."""
        stateful = group.extra.get("stateful")
        if not isinstance(stateful, Mapping) or not stateful.get("per_instance_configs"):
            return set()
        boot = str(stateful.get("boot_device"))
        where = {"project": self.project, **self._mig_location(group)}
        return {last(mi.instance)
                for page in self._pages_of(where, f"reading the per-instance configs of "
                                                  f"{group.name}")
                for mi in page.managed_instances
                if boot in mi.preserved_state_from_config.disks}

    def _planned_template(self, group: Group, images: Mapping[str, Image],
                          version: str) -> tuple[Template, Template]:
        """(the template to create, the group template it copies) when no template boots an
        image of `version`: a copy of the group's main template with that image."""
        names = ", ".join(sorted(i.name for i in images.values()))
        current = [v["template"] for v in group.extra.get("versions", [])]
        source = self.poller.template(current[0]) if current else None
        if source is None:
            raise ActionRefused(f"no instance template boots the image of version {version} "
                                f"({names}) and group {group.name}'s own template cannot be "
                                "read to copy; create a template with that image, then roll "
                                "back")
        # Newest usable image first: several images may carry one version label.
        image = max(images.values(), key=lambda i: (
            not i.deprecated, i.created_at.timestamp() if i.created_at else 0, i.id))
        name = rollback_template_name(source.name, version)
        path = f"{source.path.rsplit('/', 1)[0]}/{name}"
        existing = self.poller.template_pb(path, f"looking for instance template {path}")
        if existing is not None:
            found = template_from_pb(existing, self.project)
            if found.image_id != image.id:
                raise ActionRefused(f"instance template {path} exists but boots "
                                    f"{found.source_image}, not {image.name}; delete or rename "
                                    "it, then roll back")
        planned = Template(path=path, name=name, image_id=image.id, source_image=image.id)
        return planned, source

    def _images_of_version(self, inventory: Inventory, version: str,
                           known: Mapping[str, Image] | None) -> dict[str, Image]:
        """Images labelled `version` that exist and can boot now (checked, not remembered)."""
        candidates: dict[str, Image] = {}
        for img in (*inventory.images.values(), *((known or {}).values())):
            if img.provider == "gcp" and not img.gone and \
                    (img.version or self.rules.version_of(img)) == version:
                candidates.setdefault(img.id, img)
        usable = {}
        for image_id in candidates:
            image, state = self.poller.image(image_id, fresh=True)
            if not image.gone and state not in UNUSABLE_IMAGE_STATES:
                usable[image_id] = image
        if usable:
            return usable
        # Not seen in use: an image of the project itself may still carry the version.
        for page in self.compute.pages("images", "list", "compute.images.list",
                                       f"listing images of project {self.project}",
                                       {"project": self.project, "max_results": 500}):
            for pb in page.items:
                image, state = image_from_pb(pb, self.project)
                if state not in UNUSABLE_IMAGE_STATES and self.rules.version_of(image) == version:
                    usable[image.id] = image
        return usable

    def _template_for(self, group: Group, images: Mapping[str, Image]):
        """The template to roll back to: one the group runs already, else the one whose name
        is closest to the group's current template, newest first."""
        current = [v["template"] for v in group.extra.get("versions", [])]
        found = []
        for path in current:
            template = self.poller.template(path)
            if template is not None and template.image_id in images:
                return template
        what = "listing instance templates"
        for page in self.compute.pages("templates", "list", "compute.instanceTemplates.list",
                                       what, {"project": self.project, "max_results": 500}):
            found += [template_from_pb(pb, self.project) for pb in page.items]
        for page in self.compute.pages("region_templates", "list",
                                       "compute.instanceTemplates.list", what,
                                       {"project": self.project, "region": group.region,
                                        "max_results": 500}):
            found += [template_from_pb(pb, self.project) for pb in page.items]
        found = [t for t in found if t.image_id in images]
        if not found:
            return None
        base = last(current[0]) if current else ""

        def shared_prefix(name: str) -> int:
            n = 0
            while n < min(len(name), len(base)) and name[n] == base[n]:
                n += 1
            return n

        return max(found, key=lambda t: (shared_prefix(t.name),
                                         t.created_at.timestamp() if t.created_at else 0,
                                         t.name))

    # -- steps ---------------------------------------------------------------------------

    def _mig_call(self, plan: ActionPlan, method: str, permission: str, what: str, **kwargs):
        p = plan.params
        # A request object, not flattened arguments: only the request carries requestId.
        request = {"project": p["project"], "instance_group_manager": p["mig"], **kwargs}
        if p.get("mig_zone"):
            return self.compute.call("migs", method, permission, what,
                                     request={**request, "zone": p["mig_zone"]})
        return self.compute.call("region_migs", method, permission, what,
                                 request={**request, "region": p["mig_region"]})

    def _wait_operation(self, op, what: str) -> None:
        """Poll the operation with our own operations clients until it is DONE."""
        try:
            for check, _ in enumerate(waiting(self.timing, f"{what}: operation {op.name} "
                                              "still runs")):
                if check:  # the first check is the reply that started it
                    op = self._operation(op, what)
                if op.status == compute_v1.Operation.Status.DONE:
                    break
        except TimedOut as exc:
            raise TimedOut(f"{exc}; check it in the console") from None
        if op.error and op.error.errors:
            detail = "; ".join(f"{e.code}: {e.message}" for e in op.error.errors)
            raise ProviderError(f"{what} failed: {detail}")

    def _operation(self, op, what: str):
        """The operation as it is now, from the operations client of its zone, region or the
        global one (ExtendedOperation would build a client without our endpoint)."""
        if op.zone:
            return self.compute.call("zone_ops", "get", "compute.zoneOperations.get", what,
                                     project=self.project, zone=last(op.zone),
                                     operation=op.name)
        if op.region:
            return self.compute.call("region_ops", "get", "compute.regionOperations.get", what,
                                     project=self.project, region=last(op.region),
                                     operation=op.name)
        return self.compute.call("global_ops", "get", "compute.globalOperations.get", what,
                                 project=self.project, operation=op.name)

    def recreate(self, plan: ActionPlan, step: PlanStep) -> Step:
        p = plan.params
        what = f"recreating {p['instance_name']} in group {p['mig']}"
        body = compute_v1.InstanceGroupManagersRecreateInstancesRequest(
            instances=[f"zones/{p['instance_zone']}/instances/{p['instance_name']}"])
        field = ("instance_group_managers_recreate_instances_request_resource"
                 if p.get("mig_zone") else
                 "region_instance_group_managers_recreate_request_resource")
        if not p.get("mig_zone"):
            body = compute_v1.RegionInstanceGroupManagersRecreateRequest(
                instances=list(body.instances))
        op = self._mig_call(plan, "recreate_instances_unary",
                            "compute.instanceGroupManagers.update", what,
                            request_id=request_id(p["action_id"], step.key), **{field: body})
        self._wait_operation(op, what)
        return f"{p['instance_name']} is being recreated"
        yield  # a generator, like every step

    def track_replace(self, plan: ActionPlan, step: PlanStep) -> Step:
        p = plan.params
        what = f"checking {p['instance_name']}"
        try:
            for _ in waiting(self.timing, f"{p['instance_name']} is not running again"):
                try:
                    inst = self.compute.call("instances", "get", "compute.instances.get", what,
                                             project=p["project"], zone=p["instance_zone"],
                                             instance=p["instance_name"])
                    status = inst.status
                except NotFoundError:
                    inst, status = None, "absent"
                except TransientError as exc:
                    # The recreate goes on without us: keep watching until the deadline.
                    inst, status = None, f"not checked this time ({exc})"
                back = inst is not None and str(inst.id) != p["instance_id"] and \
                    inst.status == "RUNNING"
                yield ProgressEvent(step.key, "progress",
                                    f"{p['instance_name']}: {status}" +
                                    (f" as {inst.id}" if back else ""),
                                    done=1 if back else 0, total=1, at=_now())
                if back:
                    return f"{p['instance_name']} runs again as instance {inst.id}"
        except TimedOut as exc:
            raise TimedOut(f"{exc}; check group {p['mig']} in the console") from None
        raise AssertionError("unreachable")  # pragma: no cover - waiting() ends in TimedOut

    def _existing_template(self, plan: ActionPlan, what: str) -> bool:
        """Whether the planned template exists already (a resumed step); a template of that
        name with another image is an error, not something to use."""
        p = plan.params
        existing = self.poller.template_pb(p["template"], what)
        if existing is None:
            return False
        found = template_from_pb(existing, self.project)
        if found.image_id != p["image_id"]:
            raise ProviderError(f"instance template {p['template']} exists but boots "
                                f"{found.source_image}, not {last(p['image_id'])}; delete or "
                                "rename it, then plan the rollback again")
        return True

    def create_template(self, plan: ActionPlan, step: PlanStep) -> Step:
        p = plan.params
        what = f"creating instance template {p['template_name']}"
        if self._existing_template(plan, what):
            return f"template {p['template_name']} exists already; it is used as it is"
        source = self.poller.template_pb(p["template_source"], what)
        if source is None:
            raise ProviderError(f"group {p['mig']}'s template {p['template_source']} was "
                                "deleted since the plan was made; plan the rollback again")
        # A copy of the group's template in every respect but the boot disk's image.
        properties = compute_v1.InstanceProperties.pb(compute_v1.InstanceProperties())
        properties.CopyFrom(source.properties)
        disks = properties.disks
        boot = next((d for d in disks if d.boot), disks[0] if len(disks) == 1 else None)
        if boot is None:
            raise ProviderError(f"template {p['template_source']} has no boot disk to give "
                                f"image {last(p['image_id'])}; create a template for it by "
                                "hand, then roll back")
        boot.initialize_params.source_image = p["image_id"]
        body = compute_v1.InstanceTemplate(
            name=p["template_name"],
            description=(f"FleetView rollback of group {p['mig']} to image "
                         f"{last(p['image_id'])}: a copy of {last(p['template_source'])}"),
            properties=compute_v1.InstanceProperties.wrap(properties))
        parts = p["template"].split("/")
        request = {"project": parts[1], "instance_template_resource": body,
                   "request_id": request_id(p["action_id"], step.key)}
        try:
            if parts[2] == "regions":
                op = self.compute.call("region_templates", "insert_unary",
                                       "compute.instanceTemplates.create", what,
                                       request={**request, "region": parts[3]})
            else:
                op = self.compute.call("templates", "insert_unary",
                                       "compute.instanceTemplates.create", what,
                                       request=request)
        except ProviderError:
            # Made meanwhile (by a run of this step that died before noting it): use it.
            if self._existing_template(plan, what):
                return f"template {p['template_name']} exists already; it is used as it is"
            raise
        self._wait_operation(op, what)
        # The poll cache may have noted this name as missing; it exists now.
        self.poller.state.missing_templates.discard(p["template"])
        return f"template {p['template_name']} boots image {last(p['image_id'])}"
        yield  # a generator, like every step

    def patch(self, plan: ActionPlan, step: PlanStep) -> Step:
        p = plan.params
        what = f"updating group {p['mig']}"
        mig = self._mig_call(plan, "get", "compute.instanceGroupManagers.get", what)
        templates = [template_path(v.instance_template, self.project) for v in mig.versions]
        # An update under way is not waited for: the new versions replace its versions, and the
        # group stops spreading them (GCE's way to roll back an update in flight).
        if templates != [p["template"]] and sorted(templates) != sorted(p["previous_templates"]):
            raise ProviderError(f"group {p['mig']} changed since the plan was made (its "
                                f"templates are now {', '.join(map(last, templates))}); plan "
                                "the rollback again")
        body = compute_v1.InstanceGroupManager(
            versions=[compute_v1.InstanceGroupManagerVersion(
                instance_template=p["template"], name="fleetview-rollback")],
            update_policy=policy_message(p.get("policy") or rollback_policy(
                False, int(p["max_surge"]), int(p["max_unavailable"]))),
        )
        op = self._mig_call(plan, "patch_unary", "compute.instanceGroupManagers.update", what,
                            instance_group_manager_resource=body,
                            request_id=request_id(p["action_id"], step.key))
        self._wait_operation(op, what)
        return f"group {p['mig']} now wants template {p['template_name']}"
        yield  # a generator, like every step

    def restore_policy(self, plan: ActionPlan, step: PlanStep) -> Step:
        """Put back the update policy the group had before the rollback changed it."""
        p = plan.params
        previous = p.get("previous_policy")
        if not previous:
            return f"group {p['mig']}'s update policy was not changed"
        what = f"putting back the update policy of group {p['mig']}"
        op = self._mig_call(plan, "patch_unary", "compute.instanceGroupManagers.update", what,
                            instance_group_manager_resource=compute_v1.InstanceGroupManager(
                                update_policy=policy_message(previous)),
                            request_id=request_id(p["action_id"], step.key))
        self._wait_operation(op, what)
        return f"group {p['mig']}'s update policy is {describe_policy(previous)} again"
        yield  # a generator, like every step

    def track_rollback(self, plan: ActionPlan, step: PlanStep) -> Step:
        p = plan.params
        what = f"tracking group {p['mig']}"
        on_target = total = 0
        try:
            for _ in waiting(self.timing, f"group {p['mig']} has not converged"):
                try:
                    mig = self._mig_call(plan, "get", "compute.instanceGroupManagers.get", what)
                    templates = [template_path(v.instance_template, self.project)
                                 for v in mig.versions]
                    if templates != [p["template"]]:
                        raise ProviderError(
                            f"group {p['mig']}'s versions were changed by someone else during "
                            f"the rollback (now {', '.join(map(last, templates))})")
                    on_target = 0
                    for page in self._managed_pages(plan, what):
                        for mi in page.managed_instances:
                            if mi.current_action == "NONE" and template_path(
                                    mi.version.instance_template, self.project) == p["template"]:
                                on_target += 1
                    total = mig.target_size
                    finished = mig.status.is_stable and mig.status.version_target.is_reached
                    message = f"{on_target} of {total} instances run {p['template_name']}"
                except TransientError as exc:
                    # The rollout goes on without us: keep watching until the deadline.
                    finished, message = False, f"not checked this time ({exc})"
                yield ProgressEvent(step.key, "progress", message, done=min(on_target, total),
                                    total=total, at=_now())
                if finished:
                    return f"every instance of {p['mig']} runs {p['template_name']}"
        except TimedOut as exc:
            raise TimedOut(f"{exc} ({on_target} of {total} done); it keeps updating on its "
                           "own: watch it in FleetView or the console") from None
        raise AssertionError("unreachable")  # pragma: no cover - waiting() ends in TimedOut

    def _managed_pages(self, plan: ActionPlan, what: str):
        return self._pages_of(plan.params, what)

    def _pages_of(self, p: Mapping[str, object], what: str):
        """Pages of a group's managed instances; `p` names the group as plan params do."""
        request = {"project": p["project"], "instance_group_manager": p["mig"],
                   "max_results": 500}
        if p.get("mig_zone"):
            return self.compute.pages("migs", "list_managed_instances",
                                      "compute.instanceGroupManagers.get", what,
                                      {**request, "zone": p["mig_zone"]})
        return self.compute.pages("region_migs", "list_managed_instances",
                                  "compute.instanceGroupManagers.get", what,
                                  {**request, "region": p["mig_region"]})

    # -- convergence and stop --------------------------------------------------------------

    def _template_version(self, plan: ActionPlan, path: str) -> str:
        """The version label of a template's image; its name where no image can be read (an
        image family, a deleted template)."""
        if path == plan.params.get("template") and plan.to_version:
            return plan.to_version
        template = self.poller.template(path)
        if template is None or not template.image_id:
            return last(path)
        image, _ = self.poller.image(template.image_id)
        return image.version or self.rules.version_of(image)

    def _managed(self, plan: ActionPlan, what: str) -> list:
        return [mi for page in self._managed_pages(plan, what) for mi in page.managed_instances]

    def convergence(self, plan: ActionPlan) -> Convergence:
        """Members that run the target template, RUNNING with no action under way, of the
        MIG's targetSize (surge instances beyond it do not count); read now from the MIG."""
        p = plan.params
        what = f"reading group {p['mig']}"
        mig = self._mig_call(plan, "get", "compute.instanceGroupManagers.get", what)
        if plan.kind == "rollback":
            targets = {p["template"]}
        else:  # a recreated instance runs whatever version the group gives it
            targets = {template_path(v.instance_template, self.project) for v in mig.versions}
            if not targets and mig.instance_template:
                targets = {template_path(mig.instance_template, self.project)}
        on_target = 0
        others: dict[str, int] = {}
        kept = p.get("kept_boot") or {}
        for mi in self._managed(plan, what):
            if plan.kind == "replace" and mi.id and str(mi.id) == p.get("instance_id"):
                continue  # the instance being replaced, until it comes back under a new id
            if last(mi.instance) in kept:
                # Its preserved boot disk keeps the image it had, whatever its template says.
                others[kept[last(mi.instance)]] = others.get(kept[last(mi.instance)], 0) + 1
                continue
            template = template_path(mi.version.instance_template, self.project)
            ready = mi.current_action == "NONE" and mi.instance_status == "RUNNING"
            if template in targets and ready:
                on_target += 1
                continue
            key = "starting" if template in targets else self._template_version(plan, template)
            others[key] = others.get(key, 0) + 1
        needed = mig.target_size
        return Convergence(min(on_target, needed), needed, plan.to_version, others)

    def stop(self, plan: ActionPlan, done: frozenset[str]) -> Step:
        if plan.kind == "replace":
            p = plan.params
            if "recreate" in done:
                return (f"nothing to stop: the recreate of {p['instance_name']} was sent and "
                        f"group {p['mig']} finishes it on its own")
            return (f"FleetView stopped before recreating {p['instance_name']}; group "
                    f"{p['mig']} was not changed")
        return (yield from self._stop_rollback(plan, done))

    def _counts(self, plan: ActionPlan, members) -> dict[str, int]:
        counts: dict[str, int] = {}
        for mi in members:
            if mi.current_action not in ("DELETING", "ABANDONING"):
                path = template_path(mi.version.instance_template, self.project)
                counts[path] = counts.get(path, 0) + 1
        return counts

    def _describe_counts(self, plan: ActionPlan, counts: Mapping[str, int]) -> str:
        by_version: dict[str, int] = {}
        for path, n in counts.items():
            version = self._template_version(plan, path)
            by_version[version] = by_version.get(version, 0) + n
        parts = [(n, v) for v, n in sorted(by_version.items(), key=lambda kv: version_key(kv[0]),
                                           reverse=True)]
        if not parts:
            return "no instances"
        words = [f"{n} instance{'s' if n != 1 else ''} of {v}" if i == 0 else f"{n} of {v}"
                 for i, (n, v) in enumerate(parts)]
        return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]

    def _stop_rollback(self, plan: ActionPlan, done: frozenset[str]) -> Step:
        """Pin the MIG where it stands: no proactive replacement (OPPORTUNISTIC) and, once the
        instances it is creating or deleting are through, versions holding each template's
        count, so the group is stable and replaces nothing more until its next update."""
        p = plan.params
        mig_name = p["mig"]
        what = f"stopping the update of group {mig_name}"
        mig = self._mig_call(plan, "get", "compute.instanceGroupManagers.get", what)
        templates = [template_path(v.instance_template, self.project) for v in mig.versions]
        ours = templates == [p["template"]]
        before = sorted(templates) == sorted(p["previous_templates"])
        updating = not mig.status.is_stable or not mig.status.version_target.is_reached
        sent = "" if "patch" in done or ours else "FleetView stopped before changing its " \
            "versions; "
        if not updating:
            counts = self._counts(plan, self._managed(plan, what))
            return (f"{sent}group {mig_name} had no update under way: it stays on "
                    f"{self._describe_counts(plan, counts)}")
        if not ours and not (before and p.get("in_flight")):
            return (f"{sent}group {mig_name} is updating to versions FleetView did not set "
                    f"({', '.join(map(last, templates))}); FleetView left it alone: stop it in "
                    "the console if it must stop")
        # 1. Nothing more is replaced proactively; what has started finishes.
        op = self._mig_call(
            plan, "patch_unary", "compute.instanceGroupManagers.update", what,
            instance_group_manager_resource=compute_v1.InstanceGroupManager(
                update_policy=compute_v1.InstanceGroupManagerUpdatePolicy(
                    type_="OPPORTUNISTIC")),
            request_id=request_id(p["action_id"], "stop"))
        self._wait_operation(op, what)
        # 2. Wait for the instances being created, recreated or deleted.
        try:
            for _ in waiting(self.timing, f"group {mig_name} still has instances in action"):
                mig = self._mig_call(plan, "get", "compute.instanceGroupManagers.get", what)
                members = self._managed(plan, what)
                busy = [mi for mi in members if mi.current_action != "NONE"]
                if not busy and len(members) == mig.target_size:
                    break
                yield ProgressEvent(None, "progress",
                                    f"group {mig_name}: update stopped; {len(busy)} instance"
                                    f"{'s' if len(busy) != 1 else ''} finishing what "
                                    f"{'they' if len(busy) != 1 else 'it'} started",
                                    done=len(members) - len(busy), total=len(members), at=_now())
        except TimedOut as exc:
            counts = self._counts(plan, self._managed(plan, what))
            return (f"{sent}group {mig_name}'s update is stopped (update policy OPPORTUNISTIC: "
                    f"it replaces nothing more until its next update) but its versions are not "
                    f"pinned: {exc}; it has {self._describe_counts(plan, counts)}")
        # 3. Versions that hold each template's count: the group is stable where it stands.
        counts = self._counts(plan, members)
        if not counts or len(counts) > MAX_VERSIONS:
            return (f"{sent}group {mig_name}'s update is stopped (update policy OPPORTUNISTIC: "
                    "it replaces nothing more until its next update); it stays on "
                    f"{self._describe_counts(plan, counts)}, on {len(counts)} templates, so "
                    "FleetView left its versions as they are and it shows as updating")
        names = {template_path(v.instance_template, self.project): v.name
                 for v in mig.versions}
        keep = p["template"] if p["template"] in counts else max(
            counts, key=lambda t: (counts[t], t))
        order = [keep] + sorted(t for t in counts if t != keep)
        versions = [compute_v1.InstanceGroupManagerVersion(
            instance_template=t, **({"name": names[t]} if names.get(t) else {}),
            **({} if t == keep else {"target_size": compute_v1.FixedOrPercent(
                fixed=counts[t])}))
            for t in order]
        op = self._mig_call(
            plan, "patch_unary", "compute.instanceGroupManagers.update", what,
            instance_group_manager_resource=compute_v1.InstanceGroupManager(versions=versions),
            request_id=request_id(p["action_id"], "stop-pin"))
        self._wait_operation(op, what)
        pinned = ", versions pinned to these counts" if len(counts) > 1 else ""
        return (f"{sent}group {mig_name} stays on {self._describe_counts(plan, counts)}; it "
                f"replaces nothing more until its next update (update policy OPPORTUNISTIC"
                f"{pinned})")
