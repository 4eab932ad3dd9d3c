"""Confirm -> execute -> resume with the journal, locks and audit on a real store.

The provider here is a boundary fake that records which steps ran; the same flow through
boto3/moto and the GCE emulator is in tests/actions/test_actions_e2e.py.
"""

from datetime import UTC, datetime

import pytest

from fleetview.actions import audit, locks, runner
from fleetview.actions.journal import Journal
from fleetview.domain.actions import ActionPlan, ActionRefused, PlanStep, StepResult
from fleetview.domain.model import Group, Instance, Inventory, Scope, State
from fleetview.domain.timing import FakeClock
from fleetview.providers.aws.scope import AwsScopeConfig
from tests.helpers.fakes import StubProvider

SCOPE = AwsScopeConfig(name="prod", regions=("us-east-1",), actions=True)
READ_ONLY = AwsScopeConfig(name="prod", regions=("us-east-1",), actions=False)
STEPS = ("point-group", "batch-1", "batch-2")


def plan(group="web"):
    return ActionPlan(
        kind="rollback", provider="aws", scope="prod", region="us-east-1", group=group,
        instances=("i-1", "i-2"), from_versions=("2.0",), to_version="1.9", to_image_id="ami-19",
        steps=tuple(PlanStep(k, f"do {k}") for k in STEPS), mechanism="rolling-replacement")


class StepProvider(StubProvider):
    def __init__(self, config=SCOPE, rules=None):
        super().__init__(config, rules)
        self.ran: list[str] = []

    def run_step(self, plan, step):
        self.ran.append(step.key)
        return StepResult("ok")
        yield  # a generator, as every step runner

    def poll(self):
        on = "1.9" if "batch-2" in self.ran else "2.0"
        instances = tuple(Instance("aws", f"i-{n}", f"web-{n}", "prod", "1", "us-east-1", None,
                                   "web", "ami", State.RUNNING, version=on) for n in (3, 4))
        return Inventory(Scope("aws", "prod", "1"), datetime.now(UTC), instances=instances,
                         groups=(Group("aws", "prod", "1", "us-east-1", "web", "asg", "ami", 2,
                                       desired_version="1.9"),))


def confirm(store, config=SCOPE, reason="v2.0 leaks memory"):
    return runner.confirm(store, config, plan(), runner.Confirmation(reason), "ops")


def test_rollback_runs_every_step_once_and_records_recovery(store):
    provider = StepProvider()
    action_id = confirm(store)
    record = runner.execute(store, provider, action_id, timing=FakeClock().timing())
    assert provider.ran == list(STEPS)
    assert record.status == "recovered" and record.done_steps == set(STEPS)
    assert record.time_to_recover_s is not None and record.time_to_recover_s >= 0
    assert locks.current(store, "prod", "us-east-1", "web") is None
    events = [e.event for e in audit.entries(store)]
    assert events[0] == "plan_confirmed" and events[-1] == "recovered"
    assert events.count("step_done") == 3
    assert audit.verify(store).ok


class Crash(BaseException):
    """Stands for the process dying between two steps."""


def test_crash_between_steps_then_resume_runs_only_what_is_left(store):
    first = StepProvider()
    action_id = confirm(store)

    def die_after_first_step(event):
        if event.step == "batch-1" and event.status == "done":
            raise Crash

    with pytest.raises(Crash):
        runner.execute(store, first, action_id, on_event=die_after_first_step)
    assert first.ran == ["point-group", "batch-1"]

    # The restarted app is another process: the journal says running, its owner is gone.
    restarted = Journal(store, owner="ops@elsewhere:1")
    record = restarted.get(action_id)
    assert record.status == "running" and record.done_steps == {"point-group", "batch-1"}

    with store.writing("the crashed process's owner") as conn:
        import sqlalchemy as sa

        from fleetview.store.action_tables import actions
        conn.execute(sa.update(actions).values(owner="ops@nohost:1", heartbeat_us=0))
    assert Journal(store).get(action_id).interrupted

    second = StepProvider()
    second.ran = list(first.ran)  # the cloud remembers what was done
    done = runner.resume(store, second, action_id, "next", "ops", timing=FakeClock().timing())
    assert second.ran == ["point-group", "batch-1", "batch-2"]  # batch-2 once, nothing again
    assert done.status == "recovered"
    assert "resumed" in [e.event for e in audit.entries(store)]


def test_abandon_frees_the_group(store):
    action_id = confirm(store)
    with store.writing("crash") as conn:
        import sqlalchemy as sa

        from fleetview.store.action_tables import actions
        conn.execute(sa.update(actions).values(owner="ops@nohost:1", heartbeat_us=0))
    record = runner.resume(store, StepProvider(), action_id, "abandon", "ops")
    assert record.status == "abandoned"
    assert locks.current(store, "prod", "us-east-1", "web") is None


def test_second_action_on_the_same_group_is_refused_and_audited(store):
    confirm(store)
    with pytest.raises(ActionRefused, match="already running"):
        confirm(store)
    refused = [e for e in audit.entries(store) if e.event == "refused"]
    assert len(refused) == 1 and "already running" in refused[0].detail


def test_read_only_scope_refuses_and_audits(store):
    with pytest.raises(ActionRefused, match="read-only.*actions = true"):
        confirm(store, READ_ONLY)
    assert [e.event for e in audit.entries(store)] == ["refused"]
    assert locks.current(store, "prod", "us-east-1", "web") is None


def test_reason_is_required(store):
    with pytest.raises(ActionRefused, match="reason"):
        confirm(store, reason="  ")


def test_protected_group_needs_its_name_typed(store):
    group = Group("aws", "prod", "1", "us-east-1", "web", "asg", "ami", 2, tags={"env": "prod"})
    with pytest.raises(ActionRefused, match="protected.*type its name"):
        runner.confirm(store, SCOPE, plan(), runner.Confirmation("r", "wbe"), "ops",
                       selectors=("env=prod",), group=group)
    action_id = runner.confirm(store, SCOPE, plan(), runner.Confirmation("r", "web"), "ops",
                               selectors=("env=prod",), group=group)
    assert Journal(store).get(action_id).status == "running"
