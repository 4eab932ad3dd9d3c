"""Gathering a plan for the preview: a fresh poll of the in-memory cloud, history from a real
SQLite store, refusals said (and audited) instead of raised."""

from __future__ import annotations

import json

import pytest

from fleetview import providers
from fleetview.actions import audit, locks
from fleetview.actions.prepare import prepare_replace, prepare_rollback
from fleetview.actions.steps import run_steps
from fleetview.config import Config
from fleetview.store import Store
from tests.helpers import memory_cloud as mem

SCOPE = mem.MemoryScopeConfig("lab-mem", "lab", ("mem-1",), actions=True)


@pytest.fixture
def world(monkeypatch) -> mem.MemoryCloud:
    """Group "web" of 3 on 1.0 (tagged env=prod), a standalone instance, images 1.0 and 1.1."""
    world = mem.MemoryCloud("lab")
    for version in ("1.0", "1.1"):
        world.add_image(version)
    world.add_group("web", "1.0", size=3, tags={"env": "prod"})
    world.add_instance(group=None, version="1.0")
    monkeypatch.setitem(mem.WORLDS, world.account, world)
    return world


def config(scope=SCOPE, **kwargs) -> Config:
    return Config(scopes=(scope,), versions=mem.RULES, **kwargs)


def provider(scope=SCOPE) -> mem.MemoryProvider:
    return mem.MemoryProvider(scope, mem.RULES)


def record(store, provider) -> None:
    inventory = provider.poll()
    store.record_poll(inventory, inventory.polled_at, inventory.polled_at)


def roll_out_1_1(world, store) -> None:
    """History: web ran 1.0 in full, then 1.1 in full."""
    acting = provider()
    record(store, acting)
    world.clock.sleep(3600)
    plan = acting.plan_rollback(acting.poll(), "web", "mem-1", "1.1")
    assert [e for e in run_steps(acting, plan) if e.status == "failed"] == []
    world.clock.sleep(600)
    record(store, acting)


def refusals(store) -> list[dict]:
    return [json.loads(e.detail) | {"actor": e.actor}
            for e in audit.entries(store) if e.event == "refused"]


def test_rollback_target_defaults_to_the_last_version_run_in_full(world, store):
    roll_out_1_1(world, store)
    prepared = prepare_rollback(config(), store, "lab-mem", "mem-1", "web", provider=provider())
    assert prepared.ok, prepared.refusal
    assert prepared.plan.to_version == "1.0" and prepared.plan.to_image_id == "img-1.0"
    assert prepared.current_version == "1.1" and prepared.versions == ["1.0"]
    assert prepared.identity == "lab-operator@lab"
    assert prepared.group_info.name == "web" and prepared.inventory.ok
    assert refusals(store) == []  # a plan made is not audited until it is confirmed


def test_a_chosen_version_comes_first_among_the_choices(world, store):
    roll_out_1_1(world, store)
    world.add_image("0.9")
    prepared = prepare_rollback(config(), store, "lab-mem", "mem-1", "web", version="0.9",
                                provider=provider())
    assert prepared.ok, prepared.refusal
    assert prepared.plan.to_version == "0.9" and prepared.versions == ["0.9", "1.0"]


def test_no_history_is_a_refusal_and_audited(world, store):
    prepared = prepare_rollback(config(), store, "lab-mem", "mem-1", "web", provider=provider())
    assert not prepared.ok and prepared.plan is None
    assert "no earlier version" in prepared.refusal
    [refused] = refusals(store)
    assert refused["kind"] == "rollback" and refused["stage"] == "plan"
    assert refused["actor"] == "lab-operator@lab" and "no earlier version" in refused["why"]


def test_a_group_already_acted_on_shows_the_plan_and_says_why_not(world, store):
    roll_out_1_1(world, store)
    locks.acquire(store, "lab-mem", "mem-1", "web", "other-action", owner="ana@ws:1")
    prepared = prepare_rollback(config(), store, "lab-mem", "mem-1", "web", provider=provider())
    assert prepared.plan is not None and prepared.plan.to_version == "1.0"
    assert not prepared.ok and "already running on web" in prepared.refusal
    assert "already running on web" in refusals(store)[0]["why"]


def test_a_refused_plan_is_audited(world, store):
    solo = next(i for i in world.instances.values() if i.group is None)
    prepared = prepare_replace(config(), store, "lab-mem", solo.id, provider=provider())
    assert not prepared.ok and "standalone instance" in prepared.refusal
    [refused] = refusals(store)
    assert refused["kind"] == "replace" and refused["why"] == prepared.refusal

    updating = world.groups[("mem-1", "web")]
    updating.updating = True
    roll_out = prepare_rollback(config(), store, "lab-mem", "mem-1", "web", version="1.1",
                                provider=provider())
    assert "rolling update under way" in roll_out.refusal
    assert len(refusals(store)) == 2


def test_a_read_only_scope_is_refused_at_the_plan(world, store):
    read_only = mem.MemoryScopeConfig("lab-mem", "lab", ("mem-1",), actions=False)
    prepared = prepare_replace(config(read_only), store, "lab-mem",
                               world.members("mem-1", "web")[0].id, provider=provider(read_only))
    assert "read-only: set actions = true in its [[memory]] table" in prepared.refusal
    assert len(refusals(store)) == 1


def test_an_unknown_scope_is_refused_before_any_call(world, store):
    prepared = prepare_rollback(config(), store, "nope", "mem-1", "web", provider=provider())
    assert prepared.refusal == "scope nope is not in the config"
    assert prepared.provider is None and world.calls == []
    assert refusals(store) == []
    assert prepare_replace(config(), store, "nope", "m-0001").refusal == prepared.refusal


def test_a_read_only_store_is_refused_before_any_call(world, store, tmp_path):
    with Store.open(f"sqlite:///{tmp_path / 'history.db'}", readonly=True) as viewing:
        for prepared in (prepare_rollback(config(), viewing, "lab-mem", "mem-1", "web",
                                          provider=provider()),
                         prepare_replace(config(), viewing, "lab-mem", "m-0001",
                                         provider=provider())):
            assert "read-only (--no-collect)" in prepared.refusal and not prepared.ok
            assert prepared.provider is None
    assert world.calls == [] and refusals(store) == []


def test_replace_is_prepared_with_its_group_and_protection(world, store):
    victim = world.members("mem-1", "web")[0]
    prepared = prepare_replace(config(protect=("env=prod",)), store, "lab-mem", victim.id,
                               provider=provider())
    assert prepared.ok, prepared.refusal
    assert (prepared.region, prepared.group) == ("mem-1", "web")
    assert prepared.current_version == "1.0" and prepared.protected == "env=prod"
    assert prepared.plan.instances == (victim.id,)


def test_a_cloud_error_is_said_but_not_audited(world, store):
    world.identity = None
    prepared = prepare_replace(config(), store, "lab-mem", "m-0001", provider=provider())
    assert "credentials of scope lab-mem do not work" in prepared.refusal
    assert refusals(store) == []


def test_without_a_provider_the_registry_makes_one(world, store, monkeypatch):
    monkeypatch.setitem(providers.REGISTRY, "memory", "tests.helpers.memory_cloud")
    prepared = prepare_replace(config(), store, "lab-mem", world.members("mem-1", "web")[0].id)
    assert prepared.ok, prepared.refusal
    assert isinstance(prepared.provider, mem.MemoryProvider)
