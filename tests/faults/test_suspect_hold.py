"""A successful poll that would close more than `poll.suspect_share` of a scope's open spans at
once is held as suspect: recorded as failed, shown, and applied only when the next poll
confirms it. On SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest

from fleetview.config import ConfigError, parse_config
from fleetview.store import Store
from fleetview.store.store import SUSPECT
from tests.helpers.builders import at, instance, inventory
from tests.helpers.pg import pg_server, pg_url, store_url  # noqa: F401

TEN = [instance(f"i-{n}", region="us-east-1" if n < 8 else "eu-west-1") for n in range(10)]


@pytest.fixture
def store(store_url):  # noqa: F811
    with Store.open(store_url) as opened:
        yield opened


def open_ids(store: Store) -> set[str]:
    return set(store.fleet_at()["instance_id"])


def freshness(store: Store) -> dict[str, tuple[bool, str | None]]:
    rows = store.freshness()
    return {r.region: (bool(r.ok), r.error) for r in rows.itertuples()}


def test_a_poll_closing_most_spans_is_held_then_applied_when_confirmed(store):
    store.record_poll(inventory(at(0), TEN), at(0), at(0), suspect_share=0.5)
    few = inventory(at(1), TEN[:3])  # 7 of 10 gone at once: a wrong account, say

    held = store.record_poll(few, at(1), at(1), suspect_share=0.5)
    assert held.held and held.held.startswith(SUSPECT)
    assert "7 of the 10 open instances" in held.held and "70%" in held.held
    assert (held.closed, held.opened, held.gone) == (0, 0, 0)
    assert open_ids(store) == {i.id for i in TEN}  # history untouched
    polls = store.polls()
    assert not polls.iloc[-1]["ok"] and polls.iloc[-1]["error"].startswith(SUSPECT)
    shown = freshness(store)  # the scope's status shows it, in every region
    assert all(not ok and error.startswith(SUSPECT) for ok, error in shown.values())

    confirmed = store.record_poll(inventory(at(2), TEN[:3]), at(2), at(2), suspect_share=0.5)
    assert confirmed.held is None and confirmed.gone == 7
    assert open_ids(store) == {i.id for i in TEN[:3]}
    assert all(ok for ok, _ in freshness(store).values())


def test_a_held_poll_that_the_next_one_contradicts_changes_nothing(store):
    store.record_poll(inventory(at(0), TEN), at(0), at(0), suspect_share=0.5)
    assert store.record_poll(inventory(at(1)), at(1), at(1), suspect_share=0.5).held
    back = store.record_poll(inventory(at(2), TEN), at(2), at(2), suspect_share=0.5)
    assert back.held is None and (back.closed, back.opened, back.unchanged) == (0, 0, 10)
    assert open_ids(store) == {i.id for i in TEN}
    spans = store.spans(at(-1), at(3))
    assert len(spans) == 10 and spans["end"].isna().all()  # one unbroken span each


def test_small_changes_and_failed_regions_are_not_suspect(store):
    store.record_poll(inventory(at(0), TEN), at(0), at(0), suspect_share=0.5)
    half = store.record_poll(inventory(at(1), TEN[5:]), at(1), at(1), suspect_share=0.5)
    assert half.held is None and half.gone == 5  # 50% is not more than 50%
    # A region that failed closes nothing, so it counts for nothing.
    down = inventory(at(2), TEN[8:], errors=[("us-east-1", "throttled")])
    assert store.record_poll(down, at(2), at(2), suspect_share=0.5).gone == 0


def test_without_a_share_the_store_writes_what_it_is_given(store):
    store.record_poll(inventory(at(0), TEN), at(0), at(0))
    assert store.record_poll(inventory(at(1)), at(1), at(1)).gone == 10


def test_the_hold_is_found_again_after_a_restart(store_url):  # noqa: F811
    with Store.open(store_url) as first:
        first.record_poll(inventory(at(0), TEN), at(0), at(0), suspect_share=0.5)
        assert first.record_poll(inventory(at(1)), at(1), at(1), suspect_share=0.5).held
    with Store.open(store_url) as second:  # a new collector: no cache, the records tell
        assert second.record_poll(inventory(at(2)), at(2), at(2), suspect_share=0.5).gone == 10


def test_the_share_is_a_poll_setting_with_bounds():
    assert parse_config("").poll.suspect_share == 0.5
    assert parse_config("[poll]\nsuspect_share = 0.25\n").poll.suspect_share == 0.25
    for bad in ("0", "1.5", "-0.1", "nan"):
        with pytest.raises(ConfigError, match="suspect_share.*above 0 and at most 1"):
            parse_config(f"[poll]\nsuspect_share = {bad}\n")
