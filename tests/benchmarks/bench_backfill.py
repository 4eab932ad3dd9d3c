"""AWS backfill on moto behind the local layer: a month of rollouts of 1,000 instances read
back from CloudTrail, Auto Scaling activities and templates, and written to a store.

Figures: wall time against the floor CloudTrail's rate limit sets (its LookupEvents calls at
2 a second), API calls per API, and the peak request rate per API in any one second (the
layer's record of what it was sent)."""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from fleetview.domain.model import Scope
from fleetview.domain.versions import VersionRules
from fleetview.providers.aws.provider import AwsProvider
from fleetview.providers.aws.scope import AwsScopeConfig
from fleetview.sim import aws_trail
from fleetview.sim.aws_past import play_past
from fleetview.sim.moto_server import MotoServer
from fleetview.store import Store
from tests.benchmarks import Figure

REGION = "us-east-1"
# groups, instances a group: 10 x 100 = 1,000 instances (each replaced at every rollout)
SIZES = {"tiny": (1, 2), "full": (10, 100)}
# AWS's documented limits, requests a second per account and region.
LIMITS = {"LookupEvents": 2.0}


def run(size: str) -> list[Figure]:
    groups, per_group = SIZES[size]
    with MotoServer.start(refresh=True) as server, tempfile.TemporaryDirectory() as tmp:
        past = play_past(server.url, REGION, groups=[f"g{n:02d}" for n in range(groups)],
                         size=per_group)
        live = sum(1 for i in past.instances if i.end is None)
        provider = AwsProvider(AwsScopeConfig(name="bench", regions=(REGION,),
                                              endpoint_url=server.url), VersionRules())
        try:
            t0 = time.time()
            started = time.perf_counter()
            found = provider.history(past.since, past.now)
            read_s = time.perf_counter() - started
        finally:
            provider.close()
        calls = [c for c in aws_trail.calls(server.url) if c["at"] >= t0]
        per_api = Counter(c["action"] for c in calls)
        with Store.open(f"sqlite:///{Path(tmp) / 'store.db'}") as store:
            started = time.perf_counter()
            summary = store.record_backfill(Scope("aws", "bench", "123456789012", (REGION,)),
                                            found, past.since, datetime.now(UTC),
                                            VersionRules().version_of)
            write_s = time.perf_counter() - started
    floor = per_api["LookupEvents"] / LIMITS["LookupEvents"]
    figures = [
        Figure(f"backfill of {live} live instances, {len(past.instances)} over 30 days: read",
               read_s, "s", floor, "LookupEvents calls at CloudTrail's 2/s"),
        Figure("backfill: write to SQLite", write_s, "s",
               target=f"{summary.spans} instance spans, {summary.group_spans} group spans, "
                      f"{summary.gaps} gaps"),
        Figure("backfill: API calls", float(found.api_calls), "calls"),
    ]
    for action, count in sorted(per_api.items()):
        peak = aws_trail.peak_rate(calls, action)
        limit = LIMITS.get(action)
        figures.append(Figure(f"backfill: {action} calls", float(count), "calls"))
        figures.append(Figure(f"backfill: {action} peak rate", float(peak), "requests/s",
                              target=f"<= {limit:g}/s (AWS's limit)" if limit else None))
    return figures
