"""The shapes production fleets use, as the emulator serves them to google-cloud-compute: spot and
preemptible VMs and their preemption, stateful groups, regional distribution shapes, images a
caller may not read."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from google.api_core import exceptions
from google.cloud import compute_v1

from fleetview.domain.timestamps import parse_time
from tests.helpers import gce as gce_fixtures
from tests.helpers.gce import PROJECT

gce_emulator = gce_fixtures.gce_emulator
gce_client_kwargs = gce_fixtures.gce_client_kwargs

ZONE = "us-central1-a"
BOOT = "persistent-disk-0"


@pytest.fixture
def images(gce_emulator):
    state = gce_emulator.state
    state.create_image("app-1-0-0", family="app")
    state.create_image("app-2-0-0", family="app")
    state.create_instance_template("t1", "app-1-0-0")
    state.create_instance_template("t2", "app-2-0-0")
    return gce_emulator


# -- spot and preemptible ------------------------------------------------------------------------

def test_a_spot_vm_is_preempted_as_gce_records_it(images, gce_client_kwargs):
    state = images.state
    state.create_instance("spot-1", ZONE, "app-1-0-0", scheduling={"provisioningModel": "SPOT"})
    state.create_instance("old-1", ZONE, "app-1-0-0", scheduling={"preemptible": True})
    state.create_instance("plain", ZONE, "app-1-0-0")
    instances = compute_v1.InstancesClient(**gce_client_kwargs)
    spot = instances.get(project=PROJECT, zone=ZONE, instance="spot-1")
    assert spot.scheduling.provisioning_model == "SPOT"
    assert spot.scheduling.instance_termination_action == "STOP"
    assert not spot.scheduling.automatic_restart
    assert instances.get(project=PROJECT, zone=ZONE, instance="old-1").scheduling.preemptible
    with pytest.raises(ValueError, match="neither spot nor preemptible"):
        state.preempt(ZONE, "plain")

    images.clock.advance(600)
    state.preempt(ZONE, "spot-1")
    spot = instances.get(project=PROJECT, zone=ZONE, instance="spot-1")
    assert spot.status == "TERMINATED"
    assert parse_time(spot.last_stop_timestamp) == datetime(2026, 1, 15, 12, 10, tzinfo=UTC)

    operations = compute_v1.ZoneOperationsClient(**gce_client_kwargs)
    found = list(operations.list(request={
        "project": PROJECT, "zone": ZONE,
        "filter": 'operationType="compute.instances.preempted"'}))
    assert [(op.target_id, op.user, op.status) for op in found] == [
        (spot.id, "system", compute_v1.Operation.Status.DONE)]
    assert found[0].status_message == "Instance was preempted."
    assert not list(operations.list(project=PROJECT, zone="us-central1-b"))


def test_a_mig_on_a_spot_template_makes_spot_instances(images, gce_client_kwargs):
    state = images.state
    state.create_instance_template("spot-t", "app-1-0-0", scheduling={"provisioningModel": "SPOT"})
    state.create_mig("batch", "spot-t", zone=ZONE, target_size=2)
    instances = compute_v1.InstancesClient(**gce_client_kwargs)
    template = compute_v1.InstanceTemplatesClient(**gce_client_kwargs).get(
        project=PROJECT, instance_template="spot-t")
    assert template.properties.scheduling.provisioning_model == "SPOT"
    listed = list(instances.list(project=PROJECT, zone=ZONE))
    assert {i.scheduling.provisioning_model for i in listed} == {"SPOT"}


# -- stateful groups -------------------------------------------------------------------------------

def _mig_patch(client, name, policy):
    return client.patch_unary(project=PROJECT, zone=ZONE, instance_group_manager=name,
                              instance_group_manager_resource=compute_v1.InstanceGroupManager(
                                  update_policy=compute_v1.InstanceGroupManagerUpdatePolicy(
                                      **policy)))


def test_a_stateful_group_recreates_under_its_names_and_refuses_substitute(images,
                                                                         gce_client_kwargs):
    state = images.state
    state.create_mig("db", "t1", zone=ZONE, target_size=2, stateful_disks=["data"])
    client = compute_v1.InstanceGroupManagersClient(**gce_client_kwargs)
    mig = client.get(project=PROJECT, zone=ZONE, instance_group_manager="db")
    assert mig.status.stateful.has_stateful_config
    assert set(mig.stateful_policy.preserved_state.disks) == {"data"}
    assert mig.update_policy.replacement_method == "RECREATE"
    assert mig.update_policy.max_surge.fixed == 0

    with pytest.raises(exceptions.BadRequest, match="RECREATE"):
        _mig_patch(client, "db", {"replacement_method": "SUBSTITUTE",
                                  "max_surge": compute_v1.FixedOrPercent(fixed=1)})
    with pytest.raises(exceptions.BadRequest, match="maxSurge must be 0"):
        _mig_patch(client, "db", {"max_surge": compute_v1.FixedOrPercent(fixed=1)})

    names = sorted(m["instance"].rsplit("/", 1)[-1] for m in state.managed_instances("db"))
    client.patch_unary(project=PROJECT, zone=ZONE, instance_group_manager="db",
                       instance_group_manager_resource=compute_v1.InstanceGroupManager(
                           versions=[compute_v1.InstanceGroupManagerVersion(
                               instance_template=state.template_link("t2"))]))
    images.clock.advance(300)
    after = {i["name"]: i for i in state.list_instances()}
    assert sorted(after) == names  # recreated in place, not substituted
    assert {i["disks"][0]["source"].rsplit("/", 1)[-1] for i in after.values()} == set(names)
    disks = compute_v1.DisksClient(**gce_client_kwargs)
    assert {disks.get(project=PROJECT, zone=ZONE, disk=n).source_image.rsplit("/", 1)[-1]
            for n in names} == {"app-2-0-0"}  # the boot disk is not preserved: new image


def test_a_preserved_boot_disk_keeps_its_image(images, gce_client_kwargs):
    state = images.state
    state.create_mig("db", "t1", zone=ZONE, target_size=2)
    names = sorted(m["instance"].rsplit("/", 1)[-1] for m in state.managed_instances("db"))
    state.set_per_instance_config("db", names[0], [BOOT])
    client = compute_v1.InstanceGroupManagersClient(**gce_client_kwargs)
    configs = list(client.list_per_instance_configs(project=PROJECT, zone=ZONE,
                                                    instance_group_manager="db"))
    assert [(c.name, set(c.preserved_state.disks)) for c in configs] == [(names[0], {BOOT})]
    managed = {m.instance.rsplit("/", 1)[-1]: m for m in client.list_managed_instances(
        project=PROJECT, zone=ZONE, instance_group_manager="db")}
    assert set(managed[names[0]].preserved_state_from_config.disks) == {BOOT}
    assert not managed[names[1]].preserved_state_from_config.disks

    client.patch_unary(project=PROJECT, zone=ZONE, instance_group_manager="db",
                       instance_group_manager_resource=compute_v1.InstanceGroupManager(
                           versions=[compute_v1.InstanceGroupManagerVersion(
                               instance_template=state.template_link("t2"))],
                           update_policy=compute_v1.InstanceGroupManagerUpdatePolicy(
                               replacement_method="RECREATE",
                               max_surge=compute_v1.FixedOrPercent(fixed=0))))
    images.clock.advance(300)
    disks = compute_v1.DisksClient(**gce_client_kwargs)
    image = {n: disks.get(project=PROJECT, zone=ZONE, disk=n).source_image.rsplit("/", 1)[-1]
             for n in names}
    assert image == {names[0]: "app-1-0-0", names[1]: "app-2-0-0"}
    # The group itself believes both run t2: only the disk tells.
    assert {m["version"]["instanceTemplate"].rsplit("/", 1)[-1]
            for m in state.managed_instances("db")} == {"t2"}


# -- regional distribution shapes --------------------------------------------------------------

def test_a_regional_groups_target_shape_is_served_and_its_rules_kept(images, gce_client_kwargs):
    state = images.state
    state.create_mig("one-zone", "t1", region="us-central1", target_size=4,
                     target_shape="ANY_SINGLE_ZONE")
    client = compute_v1.RegionInstanceGroupManagersClient(**gce_client_kwargs)
    mig = client.get(project=PROJECT, region="us-central1", instance_group_manager="one-zone")
    assert mig.distribution_policy.target_shape == "ANY_SINGLE_ZONE"
    assert len(mig.distribution_policy.zones) == 3
    assert mig.update_policy.instance_redistribution_type == "NONE"
    assert len({i["zone"] for i in state.list_instances()}) == 1

    def patch(**policy):
        client.patch_unary(project=PROJECT, region="us-central1",
                           instance_group_manager="one-zone",
                           instance_group_manager_resource=compute_v1.InstanceGroupManager(
                               update_policy=compute_v1.InstanceGroupManagerUpdatePolicy(
                                   **policy)))

    with pytest.raises(exceptions.BadRequest, match="redistribution"):
        patch(instance_redistribution_type="PROACTIVE")
    with pytest.raises(exceptions.BadRequest, match="number of zones"):
        patch(max_surge=compute_v1.FixedOrPercent(fixed=2))
    patch(max_surge=compute_v1.FixedOrPercent(fixed=3))


# -- permissions per project -------------------------------------------------------------------

def test_reading_another_projects_image_can_be_denied(images, gce_client_kwargs):
    state = images.state
    state.create_image("base-1-0-0", project="images-project")
    images.faults.deny("compute.images.get", project="images-project")
    client = compute_v1.ImagesClient(**gce_client_kwargs)
    with pytest.raises(exceptions.Forbidden, match="compute.images.get"):
        client.get(project="images-project", image="base-1-0-0")
    assert client.get(project=PROJECT, image="app-1-0-0").name == "app-1-0-0"
