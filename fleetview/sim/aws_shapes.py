"""Production shapes moto lacks, served inside its server process: SSM image references at launch,
DescribeImages' IncludeDisabled, launch lifecycle hooks, warm pools with instances, and spot
interruptions.

`patch_moto()` changes three of moto's behaviours to AWS's (a launch template whose ImageId is
`resolve:ssm:<parameter>` launches the AMI the parameter holds; DescribeImages leaves disabled
AMIs out unless IncludeDisabled is true; an instance a group launches while it has an
EC2_INSTANCE_LAUNCHING hook waits in Pending:Wait until CompleteLifecycleAction, which
`complete_lifecycle_action` serves). `WarmPools` answers PutWarmPool, DescribeWarmPool and
DeleteWarmPool with instances: moto keeps a warm pool's configuration but never launches one.
`interrupt_spot` ends an instance the way a spot interruption does (moto has no such event).
A mixed group whose first override names its own launch template or AMI launches that
override's type from it (moto launches the group's template).
Everything here runs under the refresh layer's lock (`aws_refresh_server`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from moto.autoscaling.models import ASG_NAME_TAG, autoscaling_backends
from moto.ec2.models import ec2_backends

SSM_PREFIX = "resolve:ssm:"
# PoolState -> the EC2 state a warm instance waits in, and its LifecycleState in the pool.
POOL_STATES = {"Stopped": ("stopped", 80, "Warmed:Stopped"),
               "Running": ("running", 16, "Warmed:Running"),
               "Hibernated": ("stopped", 80, "Warmed:Hibernated")}
WARM_ACTIONS = ("PutWarmPool", "DescribeWarmPool", "DeleteWarmPool")
LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
_patched = False


def resolve_image(account: str, region: str, image_id: str) -> str:
    """The AMI a launch template's ImageId launches: an SSM parameter's value for
    "resolve:ssm:<name>[:version]" (as AWS resolves it at each launch), else itself."""
    if not image_id.startswith(SSM_PREFIX):
        return image_id
    from moto.ssm.models import ssm_backends

    name = image_id[len(SSM_PREFIX):]
    backend = ssm_backends[account][region]
    selector = None
    if name.count(":") and not name.startswith("arn:"):
        name, selector = name.rsplit(":", 1)
    try:
        parameter = backend.get_parameter(name + (f":{selector}" if selector else ""))
    except Exception:  # noqa: BLE001 - AWS fails the launch; moto launches what it is given
        return image_id
    return parameter.value if parameter is not None else image_id


def patch_moto() -> None:
    """Make moto launch from SSM image references and honour IncludeDisabled (idempotent)."""
    global _patched
    if _patched:
        return
    _patched = True
    from moto.core.responses import ActionResult
    from moto.ec2.models.launch_templates import LaunchTemplateVersion
    from moto.ec2.responses.amis import AmisResponse

    # Only launches read `image_id`; DescribeLaunchTemplateVersions answers `data` unchanged.
    raw_image = LaunchTemplateVersion.image_id

    def image_id(self: Any) -> str:
        value = raw_image.fget(self)
        backend = self.template.ec2_backend
        return resolve_image(backend.account_id, backend.region_name, value or "")

    LaunchTemplateVersion.image_id = property(image_id)  # type: ignore[method-assign]

    def describe_images(self: Any) -> Any:
        self.error_on_dryrun()
        images = self.ec2_backend.describe_images(
            ami_ids=self._get_param("ImageIds", []), filters=self._filters_from_querystring(),
            exec_users=self._get_param("ExecutableUsers", []),
            owners=self._get_param("Owners", []))
        if str(self._get_param("IncludeDisabled", "false")).lower() != "true":
            images = [i for i in images if getattr(i, "state", "") != "disabled"]
        return ActionResult({"Images": images})

    AmisResponse.describe_images = describe_images  # type: ignore[method-assign]

    from moto.autoscaling.models import FakeAutoScalingGroup

    launch = FakeAutoScalingGroup.replace_autoscaling_group_instances

    def replace_instances(self: Any, count_needed: int, propagated_tags: dict) -> None:
        before = len(self.instance_states)
        launch(self, count_needed, propagated_tags)
        override = _first_override_launch(self)
        if override is not None:
            for state in self.instance_states[before:]:
                state.instance.instance_type, state.instance.image_id = override
        if _launch_hooked(self):
            for state in self.instance_states[before:]:
                state.lifecycle_state = "Pending:Wait"

    FakeAutoScalingGroup.replace_autoscaling_group_instances = replace_instances  # type: ignore[method-assign]


def _first_override_launch(group: Any) -> tuple[str, str] | None:
    """(instance type, AMI) of a mixed group's first override where it names its own launch
    template or AMI: AWS's prioritized strategy launches the first override's type, from that
    override's template; moto launches the group's template whatever the overrides say."""
    policy = getattr(group, "mixed_instances_policy", None) or {}
    overrides = (policy.get("LaunchTemplate") or {}).get("Overrides") or []
    first = overrides[0] if overrides else {}
    spec, image = first.get("LaunchTemplateSpecification"), first.get("ImageId")
    if not first.get("InstanceType") or not (spec or image):
        return None
    if spec:
        from fleetview.sim.aws_refresh import resolve_template

        image = resolve_template(group.autoscaling_backend.ec2_backend, spec).image_id
    return first["InstanceType"], image


def _launch_hooked(group: Any) -> bool:
    hooks = group.autoscaling_backend.lifecycle_hooks.values()
    return any(h.auto_scaling_group_name == group.name and h.lifecycle_transition == LAUNCHING
               for h in hooks)


def complete_lifecycle_action(account: str, region: str, params: dict[str, Any]
                              ) -> dict[str, Any]:
    """CompleteLifecycleAction for a launch: CONTINUE puts the instance in service, ABANDON
    terminates it (the group then launches another)."""
    from fleetview.sim.aws_refresh import validation_error

    asg = autoscaling_backends[account][region]
    group = asg.autoscaling_groups.get(params["AutoScalingGroupName"])
    instance_id = params.get("InstanceId")
    state = next((s for s in (group.instance_states if group else ())
                  if s.instance.id == instance_id and s.lifecycle_state == "Pending:Wait"),
                 None)
    if state is None:
        raise validation_error(f"No active Lifecycle Action found with instance ID "
                               f"{instance_id}")
    if params.get("LifecycleActionResult") == "ABANDON":
        asg.terminate_instance(instance_id, should_decrement=False)
    else:
        state.lifecycle_state = "InService"
    return {}


@dataclass
class WarmPool:
    state: str
    min_size: int
    max_prepared: int | None
    instances: list[str] = field(default_factory=list)


class WarmPools:
    """Warm pools with instances: launched from the group's configuration when the pool is
    put, waiting stopped (or running) and tagged with the group, as AWS's do."""

    def __init__(self) -> None:
        self.pools: dict[tuple[str, str, str], WarmPool] = {}

    def forget(self) -> None:
        self.pools.clear()

    def put(self, account: str, region: str, params: dict[str, Any]) -> dict[str, Any]:
        asg = autoscaling_backends[account][region]
        name = params["AutoScalingGroupName"]
        group = asg.autoscaling_groups.get(name)
        if group is None:
            from fleetview.sim.aws_refresh import validation_error

            raise validation_error(f"AutoScalingGroup name not found - {name}")
        state = params.get("PoolState") or "Stopped"
        asg.put_warm_pool(group_name=name,
                          max_group_prepared_capacity=params.get("MaxGroupPreparedCapacity"),
                          min_size=params.get("MinSize"), pool_state=state,
                          instance_reuse_policy=params.get("InstanceReusePolicy"))
        key = (account, region, name)
        old = self.pools.pop(key, None)
        if old is not None:
            _terminate(account, region, old.instances)
        pool = WarmPool(state, int(params.get("MinSize") or 0),
                        params.get("MaxGroupPreparedCapacity"))
        prepared = pool.max_prepared if pool.max_prepared not in (None, -1) else group.max_size
        size = max(pool.min_size, int(prepared) - int(group.desired_capacity or 0))
        pool.instances = self._launch(account, region, group, size, state)
        self.pools[key] = pool
        return {}

    def describe(self, account: str, region: str, params: dict[str, Any]) -> dict[str, Any]:
        name = params["AutoScalingGroupName"]
        pool = self.pools.get((account, region, name))
        if pool is None:
            return {"Instances": []}
        ec2 = ec2_backends[account][region]
        lifecycle = POOL_STATES.get(pool.state, POOL_STATES["Stopped"])[2]
        instances = []
        for instance_id in pool.instances:
            found = _instance(ec2, instance_id)
            if found is None or found.state == "terminated":
                continue
            instances.append({
                "InstanceId": instance_id, "InstanceType": found.instance_type,
                "AvailabilityZone": getattr(found.placement, "zone", None) or region,
                "LifecycleState": lifecycle,
                "HealthStatus": "Healthy", "ImageId": found.image_id})
        configuration: dict[str, Any] = {"MinSize": pool.min_size, "PoolState": pool.state}
        if pool.max_prepared is not None:
            configuration["MaxGroupPreparedCapacity"] = pool.max_prepared
        return {"WarmPoolConfiguration": configuration, "Instances": instances}

    def delete(self, account: str, region: str, params: dict[str, Any]) -> dict[str, Any]:
        name = params["AutoScalingGroupName"]
        pool = self.pools.pop((account, region, name), None)
        asg = autoscaling_backends[account][region]
        if name in asg.autoscaling_groups:
            asg.delete_warm_pool(group_name=name)
        if pool is not None:
            _terminate(account, region, pool.instances)
        return {}

    def replace_behind(self, account: str, region: str, group: Any) -> None:
        """Replace the pool's instances that run another AMI than the group launches now, as
        a successful instance refresh does."""
        pool = self.pools.get((account, region, group.name))
        if pool is None:
            return
        ec2 = ec2_backends[account][region]
        behind = [i for i in pool.instances
                  if (found := _instance(ec2, i)) is not None and found.image_id != group.image_id]
        if not behind:
            return
        _terminate(account, region, behind)
        pool.instances = [i for i in pool.instances if i not in behind] + self._launch(
            account, region, group, len(behind), pool.state)

    def _launch(self, account: str, region: str, group: Any, count: int,
                state: str) -> list[str]:
        if count <= 0:
            return []
        ec2 = ec2_backends[account][region]
        tags = group.get_propagated_tags()
        tags[ASG_NAME_TAG] = group.name
        reservation = ec2.run_instances(
            group.image_id, count, group.user_data, group.security_groups,
            instance_type=group.instance_type or "t3.micro", tags={"instance": tags},
            placement=random.choice(group.availability_zones), is_instance_type_default=False)
        name, code, _ = POOL_STATES.get(state, POOL_STATES["Stopped"])
        for instance in reservation.instances:
            instance._state.name, instance._state.code = name, code
        return [i.id for i in reservation.instances]


def _instance(ec2: Any, instance_id: str) -> Any:
    try:
        return ec2.get_instance(instance_id)
    except Exception:  # noqa: BLE001 - gone from moto's model: not in the pool any more
        return None


def _terminate(account: str, region: str, instance_ids: list[str]) -> None:
    ec2 = ec2_backends[account][region]
    live = [i for i in instance_ids if (found := _instance(ec2, i)) is not None
            and found.state != "terminated"]
    if live:
        ec2.terminate_instances(live)


def interrupt_spot(account: str, region: str, instance_id: str) -> None:
    """End a spot instance as an interruption does: terminated, StateReason
    Server.SpotInstanceTermination (its group then launches a replacement on its own)."""
    from moto.ec2.models.instances import StateReason

    ec2 = ec2_backends[account][region]
    instance = ec2.get_instance(instance_id)
    ec2.terminate_instances([instance_id])
    instance._reason = "Service initiated (spot interruption)"
    instance.state_reason = StateReason(
        "Server.SpotInstanceTermination: Spot instance termination",
        "Server.SpotInstanceTermination")
