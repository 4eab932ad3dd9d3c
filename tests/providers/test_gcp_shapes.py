"""The shapes production GCP fleets use, read and acted on through google-cloud-compute and the
emulator: instance states, spot and preemption, image families, images of other projects, GKE
node pools, regional distribution, stateful groups and the update policy FleetView borrows."""

from __future__ import annotations

from datetime import timedelta

import pytest

from fleetview.actions.steps import run_steps
from fleetview.domain.actions import ActionRefused
from fleetview.domain.model import State
from tests.helpers import gce as gce_fixtures
from tests.helpers.gce import PROJECT, make

gce_emulator = gce_fixtures.gce_emulator
ZONE = "us-central1-a"
BOOT = "persistent-disk-0"


@pytest.fixture
def emu(gce_emulator):
    """Releases 1.8.0 and 1.9.0, each with its template."""
    state = gce_emulator.state
    for days, version in ((20, "1-8-0"), (2, "1-9-0")):
        state.create_image(f"app-{version}", family="app", labels={"version": version},
                           created=timedelta(days=days))
        state.create_instance_template(f"app-{version}-tmpl", f"app-{version}",
                                       created=timedelta(days=days))
    return gce_emulator


def names(inventory, group: str) -> list[str]:
    return sorted(i.name for i in inventory.members(inventory.group(group)))


def statuses(events):
    return [(e.step, e.status) for e in events if e.status != "progress"]


# -- instance states ---------------------------------------------------------------------------

def test_every_gce_state_is_named_and_only_running_or_starting_ones_are_members(emu):
    state = emu.state
    state.create_mig("web", "app-1-9-0-tmpl", zone=ZONE, target_size=4)
    members = sorted(m["instance"].rsplit("/", 1)[-1] for m in state.managed_instances("web"))
    for name, status in zip(members, ("REPAIRING", "SUSPENDED", "STAGING"), strict=False):
        state.set_instance_status(PROJECT, ZONE, name, status)
    expected = {"PROVISIONING": State.PENDING, "STAGING": State.PENDING,
                "PENDING": State.WAITING, "RUNNING": State.RUNNING,
                "PENDING_STOP": State.STOPPING, "STOPPING": State.STOPPING,
                "DEPROVISIONING": State.STOPPING, "STOPPED": State.STOPPED,
                "SUSPENDING": State.SUSPENDING, "SUSPENDED": State.SUSPENDED,
                "REPAIRING": State.REPAIRING, "TERMINATED": State.STOPPED}
    for status in expected:
        state.create_instance(f"vm-{status.lower().replace('_', '-')}", "us-central1-b",
                              "app-1-8-0", status=status)
    inv = make(emu).poll()
    seen = {i.name: i.state for i in inv.instances if i.group is None}
    assert seen == {f"vm-{s.lower().replace('_', '-')}": v for s, v in expected.items()}
    # A repairing or suspended member serves nothing: the group has two members now.
    web = inv.group("web")
    assert names(inv, "web") == [members[2], members[3]]
    assert {i.state for i in inv.members(web)} == {State.PENDING, State.RUNNING}


# -- spot and preemptible -------------------------------------------------------------------------

def test_a_preempted_spot_vm_is_shown_preempted_and_asked_about_once(emu):
    state = emu.state
    state.create_instance_template("batch-t", "app-1-9-0", scheduling={"provisioningModel": "SPOT"})
    state.create_mig("batch", "batch-t", zone=ZONE, target_size=3)
    state.create_instance("old-style", "us-central1-b", "app-1-9-0",
                          scheduling={"preemptible": True})
    state.create_instance("stopped-by-hand", "us-central1-b", "app-1-9-0",
                          scheduling={"preemptible": True}, status="TERMINATED")
    provider = make(emu)
    first = provider.poll()
    assert {i.lifecycle for i in first.instances if i.group == "batch"} == {"spot"}
    assert first.instance(next(i.id for i in first.instances if i.name == "old-style")
                          ).lifecycle == "preemptible"
    victim = names(first, "batch")[0]
    emu.clock.advance(60)
    state.preempt(ZONE, victim)

    inv = provider.poll()
    by_name = {i.name: i for i in inv.instances}
    assert by_name[victim].state is State.STOPPED and by_name[victim].state_reason == "Preempted"
    assert victim not in names(inv, "batch")
    # Stopped by someone, not preempted: no reason is made up.
    assert by_name["stopped-by-hand"].state_reason is None
    assert by_name["old-style"].state_reason is None
    asked = state.calls["compute.zoneOperations.list"]
    assert asked == 2  # one per zone holding a stopped spot or preemptible VM
    provider.poll()
    assert state.calls["compute.zoneOperations.list"] == asked


# -- image families ----------------------------------------------------------------------------

def test_an_unresolvable_family_says_why_instead_of_showing_no_version(emu):
    state = emu.state
    state.create_image("tool-2-0-0", family="tool", labels={"version": "2-0-0"})
    state.create_instance_template("tool-latest", "family/tool")
    state.create_mig("tools", "tool-latest", zone=ZONE, target_size=2)
    state.deprecate_image("tool-2-0-0", "DEPRECATED")  # the family has no usable image now
    state.create_image("base-1", family="base", project="images-project")
    state.create_instance_template("base-latest", "projects/images-project/global/images/"
                                   "family/base")
    state.create_mig("base", "base-latest", zone="us-central1-b", target_size=1)
    emu.faults.deny("compute.images.getFromFamily", project="images-project")

    inv = make(emu).poll()
    tools = inv.group("tools")
    assert tools.desired_version is None
    assert any("image family tool" in n and "no usable image" in n for n in tools.notes)
    assert {i.version for i in inv.members(tools)} == {"2.0.0"}  # read from their disks
    base = inv.group("base")
    assert base.desired_version is None
    assert any("image family base of project images-project cannot be resolved" in n
               and "compute.images.getFromFamily" in n for n in base.notes)


# -- images of another project --------------------------------------------------------------

def test_an_image_the_account_cannot_read_is_noted_and_not_asked_again(emu):
    state = emu.state
    state.create_image("golden-3-1-0", project="images-project", labels={"version": "3-1-0"})
    state.create_instance_template(
        "golden-t", "projects/images-project/global/images/golden-3-1-0")
    state.create_mig("golden", "golden-t", zone=ZONE, target_size=2)
    emu.faults.deny("compute.images.get", project="images-project")
    provider = make(emu)
    inv = provider.poll()
    golden = inv.group("golden")
    assert inv.ok and golden.desired_image_id == "projects/images-project/global/images/" \
        "golden-3-1-0"
    # Its labels cannot be read: the version comes from its name, and the note says why.
    assert golden.desired_version == "3.1.0"
    assert any("cannot be read by this account" in n and "images-project" in n
               for n in golden.notes)
    asked = state.calls["compute.images.get"]
    again = provider.poll()
    assert state.calls["compute.images.get"] == asked
    assert again.group("golden").notes == golden.notes


# -- GKE ---------------------------------------------------------------------------------------------

def test_a_gke_node_pool_is_owned_by_its_cluster_and_left_to_it(emu):
    state = emu.state
    state.create_instance_template(
        "gke-prod-pool-1-a1b2c3d4", "app-1-9-0",
        labels={"goog-gke-node": "", "goog-k8s-cluster-name": "prod"})
    state.create_mig("gke-prod-pool-1-a1b2c3d4-grp", "gke-prod-pool-1-a1b2c3d4", zone=ZONE,
                     target_size=2)
    state.create_mig("web", "app-1-9-0-tmpl", zone=ZONE, target_size=2)
    inv = make(emu, actions=True).poll()
    pool = inv.group("gke-prod-pool-1-a1b2c3d4-grp")
    assert pool.owner == "GKE cluster prod" and inv.group("web").owner is None
    with pytest.raises(ActionRefused, match="GKE cluster prod"):
        make(emu, actions=True).plan_rollback(inv, pool.name, "us-central1", "1.8.0")
    plan = make(emu, actions=True, act_on_owned_groups=True).plan_rollback(
        inv, pool.name, "us-central1", "1.8.0")
    assert "GKE cluster prod" in plan.notes[0]


# -- regional distribution ------------------------------------------------------------------

def test_a_regional_groups_zones_and_shape_are_shown_and_its_plan_keeps_gces_rule(emu):
    state = emu.state
    state.create_mig("api", "app-1-9-0-tmpl", region="us-central1", target_size=4,
                     target_shape="BALANCED")
    provider = make(emu, actions=True)
    inv = provider.poll()
    api = inv.group("api")
    assert api.extra["target_shape"] == "BALANCED" and len(api.extra["zones"]) == 3
    assert any("3 zones" in n and "BALANCED" in n for n in api.notes)
    # 10% of 4 is one instance, but a regional group's fixed maxSurge is 0 or >= its zones.
    plan = provider.plan_rollback(inv, "api", "us-central1", "1.8.0")
    assert plan.params["max_surge"] == 3 and plan.batch_size == 3
    assert any("0 or at least 3" in n for n in plan.notes)
    events = list(run_steps(provider, plan))
    assert statuses(events)[-1] == (None, "finished"), events
    after = provider.poll()
    assert {i.version for i in after.members(after.group("api"))} == {"1.8.0"}
    assert after.group("api").extra["update_policy"]["max_surge"] == {"fixed": 3}


# -- the update policy FleetView borrows ----------------------------------------------------

def test_an_opportunistic_group_is_opportunistic_again_after_a_rollback(emu):
    state = emu.state
    state.create_mig("web", "app-1-9-0-tmpl", zone=ZONE, target_size=3,
                     update_policy={"type": "OPPORTUNISTIC", "maxSurge": {"fixed": 2}})
    provider = make(emu, actions=True)
    plan = provider.plan_rollback(provider.poll(), "web", "us-central1", "1.8.0")
    assert [s.key for s in plan.steps] == ["patch", "track", "restore-policy"]
    assert any("OPPORTUNISTIC" in n and "puts it back" in n for n in plan.notes)
    assert plan.params["previous_policy"]["type"] == "OPPORTUNISTIC"
    events = list(run_steps(provider, plan))
    assert statuses(events)[-1] == (None, "finished"), events
    inv = provider.poll()
    assert {i.version for i in inv.members(inv.group("web"))} == {"1.8.0"}
    policy = state.mig("web")["updatePolicy"]
    assert (policy["type"], policy["maxSurge"]["fixed"], policy["maxUnavailable"]["fixed"]) == (
        "OPPORTUNISTIC", 2, 1)
    # A plan that changes nothing of the policy has nothing to put back.
    state.patch_group(state.find_group("web"), {"updatePolicy": {
        "type": "PROACTIVE", "maxSurge": {"fixed": 1}, "maxUnavailable": {"fixed": 0}}})
    emu.clock.advance(60)
    plan = provider.plan_rollback(provider.poll(), "web", "us-central1", "1.9.0")
    assert [s.key for s in plan.steps] == ["patch", "track"]


# -- stateful groups ----------------------------------------------------------------------------

def test_a_stateful_group_rolls_back_by_recreating_its_instances_under_their_names(emu):
    state = emu.state
    state.create_mig("db", "app-1-9-0-tmpl", region="us-central1", target_size=3,
                     stateful_disks=["data"])
    provider = make(emu, actions=True)
    inv = provider.poll()
    db = inv.group("db")
    assert db.extra["stateful"]["disks"] == ["data"] and not db.extra["stateful"][
        "boot_preserved"]
    assert any("stateful" in n and "data" in n for n in db.notes)
    before = names(inv, "db")
    plan = provider.plan_rollback(inv, "db", "us-central1", "1.8.0")
    assert plan.params["policy"]["replacement_method"] == "RECREATE"
    assert (plan.params["max_surge"], plan.params["max_unavailable"]) == (0, 3)
    assert plan.capacity_kept.startswith("0 of 3") and plan.min_healthy_percent == 0
    assert "restore-policy" not in {s.key for s in plan.steps}  # the group's own policy
    events = list(run_steps(provider, plan))
    assert statuses(events)[-1] == (None, "finished"), events
    after = provider.poll()
    assert names(after, "db") == before
    assert {i.version for i in after.members(after.group("db"))} == {"1.8.0"}
    assert provider.convergence(plan).converged


def test_a_group_preserving_its_boot_disk_cannot_change_version_and_says_so(emu):
    state = emu.state
    state.create_mig("db", "app-1-9-0-tmpl", zone=ZONE, target_size=2, stateful_disks=[BOOT])
    provider = make(emu, actions=True)
    inv = provider.poll()
    assert any("preserves the boot disk" in n for n in inv.group("db").notes)
    with pytest.raises(ActionRefused, match="preserves the boot disk.*keep the image"):
        provider.plan_rollback(inv, "db", "us-central1", "1.8.0")
    victim = inv.members(inv.group("db"))[0]
    plan = provider.plan_replace(inv, victim.id)
    assert plan.to_version == "1.9.0" == victim.version
    assert any("comes back on its own boot disk" in n for n in plan.notes), plan.notes
    assert "preserved disks" in plan.irreversible[0]


def test_a_boot_disk_kept_by_a_per_instance_config_never_counts_as_rolled_back(emu):
    state = emu.state
    state.create_mig("db", "app-1-9-0-tmpl", zone=ZONE, target_size=3)
    first = sorted(m["instance"].rsplit("/", 1)[-1] for m in state.managed_instances("db"))[0]
    state.set_per_instance_config("db", first, [BOOT])
    state.patch_group(state.find_group("db"), {"updatePolicy": {
        "replacementMethod": "RECREATE", "maxSurge": {"fixed": 0}}})
    provider = make(emu, actions=True)
    inv = provider.poll()
    plan = provider.plan_rollback(inv, "db", "us-central1", "1.8.0")
    assert plan.params["kept_boot"] == {first: "1.9.0"}
    assert any(first in n and "keep the image they run" in n for n in plan.notes)
    list(run_steps(provider, plan))
    state_now = provider.convergence(plan)
    assert not state_now.converged and state_now.others == {"1.9.0": 1}
    assert state_now.on_target == 2
    after = provider.poll()
    assert {i.name: i.version for i in after.members(after.group("db"))}[first] == "1.9.0"
    # Replacing it would not bring the group's version either, and the plan says so.
    kept = next(i for i in after.instances if i.name == first)
    plan = provider.plan_replace(after, kept.id)
    assert after.group("db").desired_version == "1.8.0" and plan.to_version == "1.9.0"
    assert any("boot disk is preserved" in n for n in plan.notes)


# -- permissions -------------------------------------------------------------------------------

def test_doctor_names_the_permissions_these_shapes_need_when_they_are_missing(gce_emulator):
    from fleetview.providers.base import ScopeReport
    from fleetview.providers.gcp import doctor

    gce_emulator.faults.deny("compute.zoneOperations.list")
    gce_emulator.faults.deny("compute.images.getFromFamily")
    report = ScopeReport("gcp-test", "gcp", "watch")
    doctor.check(gce_fixtures.scope_config(gce_emulator), report)
    assert {c.need.permission for c in report.missing()} == {
        "compute.zoneOperations.list", "compute.images.getFromFamily"}
    assert {c.need.permission for c in report.checks} >= {
        "compute.zoneOperations.list", "compute.images.getFromFamily"}
