"""Rollback target, readiness and rollout pace, read from a store fed with real polls."""

from datetime import UTC, datetime, timedelta

from fleetview.actions import history, locks, quarantine
from fleetview.domain.model import Group, Image, Instance, Inventory, Scope, State
from fleetview.domain.versions import VersionRules
from fleetview.providers.aws.scope import AwsScopeConfig

T0 = datetime(2026, 11, 1, tzinfo=UTC)
SCOPE = AwsScopeConfig(name="prod", regions=("us-east-1",), actions=True)
IMAGES = {f"ami-{v}": Image("aws", f"ami-{v}", f"web-{v}") for v in ("1.0", "1.1", "1.2")}


def poll(store, at, versions, desired, updating=False, gone=()):
    """One successful poll: instance n runs versions[n]."""
    images = {k: Image(i.provider, i.id, i.name, gone=k in gone) for k, i in IMAGES.items()}
    inv = Inventory(
        Scope("aws", "prod", "1", ("us-east-1",)), at,
        instances=tuple(Instance("aws", f"i-{n}-{v}", f"web-{n}", "prod", "1", "us-east-1",
                                 None, "web", f"ami-{v}", State.RUNNING)
                        for n, v in enumerate(versions)),
        groups=(Group("aws", "prod", "1", "us-east-1", "web", "asg", f"ami-{desired}", 3,
                      updating=updating),),
        images=images, regions_ok=("us-east-1",))
    store.record_poll(VersionRules().label(inv), at, at)


def history_with_bad_rollout(store):
    poll(store, T0, ["1.0"] * 3, "1.0")
    poll(store, T0 + timedelta(hours=1), ["1.1", "1.0", "1.0"], "1.1")
    poll(store, T0 + timedelta(hours=1, minutes=10), ["1.1"] * 3, "1.1")
    poll(store, T0 + timedelta(days=2), ["1.2", "1.1", "1.1"], "1.2")


def test_target_is_the_last_version_run_in_full(store):
    history_with_bad_rollout(store)
    ready = history.readiness(store, SCOPE, "prod", "us-east-1", "web",
                              now=T0 + timedelta(days=2, minutes=1))
    assert ready.ready, ready.why
    assert ready.target.version == "1.1" and ready.target.image_id == "ami-1.1"
    assert ready.estimate_s == 600  # 1.0 -> 1.1 took ten minutes


def test_group_fully_on_current_rolls_back_to_the_one_before(store):
    history_with_bad_rollout(store)
    poll(store, T0 + timedelta(days=2, hours=1), ["1.2"] * 3, "1.2")
    ready = history.readiness(store, SCOPE, "prod", "us-east-1", "web",
                              now=T0 + timedelta(days=3))
    assert ready.target.version == "1.1"


def test_not_ready_says_why(store):
    poll(store, T0, ["1.0"] * 3, "1.0")
    ready = history.readiness(store, SCOPE, "prod", "us-east-1", "web", now=T0)
    assert not ready.ready and "no earlier version" in ready.why

    history_with_bad_rollout(store)
    poll(store, T0 + timedelta(days=2, minutes=5), ["1.2", "1.1", "1.1"], "1.2", updating=True,
         gone={"ami-1.1"})
    locks.acquire(store, "prod", "us-east-1", "web", "a1", owner="ana@ws:1")
    ready = history.readiness(store, AwsScopeConfig("prod", ("us-east-1",)), "prod",
                              "us-east-1", "web", now=T0 + timedelta(days=2, minutes=6))
    assert not ready.ready
    for words in ("read-only", "image of 1.1 (ami-1.1) no longer exists",
                  "already running on web"):
        assert words in ready.why
    # A rollout under way does not stand in the way: the rollback stops it first.
    assert "under way" not in ready.why and ready.note == "will stop the update under way"


def test_a_rollout_in_flight_is_ready_and_says_it_will_be_stopped(store):
    history_with_bad_rollout(store)
    poll(store, T0 + timedelta(days=2, minutes=5), ["1.2", "1.1", "1.1"], "1.2", updating=True)
    ready = history.readiness(store, SCOPE, "prod", "us-east-1", "web",
                              now=T0 + timedelta(days=2, minutes=6))
    assert ready.ready, ready.why
    assert ready.describe() == "ready: back to 1.1 (will stop the update under way)"


def test_a_rollout_that_has_replaced_every_instance_still_targets_the_version_it_replaces(
        store):
    # An AWS refresh baking after its last batch (or a MIG not yet stable): every instance
    # runs 1.2, the group wants 1.2 and is still updating; the target is 1.1, not 1.2.
    history_with_bad_rollout(store)
    poll(store, T0 + timedelta(days=2, minutes=5), ["1.2"] * 3, "1.2", updating=True)
    ready = history.readiness(store, SCOPE, "prod", "us-east-1", "web",
                              now=T0 + timedelta(days=2, minutes=6))
    assert ready.ready and ready.target.version == "1.1"
    assert ready.describe() == "ready: back to 1.1 (will stop the update under way)"


def test_a_version_marked_bad_is_never_the_default_target_again(store):
    # The ping-pong: 1.0 -> 1.1 in full -> 1.2 in full, then a rollback to 1.1 that
    # marks 1.2 bad; 1.1 goes bad too. The default target must skip both.
    history_with_bad_rollout(store)
    poll(store, T0 + timedelta(days=2, minutes=10), ["1.2"] * 3, "1.2")
    poll(store, T0 + timedelta(days=3), ["1.1"] * 3, "1.1")
    quarantine.mark(store, "1.2", "1.2 returns 500s", "ops", scope="prod",
                    region="us-east-1", group="web", source="rollback")
    now = T0 + timedelta(days=3, minutes=1)
    ready = history.readiness(store, SCOPE, "prod", "us-east-1", "web", now=now)
    assert ready.target.version == "1.0" and ready.skipped == ("1.2",)
    quarantine.mark(store, "1.0", "1.0 has the CVE", "sec")  # every group, every scope
    ready = history.readiness(store, SCOPE, "prod", "us-east-1", "web", now=now)
    assert ready.target is None and not ready.ready
    assert set(ready.skipped) == {"1.0", "1.2"}
    quarantine.lift(store, "1.0", "patched image rebuilt as 1.0", "sec")
    ready = history.readiness(store, SCOPE, "prod", "us-east-1", "web", now=now)
    assert ready.target.version == "1.0"
    # Marks of another group do not count here.
    quarantine.mark(store, "1.0", "bad on api", "ops", scope="prod", region="us-east-1",
                    group="api")
    assert history.readiness(store, SCOPE, "prod", "us-east-1", "web",
                             now=now).target.version == "1.0"
