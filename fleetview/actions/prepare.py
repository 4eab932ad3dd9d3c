"""Everything the plan preview needs, gathered off the GUI thread: a fresh poll, the plan,
who will act, the rollback target from history and the versions one may choose."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pandas as pd

from fleetview.actions import audit, history, quarantine
from fleetview.actions.runner import protected_by
from fleetview.config import Config
from fleetview.domain.actions import ActionPlan, ActionRefused
from fleetview.domain.errors import FleetViewError
from fleetview.domain.model import Group, Image, Inventory
from fleetview.domain.versions import version_key
from fleetview.providers import make_provider


@dataclass
class Prepared:
    """A plan ready for the operator, or the reason there is none (`refusal`)."""

    kind: str
    scope: str
    region: str
    group: str | None
    plan: ActionPlan | None = None
    refusal: str = ""
    identity: str = ""
    protected: str | None = None
    group_info: Group | None = None
    current_version: str | None = None
    versions: list[str] = field(default_factory=list)  # rollback targets to choose from
    estimate_s: float | None = None
    # Versions marked bad for the group -> why; choosing one means typing it.
    bad: dict[str, str] = field(default_factory=dict)
    note: str = ""  # what the rollback does besides: "will stop the update under way"
    provider: object = None
    inventory: Inventory | None = None

    @property
    def ok(self) -> bool:
        return self.plan is not None and not self.refusal

    @property
    def target_bad(self) -> str:
        """Why the plan's target version is marked bad ("" if it is not)."""
        if self.plan is None or self.plan.to_version is None:
            return ""
        return self.bad.get(self.plan.to_version, "")


def _known_images(store, scope: str, provider: str) -> dict[str, Image]:
    frame = store.images()
    frame = frame[frame["scope"] == scope]
    images = {}
    for row in frame.itertuples(index=False):
        created = None if pd.isna(row.created_at) else row.created_at.to_pydatetime()
        images[row.image_id] = Image(provider, row.image_id, row.name or "", created,
                                     gone=bool(row.gone), version=row.version)
    return images


def _selectors(config: Config, scope_config) -> tuple[str, ...]:
    return tuple(config.protect) + tuple(getattr(scope_config, "protect", ()))


def _refused(store, prepared: Prepared, actor: str, why: str) -> Prepared:
    prepared.refusal = why
    if not store.readonly:
        audit.append(store, "refused", actor or "unknown", scope=prepared.scope,
                     region=prepared.region, group=prepared.group,
                     detail={"kind": prepared.kind, "why": why, "stage": "plan"})
    return prepared


def _scope_config(config: Config, store, prepared: Prepared):
    """The scope's config, or None with the refusal set (unknown scope, read-only store)."""
    try:
        scope_config = config.scope(prepared.scope)
    except KeyError:
        prepared.refusal = f"scope {prepared.scope} is not in the config"
        return None
    if store.readonly:
        prepared.refusal = ("this window opened the store read-only (--no-collect): actions "
                            "need to write the journal and audit log")
        return None
    return scope_config


def _connect(config: Config, scope_config, prepared: Prepared, provider):
    """The provider (the operator's own credentials), who it acts as, and a fresh poll."""
    provider = provider or make_provider(scope_config, config.versions)
    prepared.provider = provider
    prepared.identity = provider.identity()
    prepared.inventory = provider.poll()
    return provider, prepared.inventory


def prepare_rollback(config: Config, store, scope: str, region: str, group: str,
                     version: str | None = None, provider=None) -> Prepared:
    prepared = Prepared("rollback", scope, region, group)
    scope_config = _scope_config(config, store, prepared)
    if scope_config is None:
        return prepared
    try:
        provider, inventory = _connect(config, scope_config, prepared, provider)
        info = inventory.group(group, region)
        prepared.group_info = info
        prepared.current_version = info.desired_version if info else None
        prepared.protected = protected_by(_selectors(config, scope_config), info)
        bad = quarantine.bad_for(store, scope, region, group)
        prepared.bad = {v: mark.describe() for v, mark in bad.items()}
        # One read of the group's history serves readiness and the versions to offer.
        now = datetime.now(UTC)
        spans = history.group_history(store, now, scopes=[scope], regions=[region],
                                      groups=[group])
        ready = history.readiness(store, scope_config, scope, region, group, now=now,
                                  bad=set(bad), spans=spans)
        prepared.estimate_s = ready.estimate_s
        prepared.note = ready.note
        known = _known_images(store, scope, scope_config.provider)
        gone = {i.version for i in known.values() if i.gone}
        candidates = {v for v in spans["version"].dropna().unique()
                      if v != prepared.current_version}
        # Bad versions stay choosable, after the others: the dialog asks to type one.
        prepared.versions = sorted(candidates - gone, key=lambda v: (v not in bad,
                                                                     version_key(v)),
                                   reverse=True)
        target = version or (ready.target.version if ready.target else None)
        if target is None:
            return _refused(store, prepared, prepared.identity, ready.why or
                            "history shows no earlier version to roll back to")
        if target in prepared.versions:
            prepared.versions.remove(target)
        prepared.versions.insert(0, target)
        prepared.plan = provider.plan_rollback(
            inventory, group, region, target,
            known_images=known)
        if not ready.ready and version is None:
            # The plan is shown, but what stands in the way is said too.
            blocking = [r for r in ready.why.split("; ") if "no earlier version" not in r]
            if blocking:
                return _refused(store, prepared, prepared.identity, "; ".join(blocking))
    except ActionRefused as exc:
        return _refused(store, prepared, prepared.identity, str(exc))
    except FleetViewError as exc:
        prepared.refusal = str(exc)
    return prepared


def prepare_replace(config: Config, store, scope: str, instance_id: str,
                    provider=None) -> Prepared:
    prepared = Prepared("replace", scope, "", None)
    scope_config = _scope_config(config, store, prepared)
    if scope_config is None:
        return prepared
    try:
        provider, inventory = _connect(config, scope_config, prepared, provider)
        instance = inventory.instance(instance_id)
        if instance is not None:
            prepared.region, prepared.group = instance.region, instance.group
            info = inventory.group(instance.group, instance.region) if instance.group else None
            prepared.group_info = info
            prepared.current_version = instance.version
            prepared.protected = protected_by(_selectors(config, scope_config), info)
        prepared.plan = provider.plan_replace(inventory, instance_id)
        prepared.region = prepared.plan.region
        prepared.group = prepared.plan.group
    except ActionRefused as exc:
        return _refused(store, prepared, prepared.identity, str(exc))
    except FleetViewError as exc:
        prepared.refusal = str(exc)
    return prepared
