"""One GCP poll: aggregated lists of instances and MIGs, templates and images cached across polls."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fleetview.domain.errors import ProviderError
from fleetview.domain.model import Group, Image, Instance, Inventory, RegionError, Scope, State
from fleetview.domain.timestamps import parse_time
from fleetview.providers.gcp.clients import Compute, NotFoundError

PAGE_SIZE = 500  # the most Compute returns per page
IMAGE_TTL_S = 3600.0  # labels and deprecation can change; an image's content cannot
DISK_GET_LIMIT = 20  # past this many unknown boot disks one paged disk list is cheaper

STATE_MAP = {
    "PROVISIONING": State.PENDING,
    "STAGING": State.PENDING,
    "RUNNING": State.RUNNING,
    "STOPPING": State.STOPPING,
    "SUSPENDING": State.STOPPING,
    "STOPPED": State.STOPPED,
    "SUSPENDED": State.STOPPED,
    # GCE's TERMINATED is a stopped instance that still exists, not a deleted one.
    "TERMINATED": State.STOPPED,
    "REPAIRING": State.UNKNOWN,
}
_DEPRECATED_STATES = frozenset({"DEPRECATED", "OBSOLETE", "DELETED"})
UNUSABLE_IMAGE_STATES = frozenset({"OBSOLETE", "DELETED"})


def region_of_zone(zone: str) -> str:
    return zone.rsplit("-", 1)[0]


def last(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def resource_path(url: str, project: str) -> str:
    """"projects/P/..." for a full URL, a path, or a project-relative path."""
    index = url.find("projects/")
    if index >= 0:
        return url[index:]
    return f"projects/{project}/{url.lstrip('/')}"


def template_path(url: str, project: str) -> str:
    """A template's path; GCE names the project by number in MIG instances' metadata."""
    path = resource_path(url, project)
    parts = path.split("/")
    if len(parts) > 1 and parts[1].isdigit():
        parts[1] = project
    return "/".join(parts)


@dataclass(frozen=True)
class Template:
    """What FleetView needs of an instance template: the image its boot disk starts from.

    `image_id` is None when the template names an image family (resolved only when an
    instance is created) or no image at all; then an instance's own disk is the truth.
    """

    path: str
    name: str
    image_id: str | None
    source_image: str | None
    created_at: datetime | None = None
    labels: dict[str, str] = field(default_factory=dict)  # what its instances are labelled


@dataclass
class PollState:
    """Caches kept across polls: templates never change, images seldom."""

    templates: dict[str, Template] = field(default_factory=dict)
    missing_templates: set[str] = field(default_factory=set)
    images: dict[str, tuple[float, Image, str]] = field(default_factory=dict)  # id -> (at, image, state)
    disk_images: dict[tuple[str, str], str | None] = field(default_factory=dict)
    regions_seen: tuple[str, ...] = ()


def template_from_pb(pb, project: str) -> Template:
    """A Template from a raw InstanceTemplate message."""
    source = None
    for disk in pb.properties.disks:
        if disk.boot or len(pb.properties.disks) == 1:
            source = disk.initialize_params.source_image or None
            break
    image_id = None
    if source:
        path = resource_path(source, project)
        if "/images/family/" not in path:
            image_id = path
    return Template(path=resource_path(pb.self_link, project) if pb.self_link else "",
                    name=pb.name, image_id=image_id, source_image=source,
                    created_at=parse_time(pb.creation_timestamp),
                    labels=dict(pb.properties.labels))


def image_from_pb(pb, project: str) -> tuple[Image, str]:
    """An Image (id in path form) and its deprecation state from a raw Image message."""
    state = pb.deprecated.state if pb.HasField("deprecated") else ""
    image_id = resource_path(pb.self_link, project) if pb.self_link else \
        f"projects/{project}/global/images/{pb.name}"
    return Image("gcp", image_id, pb.name, created_at=parse_time(pb.creation_timestamp),
                 tags=dict(pb.labels), deprecated=state in _DEPRECATED_STATES), state


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
            for key, scoped in pb.items.items():
                if scoped.HasField("warning") and scoped.warning.code == "UNREACHABLE":
                    unreachable.add(key)
                entries.append((key, list(getattr(scoped, attr))))
            unreachable.update(pb.unreachables)
        return entries, unreachable

    def template(self, path: str) -> Template | None:
        """A template by path, cached for good (templates are immutable); None if deleted."""
        cached = self.state.templates.get(path)
        if cached is not None or path in self.state.missing_templates:
            return cached
        parts = path.split("/")
        what = f"reading instance template {path}"
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
            # Deleted for good (a MIG cannot use a deleted template): do not ask each poll.
            self.state.missing_templates.add(path)
            return None
        template = template_from_pb(type(reply).pb(reply), self.project)
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
        regions = self.config.regions or self.state.regions_seen or ("global",)
        return Inventory(
            scope=self.scope(tuple(self.config.regions or self.state.regions_seen)),
            polled_at=datetime.now(UTC),
            errors=tuple(RegionError(r, str(exc)) for r in regions),
            regions_ok=(),
            api_calls=self.compute.calls - started_calls,
        )

    def poll(self) -> Inventory:
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
                versions = [(v.name, template_path(v.instance_template, project),
                             v.target_size if v.HasField("target_size") else None)
                            for v in m.versions if v.instance_template]
                if not versions and m.instance_template:
                    versions = [("", template_path(m.instance_template, project), None)]
                # The version without a targetSize takes the rest of the group: it is the
                # main one, wherever it is listed; another version is the canary.
                versions.sort(key=lambda v: v[2] is not None)
                mig_rows.append((m, zone, region, versions))
        # A stateful MIG keeps preserved disks across an update, so its instances' template
        # need not match their boot disk: ask the disk.
        stateful = {(m.name, region) for m, _, region, _ in mig_rows
                    if m.status.stateful.has_stateful_config}

        # Instances: the MIG from `created-by`, the template from `instance-template`.
        # Thousands of instances share a few template strings: normalise each once.
        tpl_paths: dict[str, str] = {}
        rows = []
        for key, instances in inst_entries:
            zone = key.partition("/")[2]
            region = region_of_zone(zone)
            if not wanted(region):
                continue
            for inst in instances:
                creator = tpl = None
                for item in inst.metadata.items:
                    if item.key == "created-by":
                        creator = item.value
                    elif item.key == "instance-template":
                        tpl = item.value
                group = last(creator) if creator and "/instanceGroupManagers/" in creator \
                    else None
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
        image_of: list[str | None] = []
        for inst, zone, _region, _group, path in rows:
            image_id = pinned.get(path) if path else None
            if image_id is None:
                boot = next((d.source for d in inst.disks if d.boot), "")
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
            Instance(
                provider="gcp", id=str(inst.id), name=inst.name, scope=scope_name,
                account=project, region=region, zone=zone, group=group,
                image_id=image_id, state=STATE_MAP.get(inst.status, State.UNKNOWN),
                launched_at=parse_time(inst.creation_timestamp),
                tags=dict(inst.labels) if inst.labels else {},
            )
            for (inst, zone, region, group, _path), image_id in zip(rows, image_of, strict=True)
        )

        groups = []
        for m, zone, region, versions in mig_rows:
            images = [templates[p].image_id if templates.get(p) else None
                      for _, p, _ in versions]
            main = templates.get(versions[0][1]) if versions else None
            policy = m.update_policy
            groups.append(Group(
                provider="gcp", scope=scope_name, account=project, region=region, name=m.name,
                kind="mig", zone=zone, target_size=m.target_size,
                desired_image_id=images[0] if images else None,
                canary_image_id=images[1] if len(images) > 1 else None,
                updating=not m.status.is_stable or not m.status.version_target.is_reached,
                # MIGs have no labels: the labels their instances get stand for the group's.
                tags=dict(main.labels) if main is not None else {},
                extra={
                    "self_link": resource_path(m.self_link, project) if m.self_link else "",
                    "versions": [
                        {"name": name, "template": path,
                         "target_size": _fixed_or_percent(size) if size is not None else None}
                        for name, path, size in versions],
                    "zones": [last(z.zone) for z in m.distribution_policy.zones],
                    "update_policy": {
                        "type": policy.type_, "minimal_action": policy.minimal_action,
                        "max_surge": _fixed_or_percent(policy.max_surge),
                        "max_unavailable": _fixed_or_percent(policy.max_unavailable)},
                },
            ))

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


def _fixed_or_percent(value) -> dict[str, int] | None:
    if value is None:
        return None
    if value.HasField("fixed"):
        return {"fixed": value.fixed}
    if value.HasField("percent"):
        return {"percent": value.percent}
    return None


