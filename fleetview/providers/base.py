"""The contract every cloud provider implements, so the collector and actions need no if-cloud."""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator, Mapping

from fleetview.domain.actions import ActionPlan, ProgressEvent
from fleetview.domain.model import Image, Inventory
from fleetview.domain.versions import VersionRules


class Provider(abc.ABC):
    """One configured scope of one cloud.

    `poll` never raises for a cloud-side failure: what fails becomes a RegionError on the
    Inventory. Plans are pure; `execute` yields ProgressEvents and skips steps in `done`.
    """

    name: str = ""

    def __init__(self, config, rules: VersionRules) -> None:
        self.config = config
        self.rules = rules

    @abc.abstractmethod
    def poll(self) -> Inventory:
        """Everything this scope has now, versions labelled by the rules."""

    def identity(self) -> str:
        """Who acts: the AWS caller ARN or the GCP account."""
        raise NotImplementedError(f"{type(self).__name__} does not report an identity")

    def plan_replace(self, inventory: Inventory, instance_id: str) -> ActionPlan:
        raise NotImplementedError(f"{type(self).__name__} cannot replace instances")

    def plan_rollback(
        self,
        inventory: Inventory,
        group: str,
        region: str,
        version: str,
        known_images: Mapping[str, Image] | None = None,
    ) -> ActionPlan:
        """Plan to roll `group` back to `version`; `known_images` are images seen in history."""
        raise NotImplementedError(f"{type(self).__name__} cannot roll back groups")

    def execute(self, plan: ActionPlan, done: Iterable[str] = ()) -> Iterator[ProgressEvent]:
        raise NotImplementedError(f"{type(self).__name__} cannot execute plans")

    def close(self) -> None:  # noqa: B027 - most providers hold nothing to release
        """Release connections and threads."""
