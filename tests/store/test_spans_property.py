"""Property: replaying any sequence of polls gives spans consistent with every observation,
and a failed poll (whole scope or one region) never closes a span."""

from __future__ import annotations

import itertools

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleetview.domain.model import State
from fleetview.store import Store
from tests.helpers.builders import at, instance, inventory, scope

_runs = itertools.count()

REGIONS = ("r1", "r2")
HOME = {f"i{n}": REGIONS[n % 2] for n in range(6)}  # an instance lives in one region
STATES = (State.RUNNING, State.STOPPED, State.TERMINATED)

observation = st.tuples(st.sampled_from(["1.0", "1.1", "2.0"]), st.sampled_from(STATES))
region_result = st.one_of(
    st.just("error"),
    st.just("absent"),  # the provider said nothing about the region: no closing there
    st.dictionaries(st.sampled_from(sorted(HOME)), observation, max_size=6),
)
step = st.one_of(
    st.just(("scope_failed",)),
    st.just(("restart",)),
    st.tuples(st.just("poll"), st.fixed_dictionaries({r: region_result for r in REGIONS})),
)


def _alive(frame: pd.DataFrame, when) -> dict[str, tuple]:
    t = pd.Timestamp(when)
    alive = frame[(frame["start"] <= t) & (frame["end"].isna() | (frame["end"] > t))]
    assert not alive["instance_id"].duplicated().any(), "overlapping spans of one instance"
    return {r.instance_id: (r.version, r.state) for r in alive.itertuples()}


# One database per test (SQLite and PostgreSQL); each example writes a scope of its own, so
# examples never see each other's spans.
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=1, max_size=12))
def test_replay_matches_every_observation(store_url, steps):
    sc = scope(f"run-{next(_runs)}", regions=REGIONS)
    store = Store.open(store_url)
    model: dict[str, tuple] = {}
    expected: list[tuple[int, dict]] = []
    try:
        for k, item in enumerate(steps):
            if item[0] == "restart":
                store.close()
                store = Store.open(store_url)
                continue
            if item[0] == "scope_failed":
                store.record_failed_poll(sc.name, "aws", None, at(k), at(k), "denied")
                expected.append((k, dict(model)))
                continue
            results = item[1]
            seen, errors, ok = [], [], []
            for region, result in results.items():
                if result == "error":
                    errors.append((region, "throttled"))
                elif result == "absent":
                    continue
                else:
                    ok.append(region)
                    for iid, (version, state) in result.items():
                        if HOME[iid] == region:
                            seen.append(instance(iid, version, region=region, state=state,
                                                     scope_name=sc.name))
            # The model: what a complete region shows is the truth there; the rest lasts.
            for region in ok:
                for iid in [i for i in model if HOME[i] == region]:
                    del model[iid]
            for inst in seen:
                model[inst.id] = (inst.version, str(inst.state))
            inv = inventory(at(k), seen, ok=tuple(ok), errors=errors, sc=sc)
            store.record_poll(inv, at(k), at(k))
            expected.append((k, dict(model)))
        frame = store.spans(at(-1), at(len(steps) + 1), scopes=[sc.name])
    finally:
        store.close()
    for k, state in expected:
        assert _alive(frame, at(k)) == state, f"after step {k}: {steps[k]}"
    # Spans change only when an observation does: no two touching spans say the same thing.
    for _iid, rows in frame.groupby("instance_id"):
        rows = rows.sort_values("start")
        for prev, nxt in zip(rows.itertuples(), rows.iloc[1:].itertuples(), strict=False):
            if prev.end == nxt.start:
                assert (prev.version, prev.state) != (nxt.version, nxt.state)
    # A whole-scope failure closes nothing; a region error closes nothing in that region.
    for k, item in enumerate(steps):
        if item[0] == "scope_failed":
            assert not (frame["end"] == pd.Timestamp(at(k))).any()
        elif item[0] == "poll":
            for region, result in item[1].items():
                if result in ("error", "absent"):
                    ended = frame[(frame["end"] == pd.Timestamp(at(k)))
                                  & (frame["region"] == region)]
                    assert ended.empty, f"step {k} closed spans in {region} ({result})"
