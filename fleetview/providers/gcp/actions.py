"""GCP actions: plan and execute replacing a MIG instance and rolling a MIG back to a version."""

from __future__ import annotations

import hashlib
import math
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime

from google.cloud import compute_v1

from fleetview.domain.actions import ActionPlan, ActionRefused, PlanStep, ProgressEvent
from fleetview.domain.errors import ProviderError
from fleetview.domain.model import Group, Image, Instance, Inventory
from fleetview.domain.versions import VersionRules, version_key
from fleetview.providers.gcp.clients import Compute, NotFoundError, TransientError
from fleetview.providers.gcp.inventory import (
    UNUSABLE_IMAGE_STATES,
    Poller,
    Template,
    image_from_pb,
    last,
    template_from_pb,
    template_path,
)

# requestIds are uuid5s under this namespace: the same action and step always send the same
# id, so a retried step is ignored by Compute instead of acting twice.
REQUEST_NAMESPACE = uuid.UUID("5b0f6d1e-3c1a-4b7e-9d53-6f1e0c2a9a41")
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


def group_of(inventory: Inventory, instance: Instance) -> Group | None:
    matches = [g for g in inventory.groups
               if g.name == instance.group and g.region == instance.region
               and (g.zone is None or g.zone == instance.zone)]
    return matches[0] if matches else None


def group_instances(inventory: Inventory, group: Group) -> list[Instance]:
    return [i for i in inventory.instances
            if i.group == group.name and i.region == group.region
            and (group.zone is None or i.zone == group.zone)]


class Actions:
    """Plans are computed from an inventory (plus reads); execute makes the mutating calls."""

    def __init__(self, config, rules: VersionRules, compute: Compute, poller: Poller,
                 sleep: Callable[[float], None], poll_interval_s: float, timeout_s: float):
        self.config = config
        self.rules = rules
        self.compute = compute
        self.poller = poller
        self.sleep = sleep
        self.poll_interval_s = poll_interval_s
        self.timeout_s = timeout_s

    @property
    def project(self) -> str:
        return self.config.project

    # -- plans ---------------------------------------------------------------------------

    def _refuse_read_only(self) -> None:
        if not self.config.actions:
            raise ActionRefused(f"scope {self.config.name} is read-only; set actions = true in "
                                "its [[gcp]] section of the config to allow replace and rollback")

    def _mig_location(self, group: Group) -> dict[str, str | None]:
        return {"mig": group.name, "mig_zone": group.zone,
                "mig_region": None if group.zone else group.region}

    def plan_replace(self, inventory: Inventory, instance_id: str) -> ActionPlan:
        self._refuse_read_only()
        inst = inventory.instance(instance_id)
        if inst is None:
            raise ActionRefused(f"instance {instance_id} is not in the last poll of scope "
                                f"{self.config.name}; poll again and pick it from the new list")
        if inst.group is None:
            raise ActionRefused(f"instance {inst.name} is standalone (not in a managed instance "
                                "group): nothing would recreate it from a known image, so "
                                "FleetView replaces only MIG instances")
        group = group_of(inventory, inst)
        if group is None:
            raise ActionRefused(f"the managed instance group {inst.group} of {inst.name} is not "
                                "in the last poll; poll again")
        if group.updating:
            raise ActionRefused(f"group {group.name} has an update under way; wait until it is "
                                "stable, then replace the instance")
        image = inventory.images.get(group.desired_image_id or "")
        if image is not None and image.gone:
            raise ActionRefused(f"group {group.name}'s template boots from image {image.name}, "
                                "which no longer exists: a recreated instance would fail to "
                                "start; roll the group to an existing version first")
        members = group_instances(inventory, group)
        size = max(group.target_size, len(members), 1)
        notes = []
        if group.canary_image_id:
            notes.append(f"the group runs a canary version ({group.canary_version}); the group "
                         "picks which version the recreated instance gets")
        if size == 1:
            notes.append("the group has one instance: nothing serves while it is recreated")
        aid = action_id(self.config.name, "replace", f"{group.name}/{inst.id}",
                        inventory.polled_at)
        return ActionPlan(
            kind="replace", provider="gcp", scope=self.config.name, region=inst.region,
            group=group.name, instances=(inst.id,),
            from_versions=(inst.version,) if inst.version else (),
            to_version=group.desired_version, to_image_id=group.desired_image_id,
            steps=(
                PlanStep("recreate", f"recreate {inst.name} in {group.name} "
                         "(instanceGroupManagers.recreateInstances)", (inst.id,)),
                PlanStep("track", f"wait until {inst.name} runs again under a new id",
                         (inst.id,)),
            ),
            mechanism="recreate-instances", batch_size=1,
            min_healthy_percent=int(100 * (size - 1) / size),
            capacity_kept=f"{size - 1} of {size} instances serve while {inst.name} is recreated",
            irreversible=(f"{inst.name}'s boot disk and anything stored on it are deleted; the "
                          "instance comes back with the same name and a new id",),
            notes=tuple(notes),
            params={"action_id": aid, "project": self.project, **self._mig_location(group),
                    "instance_name": inst.name, "instance_zone": inst.zone,
                    "instance_id": inst.id},
        )

    def plan_rollback(self, inventory: Inventory, group_name: str, region: str, version: str,
                      known_images: Mapping[str, Image] | None = None) -> ActionPlan:
        self._refuse_read_only()
        group = inventory.group(group_name, region)
        if group is None:
            raise ActionRefused(f"group {group_name} in {region} is not in the last poll of "
                                f"scope {self.config.name}; poll again")
        if group.kind != "mig":
            raise ActionRefused(f"{group_name} is not a managed instance group")
        if group.updating:
            raise ActionRefused(f"group {group.name} has an update under way; wait until it is "
                                "stable (or stop that update) before rolling back")
        members = group_instances(inventory, group)
        if group.desired_version == version and not group.canary_image_id and all(
                i.version == version for i in members):
            raise ActionRefused(f"group {group.name} already runs version {version}")

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
        surge = max(zones, math.ceil(group.target_size * SURGE_SHARE))
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
        if source is not None:
            first = (PlanStep("template", f"create instance template {template.name}: a copy "
                              f"of {source.name} booting image {image.name} "
                              "(instanceTemplates.insert)"),)
            notes = (f"no template boots image {image.name}: creates {template.path}, a copy "
                     f"of {source.path} with that image; FleetView does not delete it later",)
        return ActionPlan(
            kind="rollback", provider="gcp", scope=self.config.name, region=group.region,
            group=group.name,
            instances=tuple(i.id for i in members if i.version != version),
            from_versions=tuple(sorted(from_versions, key=version_key)),
            to_version=version, to_image_id=image.id,
            steps=first + (
                PlanStep("patch", f"set {group.name}'s versions to template {template.name} "
                         f"(image {image.name}), update policy PROACTIVE, REPLACE, maxSurge "
                         f"{surge}, maxUnavailable 0"),
                PlanStep("track", f"wait until every instance of {group.name} runs "
                         f"{template.name} and the group is stable"),
            ),
            mechanism="mig-update", batch_size=surge, min_healthy_percent=100,
            capacity_kept=(f"all {size} instances keep serving: up to {surge} new "
                           f"instance{'s' if surge != 1 else ''} start beside them at a time"),
            irreversible=("each replaced instance's boot disk and local data are deleted",
                          f"the group's current versions ({', '.join(last(p) for p in current)}) "
                          "are replaced; going forward again needs another update"),
            notes=notes + (
                (f"image {image.name} is deprecated; it still boots",) if image.deprecated
                else ()),
            params={"action_id": aid, "project": self.project, **self._mig_location(group),
                    "template": template.path, "template_name": template.name,
                    "image_id": image.id, "max_surge": surge, "max_unavailable": 0,
                    "previous_templates": current,
                    **({"template_source": source.path} if source is not None else {})},
        )

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
        existing = self._template_pb(path, f"looking for instance template {path}")
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

    # -- execution -----------------------------------------------------------------------

    def execute(self, plan: ActionPlan, done: Iterable[str] = ()) -> Iterator[ProgressEvent]:
        if plan.provider != "gcp" or plan.scope != self.config.name:
            raise ActionRefused(f"this plan is for {plan.provider} scope {plan.scope}, not gcp "
                                f"scope {self.config.name}")
        self._refuse_read_only()
        return self._run(plan, set(done))

    def _run(self, plan: ActionPlan, done: set[str]) -> Iterator[ProgressEvent]:
        runners = {("replace", "recreate"): self._recreate, ("replace", "track"): self._track_replace,
                   ("rollback", "template"): self._create_template,
                   ("rollback", "patch"): self._patch, ("rollback", "track"): self._track_rollback}
        for step in plan.steps:
            if step.key in done:
                continue
            run = runners.get((plan.kind, step.key))
            if run is None:
                raise ActionRefused(f"step {step.key!r} of a {plan.kind} is unknown to this "
                                    "version of FleetView")
            yield ProgressEvent(step.key, "started", step.description, at=_now())
            try:
                message = yield from run(plan, step)
            except ProviderError as exc:
                yield ProgressEvent(step.key, "failed", str(exc), at=_now())
                yield ProgressEvent(None, "failed", str(exc), at=_now())
                return
            yield ProgressEvent(step.key, "done", message or step.description, at=_now())
        yield ProgressEvent(None, "finished", f"{plan.kind} of {plan.group} finished", at=_now())

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
        project = self.project
        waited = 0.0
        while op.status != compute_v1.Operation.Status.DONE:
            if waited >= self.timeout_s:
                raise ProviderError(f"{what}: operation {op.name} still runs after "
                                    f"{waited:.0f} s; check it in the console")
            self.sleep(self.poll_interval_s)
            waited += self.poll_interval_s
            if op.zone:
                op = self.compute.call("zone_ops", "get", "compute.zoneOperations.get", what,
                                       project=project, zone=last(op.zone), operation=op.name)
            elif op.region:
                op = self.compute.call("region_ops", "get", "compute.regionOperations.get",
                                       what, project=project, region=last(op.region),
                                       operation=op.name)
            else:
                op = self.compute.call("global_ops", "get", "compute.globalOperations.get",
                                       what, project=project, operation=op.name)
        if op.error and op.error.errors:
            detail = "; ".join(f"{e.code}: {e.message}" for e in op.error.errors)
            raise ProviderError(f"{what} failed: {detail}")

    def _recreate(self, plan: ActionPlan, step: PlanStep):
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
        yield  # a generator, like every step runner

    def _track_replace(self, plan: ActionPlan, step: PlanStep):
        p = plan.params
        what = f"checking {p['instance_name']}"
        waited = 0.0
        while True:
            try:
                inst = self.compute.call("instances", "get", "compute.instances.get", what,
                                         project=p["project"], zone=p["instance_zone"],
                                         instance=p["instance_name"])
                status = inst.status
            except NotFoundError:
                inst, status = None, "absent"
            except TransientError as exc:
                # The recreate goes on without us: keep watching until the timeout.
                inst, status = None, f"not checked this time ({exc})"
            back = inst is not None and str(inst.id) != p["instance_id"] and \
                inst.status == "RUNNING"
            yield ProgressEvent(step.key, "progress",
                                f"{p['instance_name']}: {status}" +
                                (f" as {inst.id}" if back else ""),
                                done=1 if back else 0, total=1, at=_now())
            if back:
                return f"{p['instance_name']} runs again as instance {inst.id}"
            if waited >= self.timeout_s:
                raise ProviderError(f"{p['instance_name']} is not running again after "
                                    f"{waited:.0f} s; check group {p['mig']} in the console")
            self.sleep(self.poll_interval_s)
            waited += self.poll_interval_s

    def _template_pb(self, path: str, what: str):
        """A template as a raw message, read now (not from the poll cache); None if absent."""
        parts = path.split("/")
        try:
            if parts[2] == "regions":
                reply = self.compute.call("region_templates", "get",
                                          "compute.instanceTemplates.get", what,
                                          project=parts[1], region=parts[3],
                                          instance_template=parts[-1])
            else:
                reply = self.compute.call("templates", "get", "compute.instanceTemplates.get",
                                          what, project=parts[1], instance_template=parts[-1])
        except NotFoundError:
            return None
        return type(reply).pb(reply)

    def _existing_template(self, plan: ActionPlan, what: str) -> bool:
        """Whether the planned template exists already (a resumed step); a template of that
        name with another image is an error, not something to use."""
        p = plan.params
        existing = self._template_pb(p["template"], what)
        if existing is None:
            return False
        found = template_from_pb(existing, self.project)
        if found.image_id != p["image_id"]:
            raise ProviderError(f"instance template {p['template']} exists but boots "
                                f"{found.source_image}, not {last(p['image_id'])}; delete or "
                                "rename it, then plan the rollback again")
        return True

    def _create_template(self, plan: ActionPlan, step: PlanStep):
        p = plan.params
        what = f"creating instance template {p['template_name']}"
        if self._existing_template(plan, what):
            return f"template {p['template_name']} exists already; it is used as it is"
        source = self._template_pb(p["template_source"], what)
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
        yield  # a generator, like every step runner

    def _patch(self, plan: ActionPlan, step: PlanStep):
        p = plan.params
        what = f"updating group {p['mig']}"
        mig = self._mig_call(plan, "get", "compute.instanceGroupManagers.get", what)
        templates = [template_path(v.instance_template, self.project) for v in mig.versions]
        if templates != [p["template"]]:
            if sorted(templates) != sorted(p["previous_templates"]):
                raise ProviderError(f"group {p['mig']} changed since the plan was made (its "
                                    f"templates are now {', '.join(map(last, templates))}); "
                                    "plan the rollback again")
            if not mig.status.is_stable or not mig.status.version_target.is_reached:
                raise ProviderError(f"group {p['mig']} has an update under way; wait until it "
                                    "is stable and plan again")
        body = compute_v1.InstanceGroupManager(
            versions=[compute_v1.InstanceGroupManagerVersion(
                instance_template=p["template"], name="fleetview-rollback")],
            update_policy=compute_v1.InstanceGroupManagerUpdatePolicy(
                type_="PROACTIVE", minimal_action="REPLACE",
                max_surge=compute_v1.FixedOrPercent(fixed=int(p["max_surge"])),
                max_unavailable=compute_v1.FixedOrPercent(fixed=int(p["max_unavailable"]))),
        )
        op = self._mig_call(plan, "patch_unary", "compute.instanceGroupManagers.update", what,
                            instance_group_manager_resource=body,
                            request_id=request_id(p["action_id"], step.key))
        self._wait_operation(op, what)
        return f"group {p['mig']} now wants template {p['template_name']}"
        yield  # a generator, like every step runner

    def _track_rollback(self, plan: ActionPlan, step: PlanStep):
        p = plan.params
        what = f"tracking group {p['mig']}"
        waited = 0.0
        on_target = total = 0
        while True:
            try:
                mig = self._mig_call(plan, "get", "compute.instanceGroupManagers.get", what)
                templates = [template_path(v.instance_template, self.project)
                             for v in mig.versions]
                if templates != [p["template"]]:
                    raise ProviderError(
                        f"group {p['mig']}'s versions were changed by someone else during the "
                        f"rollback (now {', '.join(map(last, templates))})")
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
                # The rollout goes on without us: keep watching until the timeout.
                finished, message = False, f"not checked this time ({exc})"
            yield ProgressEvent(step.key, "progress", message, done=min(on_target, total),
                                total=total, at=_now())
            if finished:
                return f"every instance of {p['mig']} runs {p['template_name']}"
            if waited >= self.timeout_s:
                raise ProviderError(f"group {p['mig']} has not converged after {waited:.0f} s "
                                    f"({on_target} of {total} done); it keeps updating on its "
                                    "own: watch it in FleetView or the console")
            self.sleep(self.poll_interval_s)
            waited += self.poll_interval_s

    def _managed_pages(self, plan: ActionPlan, what: str):
        p = plan.params
        request = {"project": p["project"], "instance_group_manager": p["mig"],
                   "max_results": 500}
        if p.get("mig_zone"):
            return self.compute.pages("migs", "list_managed_instances",
                                      "compute.instanceGroupManagers.get", what,
                                      {**request, "zone": p["mig_zone"]})
        return self.compute.pages("region_migs", "list_managed_instances",
                                  "compute.instanceGroupManagers.get", what,
                                  {**request, "region": p["mig_region"]})
