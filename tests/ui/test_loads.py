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
