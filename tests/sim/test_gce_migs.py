"""Managed instance groups on the emulator: rollouts over emulated time, recreate, resize."""

from __future__ import annotations

import pytest
from google.api_core import exceptions
from google.cloud import compute_v1

from tests.helpers import gce as gce_fixtures
from tests.helpers.gce import PROJECT

gce_emulator = gce_fixtures.gce_emulator
gce_client_kwargs = gce_fixtures.gce_client_kwargs

ZONE = "us-central1-a"
STEP = 30  # emulated seconds to create or recreate an instance: GceState.step_seconds
DELETE = 10  # emulated seconds to delete one: GceState.delete_seconds
BATCH = STEP + DELETE  # a surge replacement: create the new instance, then delete the old


@pytest.fixture
def web(gce_emulator):
    """A zonal group of 6 on template t1 (image 1.0.0); template t2 (image 2.0.0) exists."""
    state = gce_emulator.state
    state.create_image("app-1-0-0", family="app")
    state.create_image("app-2-0-0", family="app")
    state.create_instance_template("t1", "app-1-0-0")
    state.create_instance_template("t2", "app-2-0-0")
    state.create_mig("web", "t1", zone=ZONE, target_size=6)
    return gce_emulator


def _patch(client, versions, policy, request_id=None, region=None):
    resource = compute_v1.InstanceGroupManager(
        versions=[compute_v1.InstanceGroupManagerVersion(**v) for v in versions],
        update_policy=compute_v1.InstanceGroupManagerUpdatePolicy(**policy))
    if region:
        return client.patch_unary(request=compute_v1.PatchRegionInstanceGroupManagerRequest(
            project=PROJECT, region=region, instance_group_manager="web", request_id=request_id,
            instance_group_manager_resource=resource))
    return client.patch_unary(request=compute_v1.PatchInstanceGroupManagerRequest(
        project=PROJECT, zone=ZONE, instance_group_manager="web", request_id=request_id,
        instance_group_manager_resource=resource))


def _images(kwargs, zone=ZONE):
    disks = compute_v1.DisksClient(**kwargs).list(project=PROJECT, zone=zone)
    return {d.name: d.source_image.rsplit("/", 1)[-1] for d in disks}


def _managed(client, name="web"):
    return {m.instance.rsplit("/", 1)[-1]: m for m in client.list_managed_instances(
        project=PROJECT, zone=ZONE, instance_group_manager=name)}


def test_proactive_rollout_is_partial_for_a_while_then_converges(web, gce_client_kwargs):
    groups = compute_v1.InstanceGroupManagersClient(**gce_client_kwargs)
    before = set(_images(gce_client_kwargs))
    op = _patch(groups, [{"instance_template": "global/instanceTemplates/t2", "name": "v2"}],
                {"type_": "PROACTIVE", "minimal_action": "REPLACE",
                 "max_surge": compute_v1.FixedOrPercent(fixed=2),
                 "max_unavailable": compute_v1.FixedOrPercent(fixed=0)})
    assert op.status == compute_v1.Operation.Status.RUNNING
    assert op.operation_type == "compute.instanceGroupManagers.patch"

    history = []
    for _ in range(10):
        group = groups.get(project=PROJECT, zone=ZONE, instance_group_manager="web")
        images = _images(gce_client_kwargs)
        history.append((group.status.is_stable, group.status.version_target.is_reached,
                        group.current_actions.creating, sum(v == "app-2-0-0"
                                                            for v in images.values())))
        # Surge 2, unavailable 0: never fewer than 6 old-or-new instances, never more than 8.
        assert 6 <= len(images) <= 8
        web.clock.advance(BATCH)
    assert history[0] == (False, False, 2, 2)  # two surge instances being created
    assert history[1][3] == 4 and history[2][3] == 6
    assert [h[:2] for h in history[3:]] == [(True, True)] * 7
    after = _images(gce_client_kwargs)
    assert set(after.values()) == {"app-2-0-0"} and len(after) == 6
    assert not set(after) & before  # SUBSTITUTE: replacements have new names
    group = groups.get(project=PROJECT, zone=ZONE, instance_group_manager="web")
    assert group.instance_template.endswith("/instanceTemplates/t2")
    assert group.update_policy.max_surge.calculated == 2
    assert {m.version.name for m in _managed(groups).values()} == {"v2"}


def test_substituted_instances_are_deleted_after_their_replacements_run(
        web, gce_client_kwargs):
    groups = compute_v1.InstanceGroupManagersClient(**gce_client_kwargs)
    _patch(groups, [{"instance_template": "t2"}],
           {"type_": "PROACTIVE", "max_surge": compute_v1.FixedOrPercent(fixed=2),
            "max_unavailable": compute_v1.FixedOrPercent(fixed=0)})
    web.clock.advance(STEP)
    group = groups.get(project=PROJECT, zone=ZONE, instance_group_manager="web")
    assert (group.current_actions.deleting, group.current_actions.creating) == (2, 0)
    assert len(_images(gce_client_kwargs)) == 8
    statuses = {m.instance_status for m in _managed(groups).values()
                if m.current_action == "DELETING"}
    assert statuses == {"STOPPING"}
    web.clock.advance(DELETE)
    group = groups.get(project=PROJECT, zone=ZONE, instance_group_manager="web")
    assert (group.current_actions.deleting, group.current_actions.creating) == (0, 2)


def test_unavailable_only_rollout_recreates_in_place_in_steps(web, gce_client_kwargs):
    groups = compute_v1.InstanceGroupManagersClient(**gce_client_kwargs)
    instances = compute_v1.InstancesClient(**gce_client_kwargs)
    ids = {i.name: i.id for i in instances.list(project=PROJECT, zone=ZONE)}
    _patch(groups, [{"instance_template": "t2"}],
           {"type_": "PROACTIVE", "max_surge": compute_v1.FixedOrPercent(fixed=0),
            "max_unavailable": compute_v1.FixedOrPercent(percent=34)})  # of 6 -> 2
    managed = _managed(groups)
    assert sorted(m.current_action for m in managed.values()).count("RECREATING") == 2
    web.clock.advance(STEP)
    assert sum(v == "app-2-0-0" for v in _images(gce_client_kwargs).values()) == 2
    web.clock.advance(2 * STEP)
    now = {i.name: i for i in instances.list(project=PROJECT, zone=ZONE)}
    assert set(now) == set(ids)  # same names...
    assert all(now[n].id != ids[n] for n in ids)  # ...new instances
    assert set(_images(gce_client_kwargs).values()) == {"app-2-0-0"}


def test_canary_version_moves_only_its_share(web, gce_client_kwargs):
    groups = compute_v1.InstanceGroupManagersClient(**gce_client_kwargs)
    _patch(groups, [{"instance_template": "t2", "name": "canary",
                     "target_size": compute_v1.FixedOrPercent(fixed=1)},
                    {"instance_template": "t1", "name": "stable"}], {"type_": "PROACTIVE"})
    web.clock.advance(5 * STEP)
    assert sorted(_images(gce_client_kwargs).values()) == ["app-1-0-0"] * 5 + ["app-2-0-0"]
    group = groups.get(project=PROJECT, zone=ZONE, instance_group_manager="web")
    assert group.status.version_target.is_reached and group.status.is_stable
    canary = [v for v in group.versions if v.name == "canary"][0]
    assert canary.target_size.calculated == 1
    versions = sorted(m.version.name for m in _managed(groups).values())
    assert versions == ["canary"] + ["stable"] * 5


@pytest.mark.parametrize("canary_first", [True, False])
def test_versions_keep_the_order_the_request_gave(web, gce_client_kwargs, canary_first):
    groups = compute_v1.InstanceGroupManagersClient(**gce_client_kwargs)
    canary = {"instance_template": "t2", "name": "canary",
              "target_size": compute_v1.FixedOrPercent(percent=50)}
    stable = {"instance_template": "t1", "name": "stable"}
    _patch(groups, [canary, stable] if canary_first else [stable, canary],
           {"type_": "PROACTIVE"})
    web.clock.advance(5 * BATCH)
    group = groups.get(project=PROJECT, zone=ZONE, instance_group_manager="web")
    expected = ["canary", "stable"] if canary_first else ["stable", "canary"]
    assert [v.name for v in group.versions] == expected
    # The top-level template is the one that takes the remainder, wherever it is listed.
    assert group.instance_template.endswith("/instanceTemplates/t1")
    assert sorted(_images(gce_client_kwargs).values()) == ["app-1-0-0"] * 3 + ["app-2-0-0"] * 3


def test_opportunistic_update_waits_for_recreate(web, gce_client_kwargs):
    groups = compute_v1.InstanceGroupManagersClient(**gce_client_kwargs)
    _patch(groups, [{"instance_template": "t2"}], {"type_": "OPPORTUNISTIC"})
    web.clock.advance(10 * STEP)
    group = groups.get(project=PROJECT, zone=ZONE, instance_group_manager="web")
    assert group.status.is_stable and not group.status.version_target.is_reached
    assert set(_images(gce_client_kwargs).values()) == {"app-1-0-0"}
    one = sorted(_managed(groups))[0]
    groups.recreate_instances_unary(
        project=PROJECT, zone=ZONE, instance_group_manager="web",
        instance_group_managers_recreate_instances_request_resource={
            "instances": [f"zones/{ZONE}/instances/{one}"]})
    web.clock.advance(STEP)
    assert _images(gce_client_kwargs)[one] == "app-2-0-0"


def test_recreate_instances_gives_a_new_id_and_timestamp_under_the_same_name(
        web, gce_client_kwargs):
    groups = compute_v1.InstanceGroupManagersClient(**gce_client_kwargs)
    instances = compute_v1.InstancesClient(**gce_client_kwargs)
    name = sorted(_managed(groups))[0]
    old = instances.get(project=PROJECT, zone=ZONE, instance=name)
    web.clock.advance(3600)
    op = groups.recreate_instances_unary(
        project=PROJECT, zone=ZONE, instance_group_manager="web",
        instance_group_managers_recreate_instances_request_resource={
            "instances": [old.self_link]})
    assert op.operation_type == "compute.instanceGroupManagers.recreateInstances"
    during = _managed(groups)[name]
    assert during.current_action == "RECREATING"
    group = groups.get(project=PROJECT, zone=ZONE, instance_group_manager="web")
    assert group.current_actions.recreating == 1 and not group.status.is_stable
    # A second recreate of the same instance while the first runs is refused.
    with pytest.raises(exceptions.Conflict) as refused:
        groups.recreate_instances_unary(
            project=PROJECT, zone=ZONE, instance_group_manager="web",
            instance_group_managers_recreate_instances_request_resource={
                "instances": [f"zones/{ZONE}/instances/{name}"]})
    assert refused.value.errors[0]["reason"] == "resourceInUse"
    web.clock.advance(STEP)
    new = instances.get(project=PROJECT, zone=ZONE, instance=name)
    assert new.id != old.id
    assert new.creation_timestamp > old.creation_timestamp
    assert _managed(groups)[name].current_action == "NONE"


def test_resize_grows_and_shrinks_over_time(web, gce_client_kwargs):
    groups = compute_v1.InstanceGroupManagersClient(**gce_client_kwargs)
    groups.resize_unary(project=PROJECT, zone=ZONE, instance_group_manager="web", size=9)
    group = groups.get(project=PROJECT, zone=ZONE, instance_group_manager="web")
    assert group.target_size == 9 and group.current_actions.creating == 3
    web.clock.advance(STEP)
    assert len(_images(gce_client_kwargs)) == 9
    groups.resize_unary(project=PROJECT, zone=ZONE, instance_group_manager="web", size=2)
    group = groups.get(project=PROJECT, zone=ZONE, instance_group_manager="web")
    assert group.current_actions.deleting == 7
    web.clock.advance(STEP)
    assert len(_images(gce_client_kwargs)) == 2
    assert groups.get(project=PROJECT, zone=ZONE, instance_group_manager="web").status.is_stable


def test_regional_group_rolls_out_across_its_zones(gce_emulator, gce_client_kwargs):
    state = gce_emulator.state
    state.create_image("app-1-0-0")
    state.create_image("app-2-0-0")
    state.create_instance_template("t1", "app-1-0-0")
    state.create_instance_template("t2", "app-2-0-0", region="us-central1")
    state.create_mig("web", "t1", region="us-central1", target_size=9)
    groups = compute_v1.RegionInstanceGroupManagersClient(**gce_client_kwargs)
    op = _patch(groups, [{"instance_template": "regions/us-central1/instanceTemplates/t2"}],
                {"type_": "PROACTIVE", "max_surge": compute_v1.FixedOrPercent(fixed=3),
                 "max_unavailable": compute_v1.FixedOrPercent(fixed=0)},
                region="us-central1")
    assert op.region.endswith("/regions/us-central1")
    ops = compute_v1.RegionOperationsClient(**gce_client_kwargs)
    done = ops.wait(project=PROJECT, region="us-central1", operation=op.name)
    assert done.status == compute_v1.Operation.Status.DONE
    batches = 0
    while not groups.get(project=PROJECT, region="us-central1",
                         instance_group_manager="web").status.version_target.is_reached:
        gce_emulator.clock.advance(BATCH)
        batches += 1
        assert batches < 10
    assert batches == 3  # 9 instances, 3 at a time
    images = {}
    for zone in ("us-central1-a", "us-central1-b", "us-central1-c"):
        images.update(_images(gce_client_kwargs, zone))
    assert sorted(images.values()) == ["app-2-0-0"] * 9


def test_backdated_group_shows_history(web, gce_client_kwargs):
    web.state.backdate_group("web", gce_fixtures.CLOCK_START - 86_400, spread=60)
    instances = compute_v1.InstancesClient(**gce_client_kwargs)
    stamps = sorted(i.creation_timestamp for i in instances.list(project=PROJECT, zone=ZONE))
    assert stamps[0].startswith("2026-01-14T05:00:00.000")
    assert stamps[-1].startswith("2026-01-14T05:05:00.000")


def test_a_version_whose_image_is_gone_never_finishes_creating(web, gce_client_kwargs):
    web.state.delete_image("app-2-0-0")
    groups = compute_v1.InstanceGroupManagersClient(**gce_client_kwargs)
    _patch(groups, [{"instance_template": "t2"}],
           {"type_": "PROACTIVE", "max_surge": compute_v1.FixedOrPercent(fixed=1),
            "max_unavailable": compute_v1.FixedOrPercent(fixed=0)})
    web.clock.advance(10 * BATCH)
    group = groups.get(project=PROJECT, zone=ZONE, instance_group_manager="web")
    assert not group.status.is_stable and group.current_actions.creating == 1
    stuck = [m for m in _managed(groups).values() if m.current_action == "CREATING"][0]
    assert "app-2-0-0" in stuck.last_attempt.errors.errors[0].message
    assert sorted(_images(gce_client_kwargs).values()).count("app-1-0-0") == 6
