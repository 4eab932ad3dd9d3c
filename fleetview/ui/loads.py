"""What the window reads from the store: plain functions, run on the task runner's threads.

Each returns what its widget shows, already worked out (tree nodes, formatted table cells,
timeline arrays), so the GUI thread only swaps it in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd

from fleetview.actions import quarantine
from fleetview.ui.fleet_filter import FleetFilter
from fleetview.ui.fleet_table import prepare_rows
from fleetview.ui.scope_tree import build_nodes
from fleetview.ui.state import BAD_COLUMN, FleetFrame, bad_reasons
from fleetview.ui.timeline_data import TimelineData

# The fleet as of a time, with what the tree and the table show already worked out.
FleetSnapshot = FleetFrame


def load_fleet(store, at: datetime | None, flt: FleetFilter) -> FleetSnapshot:
    """The fleet as of `at`, each instance flagged when its version is marked bad for its
    group (BAD_COLUMN: why), with the marks it was flagged by."""
    fleet, groups = store.fleet_at(at), store.groups_at(at)
    marks = tuple(quarantine.marks(store))
    fleet = fleet.assign(**{BAD_COLUMN: bad_reasons(fleet, marks)})
    versions = fleet["version"].astype(object).where(fleet["version"].notna(), None) \
        if len(fleet) else pd.Series(dtype=object)
    return FleetSnapshot(fleet, groups, build_nodes(fleet, groups), prepare_rows(fleet, flt),
                         versions.value_counts(dropna=False).to_dict(), marks)


@dataclass(frozen=True)
class History:
    timeline: TimelineData
    versions: list[str]  # every version the store knows, for stable colours


def load_history(store, now: datetime, days: int) -> History:
    """The spans of the last `days`, already in the timeline's arrays (built off the GUI
    thread: at 100,000 spans that takes longer than a frame)."""
    spans = store.spans(now - timedelta(days=days), now)
    images = store.images()
    versions = {v for v in images["version"] if isinstance(v, str)} if len(images) else set()
    timeline = TimelineData.from_spans(spans)
    versions |= {v for v in timeline.versions if v is not None}
    return History(timeline, sorted(versions))


def load_freshness(store) -> pd.DataFrame:
    return store.freshness()


@dataclass(frozen=True)
class RolloutShare:
    """A group's version share around its latest rollout, with what the group says now."""

    share: pd.DataFrame
    desired: str | None  # the group's desired version now, read with the share
    target_size: int | None  # how many the group needs: surge instances are not counted
    since: datetime | None  # when the group started wanting `desired` (None: before history)
    # What the group's poll said of the rollout under way ("the group's launch template says
    # 2.3.0 until the instance refresh InProgress completes"), shown under the title.
    note: str = ""


def load_rollout(store, scope: str, region: str, group: str, now: datetime,
                 days: int) -> RolloutShare:
    """The rollout of a group: its desired version and target read now (not from a fleet
    frame that may be older), when it began wanting that version, and the share around it."""
    spans = store.group_spans(now - timedelta(days=days), now, [scope], [region], [group])
    desired = size = since = None
    note = ""
    if len(spans):
        spans = spans.sort_values("start")
        last = spans.iloc[-1]
        desired = None if pd.isna(last["desired_version"]) else str(last["desired_version"])
        size = None if pd.isna(last["target_size"]) else int(last["target_size"])
        since = _run_start(spans, spans["desired_version"].astype(object).where(
            spans["desired_version"].notna(), None).to_numpy(), desired)
        if desired is None:
            since = None
        # Both clouds' polls give a rollout's version as desired from its start (an AWS
        # refresh's DesiredConfiguration, a MIG's new template): the target is read as it is.
        if bool(last["updating"]) and isinstance(last.get("notes"), str):
            note = "; ".join(line for line in last["notes"].splitlines()
                             if "until the instance refresh" in line)
    share = load_share(store, scope, region, group, desired, now, days, since)
    return RolloutShare(share, desired, size, since, note)


def _run_start(spans: pd.DataFrame, values, value) -> datetime | None:
    """When the last run of spans with `value` began (None: every span has it)."""
    other = [n for n, v in enumerate(values) if v != value]
    first = other[-1] + 1 if other else None
    if first is None or first >= len(spans):
        return None
    return pd.Timestamp(spans["start"].iat[first]).to_pydatetime()


def load_share(store, scope: str, region: str, group: str, desired: str | None,
               now: datetime, days: int, since: datetime | None = None) -> pd.DataFrame:
    """A group's version share around its latest rollout, at about 200 steps.

    A coarse pass over the whole history finds when the desired version arrived; the fine
    pass then starts a little before that, so a rollout of hours is not a sliver of a month.
    """
    t0 = now - timedelta(days=days)
    coarse = store.version_share(scope, region, group, t0, now, timedelta(days=days) / 300)
    start = t0
    if len(coarse):
        counts = coarse.sum(axis=1)
        start = max(t0, pd.Timestamp(counts[counts > 0].index.min()).to_pydatetime()) \
            if (counts > 0).any() else t0
        if desired in coarse.columns:
            without = coarse.index[coarse[desired].fillna(0).to_numpy() == 0]
            if len(without):
                arrived = pd.Timestamp(without.max()).to_pydatetime()
                start = max(start, arrived - max((now - arrived) * 0.6, timedelta(hours=1)))
    if since is not None:
        # The rollout's own start is known: the share covers it and a little before, so a
        # three-minute rollout fills the chart instead of three pixels of an hour.
        start = max(t0, since - max((now - since) * 0.25, timedelta(minutes=2)))
        span = max(now - start, timedelta(minutes=5))
    else:
        span = max(now - start, timedelta(hours=1))
    step = max(span / 200, timedelta(seconds=5))
    return store.version_share(scope, region, group, now - span, now, step)
