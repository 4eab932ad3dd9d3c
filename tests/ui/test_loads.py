"""The window's reads, run synchronously on a seeded store."""

from __future__ import annotations

from datetime import timedelta

from fleetview.ui.fleet_filter import parse_filter
from fleetview.ui.loads import load_fleet, load_history, load_share


def test_load_fleet_works_out_tree_table_and_counts(seeded_store, known_fleet):
    snap = load_fleet(seeded_store, None, parse_filter("drift:yes"))
    assert len(snap.fleet) == 6
    assert snap.version_counts == {"1.0": 2, "1.1": 1, "0.9": 1, "2.0": 1, "1.9": 1}
    prod = snap.nodes[("scope", "prod")]
    assert (prod.count, prod.drift) == (6, 3)
    assert sorted(snap.rows.frame["instance_id"][snap.rows.mask]) == ["a3", "w2", "w3"]
    then = load_fleet(seeded_store, known_fleet.t1 + timedelta(minutes=1), parse_filter(""))
    assert sorted(then.fleet["instance_id"]) == ["a1", "a2", "b1", "w1", "w2", "w3"]


def test_load_history_builds_the_timeline_arrays(seeded_store, known_fleet):
    history = load_history(seeded_store, known_fleet.now, 1)
    assert history.timeline.n_instances == 8
    assert history.versions == ["0.9", "1.0", "1.1", "1.9", "2.0"]


def test_load_share_starts_before_the_rollout(seeded_store, known_fleet):
    share = load_share(seeded_store, "prod", "us-east-1", "web", "1.1", known_fleet.now, 30)
    assert share.index[0] <= known_fleet.t2
    assert share.iloc[-1].to_dict() == {"1.0": 2, "1.1": 1}


def test_load_rollout_reads_the_group_now_and_when_it_changed(seeded_store, known_fleet):
    from fleetview.ui.loads import load_rollout

    rollout = load_rollout(seeded_store, "prod", "us-east-1", "web", known_fleet.now, 30)
    assert (rollout.desired, rollout.target_size) == ("1.1", 3)
    assert rollout.since == known_fleet.t2 and rollout.note == ""
    assert rollout.share.index[0] <= known_fleet.t2


def test_a_refresh_and_its_rollback_are_followed_as_the_group_wants_them(store_url):
    # An instance refresh with a desired configuration: the poll gives 1.1 as desired from
    # its start (the launch template says 1.0 until it succeeds, in the group's notes); then
    # AWS rolls it back, and the group wants 1.0 again while 1.1 instances remain.
    from datetime import UTC, datetime

    from fleetview.domain.model import Group, Image, Instance, Inventory, Scope, State
    from fleetview.store import Store
    from fleetview.ui.loads import load_rollout

    scope = Scope("aws", "prod", "1", ("r",))
    now = datetime.now(UTC).replace(microsecond=0)
    images = {f"ami-{v}": Image("aws", f"ami-{v}", f"app-{v}", version=v) for v in ("1.0", "1.1")}
    says = ("the group's launch template says 1.0 until the instance refresh completes; the "
            "refresh deploys 1.1")

    def inst(n, v):
        return Instance("aws", f"i{n}-{v}", f"i{n}", "prod", "1", "r", "ra", "web", f"ami-{v}",
                        State.RUNNING, version=v)

    def poll(at, versions, desired, updating, notes=()):
        group = Group("aws", "prod", "1", "r", "web", "asg", f"ami-{desired}", 4,
                      desired_version=desired, updating=updating, notes=notes)
        return Inventory(scope, at, tuple(inst(n, v) for n, v in enumerate(versions)),
                         (group,), images, (), ("r",))

    store = Store.open(store_url)
    try:
        t0, t1, t2 = (now - timedelta(hours=1), now - timedelta(minutes=10),
                      now - timedelta(minutes=4))
        for inv in (poll(t0, ["1.0"] * 4, "1.0", False),
                    poll(t1, ["1.0"] * 4, "1.1", True, (says,)),
                    poll(now - timedelta(minutes=5), ["1.1", "1.1", "1.0", "1.0"], "1.1", True,
                         (says,))):
            store.record_poll(inv, inv.polled_at - timedelta(seconds=1), inv.polled_at)
        rollout = load_rollout(store, "prod", "r", "web", now - timedelta(minutes=5), 30)
        assert rollout.desired == "1.1" and rollout.since == t1 and rollout.note == says
        assert rollout.share.iloc[-1]["1.1"] == 2
        rolled = poll(t2, ["1.1", "1.1", "1.0", "1.0"], "1.0", True)
        store.record_poll(rolled, t2 - timedelta(seconds=1), t2)
        rollout = load_rollout(store, "prod", "r", "web", now, 30)
    finally:
        store.close()
    # The rollback goes back to 1.0: that is the target, not 1.1 that gained instances.
    assert rollout.desired == "1.0" and rollout.since == t2 and rollout.note == ""
