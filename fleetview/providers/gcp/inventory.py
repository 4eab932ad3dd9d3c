"""One GCP poll: aggregated lists of instances and MIGs, templates and images cached across
polls, within one deadline."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fleetview.domain.errors import ProviderError
from fleetview.domain.model import Image, Inventory, RegionError, Scope
from fleetview.providers.gcp.clients import Compute
from fleetview.providers.gcp.errors import NotFoundError, TransientError, foreign_answer
from fleetview.providers.gcp.shapes import (
    PREEMPTED,
    Template,
    boot_disk,
    group_from_pb,
    image_from_pb,
    instance_from_pb,
    instance_origin,
    last,
    lifecycle_of,
    mig_versions,
    region_of_zone,
    resource_path,
    template_from_pb,
    template_path,
)

PAGE_SIZE = 500  # the most Compute returns per page
IMAGE_TTL_S = 3600.0  # labels and deprecation can change; an image's content cannot
DISK_GET_LIMIT = 20  # past this many unknown boot disks one paged disk list is cheaper
# A family's newest image changes whenever an image is published to it: asked again this often.
FAMILY_TTL_S = 60.0
# GCE records taking a spot or preemptible VM back as a zonal system operation of this type.
PREEMPTED_FILTER = 'operationType="compute.instances.preempted"'


@dataclass
class PollState:
    """Caches kept across polls: templates never change, images seldom."""

    templates: dict[str, Template] = field(default_factory=dict)
    missing_templates: set[str] = field(default_factory=set)
    images: dict[str, tuple[float, Image, str]] = field(default_factory=dict)  # id -> (at, image, state)
    disk_images: dict[tuple[str, str], str | None] = field(default_factory=dict)
    regions_seen: tuple[str, ...] = ()
    # Images this account may not read (another project's): image id -> why; asked again
    # only when the image cache entry expires.
    unreadable: dict[str, str] = field(default_factory=dict)
    # family path -> (at, newest image id or None, why it could not be resolved)
    families: dict[str, tuple[float, str | None, str]] = field(default_factory=dict)
    # (instance id, lastStopTimestamp) of a stopped spot/preemptible VM -> its state reason
    stop_reasons: dict[tuple[str, str], str | None] = field(default_factory=dict)


class Poller:
    """Reads one scope. Calls go through `compute`, caches live in `state`."""

    def __init__(self, config, compute: Compute, state: PollState,
                 clock=time.monotonic):
        self.config = config
        self.compute = compute
        self.state = state
        self.clock = clock

    @property
    def project(self) -> str:
        return self.config.project

    # -- reading -------------------------------------------------------------------------

    def aggregated(self, client: str, attr: str, permission: str, what: str):
        """Every page of an aggregated list: [(scope key, [raw messages])], unreachable keys."""
        entries: list[tuple[str, list]] = []
        unreachable: set[str] = set()
        # google-cloud-compute cannot send returnPartialSuccess; without it Compute still
        # answers, marking an unreachable zone with an UNREACHABLE warning.
        request = {"project": self.project, "max_results": PAGE_SIZE}
        for pb in self.compute.pages(client, "aggregated_list", permission, what, request):
            if not pb.items:
                # Compute names every zone (or region) on every page, with a warning where
                # it has nothing: a page without `items` is not its answer.
                raise foreign_answer(self.config, self.compute.endpoint, what, "no items")
            for key, scoped in pb.items.items():
                if scoped.HasField("warning") and scoped.warning.code == "UNREACHABLE":
                    unreachable.add(key)
                entries.append((key, list(getattr(scoped, attr))))
            unreachable.update(pb.unreachables)
        return entries, unreachable

    def template_pb(self, path: str, what: str):
        """A template as a raw message, read now (not from the cache); None if absent."""
        parts = path.split("/")
        try:
            if parts[2] == "regions":
                reply = self.compute.call(
                    "region_templates", "get", "compute.instanceTemplates.get", what,
                    project=parts[1], region=parts[3], instance_template=parts[-1])
            else:
                reply = self.compute.call(
                    "templates", "get", "compute.instanceTemplates.get", what,
                    project=parts[1], instance_template=parts[-1])
        except NotFoundError:
            return None
        return type(reply).pb(reply)

    def template(self, path: str) -> Template | None:
        """A template by path, cached for good (templates are immutable); None if deleted."""
        cached = self.state.templates.get(path)
        if cached is not None or path in self.state.missing_templates:
            return cached
        pb = self.template_pb(path, f"reading instance template {path}")
        if pb is None:
            # Deleted for good (a MIG cannot use a deleted template): do not ask each poll.
            self.state.missing_templates.add(path)
            return None
        template = template_from_pb(pb, self.project)
        if not template.path:
            template = dataclasses.replace(template, path=path)
        self.state.templates[path] = template
        return template

    def image(self, image_id: str, fresh: bool = False) -> tuple[Image, str]:
        """An image and its deprecation state, cached for IMAGE_TTL_S unless `fresh`."""
        now = self.clock()
        cached = self.state.images.get(image_id)
        if cached is not None and not fresh and now - cached[0] < IMAGE_TTL_S:
            return cached[1], cached[2]
        parts = image_id.split("/")
        try:
            reply = self.compute.call("images", "get", "compute.images.get",
                                      f"reading image {image_id}",
                                      project=parts[1], image=parts[-1])
        except NotFoundError:
            image, state = Image("gcp", image_id, parts[-1], gone=True), "DELETED"
        except TransientError:
            return Image("gcp", image_id, parts[-1]), ""  # not cached: ask at the next poll
        except ProviderError:
            # An image in another project this account may not read: keep what its path
            # tells, and do not ask again on every poll.
            image, state = Image("gcp", image_id, parts[-1]), ""
            self.state.unreadable[image_id] = (
                f"image {parts[-1]} of project {parts[1]} cannot be read by this account: its "
                f"version is read from its name, not its labels; grant compute.images.get on "
                f"project {parts[1]} (e.g. roles/compute.imageUser) to read its labels")
        else:
            self.state.unreadable.pop(image_id, None)
            image, state = image_from_pb(type(reply).pb(reply), self.project)
            image = dataclasses.replace(image, id=image_id)
        self.state.images[image_id] = (now, image, state)
        return image, state

    def family(self, path: str) -> tuple[str | None, str]:
        """(the family's newest image id, "") or (None, why it cannot be resolved), cached
        for FAMILY_TTL_S: the image an instance created now would boot."""
        now = self.clock()
        cached = self.state.families.get(path)
        if cached is not None and now - cached[0] < FAMILY_TTL_S:
            return cached[1], cached[2]
        parts = path.split("/")
        name = f"image family {parts[-1]} of project {parts[1]}"
        try:
            reply = self.compute.call("images", "get_from_family", "compute.images.getFromFamily",
                                      f"resolving {name}", project=parts[1], family=parts[-1])
        except NotFoundError:
            found = None, (f"{name} has no usable image now (every image in it is deprecated "
                           "or deleted): new instances would fail to start")
        except TransientError as exc:
            return None, f"{name} could not be resolved this time ({exc})"
        except ProviderError:
            found = None, (f"{name} cannot be resolved by this account: the version its new "
                           "instances get is unknown; grant compute.images.getFromFamily on "
                           f"project {parts[1]} (e.g. roles/compute.imageUser)")
        else:
            pb = type(reply).pb(reply)
            found = resource_path(pb.self_link, self.project), ""
        self.state.families[path] = (now, *found)
        return found

    def stop_reasons(self, rows) -> dict[str, str]:
        """Why stopped spot and preemptible VMs stopped: "Preempted" where GCE recorded a
        compute.instances.preempted operation for them, asked once per zone and stop."""
        wanted: dict[tuple[str, str], str] = {}
        for inst, zone, *_ in rows:
            if inst.status in ("TERMINATED", "STOPPED") and lifecycle_of(inst):
                wanted[(str(inst.id), inst.last_stop_timestamp)] = zone
        reasons = self.state.stop_reasons
        zones = sorted({z for k, z in wanted.items() if k not in reasons})
        found = dict(zip(zones, self.compute.map(self._preempted_in, zones), strict=True))
        for key, zone in wanted.items():
            if key not in reasons and zone in found:
                # Operations that could not be read leave the reason unknown, not asked again.
                reasons[key] = PREEMPTED if key[0] in (found[zone] or ()) else None
        self.state.stop_reasons = {k: v for k, v in reasons.items() if k in wanted}
        return {k[0]: v for k, v in self.state.stop_reasons.items() if v}

    def _preempted_in(self, zone: str) -> set[str] | None:
        """Ids of the instances GCE preempted in a zone (as long as it keeps the operations);
        None when the operations cannot be read (the VMs show as stopped, no reason)."""
        request = {"project": self.project, "zone": zone, "max_results": PAGE_SIZE,
                   "filter": PREEMPTED_FILTER}
        try:
            return {str(op.target_id)
                    for page in self.compute.pages("zone_ops", "list", "compute.zoneOperations.list",
                                                   f"listing preemptions in zone {zone}", request)
                    for op in page.items}
        except ProviderError:
            return None

    def _disk_image(self, key: tuple[str, str]) -> None:
        disk = key[1]
        parts = disk.split("/")
        if parts[2] != "zones":
            self.state.disk_images[key] = None
            return
        try:
            reply = self.compute.call("disks", "get", "compute.disks.get",
                                      f"reading disk {disk}", project=parts[1],
                                      zone=parts[3], disk=parts[-1])
        except NotFoundError:
            return  # gone between the two calls: ask again next poll
        source = type(reply).pb(reply).source_image
        self.state.disk_images[key] = resource_path(source, self.project) if source else None

    def disk_images(self, wanted: dict[tuple[str, str], str]) -> None:
        """Fill the disk cache for (instance id, disk path) pairs not in it yet."""
        missing = {k: v for k, v in wanted.items() if k not in self.state.disk_images}
        if not missing:
            return
        if len(missing) <= DISK_GET_LIMIT:
            self.compute.map(self._disk_image, list(missing))
            return
        entries, _ = self.aggregated("disks", "disks", "compute.disks.list", "listing disks")
        sources = {}
        for _key, disks in entries:
            for d in disks:
                sources[resource_path(d.self_link, self.project)] = (
                    resource_path(d.source_image, self.project) if d.source_image else None)
        for key in missing:
            if key[1] in sources:
                self.state.disk_images[key] = sources[key[1]]

    # -- the poll ------------------------------------------------------------------------

    @staticmethod
    def _version_images(versions, templates, resolved) -> tuple[list[str | None], tuple[str, ...]]:
        """The image of each version (a family resolved to its newest image), and notes on
        how they were read."""
        images: list[str | None] = []
        notes: list[str] = []
        for _name, path, _size in versions:
            template = templates.get(path)
            if template is None:
                images.append(None)
                notes.append(f"template {last(path)} cannot be read (deleted): the "
                             "version it launches is unknown")
            elif template.family:
                image_id, why = resolved.get(template.family, (None, "not resolved"))
                images.append(image_id)
                family = template.family.rsplit("/", 1)[-1]
                notes.append(f"template {template.name} boots from image family {family}: "
                             + (f"new instances get its newest image, "
                                f"{image_id.rsplit('/', 1)[-1]}" if image_id else why))
            else:
                images.append(template.image_id)
        return images, tuple(notes)

    def scope(self, regions: tuple[str, ...]) -> Scope:
        return Scope(provider="gcp", name=self.config.name, account=self.project,
                     regions=regions)

    def failed(self, exc: ProviderError, started_calls: int) -> Inventory:
        """Nothing could be read: every region failed. When no region is known (none in
        the config, none seen since a restart), the error names the region "", which the
        store records as the whole scope, so every region it has seen shows the failure."""
        regions = self.config.regions or self.state.regions_seen or ("",)
        return Inventory(
            scope=self.scope(tuple(self.config.regions or self.state.regions_seen)),
            polled_at=datetime.now(UTC),
            errors=tuple(RegionError(r, str(exc)) for r in regions),
            regions_ok=(),
            api_calls=self.compute.calls - started_calls,
        )

    def poll(self) -> Inventory:
        with self.compute.deadline(self.compute.timing.poll_deadline_s):
            return self._poll()

    def _poll(self) -> Inventory:
        started_calls = self.compute.calls
        polled_at = datetime.now(UTC)
        try:
            inst_entries, inst_unreachable = self.aggregated(
                "instances", "instances", "compute.instances.list", "listing instances")
            mig_entries, mig_unreachable = self.aggregated(
                "migs", "instance_group_managers", "compute.instanceGroupManagers.list",
                "listing managed instance groups")
            return self._build(polled_at, started_calls, inst_entries, mig_entries,
                               inst_unreachable | mig_unreachable)
        except ProviderError as exc:
            return self.failed(exc, started_calls)

    def _build(self, polled_at, started_calls, inst_entries, mig_entries, unreachable):
        project = self.project
        wanted_regions = set(self.config.regions)
        seen_regions: set[str] = set()
        for key, _ in (*inst_entries, *mig_entries):
            kind, _, loc = key.partition("/")
            seen_regions.add(region_of_zone(loc) if kind == "zones" else loc)

        def wanted(region: str) -> bool:
            return not wanted_regions or region in wanted_regions

        # Managed instance groups and their versions' templates.
        mig_rows = []
        for key, migs in mig_entries:
            kind, _, loc = key.partition("/")
            zone = loc if kind == "zones" else None
            region = region_of_zone(loc) if zone else loc
            if not wanted(region):
                continue
            for m in migs:
                mig_rows.append((m, zone, region, mig_versions(m, project)))
        # A stateful MIG keeps preserved disks across an update, so its instances' template
        # need not match their boot disk: ask the disk.
        stateful = {(m.name, region) for m, _, region, _ in mig_rows
                    if m.status.stateful.has_stateful_config}

        # Instances: the MIG and the template from their metadata. Thousands of instances
        # share a few template strings: normalise each once.
        tpl_paths: dict[str, str] = {}
        rows = []
        for key, instances in inst_entries:
            zone = key.partition("/")[2]
            region = region_of_zone(zone)
            if not wanted(region):
                continue
            for inst in instances:
                group, tpl = instance_origin(inst)
                path = None
                if tpl and group and (group, region) not in stateful:
                    path = tpl_paths.get(tpl)
                    if path is None:
                        path = tpl_paths[tpl] = template_path(tpl, project)
                rows.append((inst, zone, region, group, path))

        paths = {p for _, _, _, vs in mig_rows for _, p, _ in vs} | {r[4] for r in rows if r[4]}
        ordered = sorted(paths)
        templates = dict(zip(ordered, self.compute.map(self.template, ordered), strict=True))
        pinned = {p: t.image_id for p, t in templates.items() if t is not None and t.image_id}
        families = sorted({t.family for t in templates.values() if t is not None and t.family})
        resolved = dict(zip(families, self.compute.map(self.family, families), strict=True))

        # An instance whose template does not pin an image is read from its boot disk.
        need_disk: dict[tuple[str, str], str] = {}
        image_of: list = []
        for inst, zone, _region, _group, path in rows:
            image_id = pinned.get(path) if path else None
            if image_id is None:
                boot = boot_disk(inst)
                if boot:
                    key = (str(inst.id), resource_path(boot, project))
                    need_disk[key] = zone
                    image_id = key  # resolved below, once the disks are read
            image_of.append(image_id)
        self.disk_images(need_disk)
        disk_images = self.state.disk_images
        image_of = [disk_images.get(i) if isinstance(i, tuple) else i for i in image_of]
        self.state.disk_images = {k: v for k, v in disk_images.items() if k in need_disk}

        scope_name = self.config.name
        reasons = self.stop_reasons(rows)
        instances = tuple(
            instance_from_pb(inst, scope_name, project, zone, region, group, image_id,
                             reasons.get(str(inst.id)))
            for (inst, zone, region, group, _path), image_id in zip(rows, image_of, strict=True)
        )
        # GKE labels its nodes; a group whose template lost the labels still has them there.
        member_labels: dict[tuple[str, str], dict[str, str]] = {}
        for inst in instances:
            if inst.group and inst.tags:
                member_labels.setdefault((inst.group, inst.region), inst.tags)
        groups = []
        for m, zone, region, versions in mig_rows:
            images, notes = self._version_images(versions, templates, resolved)
            groups.append(group_from_pb(m, scope_name, project, zone, region, versions,
                                        templates, images, notes,
                                        member_labels.get((m.name, region))))

        image_ids = {i.image_id for i in instances if i.image_id}
        image_ids |= {g.desired_image_id for g in groups if g.desired_image_id}
        image_ids |= {g.canary_image_id for g in groups if g.canary_image_id}
        ordered = sorted(image_ids)
        images = {image_id: image for image_id, (image, _) in
                  zip(ordered, self.compute.map(self.image, ordered), strict=True)}
        unreadable = self.state.unreadable
        groups = [g if not any(i in unreadable for i in (g.desired_image_id, g.canary_image_id))
                  else dataclasses.replace(g, notes=g.notes + tuple(
                      unreadable[i] for i in (g.desired_image_id, g.canary_image_id)
                      if i in unreadable))
                  for g in groups]

        bad: dict[str, list[str]] = {}
        for key in sorted(unreachable):
            kind, _, loc = key.partition("/")
            region = region_of_zone(loc) if kind == "zones" else loc
            if wanted(region):
                bad.setdefault(region, []).append(loc)
        errors = tuple(
            RegionError(region, f"{'zone' if len(locs) == 1 else 'zones'} {', '.join(locs)} "
                        "did not answer (unreachable); their instances keep their last known "
                        "state until the next poll that reaches them")
            for region, locs in sorted(bad.items()))
        regions = tuple(self.config.regions) or tuple(sorted(seen_regions | set(bad)))
        if not self.config.regions:
            self.state.regions_seen = regions
        return Inventory(
            scope=self.scope(regions), polled_at=polled_at, instances=instances,
            groups=tuple(groups), images=images, errors=errors,
            regions_ok=tuple(r for r in regions if r not in bad),
            api_calls=self.compute.calls - started_calls,
        )
