"""The demo's synthetic history on its own: a made-up live poll in, spans as a collector's out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fleetview.actions.history import full_stretches
from fleetview.domain.model import (
    Group,
    Image,
    Instance,
    Inventory,
    RegionError,
    Scope,
    State,
)
from fleetview.sim import demo_history
from fleetview.sim.demo_story import FAILING, FAILING_SCOPE, GroupStory, StandaloneStory
from fleetview.store import Store

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SCOPE = Scope("aws", "demo-aws", "123456789012", ("us-east-1",))
STORY = GroupStory("aws", "api", "us-east-1", {"small": 4},
                   ((30.0, "2.0.0"), (20.0, "2.1.0"), (1.0, "2.2.0")))
DRIFT = GroupStory("aws", "worker", "us-east-1", {"small": 3}, ((30.0, "2.0.0"),),
                   template_moves=((5.0, "2.1.0"),))
BASTION = StandaloneStory("aws", "bastion", "us-east-1", "2.1.0", 12.0)
AMI = {"2.0.0": "ami-00000000000000200", "2.1.0": "ami-00000000000000210",
       "2.2.0": "ami-00000000000000220"}


def _instance(n: int, group: str | None, version: str, name: str | None = None) -> Instance:
    iid = f"i-live{n:013d}"
    return Instance("aws", iid, name or iid, SCOPE.name, SCOPE.account, "us-east-1",
                    "us-east-1a" if n % 2 else "us-east-1b", group, AMI[version],
                    State.RUNNING, version=version)


def _group(name: str, version: str, size: int) -> Group:
    return Group("aws", SCOPE.name, SCOPE.account, "us-east-1", name, "asg", AMI[version], size,
                 desired_version=version)


def _live() -> Inventory:
    instances = ([_instance(n, "api", "2.2.0") for n in range(4)]
                 + [_instance(10 + n, "worker", "2.0.0") for n in range(3)]
                 + [_instance(20, None, "2.1.0", name="bastion")])
    images = {ami: Image("aws", ami, f"app-{v}", version=v) for v, ami in AMI.items()}
    return Inventory(SCOPE, NOW, tuple(instances),
                     (_group("api", "2.2.0", 4), _group("worker", "2.1.0", 3)),
                     images, regions_ok=("us-east-1",))


@pytest.fixture
def store(tmp_path):
    opened = Store.open(f"sqlite:///{tmp_path / 'history.db'}")
    yield opened
    opened.close()


def _history(live: Inventory) -> demo_history.ScopeHistory:
    return demo_history.ScopeHistory(live, dict(live.images), lambda _r, v: AMI[v],
                                     [STORY, DRIFT], [BASTION])


def test_the_history_replays_the_story_and_ends_in_the_live_poll(store):
    live = _live()
    stats = demo_history.HistoryStats()
    demo_history.write_scope_history(store, _history(live), "small", stats)
    spans = store.spans(NOW - timedelta(days=40), NOW)
    api = spans[spans["group"] == "api"]
    # Three eras of four instances; only the last one's are the live instances.
    assert api["instance_id"].nunique() == 12
    assert set(api[api["end"].isna()]["instance_id"]) == {f"i-live{n:013d}" for n in range(4)}
    assert [s.version for s in full_stretches(api)] == ["2.0.0", "2.1.0", "2.2.0"]
    first = api["start"].min().to_pydatetime()
    assert first == NOW - timedelta(days=30)
    # The live poll found everything as the history left it.
    summary = store.record_poll(live, NOW + timedelta(minutes=1), NOW + timedelta(minutes=1))
    assert (summary.opened, summary.closed) == (0, 0)
    groups = store.groups_at().set_index("group")
    assert groups.loc["worker", "desired_version"] == "2.1.0"
    worker = store.fleet_at()
    assert worker[worker["group"] == "worker"]["drift"].all()
    assert stats.polls == stats.by_scope[SCOPE.name] and stats.spans_opened == len(spans)


def test_rollouts_go_in_batches_and_standalone_instances_appear_when_launched(store):
    demo_history.write_scope_history(store, _history(_live()), "small",
                                     demo_history.HistoryStats())
    middle = NOW - timedelta(days=20) + timedelta(minutes=demo_history.ROLLOUT_MINUTES["small"]
                                                  * 0.5)
    api = store.fleet_at(middle)
    api = api[api["group"] == "api"]
    assert set(api["version"]) == {"2.0.0", "2.1.0"} and len(api) == 4
    assert "bastion" not in set(store.fleet_at(NOW - timedelta(days=13))["name"])
    assert "bastion" in set(store.fleet_at(NOW - timedelta(days=11))["name"])
    during = store.groups_at(NOW - timedelta(days=20) + timedelta(minutes=1)).set_index("group")
    assert bool(during.loc["api", "updating"]) and during.loc["api", "desired_version"] == "2.1.0"


def test_a_group_missing_from_the_live_poll_is_a_seeding_error(store):
    live = _live()
    broken = Inventory(live.scope, live.polled_at, live.instances, live.groups[1:], live.images,
                       regions_ok=live.regions_ok)
    with pytest.raises(ValueError, match="no group api"):
        demo_history.write_scope_history(store, _history(broken), "small",
                                         demo_history.HistoryStats())


def test_the_failing_scope_keeps_its_instances_and_records_hours_of_failures(store):
    failed = Inventory(Scope("aws", FAILING_SCOPE, "", (FAILING.region,)), NOW,
                       errors=(RegionError(FAILING.region, "cannot reach the endpoint"),))
    stats = demo_history.HistoryStats()
    demo_history.write_failing_history(store, failed, NOW, stats)
    fleet = store.fleet_at()
    assert len(fleet[fleet["scope"] == FAILING_SCOPE]) == len(FAILING.instances)
    fresh = store.freshness().set_index("scope")
    assert not bool(fresh.loc[FAILING_SCOPE, "ok"])
    polls = store.polls(scopes=[FAILING_SCOPE])
    failures = polls[~polls["ok"]]
    hours = FAILING.outage_hours
    assert len(failures) == int(hours * 60 // 15)
    last_ok = polls[polls["ok"]]["finished"].max().to_pydatetime()
    assert NOW - timedelta(hours=hours) <= last_ok < NOW - timedelta(hours=hours - 0.1)
