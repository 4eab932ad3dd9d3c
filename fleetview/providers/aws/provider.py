"""The AWS provider: one [[aws]] scope's EC2 instances, AMIs and Auto Scaling groups (boto3)."""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from datetime import datetime

from fleetview.domain.actions import ActionPlan, PlanStep, ProgressEvent
from fleetview.domain.backfill import Backfill
from fleetview.domain.errors import FleetViewError, ProviderError
from fleetview.domain.model import Group, Image, Instance, Inventory
from fleetview.domain.timing import Timing
from fleetview.domain.versions import VersionRules
from fleetview.providers.aws import CLOUD

# boto3 loads here, not in fleetview.providers: the registry imports this module only when an
# AWS scope is configured.
from fleetview.providers.aws.actions import Actions, Steps
from fleetview.providers.aws.backfill import TRAIL_RATE_PER_S, History
from fleetview.providers.aws.clients import Clients
from fleetview.providers.aws.errors import explain
from fleetview.providers.aws.inventory import Poller, PollState, with_refresh_notes
from fleetview.providers.base import Provider, refuse_read_only

# Instance refreshes and batches take minutes: checked every 15 s unless told otherwise.
DEFAULT_TIMING = Timing(interval_s=15.0)


class AwsProvider(Provider):
    """One [[aws]] scope: an account (optionally through an assumed role) over its regions.

    `timing` paces the waits on instance refreshes and replacements and counts the attempts
    of one API call. Keyword-only extras exist for tests and the demo, not for the config:
    `endpoint_for` gives one region its own endpoint (a region that is down, a throttling
    proxy), `region_workers` caps the lanes of regions polled at once (default: all; regions
    sharing one endpoint form one lane), `trail_rate` paces CloudTrail LookupEvents
    (requests a second per region; AWS allows 2).
    """

    name = "aws"
    cloud = CLOUD
    default_timing = DEFAULT_TIMING
    # A refresh under way is rolled back by AWS (RollbackInstanceRefresh) or cancelled first.
    rolls_back_in_flight = True

    def __init__(
        self,
        config,
        rules: VersionRules,
        *,
        timing: Timing | None = None,
        endpoint_for: Callable[[str], str | None] | None = None,
        page_size: int = 1000,
        connect_timeout_s: float | None = None,
        read_timeout_s: float | None = None,
        region_workers: int | None = None,
        trail_rate: float = TRAIL_RATE_PER_S,
    ) -> None:
        super().__init__(config, rules, timing=timing or DEFAULT_TIMING)
        # The timeouts of one try follow from the poll's deadline unless given.
        self.clients = Clients(config, attempts=self.timing.attempts, endpoint_for=endpoint_for,
                               connect_timeout_s=connect_timeout_s,
                               read_timeout_s=read_timeout_s,
                               deadline_s=self.timing.poll_deadline_s)
        self.poller = Poller(config, self.clients, PollState(), page_size=page_size,
                             region_workers=region_workers)
        self.actions = Actions(config, self.clients, self.poller, self.timing,
                               inventory=self.poll)
        self.history_reader = History(config, self.clients, trail_rate=trail_rate)

    def poll(self) -> Inventory:
        return with_refresh_notes(self.rules.label(self.poller.poll()))

    def history(self, since: datetime, until: datetime) -> Backfill:
        """Launch template versions, Auto Scaling activities, CloudTrail events (paced under
        LookupEvents' 2 requests a second) and live instances' launch times."""
        return self.history_reader.read(since, until)

    def identity(self) -> str:
        try:
            return self.clients.caller()["Arn"]
        except Exception as exc:
            raise ProviderError(explain(exc, self.config.profile, "sts GetCallerIdentity",
                                        "sts")) from None

    # -- plans ---------------------------------------------------------------------------

    def update_under_way(self, group: Group) -> str:
        return f"an instance refresh {group.extra.get('instance_refresh') or 'in progress'}"

    def plan_replace_of(self, inventory: Inventory, instance: Instance, group: Group
                        ) -> ActionPlan:
        return self.actions.plan_replace(inventory, instance, group)

    def plan_rollback_of(self, inventory: Inventory, group: Group, version: str,
                         known_images: Mapping[str, Image], *, min_healthy_percent: int = 90
                         ) -> ActionPlan:
        """`min_healthy_percent`: the share of the group kept in service while it is replaced."""
        return self.actions.plan_rollback(inventory, group, version, known_images,
                                          min_healthy_percent)

    # -- execution -----------------------------------------------------------------------

    def check_before_run(self, plan: ActionPlan) -> None:
        refuse_read_only(self.config)
        self.actions.refuse_active_refresh(plan)

    def run_step(self, plan: ActionPlan, step: PlanStep) -> Steps:
        return self.actions.run(plan, step)

    def stop(self, plan: ActionPlan, done: frozenset[str]) -> Generator[ProgressEvent, None, str]:
        """Cancel the instance refresh of the action (or the one its plan meant to stop) and
        say where the group is left; the group's members count as healthy only InService
        (`Instance.healthy`, set by the poll), so `convergence` needs nothing of its own."""
        return self.actions.stop(plan, done)

    def explain(self, exc: BaseException, plan: ActionPlan, step: PlanStep) -> str:
        if isinstance(exc, FleetViewError):
            return str(exc)
        return explain(exc, self.config.profile, f"{plan.region} {step.key}")

    def what_is_left(self, plan: ActionPlan, reason: str) -> str:
        return self.actions.what_is_left(plan, reason)

    def close(self) -> None:
        self.clients.close()
        self.poller.close()
