"""The readiness of every group at once says what each group's own check says."""

from datetime import UTC, datetime, timedelta

import pytest

from fleetview.actions import history, locks, quarantine
from fleetview.domain.model import Group, Image, Instance, Inventory, Scope, State
from fleetview.domain.versions import VersionRules
from fleetview.providers.aws.scope import AwsScopeConfig
from fleetview.store import Store
from tests.helpers.pg import pg_server, pg_url, store_url  # noqa: F401

T0 = datetime(2026, 11, 1, tzinfo=UTC)
REGION = "us-east-1"
PROD = AwsScopeConfig(name="prod", regions=(REGION,), actions=True)
IMAGES = {f"ami-{v}": Image("aws", f"ami-{v}", f"web-{v}") for v in ("1.0", "1.1", "1.2")}


@pytest.fixture
def store(store_url):  # noqa: F811 - both databases: the one read orders as the other does
    with Store.open(store_url) as opened:
        yield opened


def poll(store, at, scope, groups: dict[str, tuple[list[str], str]], updating=(), gen=""):
    """One poll of `scope`: group -> (the version each instance runs, the desired one);
    another `gen`, other instances."""
    instances, group_rows = [], []
    for group, (versions, desired) in groups.items():
        instances += [Instance("aws", f"i-{group}-{n}-{v}{gen}", f"{group}-{n}", scope, "1", REGION,
                               None, group, f"ami-{v}", State.RUNNING)
                      for n, v in enumerate(versions)]
        group_rows.append(Group("aws", scope, "1", REGION, group, "asg", f"ami-{desired}",
                                len(versions), updating=group in updating))
    inv = Inventory(Scope("aws", scope, "1", (REGION,)), at, instances=tuple(instances),
                    groups=tuple(group_rows), images=dict(IMAGES), regions_ok=(REGION,))
    store.record_poll(VersionRules().label(inv), at, at)


def fleet_history(store):
    # web: 1.0 in full, then 1.1 in full, then 1.2 going out; api: 1.0 then 1.1 in full.
    poll(store, T0, "prod", {"web": (["1.0"] * 3, "1.0"), "api": (["1.0"] * 2, "1.0")})
    poll(store, T0 + timedelta(hours=1), "prod",
         {"web": (["1.1", "1.0", "1.0"], "1.1"), "api": (["1.1", "1.0"], "1.1")})
    poll(store, T0 + timedelta(hours=2), "prod",
         {"web": (["1.1"] * 3, "1.1"), "api": (["1.1"] * 2, "1.1")})
    poll(store, T0 + timedelta(days=1), "prod",
         {"web": (["1.2", "1.1", "1.1"], "1.2"), "api": (["1.1"] * 2, "1.1")},
         updating={"web"})
    # A scope no longer in the config: its groups are read-only.
    poll(store, T0, "old", {"web": (["1.0"], "1.0")})
    poll(store, T0 + timedelta(hours=1), "old", {"web": (["1.1"], "1.1")})


def test_the_table_says_what_each_group_check_says(store):
    fleet_history(store)
    quarantine.mark(store, "1.0", "1.0 leaks memory", "ops", scope="prod", region=REGION,
                    group="api")
    locks.acquire(store, "prod", REGION, "web", "act-1")
    now = T0 + timedelta(days=1, minutes=5)
    keys = [("prod", REGION, "web"), ("prod", REGION, "api"), ("old", REGION, "web"),
            ("prod", REGION, "gone")]
    table = history.readiness_table(store, {"prod": PROD}, keys, now=now)

    assert list(table) == keys
    for key in keys:
        one = history.readiness(store, PROD if key[0] == "prod" else None, *key, now=now)
        assert table[key] == one, key
    web, api, old, gone = (table[k] for k in keys)
    assert web.target.version == "1.1" and "already running on web" in web.why
    assert web.note.startswith("will stop the update under way")
    assert web.estimate_s == 3600  # 1.0 -> 1.1 took an hour
    assert not api.ready and api.skipped == ("1.0",)  # its only earlier version is bad
    assert old.target.version == "1.0" and "scope old is read-only" in old.why
    assert gone.target is None and "no earlier version" in gone.why


def test_instances_swapped_in_one_poll_keep_the_group_in_full(store):
    # Every instance replaced by one of the same version between two polls: the group never
    # stopped running 1.0 in full, so the target after 1.1 is 1.0 from the first poll on.
    poll(store, T0, "prod", {"web": (["1.0"] * 2, "1.0")})
    swapped = T0 + timedelta(hours=1)
    poll(store, swapped, "prod", {"web": (["1.0"] * 2, "1.0")}, gen="b")
    poll(store, T0 + timedelta(hours=2), "prod", {"web": (["1.1"] * 2, "1.1")}, gen="b")
    now = T0 + timedelta(hours=3)
    table = history.readiness_table(store, {"prod": PROD}, [("prod", REGION, "web")], now=now)
    ready = table[("prod", REGION, "web")]
    assert ready.ready, ready.why
    assert ready.target.version == "1.0" and ready.target.start == T0
    assert ready.target.end == T0 + timedelta(hours=2)


def test_no_groups_no_reads(store):
    assert history.readiness_table(store, {"prod": PROD}, []) == {}
