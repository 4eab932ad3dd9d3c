"""Lists on the emulator through the real client: pagination, scopes, unreachable zones."""

from __future__ import annotations

import pytest
import requests
from google.api_core import exceptions
from google.cloud import compute_v1

from tests.helpers import gce as gce_fixtures
from tests.helpers.gce import PROJECT

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


def _names(page, attr: str = "instances") -> list[tuple[str, str]]:
    return [(scope, i.name) for scope, scoped in page.items.items()
            for i in getattr(scoped, attr)]


def _existing(state) -> set[tuple[str, str]]:
    return {(f"zones/{i['zone'].rsplit('/', 1)[-1]}", i["name"])
            for i in state.list_instances()}


def _mutate_around(state, cursor: tuple[str, str]) -> None:
    """What a rollout does between two pages: instances made, deleted and replaced on both
    sides of where the first page stopped."""
    zone = cursor[0].removeprefix("zones/")
    state.create_instance("aaa-before", zone, "app-1-0-0")
    state.create_instance("zzz-after", zone, "app-1-0-0")
    state.create_instance("aaa-first-zone", "europe-west1-b", "app-1-0-0")
    # The group in the cursor's zone shrinks (its lowest names go, before the cursor) ...
    state.resize_group(state.find_group("batch"), 250)
    # ... and two others roll out to a new template: new names replace old ones everywhere.
    state.create_instance_template("app-t2", "app-1-1-0")
    for name in ("api", "edge"):
        state.patch_group(state.find_group(name), {
            "versions": [{"instanceTemplate": "app-t2"}],
            "updatePolicy": {"maxSurge": {"fixed": 30}, "maxUnavailable": {"fixed": 0}}})
    state.clock.advance(45)  # a wave of surge instances up, their old ones deleted
    state.recreate_in_group(state.find_group("web"),
                            sorted(m["instance"] for m in state.managed_instances("web"))[:5])


@pytest.mark.parametrize("method", ["instances", "disks"])
def test_aggregated_pages_survive_a_rollout_between_pages(fleet, gce_client_kwargs, method):
    state = fleet.state
    state.create_image("app-1-1-0", family="app")
    client = (compute_v1.InstancesClient if method == "instances"
              else compute_v1.DisksClient)(**gce_client_kwargs)
    before = _existing(state)
    pages = iter(client.aggregated_list(request={"project": PROJECT, "max_results": 250}).pages)
    listed = _names(next(pages), method)
    assert listed[-1][0] == "zones/europe-west1-b"  # the cursor sits inside a zone
    _mutate_around(state, listed[-1])
    for page in pages:
        listed += _names(page, method)
    throughout = before & _existing(state)
    assert len(throughout) > 1000
    assert len(listed) == len(set(listed)), "an instance was listed twice"
    assert throughout <= set(listed), f"skipped: {sorted(throughout - set(listed))[:5]}"


def test_zonal_lists_groups_and_managed_instances_page_by_cursor(fleet, gce_client_kwargs):
    state = fleet.state
    state.create_image("app-1-1-0", family="app")
    zone = ZONES[1]
    # Instances in one zone.
    instances = compute_v1.InstancesClient(**gce_client_kwargs)
    before = {n for _, n in _existing(state) if n.startswith("api-") or n.startswith("solo")}
    pages = iter(instances.list(request={"project": PROJECT, "zone": zone,
                                         "max_results": 100}).pages)
    listed = [i.name for i in next(pages).items]
    _mutate_around(state, (f"zones/{zone}", listed[-1]))
    listed += [i.name for page in pages for i in page.items]
    after = {i["name"] for i in state.list_instances()
             if i["zone"].endswith(zone)}
    assert len(listed) == len(set(listed))
    assert (before & after) <= set(listed) and len(before & after) > 250

    # Managed instances of a group whose list is paginated, mid-rollout.
    group = state.find_group("web")
    state.patch_group(group, {"listManagedInstancesResults": "PAGINATED"})
    migs = compute_v1.InstanceGroupManagersClient(**gce_client_kwargs)
    members_before = {m["instance"] for m in state.managed_instances("web")}
    pages = iter(migs.list_managed_instances(request={
        "project": PROJECT, "zone": ZONES[0], "instance_group_manager": "web",
        "max_results": 100}).pages)
    members = [m.instance for m in next(pages).managed_instances]
    state.patch_group(group, {
        "versions": [{"instanceTemplate": "app-t2"}],
        "updatePolicy": {"maxSurge": {"fixed": 50}, "maxUnavailable": {"fixed": 0}}})
    state.clock.advance(45)
    members += [m.instance for page in pages for m in page.managed_instances]
    throughout = members_before & {m["instance"] for m in state.managed_instances("web")}
    assert len(members) == len(set(members)) and len(throughout) == 250
    assert throughout <= set(members)

    # Groups in a zone: groups made on both sides of the cursor between pages.
    for name in ("g-b", "g-d", "g-f"):
        state.create_mig(name, "app-t1", zone=zone, target_size=1)
    pages = iter(migs.list(request={"project": PROJECT, "zone": zone, "max_results": 2}).pages)
    groups = [g.name for g in next(pages).items]
    assert groups == ["api", "g-b"]
    state.create_mig("a-new", "app-t1", zone=zone, target_size=1)
    state.create_mig("g-c", "app-t1", zone=zone, target_size=1)
    groups += [g.name for page in pages for g in page.items]
    assert groups == ["api", "g-b", "g-c", "g-d", "g-f"]


def test_a_page_token_from_nowhere_is_a_400(fleet):
    url = f"{fleet.endpoint}/compute/v1/projects/{PROJECT}/aggregated/instances"
    assert requests.get(url, params={"pageToken": "bm90LWEtdG9rZW4="},
                        timeout=10).status_code == 400
