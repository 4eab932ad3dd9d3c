"""The diff of a poll against open spans, without a database."""

from fleetview.domain.model import State
from fleetview.store.spans import (
    INSTANCE_FIELDS,
    Coverage,
    diff_groups,
    diff_instances,
    instance_observation,
)
from tests.helpers.builders import T0, group, instance, inventory


def _open(*instances):
    return {i.id: instance_observation(i) for i in instances}


def test_unchanged_instances_write_nothing():
    a, b = instance("i-a"), instance("i-b")
    inv = inventory(T0, [a, b])
    d = diff_instances(_open(a, b), inv, Coverage.of(inv))
    assert (d.opened, d.closed, d.unchanged) == ({}, [], 2)


def test_a_change_closes_and_opens():
    old, new = instance("i-a", "1.0"), instance("i-a", "2.0")
    inv = inventory(T0, [new])
    d = diff_instances(_open(old), inv, Coverage.of(inv))
    assert d.closed == ["i-a"] and list(d.opened) == ["i-a"] and d.gone == 0


def test_state_change_is_a_change():
    inv = inventory(T0, [instance("i-a", state=State.STOPPED)])
    d = diff_instances(_open(instance("i-a")), inv, Coverage.of(inv))
    assert d.closed == ["i-a"] and d.opened["i-a"][INSTANCE_FIELDS.index("state")] == "stopped"


def test_missing_from_a_complete_region_is_gone():
    inv = inventory(T0, [])
    d = diff_instances(_open(instance("i-a")), inv, Coverage.of(inv))
    assert d.closed == ["i-a"] and d.gone == 1


def test_failed_region_changes_nothing():
    inv = inventory(T0, [instance("i-b", "2.0")], errors=[("us-east-1", "throttled")])
    d = diff_instances(_open(instance("i-a"), instance("i-b")), inv, Coverage.of(inv))
    assert (d.opened, d.closed, d.ignored) == ({}, [], 1)


def test_region_not_reported_is_not_taken_as_gone():
    inv = inventory(T0, [], ok=("eu-west-1",))
    d = diff_instances(_open(instance("i-a")), inv, Coverage.of(inv))
    assert d.closed == []


def test_zone_error_protects_its_instances():
    inv = inventory(T0, [], errors=[("us-east-1a", "zone down")])
    d = diff_instances(_open(instance("i-a")), inv, Coverage.of(inv))
    assert d.closed == []


def test_groups_diff_by_region_and_name():
    inv = inventory(T0, groups=[group("web", "2.0"), group("api", "1.0", region="eu-west-1")])
    d = diff_groups({("us-east-1", "web"): diff_groups({}, inventory(T0, groups=[group()]),
                                                       Coverage.of(inv)).opened[
        ("us-east-1", "web")]}, inv, Coverage.of(inv))
    assert d.closed == [("us-east-1", "web")]
    assert set(d.opened) == {("us-east-1", "web"), ("eu-west-1", "api")}
