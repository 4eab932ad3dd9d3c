"""Instance refresh on moto's Auto Scaling groups: batches over time, cancel and rollback.

moto has no instance refresh and replaces a group's instances the moment one goes, so this
module drives moto's own models the way Auto Scaling would: it launches replacements from the
desired configuration and terminates old instances in batches sized by the healthy percentages,
one batch per step, and keeps the refresh records that DescribeInstanceRefreshes reports.
A refresh whose preferences set `InstanceWarmup` waits that many seconds more per batch; its
rollback and its cancellation do not.

It runs inside the moto server process (see `aws_refresh_server`), and every call must hold the
lock that serialises it with moto's request handling.
"""

from __future__ import annotations

import copy
import math
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from moto.autoscaling.models import ASG_NAME_TAG, InstanceState, autoscaling_backends

# Statuses in which a group has a refresh under way: another one cannot start.
ACTIVE = frozenset({"Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking"})
# Statuses CancelInstanceRefresh and RollbackInstanceRefresh act on.
CANCELLABLE = frozenset({"Pending", "InProgress", "Baking", "RollbackInProgress"})
REVERSIBLE = frozenset({"Pending", "InProgress", "Baking"})

DEFAULT_MIN_HEALTHY = 90
# What AWS assumes for the preferences a request leaves out (the API reference's defaults).
DEFAULT_PREFERENCES: dict[str, Any] = {
    "MinHealthyPercentage": DEFAULT_MIN_HEALTHY,
    "SkipMatching": False,
    "AutoRollback": False,
    "ScaleInProtectedInstances": "Wait",
    "StandbyInstances": "Wait",
}

TEMPLATE_ID_TAG = "aws:ec2launchtemplate:id"


class RefreshFault(Exception):
    """An error Auto Scaling answers with: its code, its message, its HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def validation_error(message: str) -> RefreshFault:
    return RefreshFault("ValidationError", message)


def batch_size(desired: int, min_healthy: int, max_healthy: int | None) -> tuple[int, int]:
    """How many instances one batch replaces, and how many of them are launched before their
    old instance goes (the rest are terminated and replaced at once).

    Without MaxHealthyPercentage, Auto Scaling terminates and launches together, keeping at
    least MinHealthyPercentage of the desired capacity in service, and one at a time even at
    100%. With it, the group may grow to MaxHealthyPercentage meanwhile; where both bounds
    cannot hold, it launches one instance before terminating one.
    """
    in_service = math.ceil(desired * min_healthy / 100)
    down = max(0, desired - in_service)
    if max_healthy is None:
        return max(1, down), 0
    surge = max(0, math.floor(desired * max_healthy / 100) - desired)
    if surge + down == 0:
        return 1, 1
    return surge + down, surge


def configuration_of(group: Any) -> dict[str, Any]:
    """What the group launches from now, in DesiredConfiguration's shape (or a launch
    configuration's name)."""
    if group.mixed_instances_policy:
        return {"MixedInstancesPolicy": copy.deepcopy(group.mixed_instances_policy)}
    if group.ec2_launch_template is not None:
        spec = {"LaunchTemplateId": group.ec2_launch_template.id}
        version = getattr(group, "provided_launch_template_version", None)
        if version:
            spec["Version"] = str(version)
        return {"LaunchTemplate": spec}
    return {"LaunchConfigurationName": group.launch_config.name}


def template_spec(configuration: dict[str, Any]) -> dict[str, Any] | None:
    if "LaunchTemplate" in configuration:
        return configuration["LaunchTemplate"]
    policy = configuration.get("MixedInstancesPolicy")
    if policy:
        return (policy.get("LaunchTemplate") or {}).get("LaunchTemplateSpecification") or {}
    return None


def _override_types(configuration: dict[str, Any]) -> list[str]:
    policy = configuration.get("MixedInstancesPolicy") or {}
    overrides = (policy.get("LaunchTemplate") or {}).get("Overrides") or []
    return [o["InstanceType"] for o in overrides if o.get("InstanceType")]


def resolve_template(ec2: Any, spec: dict[str, Any]) -> Any:
    """The launch template version a LaunchTemplateSpecification names, or a ValidationError
    worded as Auto Scaling words it."""
    template_id, name = spec.get("LaunchTemplateId"), spec.get("LaunchTemplateName")
    if not (template_id or name):
        raise validation_error("Valid requests must contain either launchTemplateId or "
                               "LaunchTemplateName")
    try:
        template = (ec2.get_launch_template(template_id) if template_id
                    else ec2.get_launch_template_by_name(name))
    except Exception:
        which = f"template ID {template_id}" if template_id else f"template name {name}"
        raise validation_error(f"The specified launch template, with {which}, does not "
                               "exist.") from None
    version = spec.get("Version") or "$Default"
    try:
        return template.get_version(version)
    except Exception:
        raise validation_error(f"The specified launch template version {version} of launch "
                               f"template {template.id} does not exist.") from None


def irreversible_because(ec2: Any, configuration: dict[str, Any]) -> str | None:
    """Why a rollback to this configuration is not possible, or None."""
    spec = template_spec(configuration)
    if spec is None:
        return None  # a launch configuration: rolled back like any other
    version = str(spec.get("Version") or "$Default")
    if not version.isdigit():
        return (f"the group's launch template uses {version}; a rollback needs a specific "
                "version number")
    try:
        image = resolve_template(ec2, spec).image_id
    except RefreshFault as exc:
        return exc.message
    if str(image).startswith("resolve:ssm:"):
        return ("the group's launch template takes its ImageId from a Systems Manager "
                "parameter")
    return None


def matches(asg: Any, instance: Any, configuration: dict[str, Any]) -> bool:
    """Whether an instance already runs what `configuration` launches: its AMI and instance
    type, and its launch template where it carries one (moto does not record the version an
    instance was launched from, so the AMI stands for it)."""
    spec = template_spec(configuration)
    if spec is None:
        config = asg.launch_configurations.get(configuration["LaunchConfigurationName"])
        return (config is not None and instance.image_id == config.image_id
                and instance.instance_type == config.instance_type)
    try:
        version = resolve_template(asg.ec2_backend, spec)
    except RefreshFault:
        return False
    tags = getattr(asg.ec2_backend, "tags", {}).get(instance.id, {})
    if tags.get(TEMPLATE_ID_TAG, version.template.id) != version.template.id:
        return False
    types = {t for t in [version.instance_type, *_override_types(configuration)] if t}
    return instance.image_id == version.image_id and (not types or instance.instance_type
                                                      in types)


class _RefreshedInstance(InstanceState):
    """A group member launched by a refresh, which reports the template version it was launched
    from (moto reports the template's default version for every member)."""

    def __init__(self, instance: Any, launched_from: dict[str, str] | None, **kwargs: Any):
        super().__init__(instance, **kwargs)
        self._launched_from = launched_from

    @property
    def launch_template(self) -> dict[str, Any] | None:  # type: ignore[override]
        if self._launched_from is not None:
            return dict(self._launched_from)
        return super().launch_template

    @property
    def launch_configuration_name(self) -> str | None:  # type: ignore[override]
        if self._launched_from is not None:
            return None
        return super().launch_configuration_name


@dataclass
class Batch:
    kind: str  # "refresh" or "rollback"
    launched: list[str]  # new instances, Pending until the batch completes
    terminating: list[str]  # old ones terminated as their replacements launch
    surged: list[str]  # old ones kept in service until their replacements are


@dataclass
class Rollback:
    reason: str
    start_time: datetime
    percent_before: int
    to_update_before: int
    targets: list[str] | None = None
    done: set[str] = field(default_factory=set)

    @property
    def percent(self) -> int:
        if self.targets is None:
            return 0
        if not self.targets:
            return 100
        return math.floor(100 * len(self.done) / len(self.targets))


@dataclass
class InstanceRefresh:
    id: str
    account: str
    region: str
    group: str
    strategy: str
    preferences: dict[str, Any]
    desired: dict[str, Any] | None
    previous: dict[str, Any]  # the group's configuration when the refresh started
    start_time: datetime
    next_tick: float
    status: str = "Pending"
    reason: str | None = None
    end_time: datetime | None = None
    targets: list[str] = field(default_factory=list)  # old instances to replace, in order
    skipped: int = 0  # instances SkipMatching left alone
    done: set[str] = field(default_factory=set)  # targets replaced, or gone on their own
    launched: list[str] = field(default_factory=list)
    batch: Batch | None = None
    rollback: Rollback | None = None
    baked: bool = False

    @property
    def total(self) -> int:
        return self.skipped + len(self.targets)

    @property
    def percent(self) -> int:
        if self.status == "Pending":
            return 0
        if self.rollback is None:
            if self.total == 0:
                return 100
            return math.floor(100 * (self.skipped + len(self.done)) / self.total)
        # A rollback takes the percentage back down to zero as the new instances go.
        targets = self.rollback.targets
        if targets is None:
            return self.rollback.percent_before
        if not targets:
            return 0
        return math.floor(self.rollback.percent_before * (1 - len(self.rollback.done)
                                                          / len(targets)))

    @property
    def to_update(self) -> int:
        if self.rollback is not None:
            return self.rollback.to_update_before
        return len(self.targets) - len(self.done)

    def describe(self) -> dict[str, Any]:
        """This refresh in the InstanceRefresh shape."""
        live = {"PercentageComplete": self.percent, "InstancesToUpdate": self.to_update}
        shape: dict[str, Any] = {
            "InstanceRefreshId": self.id,
            "AutoScalingGroupName": self.group,
            "Status": self.status,
            "StartTime": self.start_time,
            "PercentageComplete": self.percent,
            "InstancesToUpdate": self.to_update,
            "ProgressDetails": {"LivePoolProgress": live},
            "Preferences": copy.deepcopy(self.preferences),
            "Strategy": self.strategy,
        }
        if self.reason:
            shape["StatusReason"] = self.reason
        if self.end_time is not None:
            shape["EndTime"] = self.end_time
        if self.desired:
            shape["DesiredConfiguration"] = copy.deepcopy(self.desired)
        if self.rollback is not None:
            left = 0 if self.rollback.targets is None else (
                len(self.rollback.targets) - len(self.rollback.done))
            shape["RollbackDetails"] = {
                "RollbackReason": self.rollback.reason,
                "RollbackStartTime": self.rollback.start_time,
                "PercentageCompleteOnRollback": self.rollback.percent,
                "InstancesToUpdateOnRollback": left,
                "ProgressDetailsOnRollback": {"LivePoolProgress": {
                    "PercentageComplete": self.rollback.percent, "InstancesToUpdate": left}},
            }
        return shape


def warmup_s(refresh: InstanceRefresh) -> float:
    """Seconds added to the batch just started: AWS counts a new instance only once
    `InstanceWarmup` has passed since it went InService, so a refresh moves on that much later.

    A rollback (RollbackInstanceRefresh) goes at the layer's pace without it: a deploy
    pipeline's slow warm-up must not make the way back as slow (here, where the demo stops and
    rolls back while one watches)."""
    if refresh.batch is None or refresh.batch.kind != "refresh":
        return 0.0
    try:
        return max(0.0, float(refresh.preferences.get("InstanceWarmup") or 0))
    except (TypeError, ValueError):
        return 0.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Refresher:
    """Every instance refresh of the server, by account, region and group, newest first."""

    def __init__(self, step_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.step_s = step_s
        self.clock = clock
        self.refreshes: dict[tuple[str, str, str], list[InstanceRefresh]] = {}
        # Called with (account, region, group) when a refresh succeeds (the warm pool's turn).
        self.on_success: Callable[[str, str, Any], None] | None = None

    # -- the API ---------------------------------------------------------------------------

    def start(self, account: str, region: str, params: dict[str, Any]) -> str:
        asg = autoscaling_backends[account][region]
        name = params["AutoScalingGroupName"]
        group = self._group(asg, name)
        latest = self._latest(account, region, name)
        if latest is not None and latest.status in ACTIVE:
            raise RefreshFault("InstanceRefreshInProgress",
                               f"An Instance Refresh is already in progress and blocks the "
                               f"execution of this Instance Refresh ({latest.id}, "
                               f"{latest.status}).")
        strategy = params.get("Strategy") or "Rolling"
        if strategy != "Rolling":
            raise validation_error(f"The {strategy} strategy is not available on this local "
                                   "cloud; use Rolling.")
        desired = params.get("DesiredConfiguration") or None
        if desired is not None:
            self._check_desired(asg.ec2_backend, desired)
        preferences = self._preferences(params.get("Preferences") or {})
        previous = configuration_of(group)
        if preferences["AutoRollback"]:
            if desired is None:
                raise validation_error("AutoRollback requires a DesiredConfiguration.")
            why = irreversible_because(asg.ec2_backend, previous)
            if why:
                raise validation_error(f"AutoRollback is not supported: {why}.")
        refresh = InstanceRefresh(
            id=str(uuid.uuid4()), account=account, region=region, group=name,
            strategy=strategy, preferences=preferences, desired=desired, previous=previous,
            start_time=_utcnow(), next_tick=self.clock() + self.step_s)
        self._plan(refresh, group, asg)
        self.refreshes.setdefault((account, region, name), []).insert(0, refresh)
        return refresh.id

    def describe(self, account: str, region: str, name: str,
                 ids: list[str] | None = None) -> list[dict[str, Any]]:
        found = self.refreshes.get((account, region, name), [])
        if ids:
            found = [r for r in found if r.id in ids]
        return [r.describe() for r in found]

    def cancel(self, account: str, region: str, name: str, wait: bool = True) -> str:
        asg = autoscaling_backends[account][region]
        group = self._group(asg, name)
        refresh = self._active(account, region, name, CANCELLABLE)
        refresh.status = "Cancelling"
        refresh.reason = "Cancelling due to user request."
        self._hurry(refresh)
        if not wait:
            self._complete_batch(refresh, group, asg)
            self._finish(refresh, "Cancelled", "Cancelled due to user request.")
        return refresh.id

    def rollback(self, account: str, region: str, name: str) -> str:
        asg = autoscaling_backends[account][region]
        self._group(asg, name)
        refresh = self._active(account, region, name, REVERSIBLE)
        if not refresh.desired:
            raise RefreshFault("IrreversibleInstanceRefresh",
                               "The instance refresh cannot be rolled back: it was started "
                               "without a desired configuration.")
        why = irreversible_because(asg.ec2_backend, refresh.previous)
        if why:
            raise RefreshFault("IrreversibleInstanceRefresh",
                               f"The instance refresh cannot be rolled back: {why}.")
        self._start_rollback(refresh, "Rollback started by a RollbackInstanceRefresh request.")
        self._hurry(refresh)
        return refresh.id

    def _hurry(self, refresh: InstanceRefresh) -> None:
        """The batch in flight ends at the layer's pace, without the rest of its warm-up."""
        refresh.next_tick = min(refresh.next_tick, self.clock() + self.step_s)

    def forget(self) -> None:
        """Drop every record (the server's resources were reset)."""
        self.refreshes.clear()

    # -- the clock -------------------------------------------------------------------------

    def next_due(self) -> float | None:
        due = [r.next_tick for rs in self.refreshes.values() for r in rs if r.status in ACTIVE]
        return min(due) if due else None

    def tick_due(self) -> None:
        now = self.clock()
        for refreshes in list(self.refreshes.values()):
            for refresh in refreshes:
                if refresh.status in ACTIVE and refresh.next_tick <= now:
                    refresh.next_tick = now + self.step_s
                    self.tick(refresh)
                    refresh.next_tick += warmup_s(refresh)

    def tick(self, refresh: InstanceRefresh) -> None:
        """One step: complete the batch in flight, then start the next one or finish."""
        asg = autoscaling_backends[refresh.account][refresh.region]
        group = asg.autoscaling_groups.get(refresh.group)
        if group is None:
            refresh.batch = None
            self._finish(refresh, "RollbackFailed" if refresh.rollback else "Failed",
                         "The Auto Scaling group was deleted.")
            return
        try:
            self._complete_batch(refresh, group, asg)
            if refresh.status == "Cancelling":
                self._finish(refresh, "Cancelled", "Cancelled due to user request.")
            elif refresh.status == "Pending":
                refresh.status = "InProgress"
                self._advance(refresh, group, asg)
            elif refresh.status == "InProgress":
                self._advance(refresh, group, asg)
            elif refresh.status == "Baking":
                self._succeed(refresh, group, asg)
            elif refresh.status == "RollbackInProgress":
                self._advance_rollback(refresh, group, asg)
        except RefreshFault as exc:
            self._fail(refresh, exc.message)
        except Exception as exc:  # a launch moto refused: the refresh fails, as in AWS
            self._fail(refresh, f"{type(exc).__name__}: {exc}")

    # -- steps -----------------------------------------------------------------------------

    def _plan(self, refresh: InstanceRefresh, group: Any, asg: Any) -> None:
        """Choose the instances to replace: every member in service (or in Standby, or protected
        from scale in, as the preferences say), less those SkipMatching finds already right."""
        prefs = refresh.preferences
        configuration = refresh.desired or refresh.previous
        for state in group.instance_states:
            if state.lifecycle_state not in ("InService", "Standby"):
                continue
            if state.lifecycle_state == "Standby" and prefs["StandbyInstances"] == "Ignore":
                continue
            if state.protected_from_scale_in and prefs["ScaleInProtectedInstances"] == "Ignore":
                continue
            if prefs["SkipMatching"] and matches(asg, state.instance, configuration):
                refresh.skipped += 1
                continue
            refresh.targets.append(state.instance.id)

    def _advance(self, refresh: InstanceRefresh, group: Any, asg: Any) -> None:
        remaining = self._remaining(refresh, group, refresh.targets, refresh.done)
        if remaining:
            configuration = refresh.desired or configuration_of(group)
            self._start_batch(refresh, group, asg, "refresh", remaining, configuration)
        elif refresh.preferences.get("BakeTime") and not refresh.baked:
            refresh.baked = True
            refresh.status = "Baking"
            refresh.reason = "Waiting for the bake time to pass."
        else:
            self._succeed(refresh, group, asg)

    def _advance_rollback(self, refresh: InstanceRefresh, group: Any, asg: Any) -> None:
        rollback = refresh.rollback
        assert rollback is not None
        if rollback.targets is None:
            members = {s.instance.id for s in group.instance_states}
            rollback.targets = [i for i in refresh.launched if i in members]
        remaining = self._remaining(refresh, group, rollback.targets, rollback.done)
        if remaining:
            self._start_batch(refresh, group, asg, "rollback", remaining, refresh.previous)
        else:
            self._finish(refresh, "RollbackSuccessful", "The rollback completed: the group's "
                         "instances are back on the configuration it had before the refresh.")

    def _remaining(self, refresh: InstanceRefresh, group: Any, targets: list[str],
                   done: set[str]) -> list[str]:
        """Targets still to replace; one gone on its own (terminated by someone) is done."""
        states = {s.instance.id: s for s in group.instance_states}
        left = []
        for instance_id in targets:
            if instance_id in done:
                continue
            state = states.get(instance_id)
            if state is None or state.lifecycle_state not in ("InService", "Standby"):
                done.add(instance_id)
                continue
            left.append(instance_id)
        return left

    def _waiting_on(self, refresh: InstanceRefresh, state: Any) -> str | None:
        prefs = refresh.preferences
        if state.lifecycle_state == "Standby" and prefs["StandbyInstances"] == "Wait":
            return "in Standby"
        if state.protected_from_scale_in and prefs["ScaleInProtectedInstances"] == "Wait":
            return "protected from scale in"
        return None

    def _start_batch(self, refresh: InstanceRefresh, group: Any, asg: Any, kind: str,
                     remaining: list[str], configuration: dict[str, Any]) -> None:
        states = {s.instance.id: s for s in group.instance_states}
        ready = [i for i in remaining if self._waiting_on(refresh, states[i]) is None]
        if not ready:
            first = remaining[0]
            refresh.reason = (f"Waiting for {first}, which is "
                              f"{self._waiting_on(refresh, states[first])}.")
            return
        desired = group.desired_capacity if group.desired_capacity else len(states)
        size, surge = batch_size(desired, refresh.preferences["MinHealthyPercentage"],
                                 refresh.preferences.get("MaxHealthyPercentage"))
        chosen = ready[:size]
        surge = min(surge, len(chosen))
        launched = self._launch(group, asg.ec2_backend, configuration, len(chosen))
        terminating = chosen[:len(chosen) - surge]
        for instance_id in terminating:
            states[instance_id].lifecycle_state = "Terminating"
            _set_ec2_state(states[instance_id].instance, "shutting-down", 32)
        refresh.batch = Batch(kind, launched, terminating, chosen[len(chosen) - surge:])
        if kind == "refresh":
            refresh.launched.extend(launched)
        refresh.reason = ("Waiting for instances to warm up before continuing. For example: "
                          f"{launched[0]} is warming up.")
        _update_load_balancers(asg, group)

    def _complete_batch(self, refresh: InstanceRefresh, group: Any, asg: Any) -> None:
        batch, refresh.batch = refresh.batch, None
        if batch is None:
            return
        for state in group.instance_states:
            if state.instance.id in batch.launched and state.lifecycle_state == "Pending":
                state.lifecycle_state = "InService"
                _set_ec2_state(state.instance, "running", 16)
        old = batch.terminating + batch.surged
        _terminate(asg, group, old)
        if batch.kind == "refresh":
            refresh.done.update(old)
        elif refresh.rollback is not None:
            refresh.rollback.done.update(old)

    def _launch(self, group: Any, ec2: Any, configuration: dict[str, Any],
                count: int) -> list[str]:
        """Launch `count` members from `configuration`, Pending, the way moto's group launches
        its own (moto.autoscaling.models.FakeAutoScalingGroup.replace_autoscaling_group_instances)
        but from the given configuration rather than the group's."""
        spec = template_spec(configuration)
        launch_config = None
        launched_from = None
        template_arg = None
        instance_tags: dict[str, str] = {}
        if spec is not None:
            version = resolve_template(ec2, spec)
            image_id, user_data = version.image_id, version.user_data
            security_groups = version.security_groups
            instance_type = version.instance_type or next(iter(_override_types(configuration)),
                                                          "m1.small")
            instance_tags = dict(version.instance_tags)
            template_arg = {"LaunchTemplateId": version.template.id,
                            "Version": str(version.number)}
            launched_from = {"LaunchTemplateId": version.template.id,
                             "LaunchTemplateName": version.template.name,
                             "Version": str(version.number)}
        else:
            asg = group.autoscaling_backend
            launch_config = asg.launch_configurations[configuration["LaunchConfigurationName"]]
            image_id, user_data = launch_config.image_id, launch_config.user_data
            security_groups, instance_type = launch_config.security_groups, \
                launch_config.instance_type
        tags = group.get_propagated_tags()
        tags[ASG_NAME_TAG] = group.name
        tags.update(instance_tags)
        subnet_id = group.vpc_zone_identifier.split(",")[0] if group.vpc_zone_identifier \
            else None
        reservation = ec2.run_instances(
            image_id, count, user_data, security_groups,
            instance_type=instance_type, tags={"instance": tags},
            placement=random.choice(group.availability_zones),
            launch_config=launch_config, launch_template=template_arg,
            is_instance_type_default=False,
            associate_public_ip=launch_config.associate_public_ip_address
            if launch_config is not None else None,
            subnet_id=subnet_id,
        )
        ids = []
        for instance in reservation.instances:
            instance.autoscaling_group = group
            _set_ec2_state(instance, "pending", 0)
            group.instance_states.append(_RefreshedInstance(
                instance, launched_from, lifecycle_state="Pending",
                protected_from_scale_in=group.new_instances_protected_from_scale_in))
            ids.append(instance.id)
        return ids

    # -- endings ---------------------------------------------------------------------------

    def _succeed(self, refresh: InstanceRefresh, group: Any, asg: Any) -> None:
        if refresh.desired:
            _apply(asg, group, refresh.desired)
        if self.on_success is not None:
            self.on_success(asg.account_id, asg.region_name, group)
        self._finish(refresh, "Successful", None)

    def _fail(self, refresh: InstanceRefresh, reason: str) -> None:
        if (refresh.status in REVERSIBLE and refresh.preferences.get("AutoRollback")
                and refresh.desired):
            self._start_rollback(refresh, f"The instance refresh failed: {reason}")
            return
        failed = "RollbackFailed" if refresh.status == "RollbackInProgress" else "Failed"
        self._finish(refresh, failed, reason)

    def _start_rollback(self, refresh: InstanceRefresh, reason: str) -> None:
        refresh.rollback = Rollback(reason=reason, start_time=_utcnow(),
                                    percent_before=refresh.percent,
                                    to_update_before=refresh.to_update)
        refresh.status = "RollbackInProgress"
        refresh.reason = reason

    def _finish(self, refresh: InstanceRefresh, status: str, reason: str | None) -> None:
        refresh.status = status
        refresh.reason = reason
        refresh.end_time = _utcnow()

    # -- checks ----------------------------------------------------------------------------

    def _group(self, asg: Any, name: str) -> Any:
        group = asg.autoscaling_groups.get(name)
        if group is None:
            raise validation_error(f"AutoScalingGroup name not found - AutoScalingGroup {name} "
                                   "not found")
        return group

    def _latest(self, account: str, region: str, name: str) -> InstanceRefresh | None:
        found = self.refreshes.get((account, region, name))
        return found[0] if found else None

    def _active(self, account: str, region: str, name: str,
                statuses: frozenset[str]) -> InstanceRefresh:
        latest = self._latest(account, region, name)
        if latest is None or latest.status not in statuses:
            raise RefreshFault("ActiveInstanceRefreshNotFound",
                               f"No in progress or pending Instance Refresh found for Auto "
                               f"Scaling group {name}")
        return latest

    def _check_desired(self, ec2: Any, desired: dict[str, Any]) -> None:
        if ("LaunchTemplate" in desired) == ("MixedInstancesPolicy" in desired):
            raise validation_error("DesiredConfiguration must contain either LaunchTemplate or "
                                   "MixedInstancesPolicy.")
        spec = template_spec(desired)
        if not spec:
            raise validation_error("The MixedInstancesPolicy of the DesiredConfiguration must "
                                   "contain a LaunchTemplateSpecification.")
        if spec.get("LaunchTemplateId") and spec.get("LaunchTemplateName"):
            raise validation_error("Valid requests must contain either launchTemplateId or "
                                   "LaunchTemplateName, not both.")
        resolve_template(ec2, spec)

    def _preferences(self, given: dict[str, Any]) -> dict[str, Any]:
        if "MaxHealthyPercentage" in given:
            if "MinHealthyPercentage" not in given:
                raise validation_error("MinHealthyPercentage must be specified together with "
                                       "MaxHealthyPercentage.")
            if given["MaxHealthyPercentage"] - given["MinHealthyPercentage"] > 100:
                raise validation_error("The difference between MaxHealthyPercentage and "
                                       "MinHealthyPercentage cannot be greater than 100.")
        checkpoints = given.get("CheckpointPercentages")
        if "CheckpointDelay" in given and not checkpoints:
            raise validation_error("CheckpointDelay requires CheckpointPercentages.")
        if checkpoints and checkpoints != sorted(set(checkpoints)):
            raise validation_error("CheckpointPercentages must be unique and in ascending "
                                   "order.")
        return {**DEFAULT_PREFERENCES, **given}


def _apply(asg: Any, group: Any, configuration: dict[str, Any]) -> None:
    """Point the group at `configuration`, as UpdateAutoScalingGroup would."""
    if "LaunchTemplate" in configuration:
        group.mixed_instances_policy = None
        group._set_launch_configuration(None, dict(configuration["LaunchTemplate"]), None)
    else:
        policy = copy.deepcopy(configuration["MixedInstancesPolicy"])
        group.mixed_instances_policy = policy
        group._set_launch_configuration(None, {}, policy)
    if getattr(group, "launch_config", None) is not None:
        group.launch_config = None
        group.launch_configuration_name = None


def _set_ec2_state(instance: Any, name: str, code: int) -> None:
    state = getattr(instance, "_state", None)
    if state is not None and state.name != "terminated":
        state.name, state.code = name, code


def _terminate(asg: Any, group: Any, instance_ids: list[str]) -> None:
    """Terminate group members without moto launching replacements for them."""
    if not instance_ids:
        return
    gone = set(instance_ids)
    leaving = [s.instance for s in group.instance_states if s.instance.id in gone]
    group.instance_states = [s for s in group.instance_states if s.instance.id not in gone]
    live = [i.id for i in leaving if i.state != "terminated"]
    if live:
        asg.ec2_backend.terminate_instances(live)
        elbv2 = getattr(asg, "elbv2_backend", None)
        if elbv2 is not None and hasattr(elbv2, "notify_terminate_instances"):
            elbv2.notify_terminate_instances(live)
    _update_load_balancers(asg, group)


def _update_load_balancers(asg: Any, group: Any) -> None:
    if group.name in asg.autoscaling_groups:
        asg.update_attached_elbs(group.name)
        asg.update_attached_target_groups(group.name)
