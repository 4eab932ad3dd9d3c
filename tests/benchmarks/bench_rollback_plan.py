"""Planning a rollback on the demo fleet: prepare_rollback and the readiness table, beside a
plain spans read of the same group and the table read one group at a time."""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime

from fleetview.actions import history
from fleetview.actions.prepare import prepare_rollback
from fleetview.providers import make_provider
from fleetview.sim import demo_story
from fleetview.sim.demo import start_demo
from fleetview.store import Store
from tests.benchmarks import Figure

# tiny: the small demo (~1,100 instances); full: the large one (~11,000, four scopes).
SIZES = {"tiny": ("small", 1), "full": ("large", 3)}


def _timed(fn, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


class _Polled:
    """The scope's provider with its poll done once: what prepare_rollback does beside the
    poll, timed alone (the poll's own time varies with the load of the machine)."""

    def __init__(self, provider, inventory):
        self._provider, self._inventory = provider, inventory

    def poll(self):
        return self._inventory

    def __getattr__(self, name):
        return getattr(self._provider, name)


def _table_per_group(store, config, keys) -> dict:
    """The readiness table as it was read before: one set of queries per group."""
    images = store.images()
    return {k: history.readiness(store, config.scope(k[0]), *k, images=images) for k in keys}


def run(size: str) -> list[Figure]:
    demo_size, repeats = SIZES[size]
    demo = start_demo(demo_size)
    try:
        config = demo.config
        store = Store.open(config.store.url)
        try:
            return _measure(config, store, repeats)
        finally:
            store.close()
    finally:
        demo.stop()


def _measure(config, store, repeats: int) -> list[Figure]:
    scope = demo_story.GCP_SCOPE  # the ten thousand instances
    groups = store.groups_at(None)
    mine = groups[groups["scope"] == scope]
    now = datetime.now(UTC)
    spans = store.spans(now - history.LOOKBACK, now, scopes=[scope])
    # The group with the most history: the slowest plan.
    region, group = spans.groupby(["region", "group"]).size().idxmax()
    provider = make_provider(config.scope(scope), config.versions)

    read_s, _ = _timed(lambda: store.spans(now - history.LOOKBACK, now, scopes=[scope],
                                           regions=[region], groups=[group]), repeats)
    poll_s, inventory = _timed(provider.poll, repeats)
    ready_s, _ = _timed(lambda: history.readiness(store, config.scope(scope), scope, region,
                                                  group), repeats)
    plan_s, prepared = _timed(lambda: prepare_rollback(config, store, scope, region, group,
                                                       provider=provider), repeats)
    if prepared.plan is None:
        raise RuntimeError(f"no plan for {group}: {prepared.refusal}")
    polled = _Polled(provider, inventory)
    rest_s, _ = _timed(lambda: prepare_rollback(config, store, scope, region, group,
                                                provider=polled), repeats)

    keys = list(zip(groups["scope"], groups["region"], groups["group"], strict=True))
    configs = {k[0]: config.scope(k[0]) for k in keys}
    table_s, table = _timed(lambda: history.readiness_table(store, configs, keys), repeats)
    per_group_s, before = _timed(lambda: _table_per_group(store, config, keys), repeats)
    if {k: r.describe() for k, r in table.items()} != {k: r.describe()
                                                       for k, r in before.items()}:
        raise RuntimeError("the one-pass readiness table differs from the per-group one")

    rows = len(store.spans(now - history.LOOKBACK, now, scopes=[scope], regions=[region],
                           groups=[group]))
    label = f"{len(inventory.instances)}_instances_{rows}_group_spans"
    return [
        Figure(f"prepare_rollback_s_{label}", plan_s, "s", baseline=read_s,
               baseline_name="store.spans of the group"),
        Figure("prepare_rollback_scope_poll_s", poll_s, "s", baseline=plan_s,
               baseline_name="the whole prepare_rollback"),
        Figure("prepare_rollback_besides_poll_s", rest_s, "s", baseline=read_s,
               baseline_name="store.spans of the group"),
        Figure("readiness_one_group_s", ready_s, "s", baseline=read_s,
               baseline_name="store.spans of the group"),
        Figure(f"readiness_table_s_{len(keys)}_groups_{len(mine)}_in_{scope}", table_s, "s",
               baseline=per_group_s, baseline_name="one readiness read per group"),
    ]
