"""Lists on the emulator through the real client: pagination, scopes, unreachable zones."""

from __future__ import annotations

import pytest
import requests
from google.api_core import exceptions
from google.cloud import compute_v1

from tests.sim import gce_fixtures
from tests.sim.gce_fixtures import PROJECT

gce_emulator = gce_fixtures.gce_emulator
gce_client_kwargs = gce_fixtures.gce_client_kwargs

ZONES = ("us-central1-a", "us-central1-b", "europe-west1-b")


@pytest.fixture
def fleet(gce_emulator):
    """1,210 instances: four MIGs of 300 over three zones and ten standalone instances."""
    state = gce_emulator.state
    state.create_image("app-1-0-0", family="app")
    state.create_instance_template("app-t1", "app-1-0-0")
    state.create_mig("web", "app-t1", zone=ZONES[0], target_size=300)
    state.create_mig("api", "app-t1", zone=ZONES[1], target_size=300)
    state.create_mig("batch", "app-t1", zone=ZONES[2], target_size=300)
    state.create_mig("edge", "app-t1", region="us-central1", target_size=300)
    for i in range(10):
        state.create_instance(f"solo-{i}", ZONES[i % 3], "app-1-0-0")
    return gce_emulator


def test_aggregated_list_pages_past_500_and_sees_every_instance_once(fleet, gce_client_kwargs):
    client = compute_v1.InstancesClient(**gce_client_kwargs)
    pager = client.aggregated_list(request={"project": PROJECT, "max_results": 500})
    names = [i.name for page in pager.pages for scoped in page.items.values()
             for i in scoped.instances]
    assert len(names) == 1210 == len(set(names))
    assert fleet.state.calls["compute.instances.aggregatedList"] == 3


def test_aggregated_list_honours_max_results(fleet):
    url = f"{fleet.endpoint}/compute/v1/projects/{PROJECT}/aggregated/instances"
    first = requests.get(url, params={"maxResults": 7}, timeout=10).json()
    assert first["kind"] == "compute#instanceAggregatedList"
    assert sum(len(s.get("instances", [])) for s in first["items"].values()) == 7
    second = requests.get(url, params={"maxResults": 7, "pageToken": first["nextPageToken"]},
                          timeout=10).json()
    first_names = {i["name"] for s in first["items"].values() for i in s.get("instances", [])}
    second_names = {i["name"] for s in second["items"].values() for i in s.get("instances", [])}
    assert len(second_names) == 7 and not first_names & second_names
    # Scopes without results on a page say so, as the API does.
    empty = [s for s in first["items"].values() if "instances" not in s]
    assert empty and all(s["warning"]["code"] == "NO_RESULTS_ON_PAGE" for s in empty)
    bad = requests.get(url, params={"maxResults": 501}, timeout=10)
    assert bad.status_code == 400


def test_disks_aggregated_list_gives_each_boot_disk_its_source_image(fleet, gce_client_kwargs):
    client = compute_v1.DisksClient(**gce_client_kwargs)
    disks = [d for _, scoped in client.aggregated_list(project=PROJECT) for d in scoped.disks]
    assert len(disks) == 1210
    assert {d.source_image.rsplit("/", 1)[-1] for d in disks} == {"app-1-0-0"}
    assert all(d.users[0].endswith(f"/instances/{d.name}") for d in disks[:20])


def test_unreachable_zone_is_reported_not_silently_empty(fleet, gce_client_kwargs):
    fleet.faults.zone_unreachable("us-central1-b")
    client = compute_v1.InstancesClient(**gce_client_kwargs)
    pages = list(client.aggregated_list(project=PROJECT).pages)
    assert pages[0].unreachables == ["zones/us-central1-b"]
    scoped = pages[0].items["zones/us-central1-b"]
    assert scoped.warning.code == "UNREACHABLE"
    names = [i.name for p in pages for s in p.items.values() for i in s.instances]
    assert names and not any(n.startswith("api-") for n in names)
    # A zonal call into the zone fails outright.
    with pytest.raises(exceptions.ServiceUnavailable):
        client.list(project=PROJECT, zone="us-central1-b", retry=None)
    # Only an explicit returnPartialSuccess=false turns the aggregated list into an error.
    url = f"{fleet.endpoint}/compute/v1/projects/{PROJECT}/aggregated/instances"
    assert requests.get(url, params={"returnPartialSuccess": "false"},
                        timeout=10).status_code == 503
    fleet.faults.zone_unreachable("us-central1-b", False)
    assert "unreachables" not in requests.get(url, timeout=10).json()


def test_zonal_lists_and_group_aggregates(fleet, gce_client_kwargs):
    instances = compute_v1.InstancesClient(**gce_client_kwargs)
    in_zone = list(instances.list(project=PROJECT, zone="europe-west1-b"))
    assert len(in_zone) == 300 + 3  # batch, and solo-2, -5, -8
    groups = compute_v1.InstanceGroupManagersClient(**gce_client_kwargs)
    by_scope = {scope: [g.name for g in s.instance_group_managers]
                for scope, s in groups.aggregated_list(project=PROJECT)
                if s.instance_group_managers}
    assert by_scope == {"zones/us-central1-a": ["web"], "zones/us-central1-b": ["api"],
                        "zones/europe-west1-b": ["batch"], "regions/us-central1": ["edge"]}
    regional = compute_v1.RegionInstanceGroupManagersClient(**gce_client_kwargs)
    edge = regional.get(project=PROJECT, region="us-central1", instance_group_manager="edge")
    zones = [z.zone.rsplit("/", 1)[-1] for z in edge.distribution_policy.zones]
    assert zones == ["us-central1-a", "us-central1-b", "us-central1-c"]
    managed = list(regional.list_managed_instances(project=PROJECT, region="us-central1",
                                                   instance_group_manager="edge"))
    per_zone = {z: sum(1 for m in managed if f"/zones/{z}/" in m.instance) for z in zones}
    assert per_zone == dict.fromkeys(zones, 100)
    assert [g.name for g in regional.list(project=PROJECT, region="us-central1")] == ["edge"]


def test_images_templates_families_and_deprecation(gce_emulator, gce_client_kwargs):
    state = gce_emulator.state
    state.create_image("app-1-9-0", family="app", labels={"version": "1-9-0"}, created=100.0)
    state.create_image("app-1-10-0", family="app", labels={"version": "1-10-0"}, created=200.0)
    state.create_image("app-1-11-0", family="app", created=300.0,
                       deprecated={"state": "DEPRECATED"})
    state.create_instance_template("t-global", "app-1-9-0")
    state.create_instance_template("t-regional", "family/app", region="europe-west1")
    images = compute_v1.ImagesClient(**gce_client_kwargs)
    assert images.get_from_family(project=PROJECT, family="app").name == "app-1-10-0"
    listed = {i.name: i for i in images.list(project=PROJECT)}
    assert listed["app-1-11-0"].deprecated.state == "DEPRECATED"
    assert listed["app-1-9-0"].creation_timestamp.startswith("1969-12-31T17:01:40.000")
    assert dict(listed["app-1-10-0"].labels) == {"version": "1-10-0"}

    templates = compute_v1.InstanceTemplatesClient(**gce_client_kwargs)
    t = templates.get(project=PROJECT, instance_template="t-global")
    assert t.properties.disks[0].initialize_params.source_image.endswith(
        "/global/images/app-1-9-0")
    scopes = {scope: [x.name for x in s.instance_templates]
              for scope, s in templates.aggregated_list(project=PROJECT)
              if s.instance_templates}
    assert scopes == {"global": ["t-global"], "regions/europe-west1": ["t-regional"]}
    regional = compute_v1.RegionInstanceTemplatesClient(**gce_client_kwargs)
    rt = regional.get(project=PROJECT, region="europe-west1", instance_template="t-regional")
    assert rt.region.endswith("/regions/europe-west1")
    assert rt.properties.disks[0].initialize_params.source_image.endswith("/family/app")

    # A MIG on the family template gets the family's newest usable image at creation.
    state.create_mig("fam", "regions/europe-west1/instanceTemplates/t-regional",
                     zone="europe-west1-c", target_size=1)
    disks = [d for _, s in compute_v1.DisksClient(**gce_client_kwargs)
             .aggregated_list(project=PROJECT) for d in s.disks]
    assert disks[0].source_image.endswith("/global/images/app-1-10-0")
