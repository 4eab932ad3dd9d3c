"""Delivery metrics after DORA, measured from what FleetView observed (README: "Reports")."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fleetview.reports.journal_rows import ActionRow
from fleetview.reports.rollouts import COMPLETED, ROLLED_BACK, Rollout
from fleetview.store.times import from_us, to_us

WEEK_US = 7 * 86_400_000_000


@dataclass(frozen=True)
class Metrics:
    """The four figures and what they were computed from (None: nothing to measure).

    deployments: rollouts (not rollbacks) started in the range that completed.
    changes: rollouts (not rollbacks) started in the range whose outcome is known (completed
    or rolled back); failed: those rolled back within the failure window."""

    days: float
    rollouts: int
    deployments: int
    deployments_per_week: float
    lead_time_median_s: float | None
    lead_time_measured: int
    changes: int
    failed: int
    change_failure_rate: float | None
    time_to_restore_median_s: float | None
    restores_measured: int
    rollback_recovery_median_s: float | None
    rollbacks_measured: int
    stalled: int
    paused: int


def _median(values: list[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def compute(rollouts: list[Rollout], actions: list[ActionRow], t0: int, t1: int) -> Metrics:
    forward = [r for r in rollouts if r.kind == "rollout"]
    done = [r for r in forward if r.status == COMPLETED]
    known = [r for r in forward if r.status in (COMPLETED, ROLLED_BACK) or r.rolled_back]
    failed = [r for r in known if r.rolled_back]
    leads = [r.lead_time_s for r in done if r.lead_time_s is not None]
    restores = [r.time_to_restore_s for r in failed if r.time_to_restore_s is not None]
    recoveries = [a.time_to_recover_s for a in actions
                  if a.kind == "rollback" and a.time_to_recover_s is not None]
    days = (t1 - t0) / 86_400_000_000
    return Metrics(
        days=days, rollouts=len(forward), deployments=len(done),
        deployments_per_week=len(done) / (days / 7) if days > 0 else 0.0,
        lead_time_median_s=_median(leads), lead_time_measured=len(leads),
        changes=len(known), failed=len(failed),
        change_failure_rate=len(failed) / len(known) if known else None,
        time_to_restore_median_s=_median(restores), restores_measured=len(restores),
        rollback_recovery_median_s=_median(recoveries), rollbacks_measured=len(recoveries),
        stalled=sum(r.stalled for r in rollouts), paused=sum(r.paused for r in rollouts))


@dataclass(frozen=True)
class Week:
    """Rollouts started in one week (Monday 00:00 UTC on), clipped to the range."""

    start: int
    rollouts: int
    rolled_back: int
    rollbacks: int


def weeks(rollouts: list[Rollout], t0: int, t1: int) -> list[Week]:
    first = from_us(t0)
    monday = datetime(first.year, first.month, first.day, tzinfo=UTC) - timedelta(
        days=first.weekday())
    starts = []
    at = to_us(monday)
    while at < t1:
        starts.append(at)
        at += WEEK_US
    out = []
    for start in starts:
        inside = [r for r in rollouts if start <= r.start < start + WEEK_US]
        out.append(Week(start, sum(r.kind == "rollout" for r in inside),
                        sum(r.kind == "rollout" and r.rolled_back for r in inside),
                        sum(r.kind == "rollback" for r in inside)))
    return out
