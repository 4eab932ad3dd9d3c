"""The GCP provider: one project's instances, MIGs and images through google-cloud-compute."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping

from fleetview.domain.actions import ActionPlan, ProgressEvent
from fleetview.domain.errors import ProviderError
from fleetview.domain.model import Image, Inventory
from fleetview.domain.versions import VersionRules
from fleetview.providers.base import Provider

# The Google libraries load here, not in fleetview.providers: the registry imports this
# module only when a GCP scope is configured.
from fleetview.providers.gcp.actions import Actions
from fleetview.providers.gcp.clients import Compute, account_of
from fleetview.providers.gcp.inventory import Poller, PollState


class GcpProvider(Provider):
    """One GCP project. `sleep`, `poll_interval_s` and `timeout_s` govern waiting on
    operations and rollouts (tests pass a sleep that advances the emulator's clock);
    `sleep` also paces retries after throttling."""

    name = "gcp"

    def __init__(self, config, rules: VersionRules, *,
                 sleep: Callable[[float], None] = time.sleep,
                 poll_interval_s: float = 5.0, timeout_s: float = 3600.0,
                 retries: int = 5, backoff_s: float = 1.0) -> None:
        super().__init__(config, rules)
        self.compute = Compute(config, sleep=sleep, retries=retries, backoff_s=backoff_s)
        self._state = PollState()
        self._poll_lock = threading.Lock()
        self._poller = Poller(config, self.compute, self._state)
        self._actions = Actions(config, rules, self.compute, self._poller, sleep,
                                poll_interval_s, timeout_s)

    @property
    def sleep(self) -> Callable[[float], None]:
        return self.compute.sleep

    @sleep.setter
    def sleep(self, value: Callable[[float], None]) -> None:
        self.compute.sleep = value
        self._actions.sleep = value

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

    def plan_replace(self, inventory: Inventory, instance_id: str) -> ActionPlan:
        return self._actions.plan_replace(inventory, instance_id)

    def plan_rollback(self, inventory: Inventory, group: str, region: str, version: str,
                      known_images: Mapping[str, Image] | None = None) -> ActionPlan:
        return self._actions.plan_rollback(inventory, group, region, version, known_images)

    def execute(self, plan: ActionPlan, done: Iterable[str] = ()) -> Iterator[ProgressEvent]:
        return self._actions.execute(plan, done)

    def close(self) -> None:
        self.compute.close()
