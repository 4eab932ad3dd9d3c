"""Ages and freshness marks of the scope tree."""

from __future__ import annotations

import math

import pandas as pd

from fleetview.ui.colors import AMBER, RED, VersionColors
from fleetview.ui.scope_tree import COL_AGE, Freshness, ScopeTree, format_age


def test_format_age():
    assert format_age(12.4) == "12 s ago"
    assert format_age(125) == "2 min ago"
    assert format_age(3 * 3600 + 5) == "3 h ago"
    assert format_age(2 * 86400) == "2 d ago"
    assert format_age(math.inf) == "never"


def test_freshness_status():
    assert Freshness(100, 100, True).status(now=150, interval_s=60) == "ok"
    assert Freshness(100, 100, True).status(now=100 + 181, interval_s=60) == "stale"
    assert Freshness(100, 50, False, "denied").status(now=101, interval_s=60) == "error"


def test_ages_turn_amber_then_red(qtbot):
    tree = ScopeTree(VersionColors(), interval_s=60)
    qtbot.addWidget(tree)
    fleet = pd.DataFrame({"scope": ["s", "s"], "region": ["r1", "r2"], "group": ["g", None],
                          "instance_id": ["i1", "i2"], "name": ["n1", "n2"],
                          "version": ["1.0", "1.1"], "drift": [False, False]})
    tree.set_fleet(fleet)
    t = pd.Timestamp("2026-01-01", tz="UTC")
    tree.set_freshness(pd.DataFrame({
        "scope": ["s", "s"], "provider": ["aws", "aws"], "region": ["r1", "r2"],
        "last_poll": [t, t], "last_ok": [t, t - pd.Timedelta(minutes=10)],
        "ok": [True, False], "error": [None, "AccessDenied"]}))
    now = t.timestamp() + 30
    tree.update_ages(now)
    r1 = tree.item_for(("region", "s", "r1"))
    r2 = tree.item_for(("region", "s", "r2"))
    assert r1.text(COL_AGE) == "30 s ago"
    assert r2.text(COL_AGE) == "10 min ago"
    assert r2.foreground(COL_AGE).color().name() == RED
    assert "AccessDenied" in r2.toolTip(COL_AGE)
    assert tree.item_for(("scope", "s")).foreground(COL_AGE).color().name() == RED
    tree.update_ages(t.timestamp() + 200)  # r1: more than 3 intervals without a good poll
    assert r1.foreground(COL_AGE).color().name() == AMBER


def test_new_nodes_are_inserted_in_order_and_gone_ones_rebuild(qtbot):
    tree = ScopeTree(VersionColors())
    qtbot.addWidget(tree)

    def fleet(rows):
        return pd.DataFrame({
            "scope": [r[0] for r in rows], "region": [r[1] for r in rows],
            "group": [r[2] for r in rows], "instance_id": [r[3] for r in rows],
            "name": [r[3] for r in rows], "version": ["1.0"] * len(rows),
            "drift": [False] * len(rows)})

    tree.set_fleet(fleet([("s", "r1", "web", "i1")]))
    web = tree.item_for(("group", "s", "r1", "web"))
    tree.set_fleet(fleet([("s", "r1", "web", "i1"), ("s", "r1", "api", "i2"),
                          ("s", "r1", None, "i3"), ("b", "r9", "db", "i4")]))
    assert tree.item_for(("group", "s", "r1", "web")) is web  # kept, not rebuilt
    region = tree.item_for(("region", "s", "r1"))
    assert [region.child(k).text(0) for k in range(region.childCount())] == ["api", "web", "i3"]
    assert [tree.topLevelItem(k).text(0) for k in range(tree.topLevelItemCount())] == ["b", "s"]
    assert tree.item_for(("region", "b", "r9")).isExpanded()
    tree.set_fleet(fleet([("s", "r1", "api", "i2")]))  # web went away
    assert tree.item_for(("group", "s", "r1", "web")) is None
    assert tree.item_for(("group", "s", "r1", "api")).text(1) == "1"


def test_a_failing_region_says_why_on_its_own_row_and_an_owner_is_named(qtbot):
    from fleetview.ui.scope_tree import COL_NAME

    tree = ScopeTree(VersionColors(), interval_s=60)
    qtbot.addWidget(tree)
    fleet = pd.DataFrame({"scope": ["s", "s"], "region": ["r1", "r2"], "group": ["g", "h"],
                          "instance_id": ["i1", "i2"], "name": ["n1", "n2"],
                          "version": ["1.0", "1.1"], "drift": [False, False]})
    groups = pd.DataFrame({"scope": ["s", "s"], "region": ["r1", "r2"], "group": ["g", "h"],
                           "kind": ["asg", "mig"], "desired_version": ["1.0", "1.1"],
                           "target_size": [1, 1],
                           "owner": ["CloudFormation stack web", None]})
    tree.set_fleet(fleet, groups)
    g = tree.item_for(("group", "s", "r1", "g"))
    assert g.text(COL_NAME) == "g  · owned by CloudFormation stack web"
    assert "its next deployment can undo" in g.toolTip(COL_NAME)
    assert tree.item_for(("group", "s", "r2", "h")).text(COL_NAME) == "h"
    t = pd.Timestamp("2026-01-01", tz="UTC")
    error = "ec2 DescribeInstances: AccessDenied (not authorized); grant ec2:DescribeInstances"
    tree.set_freshness(pd.DataFrame({
        "scope": ["s", "s"], "provider": ["aws", "aws"], "region": ["r1", "r2"],
        "last_poll": [t, t], "last_ok": [t, t], "ok": [True, False], "error": [None, error]}))
    r2 = tree.item_for(("region", "s", "r2"))
    reason = r2.child(0)
    assert reason.text(COL_NAME) == "⚠ ec2 DescribeInstances: AccessDenied"
    assert error in reason.toolTip(COL_NAME)
    # The scope says it too, for when it is collapsed.
    assert tree.item_for(("scope", "s")).child(0).text(COL_NAME).startswith(
        "⚠ 1 of 2 regions fail: ec2 DescribeInstances")
    # Fixed: the row goes; a new fleet keeps the tree as it was.
    tree.set_freshness(pd.DataFrame({
        "scope": ["s", "s"], "provider": ["aws", "aws"], "region": ["r1", "r2"],
        "last_poll": [t, t], "last_ok": [t, t], "ok": [True, True], "error": [None, None]}))
    assert r2.childCount() == 1 and r2.child(0) is tree.item_for(("group", "s", "r2", "h"))


def test_a_scope_that_never_polled_well_still_has_a_row_saying_why(qtbot):
    tree = ScopeTree(VersionColors(), interval_s=60)
    qtbot.addWidget(tree)
    tree.set_fleet(pd.DataFrame())
    t = pd.Timestamp("2026-01-01", tz="UTC")
    tree.set_freshness(pd.DataFrame({
        "scope": ["lab"], "provider": ["gcp"], "region": ["europe-west1"], "last_poll": [t],
        "last_ok": [pd.NaT], "ok": [False], "error": ["403 Forbidden: denied; grant viewer"]}))
    lab = tree.item_for(("scope", "lab"))
    assert lab is not None and lab.child(0).text(0) == "⚠ 403 Forbidden: denied"
