"""GCP replace and rollback: plans, refusals, and execution over the emulator's time."""

from __future__ import annotations

import dataclasses
import itertools
import re
from datetime import timedelta

import pytest

from fleetview.actions.steps import run_steps
from fleetview.domain.actions import ActionRefused
from fleetview.domain.model import Image
from fleetview.domain.timing import Timing
from fleetview.domain.versions import VersionRules
from fleetview.providers.gcp.actions import request_id, rollback_template_name
from fleetview.providers.gcp.provider import GcpProvider
from tests.helpers import gce as gce_fixtures
from tests.helpers.gce import IMG, PROJECT, make, scope_config, seed_fleet

gce_emulator = gce_fixtures.gce_emulator


@pytest.fixture
def fleet(gce_emulator):
    seed_fleet(gce_emulator.state)
    return gce_emulator


@pytest.fixture
def provider(fleet):
    p = make(fleet, actions=True, interval_s=10.0)
    yield p
    p.close()


def member(inv, group: str):
    return sorted((i for i in inv.instances if i.group == group), key=lambda i: i.name)[0]


def statuses(events):
    return [(e.step, e.status) for e in events if e.status != "progress"]


# -- replace --------------------------------------------------------------------------------

@pytest.mark.parametrize("group", ["web", "api"])  # a zonal and a regional MIG
def test_replace_recreates_the_instance_under_its_name_with_a_new_id(fleet, provider, group):
    inv = provider.poll()
    old = member(inv, group)
    plan = provider.plan_replace(inv, old.id)
    assert (plan.kind, plan.mechanism, plan.group, plan.instances) == (
        "replace", "recreate-instances", group, (old.id,))
    assert plan.to_version == "1.9.0" and plan.to_image_id == f"{IMG}/app-1-9-0"
    assert [s.key for s in plan.steps] == ["recreate", "track"]

    events = list(run_steps(provider, plan))
    assert statuses(events) == [("recreate", "started"), ("recreate", "done"),
                                ("track", "started"), ("track", "done"), (None, "finished")]
    progress = [e for e in events if e.status == "progress"]
    assert progress and all(e.total == 1 for e in progress) and progress[-1].done == 1

    after = provider.poll()
    (new,) = [i for i in after.instances if i.name == old.name]
    assert new.id != old.id and new.group == group and new.zone == old.zone
    assert new.image_id == f"{IMG}/app-1-9-0" and new.version == "1.9.0"
    assert new.launched_at > old.launched_at
    assert len([i for i in after.instances if i.group == group]) == \
        len([i for i in inv.instances if i.group == group])


# -- rollback -------------------------------------------------------------------------------

def test_rollback_progresses_over_emulated_time_and_converges(fleet, provider):
    inv = provider.poll()
    plan = provider.plan_rollback(inv, "api", "us-central1", "1.8.0")
    assert (plan.kind, plan.mechanism, plan.to_version) == ("rollback", "mig-update", "1.8.0")
    assert plan.to_image_id == f"{IMG}/app-1-8-0" and plan.from_versions == ("1.9.0",)
    assert plan.params["template"] == f"projects/{PROJECT}/global/instanceTemplates/app-1-8-0-tmpl"
    assert plan.params["max_surge"] == 3 and plan.params["max_unavailable"] == 0
    assert plan.min_healthy_percent == 100 and len(plan.instances) == 6

    seen_partial = False
    events = []
    for event in run_steps(provider, plan):
        events.append(event)
        if event.status == "progress" and 0 < event.done < event.total and not seen_partial:
            seen_partial = True
            mid = provider.poll()
            api = mid.group("api")
            assert api.updating and api.desired_version == "1.8.0"
            assert {i.version for i in mid.instances if i.group == "api"} == {"1.8.0", "1.9.0"}
    assert seen_partial
    assert statuses(events) == [("patch", "started"), ("patch", "done"), ("track", "started"),
                                ("track", "done"), ("restore-policy", "started"),
                                ("restore-policy", "done"), (None, "finished")]
    done = [e.done for e in events if e.status == "progress"]
    assert done == sorted(done) and done[-1] == 6
    assert all(e.total == 6 for e in events if e.status == "progress")

    after = provider.poll()
    api = after.group("api")
    assert not api.updating and api.desired_version == "1.8.0" and api.canary_version is None
    members = [i for i in after.instances if i.group == "api"]
    assert len(members) == 6 and {i.version for i in members} == {"1.8.0"}
    # The rollback ran with no instance unavailable, then put the group's own policy back.
    policy = fleet.state.mig("api")["updatePolicy"]
    assert (policy["type"], policy["minimalAction"]) == ("PROACTIVE", "REPLACE")
    assert policy["maxSurge"]["fixed"] == 3 and policy["maxUnavailable"]["fixed"] == 3
    assert any("maxUnavailable 3" in n and "puts it back" in n for n in plan.notes)
    assert fleet.state.calls["compute.regionOperations.get"] >= 1


def test_rollback_of_a_canary_group_drops_the_canary(fleet, provider):
    inv = provider.poll()
    plan = provider.plan_rollback(inv, "worker", "europe-west1", "1.9.0")
    assert plan.from_versions == ("1.10.0",)
    assert plan.params["template"].endswith("/app-1-9-0-tmpl")  # the group's own version
    list(run_steps(provider, plan))
    after = provider.poll()
    worker = after.group("worker")
    assert worker.canary_image_id is None and worker.desired_version == "1.9.0"
    assert {i.version for i in after.instances if i.group == "worker"} == {"1.9.0"}


def test_every_mutating_call_sends_a_request_id_so_a_retried_step_acts_once(fleet, provider):
    inv = provider.poll()
    plan = provider.plan_rollback(inv, "web", "us-central1", "1.8.0")
    assert provider.plan_rollback(inv, "web", "us-central1", "1.8.0").params == plan.params
    first = list(run_steps(provider, plan, done={"track", "restore-policy"}))
    again = list(run_steps(provider, plan, done={"track", "restore-policy"}))  # after a crash
    assert statuses(first) == statuses(again) == [("patch", "started"), ("patch", "done"),
                                                  (None, "finished")]
    assert fleet.state.calls["compute.instanceGroupManagers.patch"] == 2
    ops = [op for op in fleet.state.operations[PROJECT].values()
           if op.operation_type.endswith(".patch")]
    assert [op.request_id for op in ops] == [request_id(plan.params["action_id"], "patch")]

    later = dataclasses.replace(inv, polled_at=inv.polled_at.replace(year=2030))
    fleet.state.patch_group(fleet.state.find_group("web"),
                            {"versions": [{"instanceTemplate": "app-1-9-0-tmpl"}]})
    fleet.clock.advance(3600)
    other = provider.plan_rollback(later, "web", "us-central1", "1.8.0")
    assert other.params["action_id"] != plan.params["action_id"]


def test_execute_skips_done_steps(fleet, provider):
    inv = provider.poll()
    plan = provider.plan_rollback(inv, "web", "us-central1", "1.8.0")
    list(run_steps(provider, plan, done={"track", "restore-policy"}))
    patches = fleet.state.calls["compute.instanceGroupManagers.patch"]
    events = list(run_steps(provider, plan, done={"patch", "restore-policy"}))
    assert statuses(events)[0] == ("track", "started")
    assert fleet.state.calls["compute.instanceGroupManagers.patch"] == patches
    assert {i.version for i in provider.poll().instances if i.group == "web"} == {"1.8.0"}


def test_a_denied_patch_fails_the_step_with_the_permission(fleet, provider):
    inv = provider.poll()
    plan = provider.plan_rollback(inv, "web", "us-central1", "1.8.0")
    fleet.faults.deny("compute.instanceGroupManagers.patch",
                      "compute.instanceGroupManagers.update")
    events = list(run_steps(provider, plan))
    assert statuses(events) == [("patch", "started"), ("patch", "failed"), (None, "failed")]
    assert "compute.instanceGroupManagers.update" in events[-1].message


def test_a_group_changed_since_the_plan_fails_the_patch(fleet, provider):
    inv = provider.poll()
    plan = provider.plan_rollback(inv, "web", "us-central1", "1.8.0")
    fleet.state.patch_group(fleet.state.find_group("web"),
                            {"versions": [{"instanceTemplate": "app-1-10-0-tmpl"}]})
    events = list(run_steps(provider, plan))
    assert statuses(events)[-1] == (None, "failed")
    assert "changed since the plan" in events[-1].message
    assert fleet.state.calls["compute.instanceGroupManagers.patch"] == 0


# -- refusals -------------------------------------------------------------------------------

def test_a_read_only_scope_refuses_to_plan_and_to_execute(fleet, provider):
    read_only = make(fleet)
    inv = read_only.poll()
    with pytest.raises(ActionRefused, match="read-only"):
        read_only.plan_replace(inv, member(inv, "web").id)
    with pytest.raises(ActionRefused, match="actions = true"):
        read_only.plan_rollback(inv, "web", "us-central1", "1.8.0")
    plan = provider.plan_rollback(inv, "web", "us-central1", "1.8.0")
    with pytest.raises(ActionRefused, match="read-only"):
        list(run_steps(read_only, plan))
    assert fleet.state.calls["compute.instanceGroupManagers.patch"] == 0


def test_a_standalone_or_unknown_instance_is_refused(fleet, provider):
    inv = provider.poll()
    bastion = next(i for i in inv.instances if i.name == "bastion")
    with pytest.raises(ActionRefused, match="standalone"):
        provider.plan_replace(inv, bastion.id)
    with pytest.raises(ActionRefused, match="not in the last poll"):
        provider.plan_replace(inv, "12345")


def test_a_group_with_an_update_under_way_refuses_a_replace_and_plans_a_rollback(
        fleet, provider):
    fleet.state.patch_group(fleet.state.find_group("web"), {
        "versions": [{"instanceTemplate": "app-1-10-0-tmpl"}],
        "updatePolicy": {"maxSurge": {"fixed": 2}, "maxUnavailable": {"fixed": 0}}})
    inv = provider.poll()
    with pytest.raises(ActionRefused, match="update under way"):
        provider.plan_replace(inv, member(inv, "web").id)
    # A rollback stops the update under way (tests/providers/test_gcp_incident.py).
    plan = provider.plan_rollback(inv, "web", "us-central1", "1.8.0")
    assert plan.notes[0].startswith("stops the update under way, then rolls back: group web "
                                    "is rolling out 1.10.0; 2 of its 5 instances (3 wanted, 2 "
                                    "added by the update) are already on 1.10.0 (2 still "
                                    "starting)")
    assert plan.params["max_surge"] == 1 and plan.batch_size == 1  # the rollback's own surge


def test_a_version_without_an_existing_image_is_refused(fleet, provider):
    inv = provider.poll()
    fleet.state.delete_image("app-1-8-0")
    with pytest.raises(ActionRefused, match="no existing image"):
        provider.plan_rollback(inv, "web", "us-central1", "1.8.0")
    with pytest.raises(ActionRefused, match="no existing image"):
        provider.plan_rollback(inv, "web", "us-central1", "0.1.0")
    fleet.state.deprecate_image("app-1-10-0", "OBSOLETE")
    with pytest.raises(ActionRefused, match="no existing image"):
        provider.plan_rollback(inv, "web", "us-central1", "1.10.0")


def test_a_version_no_instance_runs_is_found_in_history_or_the_project(fleet, provider):
    fleet.state.create_image("app-1-7-0", labels={"version": "1-7-0"})
    fleet.state.create_instance_template("app-1-7-0-tmpl", "app-1-7-0")
    inv = provider.poll()
    known = {f"{IMG}/app-1-7-0": Image("gcp", f"{IMG}/app-1-7-0", "app-1-7-0",
                                        version="1.7.0")}
    plan = provider.plan_rollback(inv, "web", "us-central1", "1.7.0", known_images=known)
    assert plan.to_image_id == f"{IMG}/app-1-7-0"
    assert fleet.state.calls["compute.images.list"] == 0
    plan = provider.plan_rollback(inv, "web", "us-central1", "1.7.0")
    assert plan.to_image_id == f"{IMG}/app-1-7-0"
    assert fleet.state.calls["compute.images.list"] == 1
    # An image no template boots: the plan makes one first.
    fleet.state.create_image("app-1-6-0", labels={"version": "1-6-0"})
    plan = provider.plan_rollback(inv, "web", "us-central1", "1.6.0")
    assert [s.key for s in plan.steps] == ["template", "patch", "track", "restore-policy"]
    assert plan.params["template_name"] == "app-1-9-0-tmpl-rb-1-6-0"


def test_a_group_already_on_the_version_is_refused_and_a_protected_one_planned(fleet):
    # Protection is the operator typing the group's name (fleetview.actions.runner), shared
    # by every provider; the group's labels carry what the selectors match.
    p = make(fleet, actions=True, protect=("role=bastion", "team=web"))
    inv = p.poll()
    assert inv.group("web", "us-central1").tags.get("team") == "web"
    assert p.plan_rollback(inv, "web", "us-central1", "1.8.0").to_version == "1.8.0"
    q = make(fleet, actions=True)
    with pytest.raises(ActionRefused, match="already runs"):
        q.plan_rollback(q.poll(), "web", "us-central1", "1.9.0")


def test_tracking_rides_out_throttling(fleet):
    p = make(fleet, actions=True, attempts=2)
    inv = p.poll()
    plan = p.plan_replace(inv, member(inv, "web").id)
    fleet.faults.throttle(3, methods=["compute.instances.get"])
    events = list(run_steps(p, plan))
    assert statuses(events)[-1] == (None, "finished")
    assert any("not checked" in e.message for e in events if e.status == "progress")


def test_a_plan_of_another_scope_is_refused_before_anything_runs(fleet, provider):
    inv = provider.poll()
    plan = provider.plan_rollback(inv, "web", "us-central1", "1.8.0")
    with pytest.raises(ActionRefused, match="scope elsewhere"):
        list(run_steps(provider, dataclasses.replace(plan, scope="elsewhere")))
    assert fleet.state.calls["compute.instanceGroupManagers.patch"] == 0


def test_a_group_on_an_image_family_replaces_an_instance_with_the_familys_newest(gce_emulator):
    # Its template names a family: the MIG takes the family's newest image when it recreates.
    state = gce_emulator.state
    state.create_image("app-4-0-0", family="app", labels={"version": "4-0-0"},
                       created=timedelta(days=3))
    state.create_instance_template("app-latest", "family/app")
    state.create_mig("fam", "app-latest", zone="us-central1-a", target_size=2)
    state.create_image("app-4-1-0", family="app", labels={"version": "4-1-0"})
    gce_emulator.clock.advance(120)
    p = make(gce_emulator, actions=True)
    inv = p.poll()
    assert inv.group("fam").desired_version == "4.1.0"
    victim = member(inv, "fam")
    assert victim.version == "4.0.0"
    plan = p.plan_replace(inv, victim.id)
    assert plan.to_image_id == f"{IMG}/app-4-1-0" and plan.to_version == "4.1.0"
    events = list(run_steps(p, plan))
    assert statuses(events)[-1] == (None, "finished")
    after = p.poll()
    assert victim.id not in {i.id for i in after.instances}
    back = next(i for i in after.instances if i.name == victim.name)
    assert back.version == "4.1.0"


# -- deadlines ----------------------------------------------------------------------------------

def standing_still(seconds_per_reading: float, timeout_s: float) -> Timing:
    """Pauses that cost nothing (the emulator's clock stands still, so nothing it runs moves
    on) and a clock that is `seconds_per_reading` later at each reading: the calls' time."""
    readings = itertools.count(0.0, seconds_per_reading)
    return Timing(interval_s=0.0, timeout_s=timeout_s, sleep=lambda s: None,
                  clock=lambda: next(readings))


def test_an_operation_that_never_ends_fails_at_the_deadline_on_the_clock(fleet):
    p = GcpProvider(scope_config(fleet, actions=True), VersionRules(),
                    timing=standing_still(50.0, 600.0))
    inv = p.poll()
    plan = p.plan_replace(inv, member(inv, "web").id)
    events = list(run_steps(p, plan))
    assert statuses(events) == [("recreate", "started"), ("recreate", "failed"),
                                (None, "failed")]
    assert "still runs after 600 s; check it in the console" in events[-1].message
    assert fleet.state.calls["compute.zoneOperations.get"] <= 12  # not one per free pause


def test_a_rollout_that_does_not_converge_fails_tracking_at_the_deadline(fleet, provider):
    inv = provider.poll()
    plan = provider.plan_rollback(inv, "web", "us-central1", "1.8.0")
    assert statuses(run_steps(provider, plan, done={"track"}))[-1] == (None, "finished")
    p = GcpProvider(scope_config(fleet, actions=True), VersionRules(),
                    timing=standing_still(100.0, 900.0))
    events = list(run_steps(p, plan, done={"patch"}))
    assert statuses(events) == [("track", "started"), ("track", "failed"), (None, "failed")]
    message = events[-1].message
    assert "group web has not converged after 900 s (0 of 3 done)" in message
    assert "keeps updating on its own" in message
    assert len([e for e in events if e.status == "progress"]) <= 10


# -- rollback through a new template ----------------------------------------------------------

def test_rollback_to_a_version_whose_template_was_deleted_makes_one_and_converges(
        fleet, provider):
    fleet.state.delete_instance_template("app-1-8-0-tmpl")
    inv = provider.poll()
    plan = provider.plan_rollback(inv, "web", "us-central1", "1.8.0")
    assert [s.key for s in plan.steps] == ["template", "patch", "track", "restore-policy"]
    path = f"projects/{PROJECT}/global/instanceTemplates/app-1-9-0-tmpl-rb-1-8-0"
    assert plan.params["template"] == path and plan.to_image_id == f"{IMG}/app-1-8-0"
    assert plan.params["template_source"].endswith("/global/instanceTemplates/app-1-9-0-tmpl")
    assert "app-1-9-0-tmpl-rb-1-8-0" in plan.steps[0].description
    assert fleet.state.calls["compute.instanceTemplates.insert"] == 0  # planning makes nothing

    events = list(run_steps(provider, plan))
    assert statuses(events) == [("template", "started"), ("template", "done"),
                                ("patch", "started"), ("patch", "done"), ("track", "started"),
                                ("track", "done"), ("restore-policy", "started"),
                                ("restore-policy", "done"), (None, "finished")]
    assert fleet.state.calls["compute.instanceTemplates.insert"] == 1
    assert fleet.state.calls["compute.globalOperations.get"] >= 1  # waited for the insert
    made = fleet.state.template(PROJECT, "app-1-9-0-tmpl-rb-1-8-0").to_json()
    copied = fleet.state.template(PROJECT, "app-1-9-0-tmpl").to_json()
    disk = made["properties"]["disks"][0]
    assert disk["initializeParams"]["sourceImage"].endswith("/global/images/app-1-8-0")
    # Everything else is the group's template's.
    disk["initializeParams"]["sourceImage"] = copied["properties"]["disks"][0][
        "initializeParams"]["sourceImage"]
    assert made["properties"] == copied["properties"]

    after = provider.poll()
    web = after.group("web")
    assert not web.updating and web.desired_version == "1.8.0"
    assert {i.version for i in after.instances if i.group == "web"} == {"1.8.0"}
    assert len([i for i in after.instances if i.group == "web"]) == 3

    # Run again (a resumed action): the step finds its template and inserts nothing.
    again = list(run_steps(provider, plan, done={"patch", "track", "restore-policy"}))
    assert statuses(again)[:2] == [("template", "started"), ("template", "done")]
    assert "exists already" in again[1].message
    assert fleet.state.calls["compute.instanceTemplates.insert"] == 1


def test_a_regional_template_is_copied_into_its_region(fleet, provider):
    state = fleet.state
    state.create_instance_template("edge-1-9-0", "app-1-9-0", region="europe-west1",
                                   labels={"team": "edge"})
    state.create_mig("edge", "regions/europe-west1/instanceTemplates/edge-1-9-0",
                     region="europe-west1", target_size=3)
    state.delete_instance_template("app-1-8-0-tmpl")
    inv = provider.poll()
    plan = provider.plan_rollback(inv, "edge", "europe-west1", "1.8.0")
    assert plan.params["template"] == (
        f"projects/{PROJECT}/regions/europe-west1/instanceTemplates/edge-1-9-0-rb-1-8-0")
    events = list(run_steps(provider, plan))
    assert statuses(events)[-1] == (None, "finished")
    assert fleet.state.calls["compute.regionInstanceTemplates.insert"] == 1
    after = provider.poll()
    assert {i.version for i in after.instances if i.group == "edge"} == {"1.8.0"}
    assert {i.tags.get("team") for i in after.instances if i.group == "edge"} == {"edge"}


def test_a_taken_rollback_template_name_with_another_image_is_not_used(fleet, provider):
    fleet.state.delete_instance_template("app-1-8-0-tmpl")
    inv = provider.poll()
    plan = provider.plan_rollback(inv, "web", "us-central1", "1.8.0")
    # Someone takes the name, with another image, between the plan and its execution.
    fleet.state.create_instance_template("app-1-9-0-tmpl-rb-1-8-0", "app-1-10-0")
    events = list(run_steps(provider, plan))
    assert statuses(events) == [("template", "started"), ("template", "failed"),
                                (None, "failed")]
    assert "exists but boots" in events[-1].message
    assert fleet.state.calls["compute.instanceGroupManagers.patch"] == 0
    with pytest.raises(ActionRefused, match="exists but boots"):
        provider.plan_rollback(inv, "web", "us-central1", "1.8.0")


def test_a_denied_template_insert_names_the_permission(fleet, provider):
    fleet.state.delete_instance_template("app-1-8-0-tmpl")
    inv = provider.poll()
    plan = provider.plan_rollback(inv, "web", "us-central1", "1.8.0")
    fleet.faults.deny("compute.instanceTemplates.insert", "compute.instanceTemplates.create")
    events = list(run_steps(provider, plan))
    assert statuses(events)[-1] == (None, "failed")
    assert "compute.instanceTemplates.create" in events[-1].message


def test_rollback_template_names_fit_and_are_stable():
    assert rollback_template_name("web-tmpl", "1.8.0") == "web-tmpl-rb-1-8-0"
    assert rollback_template_name("web", "V2.0_RC+1") == "web-rb-v2-0-rc-1"
    long = rollback_template_name("t" * 60, "1.8.0")
    assert len(long) == 63 and long == rollback_template_name("t" * 60, "1.8.0")
    assert long != rollback_template_name("t" * 60, "1.8.1")
    assert re.fullmatch(r"[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?", long)
