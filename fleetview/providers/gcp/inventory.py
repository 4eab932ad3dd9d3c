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
from fleetview.providers.gcp.errors import NotFoundError, foreign_answer
from fleetview.providers.gcp.shapes import (
    Template,
    boot_disk,
    group_from_pb,
    image_from_pb,
    instance_from_pb,
    instance_origin,
    mig_versions,
    region_of_zone,
    resource_path,
    template_from_pb,
    template_path,
)

PAGE_SIZE = 500  # the most Compute returns per page
IMAGE_TTL_S = 3600.0  # labels and deprecation can change; an image's content cannot
DISK_GET_LIMIT = 20  # past this many unknown boot disks one paged disk list is cheaper


@dataclass
class PollState:
    """Caches kept across polls: templates never change, images seldom."""

    templates: dict[str, Template] = field(default_factory=dict)
    missing_templates: set[str] = field(default_factory=set)
    images: dict[str, tuple[float, Image, str]] = field(default_factory=dict)  # id -> (at, image, state)
    disk_images: dict[tuple[str, str], str | None] = field(default_factory=dict)
    regions_seen: tuple[str, ...] = ()


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
        except ProviderError:
            # An image in another project we may not read: keep what its path tells.
            return Image("gcp", image_id, parts[-1]), ""
        else:
            image, state = image_from_pb(type(reply).pb(reply), self.project)
            image = dataclasses.replace(image, id=image_id)
        self.state.images[image_id] = (now, image, state)
        return image, state

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
        instances = tuple(
            instance_from_pb(inst, scope_name, project, zone, region, group, image_id)
            for (inst, zone, region, group, _path), image_id in zip(rows, image_of, strict=True)
        )
        groups = [group_from_pb(m, scope_name, project, zone, region, versions, templates)
                  for m, zone, region, versions in mig_rows]

        image_ids = {i.image_id for i in instances if i.image_id}
        image_ids |= {g.desired_image_id for g in groups if g.desired_image_id}
        image_ids |= {g.canary_image_id for g in groups if g.canary_image_id}
        ordered = sorted(image_ids)
        images = {image_id: image for image_id, (image, _) in
                  zip(ordered, self.compute.map(self.image, ordered), strict=True)}

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
