"""One AWS poll: instances, Auto Scaling groups, launch templates and AMIs, region by region,
within one deadline, with what never changes (numbered template versions, launch
configurations) cached across polls."""

from __future__ import annotations

import contextlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from botocore.exceptions import ClientError, ReadTimeoutError

from fleetview.domain.model import Group, Image, Instance, Inventory, RegionError, Scope
from fleetview.providers.aws.clients import CallCounter, Clients, counting, last_operation
from fleetview.providers.aws.errors import (
    DENIED,
    NoAnswer,
    checked,
    error_code,
    explain,
    foreign,
    is_foreign,
    is_unsupported,
    no_answer,
)
from fleetview.providers.aws.shapes import (
    REFRESH_ACTIVE,
    SSM_PREFIX,
    image_of,
    images_by_type,
    instance_of,
    override_specs,
    owner_of,
    refresh_deploys,
    template_spec,
    wanted_image_of,
    with_override_images,
)

# DescribeImages takes at most 200 values in one filter.
IMAGE_BATCH = 200
# An AMI's content never changes, but its tags (the version), its deprecation and its
# registration do, and no cheaper call tells: images in use are described again when their
# last answer is older than this. 0: every poll (one call per 200 AMIs a region), so an edited
# version tag shows at the next poll. A deregistered AMI is never asked about again.
IMAGE_RECHECK_S = 0.0
# The one Auto Scaling lifecycle state in which a member serves: Pending, Standby, Terminating,
# Detaching and the warm pool's states do not, though EC2 may call the instance "running".
IN_SERVICE = "InService"
# GetParameters takes at most 10 names.
PARAMETER_BATCH = 10


@dataclass
class PollState:
    """What polls learn and keep; plans read it too (template versions, where an AMI lives,
    whether a region's endpoint has instance refresh)."""

    # (region, ami) -> (Image, checked at monotonic seconds)
    images: dict[tuple[str, str], tuple[Image, float]] = field(default_factory=dict)
    # (region, template id, version number) -> AMI id; a numbered version never changes.
    template_images: dict[tuple[str, str, int], str | None] = field(default_factory=dict)
    # (region, launch configuration name) -> AMI id; launch configurations never change.
    config_images: dict[tuple[str, str], str | None] = field(default_factory=dict)
    # region -> whether its endpoint has instance refresh (absent: not known yet)
    refresh_supported: dict[str, bool] = field(default_factory=dict)
    # (region, ami) -> the account that owns it, and whether it is disabled (DescribeImages
    # IncludeDisabled): a disabled AMI is not deregistered, but boots nothing until enabled.
    image_owners: dict[tuple[str, str], str] = field(default_factory=dict)
    disabled: set[tuple[str, str]] = field(default_factory=set)
    # (region, group) whose last poll saw an instance refresh under way: asked again until
    # it ends, since one with a DesiredConfiguration may show no drift for a while.
    refreshing: set[tuple[str, str]] = field(default_factory=set)

    def image_disabled(self, region: str, image_id: str) -> bool:
        return (region, image_id) in self.disabled

    def image_region(self, image_id: str) -> str | None:
        """The region where a poll last saw this AMI (AMI ids are regional)."""
        for region, known in list(self.images):  # a snapshot: polls may be adding
            if known == image_id:
                return region
        return None

    def template_versions_with_image(self, region: str, template: str, image_id: str
                                     ) -> list[int]:
        """Versions of a template already known (from polls) to launch `image_id`."""
        return sorted(n for (r, t, n), img in list(self.template_images.items())
                      if r == region and t == template and img == image_id)


@dataclass
class _RegionResult:
    instances: list[Instance] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    images: dict[str, Image] = field(default_factory=dict)
    error: str | None = None


class Poller:
    """Polls one [[aws]] scope. `region_workers` caps the lanes of regions polled at once
    (default: all; regions sharing one endpoint form one lane)."""

    def __init__(self, config, clients: Clients, state: PollState, *, page_size: int = 1000,
                 region_workers: int | None = None) -> None:
        self.config = config
        self.clients = clients
        self.state = state
        self.page_size = page_size
        self.region_workers = region_workers
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._account_id: str | None = None
        self._tag_clients: Clients | None = None

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        if self._tag_clients is not None:
            self._tag_clients.close()

    def account_id(self) -> str:
        if self._account_id is None:
            sts = self.clients.client("sts")
            self._account_id = checked(sts.get_caller_identity(), sts.meta.endpoint_url,
                                       "GetCallerIdentity", "Account")["Account"]
        return self._account_id

    # -- poll ----------------------------------------------------------------------------

    def poll(self) -> Inventory:
        """Every region's instances, groups and images; versions are not labelled yet.

        The poll ends by its deadline (`clients.deadline_s`): a region that has not answered
        by then is a failed region, whatever its calls are still waiting for."""
        polled_at = datetime.now(UTC)
        regions = tuple(self.config.regions)
        counter = CallCounter()
        seconds = self.clients.deadline_s
        started = time.monotonic()
        deadline = (started + seconds, seconds)
        lanes = self.lanes(regions)
        pool = self._executor(len(lanes))
        try:
            account = self._account(pool, counter, deadline)
        except Exception as exc:
            message = self._explain(exc, "sts GetCallerIdentity", "sts",
                                    self.clients.home_region, started)
            return Inventory(scope=Scope("aws", self.config.name, "", regions),
                             polled_at=polled_at, api_calls=counter.value,
                             errors=tuple(RegionError(r, message) for r in regions))
        answered: dict[str, _RegionResult] = {}
        pending = [pool.submit(self._poll_lane, lane, account, counter, deadline, answered)
                   for lane in lanes]
        wait(pending, timeout=max(0.0, deadline[0] - time.monotonic()))
        results = dict(answered)  # a lane still waiting writes into it too late to count
        for region in regions:
            if region not in results:
                results[region] = _RegionResult(error=no_answer(
                    region, self.clients.endpoint_url("ec2", region), seconds))
        instances: list[Instance] = []
        groups: list[Group] = []
        images: dict[str, Image] = {}
        errors: list[RegionError] = []
        ok: list[str] = []
        for region in regions:
            result = results[region]
            if result.error is not None:
                errors.append(RegionError(region, result.error))
                continue
            ok.append(region)
            instances.extend(result.instances)
            groups.extend(result.groups)
            images.update(result.images)
        return Inventory(
            scope=Scope("aws", self.config.name, account, regions), polled_at=polled_at,
            instances=tuple(instances), groups=tuple(groups), images=images,
            errors=tuple(errors), regions_ok=tuple(ok), api_calls=counter.value,
        )

    def _account(self, pool: ThreadPoolExecutor, counter: CallCounter,
                 deadline: tuple[float, float]) -> str:
        """The account id (asked once), within the poll's deadline."""
        if self._account_id is not None:
            return self._account_id

        def ask() -> str:
            with counting(counter, ("sts", "GetCallerIdentity"), deadline):
                return self.account_id()

        future = pool.submit(ask)
        wait([future], timeout=max(0.0, deadline[0] - time.monotonic()))
        if not future.done():
            raise NoAnswer(self.clients.endpoint_url("sts", self.clients.home_region),
                           deadline[1])
        return future.result()

    def _explain(self, exc: BaseException, where: str, service: str, region: str,
                 started: float | None = None) -> str:
        endpoint = self.clients.endpoint(region) or ""
        if isinstance(exc, ReadTimeoutError):
            endpoint = exc.kwargs.get("endpoint_url") or endpoint
            if started is not None:
                return no_answer(where, endpoint, time.monotonic() - started)
        if is_foreign(exc):
            return foreign(where, endpoint or self.clients.endpoint_url(service, region), exc)
        return explain(exc, self.config.profile, where, service)

    def _executor(self, lanes: int) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                # One more than the lanes: the account lookup, and a lane of the last poll
                # that is still waiting out its read timeout past that poll's deadline.
                workers = self.region_workers or min(lanes + 1, 33)
                self._pool = ThreadPoolExecutor(max_workers=max(1, workers),
                                                thread_name_prefix="fleetview-aws")
            return self._pool

    def lanes(self, regions: tuple[str, ...]) -> list[list[str]]:
        """Regions polled in turn within a lane; lanes run in parallel.

        On AWS every region has its own endpoint, so each region is its own lane and a slow
        region delays no other. Regions that share one endpoint_url (moto, LocalStack) are
        one server process: polled at once they only contend (the benchmark measured two moto
        regions at once 1.5x slower than in turn), so they share a lane.
        """
        lanes: dict[str, list[str]] = {}
        for region in regions:
            lanes.setdefault(self.clients.endpoint(region) or f"aws:{region}", []).append(region)
        return list(lanes.values())

    def _poll_lane(self, lane: list[str], account: str, counter: CallCounter,
                   deadline: tuple[float, float], answered: dict[str, _RegionResult]) -> None:
        for region in lane:
            if time.monotonic() >= deadline[0]:
                return  # not started: the poll reports it as not answered
            answered[region] = self._poll_region_counted(region, account, counter, deadline)

    def _poll_region_counted(self, region: str, account: str, counter: CallCounter,
                             deadline: tuple[float, float] | None = None) -> _RegionResult:
        started = time.monotonic()
        with counting(counter, ("ec2", "DescribeInstances"), deadline):
            try:
                return self._poll_region(region, account)
            except Exception as exc:
                service, operation = last_operation()
                where = region if isinstance(exc, ClientError) else f"{region} {operation}"
                if isinstance(exc, NoAnswer | ReadTimeoutError):
                    where = region
                return _RegionResult(error=self._explain(exc, where, service, region, started))

    def _poll_region(self, region: str, account: str) -> _RegionResult:
        ec2 = self.clients.client("ec2", region)
        endpoint = ec2.meta.endpoint_url
        result = _RegionResult()
        pages = ec2.get_paginator("describe_instances").paginate(
            PaginationConfig={"PageSize": self.page_size})
        for page in pages:
            # A page without Reservations is no empty region: it is not EC2's answer.
            checked(page, endpoint, "DescribeInstances", "Reservations")
            for reservation in page["Reservations"]:
                for raw in reservation.get("Instances", []):
                    result.instances.append(instance_of(raw, self.config.name, account, region))
        result.groups, lifecycle, warm = self._groups(region, account, result.instances)
        result.instances = with_lifecycle(result.instances, lifecycle,
                                          {g.name for g in result.groups}, warm)
        result.instances = with_override_images(result.instances, result.groups)
        wanted = {i.image_id for i in result.instances if i.image_id}
        wanted |= {i for g in result.groups
                   for i in (g.desired_image_id, g.extra.get("group_image_id")) if i}
        for g in result.groups:
            wanted |= {o["image"] for o in g.extra.get("overrides") or () if o.get("image")}
        # A template may name its image as "resolve:ssm:..." that could not be resolved.
        result.images = self._images_in(region, {w for w in wanted if w.startswith("ami-")})
        result.images, problem = self._shared_tags(region, account, result.images)
        result.groups = [self._annotated(region, account, g, result.images, problem)
                         for g in result.groups]
        return result

    def _annotated(self, region: str, account: str, group: Group, images: dict[str, Image],
                   tags_problem: str | None = None) -> Group:
        """The group with what a reader must know of the AMIs it launches: disabled, or
        shared by another account whose tags this account cannot see."""
        notes = list(group.notes)
        launched = [group.desired_image_id] + [o.get("image") for o in
                                               group.extra.get("overrides") or ()]
        for image_id in dict.fromkeys(i for i in launched if i):
            image = images.get(image_id)
            if self.state.image_disabled(region, image_id):
                notes.append(f"AMI {image_id} is disabled: new instances of this group cannot "
                             "boot until it is re-enabled (EnableImage)")
            owner = self.state.image_owners.get((region, image_id))
            if image is not None and owner and owner != account and not image.tags:
                how = (f"image_tags_from could not read them: {tags_problem}" if tags_problem
                       else "set image_tags_from to a profile or role of that account to read "
                       "its tags")
                notes.append(
                    f"AMI {image_id} is shared by account {owner}: its tags are not visible "
                    f"in this account, so its version comes from its name (or its id); {how}")
        return replace(group, notes=tuple(notes)) if notes != list(group.notes) else group

    def _shared_tags(self, region: str, account: str, images: dict[str, Image]
                     ) -> tuple[dict[str, Image], str | None]:
        """Images shared by another account, with the tags their owner sees, read through
        `image_tags_from` (a profile or role of the owner account) where the scope names one;
        and why they could not be read (the region's inventory does not depend on it)."""
        source = getattr(self.config, "image_tags_from", None)
        shared = sorted(i for i, img in images.items() if not img.gone and not img.tags
                        and self.state.image_owners.get((region, i)) not in (None, account))
        if not source or not shared:
            return images, None
        out = dict(images)
        try:
            ec2 = self.tag_clients().client("ec2", region)
            for start in range(0, len(shared), IMAGE_BATCH):
                response = checked(ec2.describe_images(
                    Filters=[{"Name": "image-id", "Values": shared[start:start + IMAGE_BATCH]}],
                    IncludeDeprecated=True, IncludeDisabled=True), ec2.meta.endpoint_url,
                    "DescribeImages", "Images")
                for raw in response.get("Images", []):
                    tags = {t["Key"]: t.get("Value", "") for t in raw.get("Tags", []) or []}
                    if raw.get("ImageId") in out and tags:
                        out[raw["ImageId"]] = replace(out[raw["ImageId"]], tags=tags)
        except Exception as exc:  # noqa: BLE001 - an optional source: said on the groups
            return images, self._explain(exc, f"image_tags_from {source}", "ec2", region)
        return out, None

    def tag_clients(self) -> Clients:
        """Clients of the account that owns shared AMIs (`image_tags_from`)."""
        with self._lock:
            if self._tag_clients is None:
                source = self.config.image_tags_from
                as_role = source.startswith("arn:")
                owner = replace(self.config, role_arn=source if as_role else None,
                                profile=self.config.profile if as_role else source)
                self._tag_clients = Clients(owner, attempts=self.clients.botocore_config
                                            .retries["total_max_attempts"],
                                            endpoint_for=self.clients.endpoint_for,
                                            deadline_s=self.clients.deadline_s)
            return self._tag_clients

    # -- images --------------------------------------------------------------------------

    def _images_in(self, region: str, wanted: set[str]) -> dict[str, Image]:
        now = time.monotonic()
        cache = self.state.images
        found: dict[str, Image] = {}
        stale: list[str] = []
        for image_id in sorted(wanted):
            cached = cache.get((region, image_id))
            if cached is not None and (cached[0].gone or now - cached[1] < IMAGE_RECHECK_S):
                found[image_id] = cached[0]
            else:
                stale.append(image_id)
        ec2 = self.clients.client("ec2", region)
        for start in range(0, len(stale), IMAGE_BATCH):
            batch = stale[start:start + IMAGE_BATCH]
            # A filter, not ImageIds: one deregistered id would fail the whole ImageIds call.
            # IncludeDisabled: without it a disabled AMI is left out, as if deregistered.
            response = checked(ec2.describe_images(
                Filters=[{"Name": "image-id", "Values": batch}], IncludeDeprecated=True,
                IncludeDisabled=True), ec2.meta.endpoint_url, "DescribeImages", "Images")
            answered = {raw["ImageId"]: raw for raw in response.get("Images", [])}
            for image_id in batch:
                raw = answered.get(image_id)
                if raw is not None:
                    image = image_of(raw)
                    if raw.get("OwnerId"):
                        self.state.image_owners[(region, image_id)] = raw["OwnerId"]
                    if raw.get("State") == "disabled":
                        self.state.disabled.add((region, image_id))
                    else:
                        self.state.disabled.discard((region, image_id))
                else:
                    previous = cache.get((region, image_id))
                    image = replace(previous[0], gone=True) if previous else Image(
                        provider="aws", id=image_id, name="", gone=True)
                cache[(region, image_id)] = (image, now)
                found[image_id] = image
        return found

    # -- groups --------------------------------------------------------------------------

    def _groups(self, region: str, account: str, instances: list[Instance]
                ) -> tuple[list[Group], dict[str, str], dict[str, str]]:
        """The region's groups, each member's lifecycle state in its group, and the instances
        waiting in the groups' warm pools (id -> group)."""
        asg = self.clients.client("autoscaling", region)
        raws: list[dict] = []
        for page in asg.get_paginator("describe_auto_scaling_groups").paginate(
                PaginationConfig={"PageSize": 100}):
            checked(page, asg.meta.endpoint_url, "DescribeAutoScalingGroups",
                    "AutoScalingGroups")
            raws.extend(page["AutoScalingGroups"])
        if not raws:
            return [], {}, {}
        specs = {raw["AutoScalingGroupName"]: template_spec(raw) for raw in raws}
        overrides = {raw["AutoScalingGroupName"]: override_specs(raw) for raw in raws}
        every = [s for s in specs.values() if s] + [
            o for found in overrides.values() for o in found if o.get("id")]
        pointers = self._resolve_pointers(region, every)
        self._fetch_numbered(region, [(s["id"], pointers.get((s["id"], s["version"])))
                                      for s in every])
        self._fetch_launch_configs(region, [raw["LaunchConfigurationName"] for raw in raws
                                            if raw.get("LaunchConfigurationName")])

        def launches(spec: dict) -> tuple[int | None, str | None]:
            number = pointers.get((spec["id"], spec["version"]))
            return number, (self.state.template_images.get((region, spec["id"], number))
                            if number is not None else None)

        references = {image for spec in every if (image := launches(spec)[1])
                      and image.startswith(SSM_PREFIX)}
        parameters = self._parameters(region, references)
        warm = self._warm_pools(region, [raw for raw in raws
                                         if raw.get("WarmPoolConfiguration")])
        warm_ids = {i: name for name, pool in warm.items() for i in pool["instances"]}
        members_of: dict[str, list[Instance]] = {}
        for i in instances:
            if i.group and i.state.live and i.id not in warm_ids:
                members_of.setdefault(i.group, []).append(i)
        groups = []
        lifecycle: dict[str, str] = {}
        denied: str | None = None  # DescribeInstanceRefreshes refused: asked once a poll
        for raw in raws:
            name = raw["AutoScalingGroupName"]
            spec = specs[name]
            members = raw.get("Instances", [])
            lifecycle.update((i["InstanceId"], i.get("LifecycleState", "")) for i in members)
            extra: dict[str, object] = {
                "arn": raw.get("AutoScalingGroupARN"),
                "min_size": raw.get("MinSize"), "max_size": raw.get("MaxSize"),
                "instance_ids": [i["InstanceId"] for i in members],
                # What makes an instance refresh wait (FleetView's refreshes say Wait for both).
                "standby": sorted(i["InstanceId"] for i in members
                                  if "Standby" in i.get("LifecycleState", "")),
                "scale_in_protected": sorted(i["InstanceId"] for i in members
                                             if i.get("ProtectedFromScaleIn")),
            }
            desired_image = None
            notes: list[str] = []
            if spec:
                number, desired_image = launches(spec)
                extra.update(launch_template_id=spec["id"], launch_template_name=spec["name"],
                             launch_template_pointer=spec["version"],
                             launch_template_version=number, mixed_instances=spec["mixed"])
                if spec["mixed"]:
                    extra["mixed_instances_policy"] = raw.get("MixedInstancesPolicy")
                if desired_image and desired_image.startswith(SSM_PREFIX):
                    extra["image_parameter"] = desired_image[len(SSM_PREFIX):]
                    desired_image, note = parameters.get(desired_image, (None, ""))
                    notes.append(note)
                found = []
                for override in overrides[name]:
                    if override.get("id"):
                        o_number, image = launches(override)
                        if image and image.startswith(SSM_PREFIX):
                            image = parameters.get(image, (None, ""))[0]
                        source = (f"its own launch template {override['id']} version "
                                  f"{o_number if o_number is not None else override['version']}")
                    else:
                        o_number, image = None, override["image"]
                        source = "its own AMI"
                    found.append({**override, "number": o_number, "image": image})
                    notes.append(f"instance type {override['instance_type'] or '?'} launches "
                                 f"from {source}: {image or 'an AMI FleetView cannot read'}")
                if found:
                    extra["overrides"] = found
            elif raw.get("LaunchConfigurationName"):
                extra["launch_configuration"] = raw["LaunchConfigurationName"]
                desired_image = self.state.config_images.get(
                    (region, raw["LaunchConfigurationName"]))
            # Drift per instance type: an override's type wants the override's AMI.
            by_type = images_by_type(extra.get("overrides"))
            drifting = any(i.image_id != wanted_image_of(i, desired_image, by_type)
                           for i in members_of.get(name, ()))
            # A refresh shows first as drift, or as members launching or leaving (one with a
            # DesiredConfiguration changes nothing in the group until it succeeds); once seen
            # it is asked about every poll until it ends.
            moving = len(members) != int(raw.get("DesiredCapacity") or 0) or any(
                i.get("LifecycleState", "").startswith(("Pending", "Terminating"))
                for i in members)
            refresh = None
            if denied:
                extra["instance_refresh_error"] = denied
            elif (drifting or moving or (region, name) in self.state.refreshing
                  or region not in self.state.refresh_supported):
                try:
                    latest = self.latest_refresh(region, name)
                    refresh = latest.get("Status") if latest else None
                    if latest and refresh in REFRESH_ACTIVE:
                        extra["instance_refresh_detail"] = self.refresh_detail(region, latest,
                                                                               spec)
                except ClientError as exc:
                    # A missing optional permission must not cost the region its inventory.
                    if error_code(exc) not in DENIED:
                        raise
                    denied = extra["instance_refresh_error"] = explain(
                        exc, self.config.profile, service="autoscaling")
            extra["instance_refresh"] = refresh
            if refresh in REFRESH_ACTIVE:
                self.state.refreshing.add((region, name))
            else:
                self.state.refreshing.discard((region, name))
            # During a refresh the group wants what the refresh deploys, as a MIG wants its
            # new template the moment it is patched; its own setting is kept beside it.
            extra["group_image_id"] = desired_image
            deploys = refresh_deploys(extra.get("instance_refresh_detail"), desired_image)
            if deploys and deploys.startswith(SSM_PREFIX):
                deploys = parameters.get(deploys, (None, ""))[0]
            if deploys and deploys != desired_image:
                desired_image = deploys
            pool = warm.get(name)
            if pool is not None:
                extra["warm_pool"] = pool
                if pool["error"]:
                    notes.append("the group has a warm pool whose instances FleetView could "
                                 f"not list, so they may show as members: {pool['error']}")
            tags = {t["Key"]: t.get("Value", "") for t in raw.get("Tags", [])}
            groups.append(Group(
                provider="aws", scope=self.config.name, account=account, region=region,
                name=name, kind="asg", desired_image_id=desired_image,
                target_size=int(raw.get("DesiredCapacity") or 0),
                updating=refresh in REFRESH_ACTIVE, tags=tags, extra=extra,
                owner=owner_of(tags), notes=tuple(n for n in notes if n),
            ))
        return groups, lifecycle, warm_ids

    def _parameters(self, region: str, references: set[str]) -> dict[str, tuple[str | None, str]]:
        """"resolve:ssm:<name>" -> (the AMI the parameter holds now, a note saying so).

        Read on every poll (GetParameters, 10 at a time): a parameter changes without the
        template changing, and AWS resolves it at each launch."""
        out: dict[str, tuple[str | None, str]] = {}
        if not references:
            return out
        ssm = self.clients.client("ssm", region)
        names = sorted(r[len(SSM_PREFIX):] for r in references)
        for start in range(0, len(names), PARAMETER_BATCH):
            batch = names[start:start + PARAMETER_BATCH]
            try:
                response = ssm.get_parameters(Names=batch)
            except ClientError as exc:
                # A missing optional permission must not cost the region its inventory.
                if error_code(exc) not in DENIED:
                    raise
                why = explain(exc, self.config.profile, service="ssm")
                out.update((SSM_PREFIX + n, (None, f"the image comes from SSM parameter {n}, "
                                             f"which FleetView may not read: {why}"))
                           for n in batch)
                continue
            for param in response.get("Parameters", []):
                asked = next((n for n in batch if n in (param.get("Name"), param.get("ARN"))
                              or n.startswith(f"{param.get('Name')}:")), param.get("Name"))
                value = param.get("Value") or None
                out[SSM_PREFIX + asked] = (value, (
                    f"the image comes from SSM parameter {param.get('Name')} (version "
                    f"{param.get('Version')}), which holds {value} now; AWS reads it again at "
                    "every launch"))
            for missing in response.get("InvalidParameters", []):
                out[SSM_PREFIX + missing] = (None, (
                    f"the image comes from SSM parameter {missing}, which does not exist: new "
                    "instances of this group fail to launch"))
        return out

    def _warm_pools(self, region: str, raws: list[dict]) -> dict[str, dict]:
        """group -> its warm pool (DescribeWarmPool, asked only of groups that have one): its
        state, its instances (id -> lifecycle state, e.g. Warmed:Stopped), and why they could
        not be listed."""
        asg = self.clients.client("autoscaling", region)
        out: dict[str, dict] = {}
        for raw in raws:
            name = raw["AutoScalingGroupName"]
            instances: dict[str, str] = {}
            configuration: dict = {}
            kwargs: dict = {"AutoScalingGroupName": name}
            while True:
                try:
                    page = checked(asg.describe_warm_pool(**kwargs), asg.meta.endpoint_url,
                                   "DescribeWarmPool")
                except ClientError as exc:
                    # A missing optional permission must not cost the region its inventory.
                    if error_code(exc) not in DENIED:
                        raise
                    configuration = {"error": explain(exc, self.config.profile,
                                                      service="autoscaling")}
                    break
                configuration = page.get("WarmPoolConfiguration") or configuration
                instances.update((i["InstanceId"], i.get("LifecycleState", ""))
                                 for i in page.get("Instances", []))
                if not page.get("NextToken"):
                    break
                kwargs["NextToken"] = page["NextToken"]
            out[name] = {"state": configuration.get("PoolState"),
                         "status": configuration.get("Status"), "instances": instances,
                         "error": configuration.get("error")}
        return out

    def _resolve_pointers(self, region: str, specs: list[dict]) -> dict[tuple[str, str], int]:
        """(template id, "$Latest"/"$Default"/"N") -> version number.

        `$Latest` and `$Default` move, so they are resolved on every poll, for every template
        at once (DescribeLaunchTemplateVersions without a template id); numbers are numbers.
        """
        out: dict[tuple[str, str], int] = {}
        moving = False
        for spec in specs:
            if spec["version"] in ("$Latest", "$Default"):
                moving = True
            elif spec["version"].isdigit():
                out[(spec["id"], spec["version"])] = int(spec["version"])
        if not moving:
            return out
        ec2 = self.clients.client("ec2", region)
        latest: dict[str, int] = {}
        for page in ec2.get_paginator("describe_launch_template_versions").paginate(
                Versions=["$Latest", "$Default"], PaginationConfig={"PageSize": 200}):
            checked(page, ec2.meta.endpoint_url, "DescribeLaunchTemplateVersions")
            for v in page.get("LaunchTemplateVersions", []):
                template, number = v["LaunchTemplateId"], int(v["VersionNumber"])
                self.state.template_images[(region, template, number)] = \
                    (v.get("LaunchTemplateData") or {}).get("ImageId")
                latest[template] = max(latest.get(template, 0), number)
                if v.get("DefaultVersion"):
                    out[(template, "$Default")] = number
        for template, number in latest.items():
            out[(template, "$Latest")] = number
        return out

    def _fetch_numbered(self, region: str, wanted: list[tuple[str, int | None]]) -> None:
        known = self.state.template_images
        missing: dict[str, set[int]] = {}
        for template, number in wanted:
            if number is not None and (region, template, number) not in known:
                missing.setdefault(template, set()).add(number)
        ec2 = self.clients.client("ec2", region)
        for template, numbers in missing.items():
            response = checked(ec2.describe_launch_template_versions(
                LaunchTemplateId=template, Versions=[str(n) for n in sorted(numbers)]),
                ec2.meta.endpoint_url, "DescribeLaunchTemplateVersions")
            for v in response.get("LaunchTemplateVersions", []):
                known[(region, template, int(v["VersionNumber"]))] = \
                    (v.get("LaunchTemplateData") or {}).get("ImageId")

    def _fetch_launch_configs(self, region: str, names: list[str]) -> None:
        known = self.state.config_images
        missing = sorted({n for n in names if (region, n) not in known})
        asg = self.clients.client("autoscaling", region)
        for start in range(0, len(missing), 50):
            batch = missing[start:start + 50]
            response = checked(asg.describe_launch_configurations(
                LaunchConfigurationNames=batch), asg.meta.endpoint_url,
                "DescribeLaunchConfigurations")
            for lc in response.get("LaunchConfigurations", []):
                known[(region, lc["LaunchConfigurationName"])] = lc.get("ImageId")

    def refresh_status(self, region: str, group: str) -> str | None:
        """The latest instance refresh's status; None where the endpoint has no such API."""
        latest = self.latest_refresh(region, group)
        return latest.get("Status") if latest else None

    def latest_refresh(self, region: str, group: str) -> dict | None:
        """The group's latest instance refresh as AWS describes it; None where there is none
        or the endpoint has no such API."""
        if self.state.refresh_supported.get(region) is False:
            return None
        try:
            response = self.clients.client("autoscaling", region).describe_instance_refreshes(
                AutoScalingGroupName=group, MaxRecords=1)
        except Exception as exc:
            if is_unsupported(exc):
                self.state.refresh_supported[region] = False
                return None
            raise
        self.state.refresh_supported[region] = True
        refreshes = response.get("InstanceRefreshes", [])
        return refreshes[0] if refreshes else None

    def refresh_detail(self, region: str, raw: dict, group_spec: dict | None) -> dict:
        """What a plan needs of an instance refresh: its id, status and progress, and what it
        rolls out (its DesiredConfiguration's template, version number and AMI; `desired`
        False for one started without, which AWS cannot roll back)."""
        desired = raw.get("DesiredConfiguration") or {}
        spec = desired.get("LaunchTemplate") or (
            (desired.get("MixedInstancesPolicy") or {}).get("LaunchTemplate") or {}
        ).get("LaunchTemplateSpecification") or {}
        detail: dict = {"id": raw.get("InstanceRefreshId"), "status": raw.get("Status"),
                        "percent": int(raw.get("PercentageComplete") or 0),
                        "desired": bool(desired), "desired_template": None,
                        "desired_version": None, "desired_image": None}
        template = spec.get("LaunchTemplateId")
        if not template and group_spec and spec.get("LaunchTemplateName") == group_spec["name"]:
            template = group_spec["id"]
        if not template:
            return detail
        detail["desired_template"] = template
        # A template since deleted: what the refresh rolls out is not known.
        with contextlib.suppress(ClientError):
            detail["desired_version"], detail["desired_image"] = self.template_version(
                region, template, str(spec.get("Version") or "$Default"))
        return detail

    def template_version(self, region: str, template: str, version: str
                         ) -> tuple[int | None, str | None]:
        """(number, AMI) of a template version given as a number, $Latest or $Default."""
        if version.isdigit():
            self._fetch_numbered(region, [(template, int(version))])
            return int(version), self.state.template_images.get((region, template,
                                                                 int(version)))
        ec2 = self.clients.client("ec2", region)
        found = checked(ec2.describe_launch_template_versions(
            LaunchTemplateId=template, Versions=[version]), ec2.meta.endpoint_url,
            "DescribeLaunchTemplateVersions").get("LaunchTemplateVersions", [])
        if not found:
            return None, None
        number = int(found[0]["VersionNumber"])
        image = (found[0].get("LaunchTemplateData") or {}).get("ImageId")
        self.state.template_images[(region, template, number)] = image
        return number, image


def with_lifecycle(instances: list[Instance], lifecycle: dict[str, str], groups: set[str],
                   warm: dict[str, str] | None = None) -> list[Instance]:
    """The instances, each member of a described group `healthy` only while the group has it
    InService (not while a lifecycle hook holds it in Pending:Wait, though EC2 says running);
    one its group no longer lists (detached, on its way out) is not healthy. A Standby member
    is `standby`; an instance of a group's warm pool (`warm`: id -> group) is `warm` and of
    that group, never a member."""
    warm = warm or {}
    return [replace(i, group=warm[i.id], healthy=False, warm=True) if i.id in warm
            else replace(i, healthy=lifecycle.get(i.id) == IN_SERVICE,
                         standby=lifecycle.get(i.id, "").startswith("Standby"))
            if i.group in groups else i for i in instances]


def with_refresh_notes(inventory: Inventory) -> Inventory:
    """The (labelled) inventory with a note on each group whose instance refresh deploys what
    its own launch template does not name yet, and that version in `extra["group_version"]`."""
    groups = []
    for g in inventory.groups:
        own = g.extra.get("group_image_id", g.desired_image_id)
        if own == g.desired_image_id:
            groups.append(g)
            continue
        image = inventory.images.get(own) if own else None
        says = (image.version if image is not None else None) or own or "an AMI FleetView " \
            "cannot read"
        # No status in the words: a note that changed with it would open a group span.
        note = (f"the group's launch template says {says} until the instance refresh "
                f"completes; the refresh deploys {g.desired_version or g.desired_image_id}")
        groups.append(replace(g, extra={**g.extra, "group_version": says},
                              notes=(*g.notes, note)))
    return replace(inventory, groups=tuple(groups))
