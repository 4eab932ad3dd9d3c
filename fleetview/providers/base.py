"""The contract every cloud implements: its Cloud declaration, a Provider per scope, and the
refusals and words that every cloud shares, written once."""

from __future__ import annotations

import abc
import ipaddress
import uuid
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal, Protocol
from urllib.parse import urlparse

from fleetview.domain.actions import (
    ActionPlan,
    ActionRefused,
    Convergence,
    PlanStep,
    ProgressEvent,
    StepResult,
    converge_state,
)
from fleetview.domain.backfill import Backfill
from fleetview.domain.errors import FleetViewError
from fleetview.domain.model import Group, Image, Instance, Inventory
from fleetview.domain.timing import Timing
from fleetview.domain.versions import VersionRules

Capability = Literal["watch", "operate"]
CAPABILITIES: tuple[Capability, ...] = ("watch", "operate")


@dataclass(frozen=True)
class Need:
    """One permission, the capability that needs it, and why.

    `implied` marks a permission the cloud checks on the caller although FleetView never
    calls that API itself (e.g. iam:PassRole when an Auto Scaling group launches from a
    template with an instance profile); the recorded calls cannot show those.
    """

    permission: str
    capability: Capability
    why: str
    implied: bool = False


def needs_for(needs: tuple[Need, ...], capability: Capability) -> tuple[Need, ...]:
    """What a capability needs: "operate" includes everything "watch" needs."""
    wanted = ("watch",) if capability == "watch" else ("watch", "operate")
    return tuple(n for n in needs if n.capability in wanted)


class ScopeConfig(Protocol):
    """What every cloud's scope table has; each cloud adds its own keys (see its `scope`)."""

    name: str
    provider: str
    actions: bool
    protect: tuple[str, ...]
    regions: tuple[str, ...]
    act_on_owned_groups: bool  # act on groups another system deploys (Group.owner)


# A config key's Python type(s) and the hint shown when a value has the wrong type.
KeySpec = tuple[type | tuple[type, ...], str]
STR: KeySpec = (str, 'a string in quotes, e.g. "prod"')
BOOL: KeySpec = (bool, "true or false")
STR_LIST: KeySpec = (list, 'a list of strings, e.g. ["us-east-1", "eu-west-1"]')
SHARED_KEYS: dict[str, KeySpec] = {
    "name": STR,
    "actions": BOOL,
    "protect": (list, 'a list of key=value selectors, e.g. ["env=prod"]'),
    # A group another system deploys (Group.owner): acted on only when this is true.
    "act_on_owned_groups": BOOL,
    "backfill_days": (int, "a whole number of days, e.g. 30 (0 turns backfill off)"),
}

# How far back a scope's first poll rebuilds history from the cloud's records (backfill_days).
BACKFILL_DAYS_DEFAULT = 30
# CloudTrail keeps 90 days; no cloud record FleetView reads reaches further.
BACKFILL_DAYS_MAX = 90


def parse_backfill_days(entry: dict, fail: Callable[[str, str], None]) -> int:
    """A scope table's backfill_days, checked: every cloud's `parse_scope` calls this."""
    days = entry.get("backfill_days", BACKFILL_DAYS_DEFAULT)
    if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= BACKFILL_DAYS_MAX:
        fail("backfill_days", f"must be a whole number of days from 0 (off) to "
             f"{BACKFILL_DAYS_MAX}, e.g. backfill_days = 30; not {days!r}")
        return BACKFILL_DAYS_DEFAULT
    return days


def backfill_days(config) -> int:
    """The scope's backfill_days (a scope config without the key: the default)."""
    return int(getattr(config, "backfill_days", BACKFILL_DAYS_DEFAULT))


@dataclass(frozen=True)
class Cloud:
    """Everything FleetView knows about one cloud, declared by its package's `__init__`.

    The package imports no SDK: the config, the permission files and the self-check read
    this declaration without loading boto3 or the Google libraries. `provider`, `doctor`
    and `sdk_check` are "module:attribute" strings, imported only when needed.

    - `keys`: the keys of its config table beside the shared name/actions/protect;
      `parse_scope(entry, fail)` turns a checked table into its scope config, calling
      `fail(key, message)` for what the user must fix.
    - `needs`: every permission with its capability; `policy_files` maps a file name in
      packaging/permissions/ to its capability and a renderer of the needs.
    - `permission_of(service, operation)`: the permission one recorded API call needs
      (None: a call that needs none), so tests can check that `needs` covers every call.
    """

    name: str
    title: str
    group_word: str  # "Auto Scaling group": how its console names a group
    keys: Mapping[str, KeySpec]
    parse_scope: Callable[[dict, Callable[[str, str], None]], Any]
    needs: tuple[Need, ...]
    policy_files: Mapping[str, tuple[Capability, Callable[[Capability], str]]]
    provider: str
    doctor: str
    sdk_check: str = ""
    permission_of: Callable[[str, str], str | None] | None = None
    example: str = ""  # a config table to copy, shown by the welcome page and errors
    extra: Mapping[str, Any] = field(default_factory=dict)
    # Organisation scopes (see fleetview/domain/members.py): `discover` is "module:attribute" of
    # discover(parent_config) -> list[Member], the accounts or projects an organisation scope
    # holds; `member_scope(parent_config, member_id)` is the scope config of one of them.
    discover: str = ""
    member_scope: Callable[[Any, str], Any] | None = None

    @property
    def table(self) -> str:
        return f"[[{self.name}]]"


def is_loopback_url(url: str | None) -> bool:
    """Whether a URL points at this machine (where anonymous credentials are allowed)."""
    host = urlparse(url or "").hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# -- refusals every cloud shares --------------------------------------------------------------

def refuse_read_only(config) -> None:
    if not getattr(config, "actions", False):
        raise ActionRefused(
            f"scope {config.name} is read-only: set actions = true in its "
            f"[[{config.provider}]] table of the config to allow replace and rollback")


def owned_group_warning(config, group: Group, kind: str) -> str | None:
    """The warning a plan carries for a group another system deploys (`Group.owner`), or None
    for a group of its own; refused unless the scope sets act_on_owned_groups = true."""
    if not group.owner:
        return None
    undo = (f"{group.owner} manages group {group.name}: its next deployment can undo this "
            f"{kind} (it applies the configuration it knows)")
    if not getattr(config, "act_on_owned_groups", False):
        raise ActionRefused(
            f"{undo}, so FleetView does not act on it: change the version through "
            f"{group.owner}, or set act_on_owned_groups = true in scope {config.name}'s "
            f"[[{config.provider}]] table to act anyway")
    return (f"{undo}; afterwards, make {group.owner} launch the same version, or its next "
            "deployment reverts the group")


def refuse_updating(group: Group, update: str) -> None:
    """`update` is the cloud's words for what is under way, e.g. "an update under way"."""
    if group.updating:
        raise ActionRefused(f"group {group.name} has {update}: wait until it is done (or stop "
                            "it) before acting on the group")


def with_warning(plan: ActionPlan, warning: str | None) -> ActionPlan:
    """The plan with a shared warning first among its notes."""
    return replace(plan, notes=(warning, *plan.notes)) if warning else plan


class Provider(abc.ABC):
    """One configured scope of one cloud.

    `poll` never raises for a cloud-side failure: what fails becomes a RegionError on the
    Inventory. Plans are pure: the shared refusals run here, then the cloud's half
    (`plan_replace_of`, `plan_rollback_of`). The step loop (fleetview.actions.steps) runs a
    plan by calling `run_step` for each step not journaled done.
    """

    name: str = ""
    cloud: Cloud
    # Whether a replace is refused when the group's image cannot be read. A MIG whose
    # template names an image family has none to read, and recreates from the family's newest.
    replace_needs_image: bool = True
    # The Timing of a scope given none; the collector hands a provider this one with its
    # own poll deadline (`poll_deadline_s`).
    default_timing: Timing = Timing()

    def __init__(self, config, rules: VersionRules, *, timing: Timing | None = None) -> None:
        self.config = config
        self.rules = rules
        self.timing = timing or self.default_timing

    @abc.abstractmethod
    def poll(self) -> Inventory:
        """Everything this scope has now, versions labelled by the rules."""

    @abc.abstractmethod
    def identity(self) -> str:
        """Who acts: the AWS caller ARN, the GCP account."""

    def history(self, since: datetime, until: datetime) -> Backfill:
        """What the cloud's own records say happened between `since` and `until` (launches,
        terminations, group versions, live instances' launch times), for a backfill
        (`fleetview.domain.backfill.infer` turns them into spans). Never raises for a record
        it cannot read: it says what it skipped and why in `Backfill.skipped`."""
        title = getattr(getattr(self, "cloud", None), "title", None) or self.name or "this"
        return Backfill(skipped=[f"the {title} provider reads no history records"])

    # -- plans ---------------------------------------------------------------------------

    def plan_replace(self, inventory: Inventory, instance_id: str) -> ActionPlan:
        refuse_read_only(self.config)
        inst = inventory.instance(instance_id)
        if inst is None:
            raise ActionRefused(f"instance {instance_id} is not in the last poll of scope "
                                f"{self.config.name}; poll again and pick a listed instance")
        if inst.group is None:
            raise ActionRefused(
                f"{inst.name or instance_id} is a standalone instance (not in a "
                f"{self.cloud.group_word}): nothing would launch its replacement, so "
                "FleetView will not terminate it")
        group = inventory.group_of(inst)
        if group is None:
            raise ActionRefused(f"{instance_id} names group {inst.group}, which the last poll "
                                f"did not see in {inst.region}; poll again")
        owned = owned_group_warning(self.config, group, "replace")
        refuse_updating(group, self.update_under_way(group))
        if not group.desired_image_id and self.replace_needs_image:
            raise ActionRefused(f"group {group.name} names no image FleetView can read; a "
                                "replacement's image cannot be known")
        image = inventory.images.get(group.desired_image_id)
        if image is not None and image.gone:
            raise ActionRefused(
                f"group {group.name} launches {image.name or image.id} "
                f"({group.desired_version}), which no longer exists: a replacement would fail "
                "to start; roll the group to an available version first")
        return with_warning(self.plan_replace_of(inventory, inst, group), owned)

    def plan_rollback(self, inventory: Inventory, group: str, region: str, version: str,
                      known_images: Mapping[str, Image] | None = None, **options: Any
                      ) -> ActionPlan:
        """Plan to roll `group` back to `version`; `known_images` are images seen in history;
        `options` are a cloud's own keywords, handed to its `plan_rollback_of` (AWS:
        min_healthy_percent)."""
        refuse_read_only(self.config)
        found = inventory.group(group, region)
        if found is None:
            raise ActionRefused(f"group {group} in {region} is not in the last poll of scope "
                                f"{self.config.name}; poll again")
        owned = owned_group_warning(self.config, found, "rollback")
        if not self.rolls_back_in_flight:
            refuse_updating(found, self.update_under_way(found))
        return with_warning(self.plan_rollback_of(inventory, found, version, known_images or {},
                                                  **options), owned)

    # Whether `plan_rollback_of` can roll back a group whose rollout is under way (its plan
    # then stops that rollout first); for a cloud that cannot, the shared check refuses.
    rolls_back_in_flight: bool = False

    def update_under_way(self, group: Group) -> str:
        """The cloud's words for the rollout a group reports, e.g. "an update under way"."""
        return "an update under way"

    @abc.abstractmethod
    def plan_replace_of(self, inventory: Inventory, instance: Instance, group: Group
                        ) -> ActionPlan:
        """The cloud's half of a replace, once the shared refusals have passed."""

    @abc.abstractmethod
    def plan_rollback_of(self, inventory: Inventory, group: Group, version: str,
                         known_images: Mapping[str, Image]) -> ActionPlan:
        """The cloud's half of a rollback, once the shared refusals have passed."""

    # -- execution -----------------------------------------------------------------------

    def check_before_run(self, plan: ActionPlan) -> None:  # noqa: B027 - most need nothing
        """Called before a plan's first step runs; raise ActionRefused to change nothing."""

    @abc.abstractmethod
    def run_step(self, plan: ActionPlan, step: PlanStep
                 ) -> Generator[ProgressEvent, None, StepResult | None]:
        """Run one step, yielding progress while it waits (a generator, even for a step that
        has none); return a StepResult or None. Raise to fail the step."""

    def explain(self, exc: BaseException, plan: ActionPlan, step: PlanStep) -> str:
        """What the operator reads when a step raised something other than FleetViewError."""
        return str(exc) if isinstance(exc, FleetViewError) else f"{type(exc).__name__}: {exc}"

    def convergence(self, plan: ActionPlan) -> Convergence:
        """Where the plan's group stands now, read fresh from the cloud. A cloud that knows
        its members' health (ASG lifecycle InService, a MIG's currentAction) says it in
        `Instance.healthy`, or overrides this."""
        return converge_state(self.poll(), plan)

    def stop(self, plan: ActionPlan, done: frozenset[str]
             ) -> Generator[ProgressEvent, None, str]:
        """Stop what the cloud does for this action (an instance refresh, a MIG update) and
        leave the group as the plan said; return what was done. FleetView's own batches need
        nothing here: the step loop stops at the next step boundary."""
        return "FleetView stopped before its next step; nothing else was running in the cloud"
        yield  # a generator, like every step runner

    def what_is_left(self, plan: ActionPlan, reason: str) -> str:
        """The action's failure message: the reason, and the state the group is left in."""
        target = plan.group or (plan.instances[0] if plan.instances else "?")
        return f"{plan.kind} of {target} stopped: {reason}"

    def close(self) -> None:  # noqa: B027 - most providers hold nothing to release
        """Release connections and threads."""


# -- doctor: what each cloud's check fills in ---------------------------------------------------

Verdict = Literal["present", "missing", "unknown"]


@dataclass(frozen=True)
class Check:
    """One permission's verdict, and how it was reached (or why it could not be)."""

    need: Need
    verdict: Verdict
    detail: str = ""


@dataclass
class ScopeReport:
    """`fleetview doctor`'s findings for one scope; a cloud's `doctor.check` fills it in."""

    scope: str
    provider: str
    capability: Capability
    identity: str = ""
    method: str = ""  # how the permissions were checked
    error: str = ""  # credentials or endpoint do not work: nothing else was checked
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.error and all(c.verdict == "present" for c in self.checks)

    def missing(self) -> list[Check]:
        return [c for c in self.checks if c.verdict == "missing"]

    def unknown(self) -> list[Check]:
        return [c for c in self.checks if c.verdict == "unknown"]


def verdicts(needs: Iterable[Need], decide: Callable[[Need], tuple[Verdict, str]]) -> list[Check]:
    return [Check(need, *decide(need)) for need in needs]


PROBE_MARK = "-fleetview-doctor-"


def probe_name(prefix: str) -> str:
    """A resource name that cannot exist, for calls that must fail after authorization."""
    return f"{prefix}{PROBE_MARK}{uuid.uuid4().hex[:12]}"
