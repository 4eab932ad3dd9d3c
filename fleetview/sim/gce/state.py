"""The emulator's in-memory Compute Engine: resources, seeding, and behaviour over emulated time."""

from __future__ import annotations

import copy
import itertools
import re
import threading
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from fleetview.sim.gce import errors, migs
from fleetview.sim.gce.audit import AuditLog
from fleetview.sim.gce.clock import EmulatedClock
from fleetview.sim.gce.faults import Faults
from fleetview.sim.gce.resources import (
    Image,
    Instance,
    InstanceTemplate,
    Operation,
    image_link,
    region_of,
    strip_base,
    template_link,
)

DEFAULT_PROJECT = "demo-project"
DEFAULT_ZONES = ("us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f",
                 "europe-west1-b", "europe-west1-c", "europe-west1-d")

Created = float | datetime | timedelta | None
# Resource names, as the API checks them (RFC 1035, at most 63 characters).
_NAME = re.compile(r"[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?")


class GceState:
    """A Compute Engine in memory. Every public method is thread-safe.

    Seeding methods (create_image, create_instance_template, create_mig, create_instance, ...)
    take plain names; `created` back-dates a resource: an epoch float, a datetime, or a
    timedelta meaning "that long before the clock's now".
    """

    def __init__(self, clock: EmulatedClock | None = None, *, project: str = DEFAULT_PROJECT,
                 zones: tuple[str, ...] | list[str] = DEFAULT_ZONES,
                 step_seconds: float = 30.0, delete_seconds: float = 10.0,
                 op_seconds: float = 1.0) -> None:
        self.lock = threading.RLock()
        self.clock = clock or EmulatedClock()
        self.faults = Faults()
        # Admin Activity audit entries of every operation (sim/gce/audit.py).
        self.audit = AuditLog()
        self.project = project
        self.step_seconds = step_seconds
        self.delete_seconds = delete_seconds
        self.op_seconds = op_seconds
        self.calls: Counter[str] = Counter()
        self.zones: list[str] = sorted(set(zones))
        self._ids = itertools.count(4_611_686_018_427_387_904 + 1)
        self._op_seq = itertools.count(1)
        self.images: dict[str, dict[str, Image]] = {}
        self.templates: dict[str, dict[tuple[str | None, str], InstanceTemplate]] = {}
        # project -> zone -> name -> Instance; zones kept in sorted order on insert
        self.instances: dict[str, dict[str, dict[str, Instance]]] = {}
        self.groups: dict[str, dict[tuple[str, str], migs.ManagedGroup]] = {}
        self.operations: dict[str, dict[str, Operation]] = {}
        self.request_ops: dict[tuple[str, str], Operation] = {}
        self._unsettled: set[tuple[str, str, str]] = set()
        self.projects: set[str] = {project}

    # ---- time -----------------------------------------------------------------------------

    def now(self) -> float:
        return self.clock.now()

    def tick(self) -> float:
        """Bring every group with work under way up to the clock's now; returns now."""
        with self.lock:
            now = self.clock.now()
            for key in list(self._unsettled):
                group = self.groups[key[0]].get((key[1], key[2]))
                if group is None:
                    self._unsettled.discard(key)
                    continue
                migs.advance(group, now, self)
                if not group.busy() and len(group.active()) == group.target_size and (
                        group.update_policy.get("type") != "PROACTIVE" or group.is_reached()):
                    self._unsettled.discard(key)
            return now

    def _unsettle(self, group: migs.ManagedGroup) -> None:
        self._unsettled.add((group.project, group.scope, group.name))

    def _when(self, created: Created) -> float:
        if created is None:
            return self.clock.now()
        if isinstance(created, timedelta):
            return self.clock.now() - created.total_seconds()
        if isinstance(created, datetime):
            return created.timestamp()
        return float(created)

    def new_id(self) -> int:
        return next(self._ids)

    # ---- seeding: zones, images, templates ------------------------------------------------

    def add_project(self, project: str) -> None:
        """Make a project exist (seeding into a project adds it too); others answer 404."""
        with self.lock:
            self.projects.add(project)

    def check_project(self, project: str) -> None:
        if project not in self.projects:
            raise errors.not_found(f"projects/{project}")

    def add_zone(self, zone: str) -> None:
        with self.lock:
            if zone not in self.zones:
                self.zones.append(zone)
                self.zones.sort()

    def regions(self) -> list[str]:
        return sorted({region_of(z) for z in self.zones})

    def create_image(self, name: str, *, family: str | None = None,
                     labels: dict[str, str] | None = None, deprecated: str | dict | None = None,
                     created: Created = None, description: str = "",
                     project: str | None = None) -> dict[str, Any]:
        project = project or self.project
        self.projects.add(project)
        with self.lock:
            images = self.images.setdefault(project, {})
            if name in images:
                raise errors.already_exists(f"projects/{project}/global/images/{name}")
            image = Image(project, name, self.new_id(), self._when(created), family,
                          dict(labels or {}), description)
            images[name] = image
            if deprecated:
                self.deprecate_image(name, deprecated, project=project)
            return image.to_json()

    def deprecate_image(self, name: str, state: str | dict = "DEPRECATED", *,
                        replacement: str | None = None,
                        project: str | None = None) -> dict[str, Any]:
        project = project or self.project
        self.projects.add(project)
        with self.lock:
            image = self.image(project, name)
            if isinstance(state, dict):
                image.deprecated = (dict(state) if state.get("state") not in (None, "ACTIVE")
                                    else None)
            elif state == "ACTIVE":
                image.deprecated = None
            else:
                image.deprecated = {"state": state}
                if replacement:
                    image.deprecated["replacement"] = self._resolve_image(project, replacement)
            return image.to_json()

    def delete_image(self, name: str, *, project: str | None = None) -> None:
        """Delete an image; disks made from it keep their sourceImage link, as in GCE."""
        project = project or self.project
        with self.lock:
            self.image(project, name)
            del self.images[project][name]

    def image(self, project: str, name: str) -> Image:
        image = self.images.get(project, {}).get(name)
        if image is None:
            raise errors.not_found(f"projects/{project}/global/images/{name}")
        return image

    def image_from_family(self, project: str, family: str) -> Image:
        with self.lock:
            candidates = [i for i in self.images.get(project, {}).values()
                          if i.family == family and not i.is_deprecated]
            if not candidates:
                raise errors.not_found(f"projects/{project}/global/images/family/{family}")
            return max(candidates, key=lambda i: (i.created, i.id))

    def _resolve_image(self, project: str, ref: str) -> str:
        """An image reference as users write it -> a full link (family links stay family)."""
        path = strip_base(ref)
        if not path.startswith("projects/"):
            path = f"projects/{project}/global/images/{path}"
        parts = path.split("/")
        if len(parts) >= 5 and parts[2:4] == ["global", "images"]:
            if parts[4] == "family":
                self.image_from_family(parts[1], parts[5])
                return f"https://www.googleapis.com/compute/v1/{path}"
            return self.image(parts[1], parts[4]).link
        raise errors.invalid(f"Invalid value for field 'sourceImage': '{ref}'.")

    def _image_at_creation(self, project: str, link: str) -> tuple[str, int | None]:
        """The image a new disk gets from a template's sourceImage: families resolve now.

        A missing image keeps its link with no id; creation_error says why creating fails.
        """
        path = strip_base(link)
        parts = path.split("/")
        if len(parts) >= 6 and parts[4] == "family":
            candidates = [i for i in self.images.get(parts[1], {}).values()
                          if i.family == parts[5] and not i.is_deprecated]
            if not candidates:
                return link, None
            image = max(candidates, key=lambda i: (i.created, i.id))
            return image.link, image.id
        image = self.images.get(parts[1], {}).get(parts[-1])
        return link, image.id if image else None

    def creation_error(self, project: str, template_link: str) -> str | None:
        """Why an instance cannot be made from a template now (its image is gone), or None."""
        tmpl = self.resolve_template(project, template_link)
        _, image_id = self._image_at_creation(project, tmpl.source_image)
        if image_id is None:
            return f"The resource '{strip_base(tmpl.source_image)}' was not found"
        return None

    def create_instance_template(self, name: str, image: str, *, region: str | None = None,
                                 machine_type: str = "e2-medium",
                                 labels: dict[str, str] | None = None,
                                 created: Created = None, description: str = "",
                                 scheduling: dict[str, Any] | None = None,
                                 project: str | None = None) -> dict[str, Any]:
        """A template whose boot disk comes from `image` (a name, 'family/F', or a link);
        `scheduling` in the API's shape, e.g. {"provisioningModel": "SPOT"}."""
        project = project or self.project
        self.projects.add(project)
        with self.lock:
            templates = self.templates.setdefault(project, {})
            if (region, name) in templates:
                raise errors.already_exists(strip_base(template_link(project, name, region)))
            template = InstanceTemplate(project, name, self.new_id(), self._when(created),
                                        self._resolve_image(project, image), machine_type,
                                        region, dict(labels or {}), description,
                                        scheduling=dict(scheduling) if scheduling else None)
            templates[(region, name)] = template
            return template.to_json()

    def insert_instance_template(self, body: dict[str, Any], *, region: str | None = None,
                                 project: str | None = None) -> InstanceTemplate:
        """instanceTemplates.insert: a template from the API's request body, checked as GCE
        checks it (name, machine type, a boot disk from an existing image)."""
        project = project or self.project
        if not isinstance(body, dict):
            raise errors.invalid("Invalid JSON payload received: an InstanceTemplate object.")
        name = body.get("name")
        if not name:
            raise errors.invalid("Required field 'resource.name' not specified")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise errors.invalid(f"Invalid value for field 'resource.name': '{name}'. Must be a "
                                 f"match of regex '{_NAME.pattern}'")
        properties = body.get("properties")
        if not isinstance(properties, dict):
            raise errors.invalid("Required field 'resource.properties' not specified")
        if not properties.get("machineType"):
            raise errors.invalid("Required field 'resource.properties.machineType' not "
                                 "specified")
        disks = properties.get("disks") or []
        boot = next((i for i, d in enumerate(disks) if d.get("boot")), 0 if disks else None)
        if boot is None:
            raise errors.invalid("Invalid value for field 'resource.properties.disks': ''. "
                                 "Boot disk must be specified.")
        source = (disks[boot].get("initializeParams") or {}).get("sourceImage")
        if not source:
            raise errors.invalid(
                f"Required field 'resource.properties.disks[{boot}].initializeParams."
                "sourceImage' not specified")
        with self.lock:
            image = self._resolve_image(project, source)  # 404 for an image that is gone
            templates = self.templates.setdefault(project, {})
            if (region, name) in templates:
                raise errors.already_exists(strip_base(template_link(project, name, region)))
            template = InstanceTemplate(
                project, name, self.new_id(), self.clock.now(), image,
                properties["machineType"].rstrip("/").rsplit("/", 1)[-1], region,
                dict(properties.get("labels") or {}), body.get("description", ""),
                properties=copy.deepcopy(properties))
            templates[(region, name)] = template
            return template

    def delete_instance_template(self, name: str, *, region: str | None = None,
                                 project: str | None = None) -> None:
        project = project or self.project
        with self.lock:
            template = self.template(project, name, region)
            for group in self.groups.get(project, {}).values():
                if any(v.template == template.link for v in group.versions):
                    raise errors.GceError(
                        400, "resourceInUseByAnotherResource",
                        f"The instance_template resource '{strip_base(template.link)}' is "
                        f"already being used by '{group.path}'")
            del self.templates[project][(region, name)]

    def template(self, project: str, name: str, region: str | None = None) -> InstanceTemplate:
        template = self.templates.get(project, {}).get((region, name))
        if template is None:
            raise errors.not_found(strip_base(template_link(project, name, region)))
        return template

    def resolve_template(self, project: str, ref: str) -> InstanceTemplate:
        """A template reference (name, partial path or full link) -> the template."""
        path = strip_base(ref)
        parts = path.split("/")
        if parts[0] == "projects" and len(parts) > 2:
            project, parts = parts[1], parts[2:]
        if len(parts) == 1:
            return self.template(project, parts[0])
        if parts[0] == "global" and len(parts) == 3:
            return self.template(project, parts[2])
        if parts[0] == "regions" and len(parts) == 4:
            return self.template(project, parts[3], parts[1])
        raise errors.invalid(f"Invalid value for field 'instanceTemplate': '{ref}'.")

    # ---- seeding: instances and groups ----------------------------------------------------

    def create_instance(self, name: str, zone: str, image: str, *,
                        labels: dict[str, str] | None = None, machine_type: str = "e2-medium",
                        status: str = "RUNNING", created: Created = None,
                        scheduling: dict[str, Any] | None = None,
                        project: str | None = None) -> dict[str, Any]:
        """A standalone instance (no group) whose boot disk comes from `image`; `scheduling`
        as for templates."""
        project = project or self.project
        self.projects.add(project)
        with self.lock:
            self.add_zone(zone)
            zone_instances = self._zone_instances(project, zone)
            if name in zone_instances:
                raise errors.already_exists(f"projects/{project}/zones/{zone}/instances/{name}")
            link, image_id = self._image_at_creation(project, self._resolve_image(project, image))
            inst = Instance(project, zone, name, self.new_id(), self._when(created), link,
                            image_id, machine_type, status, dict(labels or {}),
                            scheduling=dict(scheduling) if scheduling else None)
            zone_instances[name] = inst
            self.audit.instance_inserted(inst, inst.created)
            return inst.to_json()

    def _zone_instances(self, project: str, zone: str) -> dict[str, Instance]:
        zones = self.instances.setdefault(project, {})
        if zone not in zones:
            zones[zone] = {}
            self.instances[project] = dict(sorted(zones.items()))
        return self.instances[project][zone]

    def create_mig(self, name: str, template: str, *, zone: str | None = None,
                   region: str | None = None, zones: list[str] | None = None,
                   target_size: int = 3, base_instance_name: str | None = None,
                   versions: list[dict[str, Any]] | None = None,
                   update_policy: dict[str, Any] | None = None, created: Created = None,
                   description: str = "", stateful_disks: list[str] | None = None,
                   target_shape: str = "EVEN", project: str | None = None) -> dict[str, Any]:
        """A zonal (zone=) or regional (region=, zones= to pick its zones) managed group.

        Its instances exist at once, RUNNING, created at `created`. `versions` is the API's
        shape ([{"instanceTemplate": ..., "name": ..., "targetSize": {"fixed": 1}}, ...]);
        without it the group runs `template` alone. `stateful_disks` are device names its
        stateful policy preserves ("persistent-disk-0" is the boot disk); `target_shape` a
        regional group's distribution (EVEN, BALANCED, ANY, ANY_SINGLE_ZONE).
        """
        project = project or self.project
        self.projects.add(project)
        if (zone is None) == (region is None):
            raise ValueError("give exactly one of zone= or region=")
        with self.lock:
            if zone:
                self.add_zone(zone)
                group_zones = [zone]
            else:
                group_zones = sorted(zones) if zones else [
                    z for z in self.zones if region_of(z) == region][:3]
                if not group_zones:
                    raise ValueError(f"no zones known in region {region}")
                for z in group_zones:
                    self.add_zone(z)
            scope = f"zones/{zone}" if zone else f"regions/{region}"
            groups = self.groups.setdefault(project, {})
            if (scope, name) in groups:
                raise errors.already_exists(
                    f"projects/{project}/{scope}/instanceGroupManagers/{name}")
            when = self._when(created)
            tmpl = self.resolve_template(project, template)
            group = migs.ManagedGroup(
                project=project, name=name, id=self.new_id(), created=when, zone=zone,
                region=region, zones=group_zones, base_instance_name=base_instance_name or name,
                versions=(self._versions(project, versions) if versions
                          else [migs.Version(tmpl.link)]),
                target_size=target_size, update_policy=migs.default_update_policy(
                    len(group_zones), stateful=bool(stateful_disks), target_shape=target_shape),
                description=description, sim_t=when, target_shape=target_shape,
                stateful_disks={d: {"autoDelete": "NEVER"} for d in stateful_disks or ()})
            if update_policy:
                group.update_policy = self._merge_policy(group.update_policy, update_policy)
                _check_policy(group.update_policy, len(group_zones), region is not None,
                              stateful=group.stateful, target_shape=target_shape)
            groups[(scope, name)] = group
            self.audit.group_called(group, "insert", {
                "name": name, "baseInstanceName": group.base_instance_name,
                "versions": [{"instanceTemplate": strip_base(v.template)} for v in group.versions],
                "targetSize": target_size}, when)
            # Seeded instances are born finished: schedule at creation, then settle at once.
            steps = self.step_seconds, self.delete_seconds
            self.step_seconds = self.delete_seconds = 0.0
            try:
                migs.advance(group, when, self)
            finally:
                self.step_seconds, self.delete_seconds = steps
            group.sim_t = max(when, self.clock.now())
            return group.to_json()

    def _versions(self, project: str, versions: list[dict[str, Any]]) -> list[migs.Version]:
        out = []
        for v in versions:
            tmpl = self.resolve_template(project, v["instanceTemplate"])
            ts = v.get("targetSize")
            ts = {k: int(x) for k, x in ts.items() if k in ("fixed", "percent")} if ts else None
            out.append(migs.Version(tmpl.link, v.get("name", ""), ts or None))
        sized = [v for v in out if v.target_size is None]
        if len(sized) > 1:
            raise errors.invalid("Exactly one version must leave targetSize unset.")
        if not sized and out:
            # The API wants one version to take the remainder; the last one does here.
            out[-1].target_size = None
        # Kept in the order the request gave, as GCE does: readers must not assume the
        # version that takes the remainder comes first or last.
        return out

    @staticmethod
    def _merge_policy(base: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
        merged = dict(base)
        for key, value in change.items():
            if key in ("maxSurge", "maxUnavailable"):
                merged[key] = {k: int(x) for k, x in value.items() if k in ("fixed", "percent")}
            else:
                merged[key] = value
        return merged

    def backdate_instance(self, zone: str, name: str, created: Created, *,
                          project: str | None = None) -> dict[str, Any]:
        """Set an instance's creationTimestamp (demo history)."""
        project = project or self.project
        self.projects.add(project)
        with self.lock:
            inst = self.instance(project, zone, name)
            inst.created = self._when(created)
            inst.touch()
            self.audit.move_instance(project, str(inst.id), inst.created)
            return inst.to_json()

    def backdate_group(self, name: str, created: Created, *, spread: float = 0.0,
                       project: str | None = None) -> None:
        """Set the creation time of a group and its current instances (demo history).

        `spread` seconds apart per instance, oldest first, like a rollout that happened then.
        """
        with self.lock:
            self.tick()
            group = self.find_group(name, project=project)
            when = self._when(created)
            group.created = when
            for i, member in enumerate(sorted(group.members.values(), key=lambda m: m.name)):
                inst = self.instance_or_none(group.project, member.zone, member.name)
                if inst is not None:
                    inst.created = when + i * spread
                    inst.touch()
                    self.audit.move_instance(group.project, str(inst.id), inst.created)

    # ---- groups: the actions the API exposes (also usable directly by seeding) -----------

    def group(self, project: str, scope: str, name: str) -> migs.ManagedGroup:
        group = self.groups.get(project, {}).get((scope, name))
        if group is None:
            raise errors.not_found(f"projects/{project}/{scope}/instanceGroupManagers/{name}")
        return group

    def find_group(self, name: str, *, project: str | None = None) -> migs.ManagedGroup:
        """A group by name alone (seeding and tests); names are unique in practice."""
        project = project or self.project
        with self.lock:
            for (_, gname), group in self.groups.get(project, {}).items():
                if gname == name:
                    return group
        raise errors.not_found(f"projects/{project}/instanceGroupManagers/{name}")

    def patch_group(self, group: migs.ManagedGroup, body: dict[str, Any]) -> None:
        with self.lock:
            migs.advance(group, self.clock.now(), self)
            # Everything is checked before anything changes: a refused patch changes nothing.
            versions = group.versions
            if "versions" in body:
                versions = self._versions(group.project, body["versions"])
            elif "instanceTemplate" in body:
                versions = [migs.Version(
                    self.resolve_template(group.project, body["instanceTemplate"]).link)]
            policy = group.update_policy
            stateful_disks = group.stateful_disks
            if "statefulPolicy" in body:
                stateful_disks = {d: {"autoDelete": v.get("autoDelete", "NEVER")} for d, v in (
                    ((body["statefulPolicy"] or {}).get("preservedState") or {}).get("disks")
                    or {}).items()}
            if "updatePolicy" in body or "statefulPolicy" in body:
                policy = self._merge_policy(group.update_policy, body.get("updatePolicy") or {})
                _check_policy(policy, len(group.zones), group.region is not None,
                              stateful=bool(stateful_disks or group.per_instance_configs),
                              target_shape=group.target_shape)
            group.versions, group.update_policy = versions, policy
            group.stateful_disks = stateful_disks
            if "targetSize" in body:
                group.target_size = int(body["targetSize"])
            # Members already on a version's template take its (new) name without a replacement.
            for name, version in group.assign_targets().items():
                member = group.members[name]
                if member.template == version.template and member.pending is None:
                    member.version_name = version.name
            if "description" in body:
                group.description = body["description"]
            if "listManagedInstancesResults" in body:
                group.list_results = body["listManagedInstancesResults"]
            self.audit.group_called(group, "patch", body, self.clock.now())
            self._unsettle(group)
            migs.schedule(group, self.clock.now(), self)

    def set_per_instance_config(self, group_name: str, instance: str, disks: list[str], *,
                                project: str | None = None) -> None:
        """A per-instance config preserving `disks` (device names) of one member, as
        instanceGroupManagers.updatePerInstanceConfigs makes it; [] removes it."""
        with self.lock:
            group = self.find_group(group_name, project=project)
            if disks:
                group.per_instance_configs[instance] = {
                    "disks": {d: {"autoDelete": "NEVER"} for d in disks}}
            else:
                group.per_instance_configs.pop(instance, None)

    def resize_group(self, group: migs.ManagedGroup, size: int) -> None:
        if size < 0:
            raise errors.invalid("Invalid value for field 'size': must be >= 0.")
        with self.lock:
            migs.advance(group, self.clock.now(), self)
            group.target_size = size
            self._unsettle(group)
            migs.schedule(group, self.clock.now(), self)

    def recreate_in_group(self, group: migs.ManagedGroup, refs: list[str]) -> None:
        with self.lock:
            now = self.clock.now()
            migs.advance(group, now, self)
            members = []
            for ref in refs:
                name = ref.rstrip("/").split("/")[-1]
                member = group.members.get(name)
                if member is None or member.replaced_by is not None:
                    raise errors.invalid(
                        f"Instance '{ref}' is not a member of the managed instance group "
                        f"'{group.path}'.")
                if member.action != migs.NONE:
                    raise errors.resource_in_use(
                        f"The instance '{name}' is already {member.action.lower()} in "
                        f"'{group.path}'; wait for the current action to finish.")
                members.append(member)
            for member in members:
                migs.recreate(group, member, now, self)
            self._unsettle(group)

    # ---- instances as seen by the groups --------------------------------------------------

    def instance_or_none(self, project: str, zone: str, name: str) -> Instance | None:
        return self.instances.get(project, {}).get(zone, {}).get(name)

    def instance(self, project: str, zone: str, name: str) -> Instance:
        inst = self.instance_or_none(project, zone, name)
        if inst is None:
            raise errors.not_found(f"projects/{project}/zones/{zone}/instances/{name}")
        return inst

    def preempt(self, zone: str, name: str, *, project: str | None = None) -> dict[str, Any]:
        """Take a spot or preemptible VM back, as GCE does: it stops (TERMINATED, or is
        deleted when its instanceTerminationAction is DELETE) and a compute.instances.preempted
        system operation in its zone records it. Returns that operation."""
        project = project or self.project
        with self.lock:
            self.tick()
            inst = self.instance(project, zone, name)
            scheduling = inst.to_json()["scheduling"]
            if scheduling.get("provisioningModel") != "SPOT" and not scheduling.get("preemptible"):
                raise ValueError(f"{name} is neither spot nor preemptible: GCE does not "
                                 "preempt it")
            op = self.new_operation(project, "compute.instances.preempted", inst.link, inst.id,
                                    zone=zone, user="system",
                                    status_message="Instance was preempted.")
            op.done_at = op.inserted
            if scheduling.get("instanceTerminationAction") == "DELETE":
                self.drop_instance(project, zone, name)
            else:
                inst.status, inst.last_stop = "TERMINATED", self.clock.now()
                inst.touch()
            return op.to_json(self.clock.now())

    def set_instance_status(self, project: str, zone: str, name: str, status: str) -> None:
        inst = self.instance_or_none(project, zone, name)
        if inst is not None:
            inst.status = status
            inst.touch()

    def make_group_instance(self, group: migs.ManagedGroup, member: migs.Member, t: float,
                            status: str) -> None:
        """(Re)create a member's instance from its template: a new id, made at time t."""
        tmpl = self.resolve_template(group.project, member.template)
        link, image_id = self._image_at_creation(group.project, tmpl.source_image)
        kept = self.instance_or_none(group.project, member.zone, member.name)
        if kept is not None and tmpl.boot_device in group.preserved_disks(member.name):
            # A boot disk the group preserves (stateful) survives, with its image.
            link, image_id = kept.image, kept.image_id
        inst = Instance(group.project, member.zone, member.name, self.new_id(), t, link,
                        image_id, tmpl.machine_type, status, dict(tmpl.labels),
                        template=tmpl.link, created_by=group.link,
                        scheduling=tmpl.instance_scheduling)
        zone_instances = self._zone_instances(group.project, member.zone)
        old = zone_instances.get(member.name)
        if old is not None:  # recreated: GCE deletes the instance, then inserts its successor
            self.audit.instance_deleted(old, t, group=group)
        zone_instances[member.name] = inst
        self.audit.instance_inserted(inst, t, group=group, source_image=tmpl.source_image)

    def drop_instance(self, project: str, zone: str, name: str, *, at: float | None = None,
                      group: migs.ManagedGroup | None = None) -> None:
        inst = self.instances.get(project, {}).get(zone, {}).pop(name, None)
        if inst is not None:
            self.audit.instance_deleted(inst, self.clock.now() if at is None else at,
                                        group=group)

    # ---- operations -----------------------------------------------------------------------

    def new_operation(self, project: str, operation_type: str, target_link: str,
                      target_id: int | None, *, zone: str | None = None,
                      region: str | None = None, request_id: str | None = None,
                      user: str | None = None,
                      status_message: str | None = None) -> Operation:
        with self.lock:
            now = self.clock.now()
            seq = next(self._op_seq)
            op = Operation(project, f"operation-{int(now * 1000)}-{seq:06x}", self.new_id(),
                           operation_type, target_link, target_id, now, now + self.op_seconds,
                           zone, region, request_id, status_message=status_message)
            if user:
                op.user = user
            self.operations.setdefault(project, {})[op.name] = op
            if request_id:
                self.request_ops[(project, request_id)] = op
            return op

    def operation(self, project: str, scope: str, name: str) -> Operation:
        op = self.operations.get(project, {}).get(name)
        if op is None or _op_scope(op) != scope:
            raise errors.not_found(f"projects/{project}/{scope}/operations/{name}")
        return op

    # ---- reads for tests and the demo -----------------------------------------------------

    def list_instances(self, *, project: str | None = None) -> list[dict[str, Any]]:
        project = project or self.project
        with self.lock:
            self.tick()
            return [i.to_json() for zone in self.instances.get(project, {}).values()
                    for i in zone.values()]

    def mig(self, name: str, *, project: str | None = None) -> dict[str, Any]:
        with self.lock:
            self.tick()
            return self.find_group(name, project=project).to_json()

    def managed_instances(self, name: str, *, project: str | None = None) -> list[dict]:
        with self.lock:
            self.tick()
            group = self.find_group(name, project=project)
            return [group.managed_instance_json(m, self) for m in group.members.values()]

    def image_link(self, name: str, *, project: str | None = None) -> str:
        return image_link(project or self.project, name)

    def template_link(self, name: str, *, region: str | None = None,
                      project: str | None = None) -> str:
        return template_link(project or self.project, name, region)


def _op_scope(op: Operation) -> str:
    if op.zone:
        return f"zones/{op.zone}"
    if op.region:
        return f"regions/{op.region}"
    return "global"


def _check_policy(policy: dict[str, Any], zone_count: int, regional: bool, *,
                  stateful: bool = False, target_shape: str = "EVEN") -> None:
    """The update-policy rules the API enforces on a patch (400 invalid otherwise)."""
    surge, unavailable = policy.get("maxSurge", {}), policy.get("maxUnavailable", {})
    if stateful and policy.get("replacementMethod", "SUBSTITUTE") == "SUBSTITUTE":
        raise errors.invalid(
            "Invalid value for field 'resource.updatePolicy.replacementMethod': 'SUBSTITUTE'. "
            "A managed instance group with stateful configuration must use the RECREATE "
            "replacement method, which preserves instance names.")
    if regional and target_shape != "EVEN" and policy.get(
            "instanceRedistributionType") == "PROACTIVE":
        raise errors.invalid(
            "Invalid value for field 'resource.updatePolicy.instanceRedistributionType': "
            f"'PROACTIVE'. Proactive redistribution is not supported with target shape "
            f"{target_shape}; set it to NONE.")
    if policy.get("type") == "PROACTIVE" and all(
            v.get("fixed", 0) == 0 and v.get("percent", 0) == 0 for v in (surge, unavailable)):
        raise errors.invalid(
            "Invalid value for field 'resource.updatePolicy.maxUnavailable': 0. Fixed or "
            "percent value of maxUnavailable must be greater than 0 when maxSurge is 0.")
    if policy.get("replacementMethod") == "RECREATE" and (
            surge.get("fixed", 0) or surge.get("percent", 0)):
        raise errors.invalid(
            "Invalid value for field 'resource.updatePolicy.maxSurge': maxSurge must be 0 "
            "when replacementMethod is RECREATE.")
    if regional:
        for key, value in (("maxSurge", surge), ("maxUnavailable", unavailable)):
            fixed = value.get("fixed")
            if fixed is not None and 0 < fixed < zone_count:
                raise errors.invalid(
                    f"Invalid value for field 'resource.updatePolicy.{key}.fixed': {fixed}. "
                    f"Fixed {key} for a regional managed instance group must be 0 or at least "
                    f"equal to the number of zones ({zone_count}).")
