"""A third cloud that lives only in the tests: an in-memory fleet behind the provider contract.

It is what adding a cloud takes: a Cloud declaration (`CLOUD`, read by the config, `doctor`
and the permission files), a scope table, its needs, a doctor check and a Provider. A test
makes it known with one registry line:

    monkeypatch.setitem(providers.REGISTRY, "memory", "tests.helpers.memory_cloud")

The cloud itself is a `MemoryCloud` per account, found by the scope's `account` key in
`WORLDS`. It keeps time on a FakeClock: an instance a group launches boots after `boot_s`
seconds of that clock, and the provider waits on the same clock, so waiting costs nothing.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from fleetview.domain.actions import (
    ActionPlan,
    ActionRefused,
    PlanStep,
    ProgressEvent,
    StepResult,
    convergence,
)
from fleetview.domain.errors import ProviderError
from fleetview.domain.model import Group, Image, Instance, Inventory, RegionError, Scope, State
from fleetview.domain.timing import FakeClock, Timing, waiting
from fleetview.domain.versions import DEFAULT_RULES, VersionRule, VersionRules
from fleetview.providers.base import (
    STR_LIST,
    Capability,
    Cloud,
    KeySpec,
    Need,
    Provider,
    ScopeReport,
    needs_for,
    verdicts,
)

NAME = "memory"
# Memory images carry their version in a "version" tag; this rule reads it.
RULES = VersionRules((VersionRule(tag="version", provider=NAME), *DEFAULT_RULES))


# -- the scope table: [[memory]] --------------------------------------------------------------

@dataclass(frozen=True)
class MemoryScopeConfig:
    name: str
    account: str
    regions: tuple[str, ...]
    actions: bool = False
    protect: tuple[str, ...] = ()
    provider: str = NAME
    act_on_owned_groups: bool = False


KEYS: dict[str, KeySpec] = {
    "account": (str, 'the name of an in-memory cloud, e.g. "lab"'),
    "regions": STR_LIST,
}
_REGION = re.compile(r"^[a-z]+-\d+$")

EXAMPLE = '''[[memory]]
name = "lab-memory"
account = "lab"
regions = ["mem-1"]
actions = false           # true allows replace and rollback
'''


def parse(entry: dict, fail: Callable[[str, str], None]) -> MemoryScopeConfig:
    """A checked [[memory]] table (types already match KEYS) as a scope config."""
    account = entry.get("account")
    if not account:
        fail("account", 'is missing; name the in-memory cloud, e.g. account = "lab"')
    regions = entry.get("regions")
    if not regions:
        fail("regions", 'needs at least one region, e.g. regions = ["mem-1"]')
    for region in regions:
        if not _REGION.match(region):
            fail("regions", f'{region!r} is not a memory region name, e.g. "mem-1"')
    return MemoryScopeConfig(name=entry["name"], account=account,
                             regions=tuple(dict.fromkeys(regions)),
                             actions=entry.get("actions", False),
                             protect=tuple(entry.get("protect", [])),
                             act_on_owned_groups=entry.get("act_on_owned_groups", False))


# -- needs: what a role on the memory cloud must grant ------------------------------------------

NEEDS: tuple[Need, ...] = (
    Need("memory.instances.list", "watch", "list instances and the image each runs"),
    Need("memory.groups.list", "watch", "groups, their sizes and the image each launches"),
    Need("memory.images.list", "watch", "image names and version tags"),
    Need("memory.groups.update", "operate", "point a group at the image being rolled back to"),
    Need("memory.instances.delete", "operate",
         "replace one instance (its group launches a new one)"),
)


def permission_of(service: str, operation: str) -> str | None:
    """The permission one call needs; who you are is free to ask."""
    return None if service == "identity" else f"memory.{service}.{operation}"


def render(capability: Capability) -> str:
    """The role file of a capability: one permission a line, with why."""
    lines = [f"# FleetView on the in-memory cloud ({capability})"]
    lines += [f"{n.permission}  # {n.why}" for n in needs_for(NEEDS, capability)]
    return "\n".join(lines) + "\n"


# -- the cloud ----------------------------------------------------------------------------------

class Denied(Exception):
    """A call the caller's grants do not allow."""

    def __init__(self, permission: str):
        super().__init__(permission)
        self.permission = permission


class Unavailable(Exception):
    """A region that answers nothing."""


@dataclass
class MemImage:
    id: str
    name: str
    version: str
    gone: bool = False


@dataclass
class MemGroup:
    name: str
    region: str
    image_id: str | None
    size: int
    updating: bool = False
    tags: dict[str, str] = field(default_factory=dict)
    owner: str | None = None  # the system that deploys it (Group.owner)


@dataclass
class MemInstance:
    id: str
    name: str
    region: str
    group: str | None
    image_id: str | None
    state: State
    launched_at: float


class MemoryCloud:
    """One account of the in-memory cloud: what it holds, who may do what, and its clock.

    `granted` are the caller's permissions (all of NEEDS to start with); `identity` None means
    credentials that do not work; `down` are regions that fail every call; a group in `frozen`
    launches nothing (a rollout that never finishes). Every call is recorded in `calls` as
    (service, operation).
    """

    def __init__(self, account: str = "lab", *, identity: str | None = "lab-operator",
                 clock: FakeClock | None = None, boot_s: float = 30.0,
                 epoch: datetime | None = None) -> None:
        self.account, self.identity = account, identity
        self.clock = clock or FakeClock()
        self.boot_s = boot_s
        self.epoch = epoch or datetime.now(UTC) - timedelta(days=1)
        self.granted: set[str] = {n.permission for n in NEEDS}
        self.down: set[str] = set()
        self.frozen: set[str] = set()
        self.calls: list[tuple[str, str]] = []
        self.images: dict[str, MemImage] = {}
        self.groups: dict[tuple[str, str], MemGroup] = {}
        self.instances: dict[str, MemInstance] = {}
        self._ids = itertools.count(1)

    # -- building a fleet (the test's hand, not the API) ----------------------------------

    def add_image(self, version: str) -> MemImage:
        image = MemImage(f"img-{version}", f"app-{version}", version)
        self.images[image.id] = image
        return image

    def add_group(self, name: str, version: str, size: int = 3, region: str = "mem-1",
                  **kwargs) -> MemGroup:
        group = MemGroup(name, region, f"img-{version}", size, **kwargs)
        self.groups[(region, name)] = group
        for _ in range(size):
            self.add_instance(group=name, version=version, region=region)
        return group

    def add_instance(self, group: str | None = None, version: str = "1.0",
                     region: str = "mem-1", state: State = State.RUNNING) -> MemInstance:
        n = next(self._ids)
        instance = MemInstance(f"m-{n:04d}", f"{group or 'solo'}-{n}", region, group,
                               f"img-{version}", state, self.clock())
        self.instances[instance.id] = instance
        return instance

    def now(self) -> datetime:
        return self.epoch + timedelta(seconds=self.clock())

    def members(self, region: str, group: str) -> list[MemInstance]:
        return [i for i in self.instances.values()
                if i.group == group and i.region == region and i.state.live]

    # -- the API, as the provider calls it ------------------------------------------------

    def _call(self, service: str, operation: str, region: str | None = None) -> None:
        self.calls.append((service, operation))
        if self.identity is None:
            raise Denied("credentials")
        permission = permission_of(service, operation)
        if permission is not None and permission not in self.granted:
            raise Denied(permission)
        if region in self.down:
            raise Unavailable(region)
        self._settle()

    def whoami(self) -> str:
        self._call("identity", "get")
        return f"{self.identity}@{self.account}"

    def list_images(self) -> list[MemImage]:
        self._call("images", "list")
        return list(self.images.values())

    def list_groups(self, region: str) -> list[MemGroup]:
        self._call("groups", "list", region)
        return [g for g in self.groups.values() if g.region == region]

    def list_instances(self, region: str) -> list[MemInstance]:
        self._call("instances", "list", region)
        return [i for i in self.instances.values() if i.region == region]

    def update_group(self, region: str, name: str, image_id: str) -> None:
        self._call("groups", "update", region)
        group = self.groups.get((region, name))
        if group is None:
            raise ProviderError(f"group {name} does not exist in {region}")
        group.image_id = image_id

    def delete_instance(self, instance_id: str) -> None:
        self._call("instances", "delete")
        instance = self.instances.get(instance_id)
        if instance is None:
            raise ProviderError(f"instance {instance_id} does not exist")
        instance.state = State.TERMINATED

    def _settle(self) -> None:
        """What the cloud did since the last call: instances boot, groups refill."""
        now = self.clock()
        for instance in self.instances.values():
            if instance.state == State.PENDING and now - instance.launched_at >= self.boot_s:
                instance.state = State.RUNNING
        for (region, name), group in self.groups.items():
            if name in self.frozen:
                continue
            for _ in range(group.size - len(self.members(region, name))):
                launched = self.add_instance(name, region=region, state=State.PENDING)
                launched.image_id = group.image_id


# Every account of the in-memory cloud, by name; a scope's `account` key picks one.
WORLDS: dict[str, MemoryCloud] = {}


def lab_fleet(account: str = "lab", **kwargs) -> MemoryCloud:
    """Group "web" (3 instances) on 1.1 after 1.0, group "api" (2) on 1.1, one standalone
    instance on 1.0, in region mem-1."""
    world = MemoryCloud(account, **kwargs)
    for version in ("1.0", "1.1"):
        world.add_image(version)
    world.add_group("web", "1.1", size=3)
    world.add_group("api", "1.1", size=2)
    world.add_instance(group=None, version="1.0")
    return world


def connect(scope: MemoryScopeConfig) -> MemoryCloud:
    """The scope's cloud with working credentials: one way in, for polling and for doctor."""
    world = WORLDS.get(scope.account)
    if world is None:
        raise ProviderError(f"no in-memory cloud named {scope.account!r}; check the account "
                            f"key of scope {scope.name}")
    if world.identity is None:
        raise ProviderError(f"the credentials of scope {scope.name} do not work; log in to "
                            f"{scope.account} again")
    return world


def _explain(exc: Exception, region: str) -> str:
    if isinstance(exc, Denied):
        return (f"permission {exc.permission} is missing; grant memory-readonly.txt "
                "(see fleetview doctor)")
    return f"region {region} does not answer; try again later"


# -- doctor ---------------------------------------------------------------------------------

def check(scope: MemoryScopeConfig, report: ScopeReport) -> None:
    """`fleetview doctor` for a memory scope: the same way in as polling, then the grants."""
    try:
        world = connect(scope)
        report.identity = world.whoami()
    except ProviderError as exc:
        report.error = str(exc)
        return
    report.method = "the in-memory cloud's grants"

    def decide(need: Need):
        if need.permission in world.granted:
            return "present", ""
        return "missing", f"not granted to {report.identity}"

    report.checks = verdicts(needs_for(NEEDS, report.capability), decide)


CLOUD = Cloud(
    name=NAME,
    title="Memory",
    group_word="memory pool",
    keys=KEYS,
    parse_scope=parse,
    needs=NEEDS,
    policy_files={"memory-readonly.txt": ("watch", render),
                  "memory-operator.txt": ("operate", render)},
    provider="tests.helpers.memory_cloud:MemoryProvider",
    doctor="tests.helpers.memory_cloud:check",
    permission_of=permission_of,
    example=EXAMPLE,
)


# -- the provider ---------------------------------------------------------------------------

class MemoryProvider(Provider):
    """One [[memory]] scope. Without a Timing of its own it waits on its cloud's clock."""

    name = NAME
    cloud = CLOUD

    def __init__(self, config: MemoryScopeConfig, rules: VersionRules | None = None, *,
                 timing: Timing | None = None) -> None:
        if timing is None and config.account in WORLDS:
            timing = WORLDS[config.account].clock.timing(interval_s=5.0, timeout_s=600.0)
        super().__init__(config, rules or RULES, timing=timing)

    def identity(self) -> str:
        return connect(self.config).whoami()

    def poll(self) -> Inventory:
        config = self.config
        scope = Scope(NAME, config.name, config.account, config.regions)
        try:
            world = connect(config)
        except ProviderError as exc:
            return Inventory(scope, datetime.now(UTC),
                             errors=tuple(RegionError(r, str(exc)) for r in config.regions))
        before = len(world.calls)
        instances: list[Instance] = []
        groups: list[Group] = []
        errors: list[RegionError] = []
        regions_ok: list[str] = []
        try:
            raw_images = world.list_images()
        except (Denied, Unavailable) as exc:
            raw_images = []
            errors += [RegionError(r, _explain(exc, r)) for r in config.regions]
        for region in config.regions if not errors else ():
            try:
                raw_groups = world.list_groups(region)
                raw_instances = world.list_instances(region)
            except (Denied, Unavailable) as exc:
                errors.append(RegionError(region, _explain(exc, region)))
                continue
            groups += [Group(NAME, config.name, config.account, region, g.name, "pool",
                             g.image_id, g.size, updating=g.updating, tags=dict(g.tags),
                             owner=g.owner)
                       for g in raw_groups]
            instances += [Instance(NAME, i.id, i.name, config.name, config.account, region,
                                   f"{region}-a", i.group, i.image_id, i.state,
                                   launched_at=world.epoch + timedelta(seconds=i.launched_at))
                          for i in raw_instances]
            regions_ok.append(region)
        images = {i.id: Image(NAME, i.id, i.name, tags={"version": i.version}, gone=i.gone)
                  for i in raw_images}
        inventory = Inventory(scope, world.now(), tuple(instances), tuple(groups), images,
                              tuple(errors), tuple(regions_ok), len(world.calls) - before)
        return self.rules.label(inventory)

    def update_under_way(self, group: Group) -> str:
        return "a rolling update under way"

    # -- plans --------------------------------------------------------------------------

    def plan_replace_of(self, inventory: Inventory, instance: Instance, group: Group
                        ) -> ActionPlan:
        size = max(group.target_size, len(inventory.members(group)))
        return ActionPlan(
            kind="replace", provider=NAME, scope=self.config.name, region=group.region,
            group=group.name, instances=(instance.id,),
            from_versions=(instance.version or "?",), to_version=group.desired_version,
            to_image_id=group.desired_image_id,
            steps=(PlanStep(f"delete-{instance.id}", f"delete {instance.name}; {group.name} "
                            f"launches its replacement on {group.desired_version}",
                            (instance.id,)),
                   PlanStep("track", f"wait until {group.name} runs {size} instances again")),
            mechanism="delete-in-pool", capacity_kept=f"{size - 1} of {size} instances",
            irreversible=(f"{instance.name} and its local disk are deleted",))

    def plan_rollback_of(self, inventory: Inventory, group: Group, version: str,
                         known_images: Mapping[str, Image]) -> ActionPlan:
        image = self._image_of(version, inventory, known_images)
        members = inventory.members(group)
        behind = [m for m in members if m.version != version]
        if group.desired_version == version and not behind:
            raise ActionRefused(f"group {group.name} already runs {version} on every instance")
        steps = [PlanStep("point-group", f"make {group.name} launch {version} ({image.id})")]
        steps += [PlanStep(f"delete-{m.id}", f"delete {m.name}; {group.name} launches "
                           f"{version} in its place", (m.id,)) for m in behind]
        steps.append(PlanStep("track", f"wait until every instance of {group.name} runs "
                              f"{version}"))
        return ActionPlan(
            kind="rollback", provider=NAME, scope=self.config.name, region=group.region,
            group=group.name, instances=tuple(m.id for m in behind),
            from_versions=tuple(sorted({m.version or "?" for m in behind})),
            to_version=version, to_image_id=image.id, steps=tuple(steps),
            mechanism="delete-in-pool", capacity_kept=f"{len(members) - 1} of {len(members)}",
            irreversible=tuple(f"{m.name} and its local disk are deleted" for m in behind))

    @staticmethod
    def _image_of(version: str, inventory: Inventory, known: Mapping[str, Image]) -> Image:
        found = [i for i in (*inventory.images.values(), *known.values())
                 if i.version == version]
        if not found:
            raise ActionRefused(f"no image of version {version} is known; pick a version the "
                                "group ran before")
        alive = [i for i in found if not i.gone]
        if not alive:
            raise ActionRefused(f"the image of {version} ({found[0].id}) no longer exists: "
                                "the group could not launch it")
        return alive[0]

    # -- execution ------------------------------------------------------------------------

    def check_before_run(self, plan: ActionPlan) -> None:
        world = connect(self.config)
        if not any(g.name == plan.group for g in world.list_groups(plan.region)):
            raise ActionRefused(f"group {plan.group} no longer exists in {plan.region}; "
                                "nothing was changed")

    def run_step(self, plan: ActionPlan, step: PlanStep
                 ) -> Generator[ProgressEvent, None, StepResult | None]:
        world = connect(self.config)
        if step.key == "point-group":
            world.update_group(plan.region, plan.group or "", plan.to_image_id or "")
            return StepResult(f"{plan.group} launches {plan.to_version} from now on")
        if step.key.startswith("delete-"):
            for instance_id in step.instances:
                world.delete_instance(instance_id)
            return StepResult(f"deleted {', '.join(step.instances)}")
        if step.key == "track":
            return (yield from self._track(plan))
        raise ProviderError(f"step {step.key} is unknown to the memory cloud")

    def _track(self, plan: ActionPlan) -> Generator[ProgressEvent, None, StepResult]:
        what = f"{plan.group} still does not run {plan.to_version} on every instance"
        for _ in waiting(self.timing, what):
            done, total = convergence(self.poll(), plan)
            yield ProgressEvent("track", "progress",
                                f"{done} of {total} instances run {plan.to_version}", done, total)
            if total and done >= total:
                return StepResult(f"{done} of {total} instances run {plan.to_version}")
        raise AssertionError("unreachable")  # waiting() raises at the deadline

    def what_is_left(self, plan: ActionPlan, reason: str) -> str:
        inventory = self.poll()
        group = inventory.group(plan.group or "", plan.region)
        if group is None:
            return f"{plan.kind} of {plan.group} stopped: {reason}; the group is gone"
        done, total = convergence(inventory, plan)
        return (f"{plan.kind} of {plan.group} stopped: {reason}; {done} of {total} instances "
                f"run {plan.to_version}, and the group launches {group.desired_version}")
