"""The GCP provider: one project's instances, MIGs and images through google-cloud-compute."""

from __future__ import annotations

import threading
from collections.abc import Generator, Mapping
from datetime import datetime

from fleetview.domain.actions import (
    ActionPlan,
    ActionRefused,
    Convergence,
    PlanStep,
    ProgressEvent,
    StepResult,
)
from fleetview.domain.backfill import Backfill
from fleetview.domain.errors import ProviderError
from fleetview.domain.model import Group, Image, Instance, Inventory
from fleetview.domain.timing import Timing
from fleetview.domain.versions import VersionRules
from fleetview.providers.base import Provider, refuse_read_only
from fleetview.providers.gcp import CLOUD, errors

# The Google libraries load here, not in fleetview.providers: the registry imports this
# module only when a GCP scope is configured.
from fleetview.providers.gcp.actions import Actions
from fleetview.providers.gcp.clients import Compute, account_of
from fleetview.providers.gcp.inventory import Poller, PollState

# Operations and rollouts are checked every 5 s for up to an hour; a call is tried 6 times.
DEFAULT_TIMING = Timing(interval_s=5.0, timeout_s=3600.0, attempts=6, backoff_s=1.0)

# The steps of each kind of action, by the key the plan (and the journal) gives them.
STEPS = {
    ("replace", "recreate"): Actions.recreate,
    ("replace", "track"): Actions.track_replace,
    ("rollback", "template"): Actions.create_template,
    ("rollback", "patch"): Actions.patch,
    ("rollback", "track"): Actions.track_rollback,
    ("rollback", "restore-policy"): Actions.restore_policy,
}


class GcpProvider(Provider):
    """One GCP project. `timing` governs waiting on operations and rollouts and the retries
    of one call (tests pass one whose sleep and clock are the emulator's)."""

    name = "gcp"
    cloud = CLOUD
    default_timing = DEFAULT_TIMING
    # A template on an image family names no image: the MIG recreates from the newest.
    replace_needs_image = False
    # A rollback patches its versions over an update under way (GCE's documented way).
    rolls_back_in_flight = True

    def __init__(self, config, rules: VersionRules, *, timing: Timing | None = None) -> None:
        super().__init__(config, rules, timing=timing or DEFAULT_TIMING)
        self.compute = Compute(config, self.timing)
        self._state = PollState()
        self._poll_lock = threading.Lock()
        self._poller = Poller(config, self.compute, self._state)
        self._actions = Actions(config, rules, self.compute, self._poller, self.timing)

    def poll(self) -> Inventory:
        # One poll at a time: the caches are shared and a second poll would only repeat it.
        with self._poll_lock:
            try:
                inventory = self._poller.poll()
            except ProviderError as exc:  # credentials: nothing could be asked at all
                inventory = self._poller.failed(exc, self.compute.calls)
        return self.rules.label(inventory)

    def identity(self) -> str:
        return account_of(self.compute.credentials, self.config)

    def history(self, since: datetime, until: datetime) -> Backfill:
        """What the project kept of [since, until): audit log, templates, creation times."""
        # google-cloud-logging (half a second to import) loads only for a backfill.
        from fleetview.providers.gcp import backfill

        return backfill.history(self.config, self._poller, self.poll, self.timing, since, until)

    # -- plans ---------------------------------------------------------------------------

    def plan_replace_of(self, inventory: Inventory, instance: Instance, group: Group
                        ) -> ActionPlan:
        return self._actions.plan_replace(inventory, instance, group)

    def plan_rollback_of(self, inventory: Inventory, group: Group, version: str,
                         known_images: Mapping[str, Image]) -> ActionPlan:
        return self._actions.plan_rollback(inventory, group, version, known_images)

    # -- execution -----------------------------------------------------------------------

    def check_before_run(self, plan: ActionPlan) -> None:
        if plan.provider != self.name or plan.scope != self.config.name:
            raise ActionRefused(f"this plan is for {plan.provider} scope {plan.scope}, not "
                                f"{self.name} scope {self.config.name}")
        refuse_read_only(self.config)

    def run_step(self, plan: ActionPlan, step: PlanStep
                 ) -> Generator[ProgressEvent, None, StepResult | None]:
        run = STEPS.get((plan.kind, step.key))
        if run is None:
            raise ActionRefused(f"step {step.key!r} of a {plan.kind} is unknown to this "
                                "version of FleetView")
        message = yield from run(self._actions, plan, step)
        return StepResult(message or "")

    def convergence(self, plan: ActionPlan) -> Convergence:
        return self._actions.convergence(plan)

    def stop(self, plan: ActionPlan, done: frozenset[str]
             ) -> Generator[ProgressEvent, None, str]:
        return (yield from self._actions.stop(plan, done))

    def explain(self, exc: BaseException, plan: ActionPlan, step: PlanStep) -> str:
        return errors.explain(exc, self.config, f"running step {step.key} of the {plan.kind} of "
                       f"{plan.group}")

    def what_is_left(self, plan: ActionPlan, reason: str) -> str:
        if plan.kind == "replace":
            left = (f"if {plan.params.get('instance_name', 'the instance')} was being "
                    f"recreated, group {plan.group} finishes that on its own; poll again before "
                    "acting on it")
        else:
            left = (f"group {plan.group} keeps the versions the steps done so far gave it and "
                    "finishes an update it has started on its own; see it in FleetView or the "
                    "console before acting again")
        return f"{plan.kind} of {plan.group} stopped: {reason}; {left}"

    def close(self) -> None:
        self.compute.close()
