"""The journal through a real provider: a rollback on moto cut short between two steps by a
crash, then resumed by another process; no step journaled done runs again."""

import pytest
import sqlalchemy as sa

from fleetview.actions import audit, runner
from fleetview.actions.journal import Journal
from fleetview.domain.model import State
from fleetview.domain.timing import FakeClock, Timing
from fleetview.domain.versions import VersionRules
from fleetview.providers.aws.provider import AwsProvider
from fleetview.providers.aws.scope import AwsScopeConfig
from fleetview.sim.aws_fleet import GroupSpec, seed_aws_fleet
from fleetview.store.action_tables import actions
from tests.helpers.aws import moto_server  # noqa: F401

OLD, NEW, REGION = "1.3.0", "1.4.0", "us-east-1"


class Crash(BaseException):
    """Stands for the process dying."""


def test_crash_between_steps_then_resume_on_moto(store, moto_server):  # noqa: F811
    seed_aws_fleet(moto_server.url, regions=(REGION,), versions=(OLD, NEW),
                   groups=(GroupSpec("api", size=4, version=NEW, running=OLD),
                           ), standalone=0, unlabelled=0)
    config = AwsScopeConfig("prod", (REGION,), endpoint_url=moto_server.url, actions=True)

    def provider():
        return AwsProvider(config, VersionRules(), timing=FakeClock().timing(interval_s=1.0))

    first = provider()
    # The group runs OLD; a plan to NEW is the same mechanism as a rollback, in batches.
    plan = first.plan_rollback(first.poll(), "api", REGION, NEW, min_healthy_percent=75)
    assert len(plan.steps) >= 3, plan.steps
    action_id = runner.confirm(store, config, plan, runner.Confirmation("ship 1.4.0"), "ops")
    ran_first: list[str] = []

    def crash_after_second_step(event):
        if event.status == "started":
            ran_first.append(event.step)
        if event.status == "done" and event.step == plan.steps[1].key:
            raise Crash

    with pytest.raises(Crash):
        runner.execute(store, first, action_id, on_event=crash_after_second_step)
    done_before = Journal(store).get(action_id).done_steps
    assert done_before == {plan.steps[0].key, plan.steps[1].key}

    with store.writing("the first process is gone") as conn:
        conn.execute(sa.update(actions).values(owner="ops@gone:1", heartbeat_us=0))
    assert Journal(store).get(action_id).interrupted

    ran_second: list[str] = []
    record = runner.resume(store, provider(), action_id, "next", "ops",
                           on_event=lambda e: e.status == "started" and ran_second.append(e.step),
                           timing=Timing(interval_s=0.0, timeout_s=60.0))
    assert record.status == "recovered", record.message
    assert not set(ran_second) & done_before, "a step journaled done ran again"
    assert set(ran_first) | set(ran_second) == {s.key for s in plan.steps}
    live = [i for i in provider().poll().instances
            if i.group == "api" and i.state == State.RUNNING]
    assert len(live) == 4 and {i.version for i in live} == {NEW}
    assert "resumed" in [e.event for e in audit.entries(store)]
    assert audit.verify(store).ok
