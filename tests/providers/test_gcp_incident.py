"""A bad rollout in flight on GCP: rolled back without waiting, stopped and pinned, and
counted honestly, through google-cloud-compute on the emulator and a SQLite store."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from fleetview.actions import audit, runner
from fleetview.actions.journal import Journal
from fleetview.actions.steps import run_steps
from fleetview.domain.actions import ActionRefused
from fleetview.store import Store
from tests.helpers import gce as gce_fixtures
from tests.helpers.gce import PROJECT, emulated_timing, make, seed_fleet

gce_emulator = gce_fixtures.gce_emulator

GOOD = f"projects/{PROJECT}/global/instanceTemplates/app-1-9-0-tmpl"
BAD = f"projects/{PROJECT}/global/instanceTemplates/app-1-10-0-tmpl"


@pytest.fixture
def store(tmp_path):
    with Store.open(f"sqlite:///{tmp_path / 'history.db'}") as opened:
        yield opened


@pytest.fixture
def incident(gce_emulator):
    """Group api (6 over 3 zones) 45 s into a rollout of 1.10.0, three at a time: three run
    1.10.0, three more are being created beside the last three on 1.9.0."""
    seed_fleet(gce_emulator.state)
    state = gce_emulator.state
    state.patch_group(state.find_group("api"), {
        "versions": [{"instanceTemplate": "app-1-10-0-tmpl"}],
        "updatePolicy": {"maxSurge": {"fixed": 3}, "maxUnavailable": {"fixed": 0}}})
    gce_emulator.clock.advance(45)
    return gce_emulator


@pytest.fixture
def provider(incident):
    p = make(incident, actions=True, interval_s=10.0)
    yield p
    p.close()


def templates_of(emulator, group: str) -> Counter:
    """Managed instances by template name, as listManagedInstances reports them."""
    return Counter(mi["version"]["instanceTemplate"].rsplit("/", 1)[-1]
                   for mi in emulator.state.managed_instances(group)
                   if mi["currentAction"] not in ("DELETING", "ABANDONING"))


def statuses(events):
    return [(e.step, e.status) for e in events if e.status != "progress"]


def test_a_rollout_in_flight_is_rolled_back_without_waiting(incident, provider):
    inv = provider.poll()
    api = inv.group("api")
    assert api.updating and api.desired_version == "1.10.0"
    members = inv.members(api)
    on_new = [i for i in members if i.version == "1.10.0"]
    assert (len(members), len(on_new)) == (9, 6)

    plan = provider.plan_rollback(inv, "api", "us-central1", "1.9.0")  # not refused
    assert plan.notes[0].startswith("stops the update under way, then rolls back")
    assert "6 of its 9 instances (6 wanted, 3 added by the update) are already on 1.10.0 " \
           "(3 still starting): the rollback replaces them with 1.9.0" in plan.notes[0]
    assert "the 6 instances already on 1.10.0 are replaced by the rollback" in plan.irreversible
    assert plan.steps[0].description.startswith("stop the update under way to 1.10.0: ")
    assert plan.params["template"] == GOOD and plan.params["previous_templates"] == [BAD]
    assert plan.params["in_flight"] is True and plan.params["on_rollout"] == 6
    assert plan.from_versions == ("1.10.0",)

    events = list(run_steps(provider, plan))
    assert statuses(events) == [("patch", "started"), ("patch", "done"), ("track", "started"),
                                ("track", "done"), (None, "finished")]
    # The patch went out while the update was still under way.
    assert incident.state.calls["compute.regionInstanceGroupManagers.patch"] == 1
    state = provider.convergence(plan)
    assert state.converged and (state.on_target, state.needed, state.others) == (6, 6, {})
    after = provider.poll()
    assert not after.group("api").updating
    assert {i.version for i in after.members(after.group("api"))} == {"1.9.0"}


def test_the_runner_recovers_a_rollout_in_flight_on_a_store(incident, provider, store):
    inv = provider.poll()
    plan = provider.plan_rollback(inv, "api", "us-central1", "1.9.0")
    action_id = runner.confirm(store, provider.config, plan,
                               runner.Confirmation("1.10.0 returns 500s"), "ops")
    seen = []
    record = runner.execute(store, provider, action_id, on_event=seen.append,
                            timing=emulated_timing(incident, interval_s=10.0, timeout_s=1800.0))
    assert record.status == "recovered", record.message
    assert record.message == "recovered: all 6 instances of api run 1.9.0"
    assert record.time_to_recover_s is not None
    assert {"patch", "track"} <= set(record.done_steps)
    last = list(audit.entries(store, action_id))[-1]
    assert last.event == "recovered"
    assert (json.loads(last.detail)["on_target"], json.loads(last.detail)["needed"]) == (6, 6)
    assert templates_of(incident, "api") == {"app-1-9-0-tmpl": 6}


def test_a_stop_during_the_rollback_pins_the_group_where_it_stands(incident, provider, store):
    inv = provider.poll()
    plan = provider.plan_rollback(inv, "api", "us-central1", "1.9.0")
    action_id = runner.confirm(store, provider.config, plan,
                               runner.Confirmation("1.10.0 returns 500s"), "ops")
    asked: list[str] = []
    before = {mi["instance"] for mi in incident.state.managed_instances("api")}

    def watch(event):
        # Stop once instances the rollback made run 1.9.0 (the three old ones left on 1.9.0
        # are replaced by the update's surge instances, which finish what they started).
        made = [mi for mi in incident.state.managed_instances("api")
                if mi["instance"] not in before and mi["currentAction"] == "NONE"
                and mi["version"]["instanceTemplate"].endswith("/app-1-9-0-tmpl")]
        if event.step == "track" and event.status == "progress" and made:
            asked.append("enough")

    record = runner.execute(store, provider, action_id, on_event=watch,
                            should_stop=lambda: "the operator stopped it" if asked else None,
                            timing=emulated_timing(incident, interval_s=10.0))
    assert record.status == "stopped", record.message
    assert record.message.startswith("the operator stopped it. group api stays on ")
    assert record.message.endswith("; it replaces nothing more until its next update (update "
                                   "policy OPPORTUNISTIC, versions pinned to these counts)")

    pinned = templates_of(incident, "api")
    assert set(pinned) == {"app-1-9-0-tmpl", "app-1-10-0-tmpl"} and sum(pinned.values()) == 6
    said = (f"group api stays on {pinned['app-1-10-0-tmpl']} "
            f"instance{'s' if pinned['app-1-10-0-tmpl'] != 1 else ''} of 1.10.0 and "
            f"{pinned['app-1-9-0-tmpl']} of 1.9.0;")
    assert said in record.message
    mig = incident.state.mig("api")
    assert mig["updatePolicy"]["type"] == "OPPORTUNISTIC"
    versions = {v["instanceTemplate"].rsplit("/", 1)[-1]: v.get("targetSize", {}).get("fixed")
                for v in mig["versions"]}
    assert versions == {"app-1-9-0-tmpl": None, "app-1-10-0-tmpl": pinned["app-1-10-0-tmpl"]}
    assert mig["status"]["isStable"] and mig["status"]["versionTarget"]["isReached"]

    # The emulator's clock runs on: nothing more is replaced, and the group is not updating.
    names = {mi["instance"] for mi in incident.state.managed_instances("api")}
    incident.clock.advance(3600)
    assert templates_of(incident, "api") == pinned
    assert {mi["instance"] for mi in incident.state.managed_instances("api")} == names
    after = provider.poll()
    api = after.group("api")
    assert not api.updating
    assert (api.desired_version, api.canary_version) == ("1.9.0", "1.10.0")
    assert not Journal(store).get(action_id).open
    assert [e.event for e in audit.entries(store, action_id)][-1] == "stopped"


def test_a_stop_before_the_patch_stops_the_rollout_the_plan_meant_to_stop(incident, provider):
    inv = provider.poll()
    plan = provider.plan_rollback(inv, "api", "us-central1", "1.9.0")
    message = drain(provider.stop(plan, frozenset()))
    # The update's surge instances finish what they started (replacing the last 1.9.0 ones).
    pinned = templates_of(incident, "api")
    assert pinned == {"app-1-10-0-tmpl": 6}
    assert message == ("FleetView stopped before changing its versions; group api stays on 6 "
                       "instances of 1.10.0; it replaces nothing more until its next update "
                       "(update policy OPPORTUNISTIC)")
    incident.clock.advance(3600)
    assert templates_of(incident, "api") == pinned
    assert not provider.poll().group("api").updating


def test_a_stop_on_three_templates_stops_the_update_and_leaves_the_versions(incident,
                                                                          provider):
    # Group web, one at a time from 1.9.0 to 1.10.0, rolled back to 1.8.0 (another template)
    # and stopped while it runs all three.
    state = incident.state
    state.patch_group(state.find_group("web"), {
        "versions": [{"instanceTemplate": "app-1-10-0-tmpl"}],
        "updatePolicy": {"maxSurge": {"fixed": 1}, "maxUnavailable": {"fixed": 0}}})
    incident.clock.advance(45)
    inv = provider.poll()
    plan = provider.plan_rollback(inv, "web", "us-central1", "1.8.0")
    list(run_steps(provider, plan, done={"track"}))
    for _ in range(40):
        if len(templates_of(incident, "web")) == 3:
            break
        incident.clock.advance(5)
    assert len(templates_of(incident, "web")) == 3
    message = drain(provider.stop(plan, frozenset({"patch"})))
    assert message.startswith("group web's update is stopped (update policy OPPORTUNISTIC: it "
                              "replaces nothing more until its next update); it stays on ")
    assert message.endswith("on 3 templates, so FleetView left its versions as they are and "
                            "it shows as updating")
    left = templates_of(incident, "web")
    assert set(left) == {"app-1-8-0-tmpl", "app-1-9-0-tmpl", "app-1-10-0-tmpl"}
    assert sum(left.values()) == 3
    incident.clock.advance(3600)
    assert templates_of(incident, "web") == left
    assert state.mig("web")["updatePolicy"]["type"] == "OPPORTUNISTIC"


def test_a_stop_of_a_group_with_nothing_under_way_changes_nothing(incident, provider):
    incident.clock.advance(3600)  # the bad rollout finishes
    inv = provider.poll()
    plan = provider.plan_rollback(inv, "web", "us-central1", "1.8.0")
    patches = incident.state.calls["compute.instanceGroupManagers.patch"]
    message = drain(provider.stop(plan, frozenset()))
    assert message == ("FleetView stopped before changing its versions; group web had no "
                       "update under way: it stays on 3 instances of 1.9.0")
    assert incident.state.calls["compute.instanceGroupManagers.patch"] == patches


def test_a_replace_has_nothing_to_stop_once_the_recreate_is_sent(incident, provider):
    inv = provider.poll()
    victim = sorted(inv.members(inv.group("web")), key=lambda i: i.name)[0]
    plan = provider.plan_replace(inv, victim.id)
    assert drain(provider.stop(plan, frozenset({"recreate"}))) == (
        f"nothing to stop: the recreate of {victim.name} was sent and group web finishes it "
        "on its own")
    assert drain(provider.stop(plan, frozenset())).startswith("FleetView stopped before "
                                                              "recreating")


def test_replace_is_still_refused_while_the_group_updates(incident, provider):
    inv = provider.poll()
    api = inv.group("api")
    with pytest.raises(ActionRefused, match="update under way"):
        provider.plan_replace(inv, inv.members(api)[0].id)


def test_convergence_counts_running_members_on_the_target_with_no_action(incident, provider):
    inv = provider.poll()
    plan = provider.plan_rollback(inv, "api", "us-central1", "1.9.0")

    def expected():
        ready = [mi for mi in incident.state.managed_instances("api")
                 if mi["version"]["instanceTemplate"].endswith("/app-1-9-0-tmpl")
                 and mi["currentAction"] == "NONE" and mi.get("instanceStatus") == "RUNNING"]
        return min(len(ready), 6)

    # Mid-rollout: three old members still on the target template count, nothing else does.
    state = provider.convergence(plan)
    assert (state.on_target, state.needed, state.target) == (expected(), 6, "1.9.0") == (
        3, 6, "1.9.0")
    assert state.others == {"1.10.0": 6}
    list(run_steps(provider, plan, done={"track"}))
    seen = set()
    for _ in range(30):
        incident.clock.advance(5)
        state = provider.convergence(plan)
        assert state.on_target == expected() and state.needed == 6
        seen.add(state.on_target)
    assert state.converged and len(seen) > 1
    # A member that stops running no longer counts, though its group did nothing.
    member = incident.state.managed_instances("api")[0]
    zone = member["instance"].split("/zones/")[1].split("/")[0]
    incident.state.set_instance_status(PROJECT, zone, member["instance"].rsplit("/", 1)[-1],
                                       "TERMINATED")
    state = provider.convergence(plan)
    assert (state.on_target, state.others, state.converged) == (5, {"starting": 1}, False)


def drain(gen):
    try:
        while True:
            next(gen)
    except StopIteration as end:
        return end.value
