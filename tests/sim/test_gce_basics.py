"""The emulator answers the real google-cloud-compute client: instances, images, disks."""

from __future__ import annotations

from datetime import timedelta

import pytest
from google.api_core import exceptions
from google.cloud import compute_v1

from tests.helpers import gce as gce_fixtures
from tests.helpers.gce import PROJECT

gce_emulator = gce_fixtures.gce_emulator
gce_client_kwargs = gce_fixtures.gce_client_kwargs


def test_instances_images_and_disks_through_the_real_client(gce_emulator, gce_client_kwargs):
    state = gce_emulator.state
    state.create_image("app-1-0-0", family="app", labels={"version": "1-0-0"},
                       created=timedelta(days=3))
    state.create_instance_template("app-t1", "app-1-0-0")
    state.create_mig("web", "app-t1", zone="us-central1-a", target_size=2)
    state.create_instance("bastion", "us-central1-b", "app-1-0-0")

    instances = compute_v1.InstancesClient(**gce_client_kwargs)
    seen = {i.name: (scope, i) for scope, scoped in instances.aggregated_list(project=PROJECT)
            for i in scoped.instances}
    assert len(seen) == 3
    scope, bastion = seen["bastion"]
    assert scope == "zones/us-central1-b"
    assert bastion.status == "RUNNING"
    assert bastion.creation_timestamp.endswith("-07:00")
    got = instances.get(project=PROJECT, zone="us-central1-b", instance="bastion")
    assert got.id == bastion.id

    disks = {d.name: d for _, scoped in compute_v1.DisksClient(**gce_client_kwargs)
             .aggregated_list(project=PROJECT) for d in scoped.disks}
    assert disks["bastion"].source_image.endswith("/projects/demo-project/global/images/app-1-0-0")
    image = compute_v1.ImagesClient(**gce_client_kwargs).get(project=PROJECT, image="app-1-0-0")
    assert image.family == "app"
    assert dict(image.labels) == {"version": "1-0-0"}

    state.delete_image("app-1-0-0")
    with pytest.raises(exceptions.NotFound):
        compute_v1.ImagesClient(**gce_client_kwargs).get(project=PROJECT, image="app-1-0-0")
