"""A third cloud, added with one registry line: config, doctor, permission files and the
provider contract (polls, plans, refusals, steps, timeouts) all work for it unchanged."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import pytest

from fleetview import doctor, permissions, providers
from fleetview.actions import runner
from fleetview.actions.steps import run_steps
from fleetview.cli import main
from fleetview.config import Config, ConfigError, no_scopes_hint, parse_config
from fleetview.domain.actions import ActionRefused
from fleetview.domain.model import State
from fleetview.store import Store
from tests.helpers import memory_cloud as mem
from tests.helpers.memory_cloud import MemoryScopeConfig


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setitem(providers.REGISTRY, "memory", "tests.helpers.memory_cloud")


@pytest.fixture
def world(registered, monkeypatch) -> mem.MemoryCloud:
    world = mem.lab_fleet()
    monkeypatch.setitem(mem.WORLDS, world.account, world)
    return world


def scope(actions: bool = True, **kwargs) -> MemoryScopeConfig:
    return MemoryScopeConfig(**{"name": "lab-mem", "account": "lab", "regions": ("mem-1",),
                                "actions": actions, **kwargs})


def provider(actions: bool = True, **kwargs) -> mem.MemoryProvider:
    made = providers.make_provider(scope(actions), mem.RULES, **kwargs)
    assert isinstance(made, mem.MemoryProvider)
    return made


def events_of(provider, plan, done=()):
    return list(run_steps(provider, plan, done))


def failures(events):
    return [e for e in events if e.status == "failed"]


# -- the config ---------------------------------------------------------------------------

GOOD = """
[[aws]]
name = "prod-aws"
regions = ["us-east-1"]

[[memory]]
name = "lab-mem"
account = "lab"
regions = ["mem-1", "mem-2", "mem-1"]
actions = true
protect = ["env=prod"]

[versions]
rules = [{ tag = "version", provider = "memory" }]
"""


def test_config_reads_a_memory_table(registered):
    config = parse_config(GOOD, "lab.toml")
    memory = config.scope("lab-mem")
    assert memory == MemoryScopeConfig("lab-mem", "lab", ("mem-1", "mem-2"), actions=True,
                                       protect=("env=prod",))
    assert config.scope("prod-aws").provider == "aws"
    assert config.versions.rules[0].provider == "memory"
    assert "[[memory]]" in no_scopes_hint()


BAD = {
    # text, "line: key" the error names, words of the fix
    "no account": ('[[memory]]\nname = "m"\nregions = ["mem-1"]\n', ":1: memory[0].account",
                   'account = "lab"'),
    "bad region": ('[[memory]]\nname = "m"\naccount = "lab"\nregions = ["us-east-1"]\n',
                   ':4: memory[0].regions', '"mem-1"'),
    "regions not a list": ('[[memory]]\nname = "m"\naccount = "lab"\nregions = "mem-1"\n',
                           ":4: memory[0].regions", "a list of strings"),
    "unknown key": ('[[memory]]\nname = "m"\naccount = "lab"\nregions = ["mem-1"]\n'
                    'zone = "a"\n', ":5: memory[0].zone", "account"),
    "second table": ('[[memory]]\nname = "m"\naccount = "lab"\nregions = ["mem-1"]\n\n'
                     '[[memory]]\nname = "n"\naccount = 7\nregions = ["mem-1"]\n',
                     ":8: memory[1].account", "in-memory cloud"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_memory_table_names_file_line_and_key(registered, case):
    text, where, fix = BAD[case]
    with pytest.raises(ConfigError) as info:
        parse_config(text, "lab.toml")
    message = str(info.value)
    assert message.startswith("lab.toml:") and where in message and fix in message, message


def test_without_its_registry_line_the_table_is_unknown():
    with pytest.raises(ConfigError, match="memory: unknown key"):
        parse_config(GOOD, "lab.toml")


# -- doctor -------------------------------------------------------------------------------

def test_doctor_passes_with_every_grant(world):
    out = io.StringIO()
    assert doctor.run(Config(scopes=(scope(),)), out=out) == 0, out.getvalue()
    text = out.getvalue()
    assert "lab-mem (memory, watching and actions" in text
    assert "identity: lab-operator@lab" in text
    assert "ok   memory.groups.update" in text
    assert "All 1 scopes have what FleetView needs" in text


def test_doctor_names_a_missing_grant_and_the_file_to_grant(world):
    world.granted.discard("memory.instances.delete")
    out = io.StringIO()
    assert doctor.run(Config(scopes=(scope(),)), out=out) == 1
    assert "MISSING memory.instances.delete" in out.getvalue()
    assert "grant memory-operator.txt" in out.getvalue()
    report = doctor.check_scope(scope(actions=False))
    assert report.ok and report.capability == "watch"  # a watcher needs no delete


def test_doctor_and_poll_agree_when_the_credentials_fail(world):
    world.identity = None
    report = doctor.check_scope(scope())
    assert not report.ok and "credentials of scope lab-mem do not work" in report.error
    inventory = provider().poll()
    assert not inventory.ok and inventory.regions_ok == ()
    assert "do not work" in inventory.errors[0].message


def test_doctor_through_the_command(world, tmp_path, capsys):
    path = tmp_path / "lab.toml"
    path.write_text('[[memory]]\nname = "lab-mem"\naccount = "lab"\nregions = ["mem-1"]\n')
    assert main(["doctor", "--config", str(path)]) == 0, capsys.readouterr()
    assert "ok   memory.instances.list" in capsys.readouterr().out


# -- permission files -----------------------------------------------------------------------

def test_permission_files_include_the_memory_cloud(registered, tmp_path):
    files = permissions.files()
    assert files["memory-readonly.txt"] == ("memory", "watch")
    assert files["memory-operator.txt"] == ("memory", "operate")
    readonly, operator = (permissions.render(f"memory-{c}.txt") for c in ("readonly", "operator"))
    assert "memory.instances.list" in readonly and "memory.groups.update" not in readonly
    assert "memory.groups.update" in operator and "memory.instances.list" in operator
    assert permissions.main([str(tmp_path)]) == 0
    assert (tmp_path / "memory-operator.txt").read_text() == operator
    assert (tmp_path / "aws-readonly.json").exists()


def test_needs_cover_every_call_the_provider_makes(world):
    def needed(calls):
        return {mem.CLOUD.permission_of(*c) for c in calls} - {None}

    watcher = provider(actions=False)
    watcher.poll()
    watch = {n.permission for n in mem.NEEDS if n.capability == "watch"}
    assert needed(world.calls) <= watch
    operator = provider()
    rollback = operator.plan_rollback(operator.poll(), "web", "mem-1", "1.0")
    assert not failures(events_of(operator, rollback))
    inventory = operator.poll()
    victim = inventory.members(inventory.group("web", "mem-1"))[0]
    assert not failures(events_of(operator, operator.plan_replace(inventory, victim.id)))
    assert needed(world.calls) == {n.permission for n in mem.NEEDS}


# -- the provider contract ------------------------------------------------------------------

def test_poll_labels_instances_groups_and_standalones(world):
    inventory = provider().poll()
    assert inventory.ok and inventory.regions_ok == ("mem-1",) and inventory.api_calls == 3
    assert inventory.scope.provider == "memory" and inventory.scope.account == "lab"
    web = inventory.group("web", "mem-1")
    assert web.desired_version == "1.1" and web.target_size == 3
    assert [i.version for i in inventory.members(web)] == ["1.1"] * 3
    standalone = [i for i in inventory.instances if i.group is None]
    assert len(standalone) == 1 and standalone[0].version == "1.0"
    assert provider().identity() == "lab-operator@lab"


def test_a_region_that_fails_is_an_error_not_an_exception(world):
    world.add_group("db", "1.0", size=1, region="mem-2")
    world.down.add("mem-2")
    made = providers.make_provider(scope(regions=("mem-1", "mem-2")), mem.RULES)
    inventory = made.poll()
    assert inventory.regions_ok == ("mem-1",) and not inventory.ok
    assert inventory.errors[0].region == "mem-2" and "try again" in inventory.errors[0].message
    world.granted.discard("memory.instances.list")
    assert "grant memory-readonly.txt" in made.poll().errors[0].message


def test_replace_brings_a_new_instance_on_the_desired_version(world):
    acting = provider()
    inventory = acting.poll()
    victim = inventory.members(inventory.group("web", "mem-1"))[0]
    plan = acting.plan_replace(inventory, victim.id)
    assert plan.kind == "replace" and plan.instances == (victim.id,) and plan.to_version == "1.1"
    start = world.clock.now
    events = events_of(acting, plan)
    assert not failures(events), events
    assert [e.status for e in events if e.step != "track"] == ["started", "done", "finished"]
    progress = [e for e in events if e.status == "progress"]
    assert progress[0].done == 2 and progress[-1].done == progress[-1].total == 3
    assert world.clock.now - start == world.boot_s  # it waited for the boot, on the fake clock
    after = acting.poll()
    web = after.members(after.group("web", "mem-1"))
    assert victim.id not in {i.id for i in web}
    assert len(web) == 3 and {(i.version, i.state) for i in web} == {("1.1", State.RUNNING)}


def test_rollback_converges_and_runs_each_step_once(world):
    acting = provider()
    plan = acting.plan_rollback(acting.poll(), "web", "mem-1", "1.0")
    assert plan.to_version == "1.0" and plan.from_versions == ("1.1",) and len(plan.steps) == 5
    events = events_of(acting, plan)
    assert not failures(events), events
    started = [e.step for e in events if e.status == "started"]
    assert started == [s.key for s in plan.steps]
    after = acting.poll()
    web = after.members(after.group("web", "mem-1"))
    assert after.group("web", "mem-1").desired_version == "1.0"
    assert len(web) == 3 and {i.version for i in web} == {"1.0"}
    # Steps journaled as done are never run again.
    calls = len(world.calls)
    again = events_of(acting, plan, done={s.key for s in plan.steps})
    assert [e.status for e in again] == ["finished"] and len(world.calls) == calls


def test_rollback_can_use_an_image_only_history_knows(world):
    acting = provider()
    inventory = acting.poll()
    known = {"img-0.9": dataclasses.replace(inventory.images["img-1.0"], id="img-0.9",
                                            version="0.9")}
    with pytest.raises(ActionRefused, match="no image of version 0.9"):
        acting.plan_rollback(inventory, "web", "mem-1", "0.9")
    plan = acting.plan_rollback(inventory, "web", "mem-1", "0.9", known_images=known)
    assert plan.to_image_id == "img-0.9"


def _refusal(world, case):
    """Arrange one refusal; return the call that must refuse."""
    acting = provider(actions=case != "read-only")
    web = world.groups[("mem-1", "web")]
    if case == "standalone":
        solo = next(i for i in world.instances.values() if i.group is None)
        return lambda: acting.plan_replace(acting.poll(), solo.id)
    if case == "group missing":
        del world.groups[("mem-1", "web")]
    if case == "group updating":
        web.updating = True
    if case == "image gone":
        world.images["img-1.1"].gone = True
    member = world.members("mem-1", "web")[0].id
    if case == "not in last poll":
        inventory = acting.poll()
        world.add_instance("web", "1.1")
        member = list(world.instances)[-1]
        return lambda: acting.plan_replace(inventory, member)
    return lambda: acting.plan_replace(acting.poll(), member)


REFUSALS = {
    "read-only": "scope lab-mem is read-only: set actions = true in its \\[\\[memory\\]\\]",
    "not in last poll": "is not in the last poll of scope lab-mem; poll again",
    "standalone": "is a standalone instance \\(not in a memory pool\\)",
    "group missing": "names group web, which the last poll did not see in mem-1",
    "group updating": "group web has a rolling update under way: wait",
    "image gone": "group web launches app-1.1 \\(1.1\\), which no longer exists",
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_shared_refusals_of_a_replace(world, case):
    refuse = _refusal(world, case)
    calls = [c for c in world.calls if c[1] != "list"]
    with pytest.raises(ActionRefused, match=REFUSALS[case]):
        refuse()
    assert [c for c in world.calls if c[1] != "list"] == calls  # nothing changed


@pytest.mark.parametrize("case, arrange, version, words", [
    ("read-only", None, "1.0", "is read-only"),
    ("group missing", "drop", "1.0", "group web in mem-1 is not in the last poll"),
    ("group updating", "updating", "1.0", "has a rolling update under way"),
    ("image gone", "gone", "1.0", "the image of 1.0 \\(img-1.0\\) no longer exists"),
    ("unknown version", None, "9.9", "no image of version 9.9"),
    ("already there", None, "1.1", "already runs 1.1"),
])
def test_refusals_of_a_rollback(world, case, arrange, version, words):
    if arrange == "drop":
        del world.groups[("mem-1", "web")]
    elif arrange == "updating":
        world.groups[("mem-1", "web")].updating = True
    elif arrange == "gone":
        world.images["img-1.0"].gone = True
    acting = provider(actions=case != "read-only")
    with pytest.raises(ActionRefused, match=words):
        acting.plan_rollback(acting.poll(), "web", "mem-1", version)


def test_a_group_gone_before_the_run_changes_nothing(world):
    acting = provider()
    plan = acting.plan_rollback(acting.poll(), "web", "mem-1", "1.0")
    del world.groups[("mem-1", "web")]
    with pytest.raises(ActionRefused, match="no longer exists in mem-1; nothing was changed"):
        events_of(acting, plan)
    assert ("groups", "update") not in world.calls


def test_a_step_that_times_out_fails_the_action_with_what_is_left(world):
    world.frozen.add("web")  # the group never launches the replacements
    acting = provider(timing=world.clock.timing(interval_s=10.0, timeout_s=300.0))
    plan = acting.plan_rollback(acting.poll(), "web", "mem-1", "1.0")
    start = world.clock.now
    events = events_of(acting, plan)
    step_failed, action_failed = failures(events)
    assert step_failed.step == "track"
    assert step_failed.message == ("web still does not run 1.0 on every instance after 300 s")
    assert action_failed.step is None and action_failed.message == (
        "rollback of web stopped: web still does not run 1.0 on every instance after 300 s; "
        "0 of 3 instances run 1.0, and the group launches 1.0")
    assert events[-1] is action_failed
    assert world.clock.now - start == 300.0  # the deadline on the clock, not a count of tries
    assert len([e for e in events if e.status == "progress"]) == 31


def test_an_action_runs_through_the_runner_and_its_journal(world, tmp_path):
    acting = provider()
    plan = acting.plan_rollback(acting.poll(), "web", "mem-1", "1.0")
    with Store.open(f"sqlite:///{Path(tmp_path) / 'history.db'}") as store:
        action_id = runner.confirm(store, scope(), plan, runner.Confirmation("1.1 leaks"), "ops")
        record = runner.execute(store, acting, action_id)
    assert record.status == "recovered", record.message
    assert record.done_steps == {s.key for s in plan.steps}
    assert record.time_to_recover_s is not None
