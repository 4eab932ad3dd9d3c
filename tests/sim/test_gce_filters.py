"""The emulator's list filters: the supported subset works, the rest is refused, not ignored."""

from __future__ import annotations

import pytest
from google.api_core import exceptions
from google.cloud import compute_v1

from fleetview.sim.gce import errors
from fleetview.sim.gce.filters import compile_filter
from tests.helpers import gce as gce_fixtures
from tests.helpers.gce import PROJECT

gce_emulator = gce_fixtures.gce_emulator
gce_client_kwargs = gce_fixtures.gce_client_kwargs

VM = {"name": "web-1", "status": "RUNNING", "labels": {"env": "prod"}, "canIpForward": False,
      "disks": [{"boot": True, "source": "zones/a/disks/web-1"}]}


@pytest.mark.parametrize(("expression", "expected"), [
    ("name = web-1", True),
    ('name = "web-*"', True),
    ("name != web-1", False),
    ("name eq 'web-[0-9]+'", True),
    ("name ne 'web-.*'", False),
    ("labels.env = prod AND status = RUNNING", True),
    ("(labels.env = prod) (status = STOPPED)", False),
    ("labels.env:*", True),
    ("labels.team:*", False),
    ("canIpForward = false", True),
    ("disks.boot = true", True),
])
def test_supported_expressions(expression, expected):
    assert compile_filter(expression)(VM) is expected


@pytest.mark.parametrize("expression", ["name = a OR name = b", "creationTimestamp > 2024"])
def test_unsupported_expressions_are_refused(expression):
    with pytest.raises(errors.GceError) as refused:
        compile_filter(expression)
    assert refused.value.status == 400


def test_filters_apply_before_pagination_through_the_client(gce_emulator, gce_client_kwargs):
    state = gce_emulator.state
    state.create_image("img")
    for i in range(6):
        state.create_instance(f"vm-{i}", "us-central1-a", "img",
                              labels={"team": "web" if i % 2 else "data"})
    instances = compute_v1.InstancesClient(**gce_client_kwargs)
    web = [i.name for i in instances.list(request={
        "project": PROJECT, "zone": "us-central1-a", "filter": "labels.team = web",
        "max_results": 2})]
    assert web == ["vm-1", "vm-3", "vm-5"]
    found = [i.name for _, s in instances.aggregated_list(request={
        "project": PROJECT, "filter": 'name = "vm-4"'}) for i in s.instances]
    assert found == ["vm-4"]
    disks = compute_v1.DisksClient(**gce_client_kwargs)
    assert len([d for _, s in disks.aggregated_list(request={
        "project": PROJECT, "filter": "sourceImage eq '.*/images/img'"}) for d in s.disks]) == 6
    with pytest.raises(exceptions.BadRequest):
        list(instances.aggregated_list(request={"project": PROJECT, "filter": "a = 1 OR b = 2"}))
