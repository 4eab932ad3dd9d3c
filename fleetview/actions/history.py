"""What history says about a group: its rollback target, its readiness, its rollout pace."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from fleetview.actions import locks, quarantine
from fleetview.domain.backfill import OBSERVED
from fleetview.domain.errors import FleetViewError
from fleetview.store import queries
from fleetview.store.times import to_us

LOOKBACK = timedelta(days=90)
_LIVE = ("pending", "running")


@dataclass(frozen=True)
class Stretch:
    """A time the group's live instances all ran one version."""

    version: str
    image_id: str | None
    start: pd.Timestamp
    end: pd.Timestamp | None  # None: still so


def full_stretches(spans: pd.DataFrame) -> list[Stretch]:
    """Sweep the group's spans in time order; where every live instance runs one version, the
    group ran that version in full."""
    live = spans[spans["state"].isin(_LIVE)]
    if live.empty:
        return []
    # Plain lists and integer nanoseconds: iterating pandas rows costs seconds on a large
    # group, and the plan and the readiness table both wait on this sweep.
    n = len(live)
    versions = live["version"].to_numpy(dtype=object).tolist()
    image_ids = live["image_id"].to_numpy(dtype=object).tolist()
    starts, ends = _ns(live["start"]), _ns(live["end"])
    has_end = ~live["end"].isna().to_numpy()
    rows = np.arange(n)
    times = np.concatenate([starts, ends[has_end]])
    row_of = np.concatenate([rows, rows[has_end]])
    ending = np.concatenate([np.zeros(n, dtype=np.int8), np.ones(int(has_end.sum()), np.int8)])
    # Events at one instant in the order of the rows, a row's start before its end.
    order = np.lexsort((ending, row_of, times))
    times_l, rows_l, ending_l = (a[order].tolist() for a in (times, row_of, ending))
    counts: dict[str, int] = {}
    running: set = set()
    images: dict[str, str | None] = {}
    stretches: list[Stretch] = []
    current: tuple[str, int] | None = None
    i, total = 0, len(times_l)
    while i < total:
        at = times_l[i]
        while i < total and times_l[i] == at:
            version, row = versions[rows_l[i]], rows_l[i]
            if ending_l[i]:
                counts[version] = counts.get(version, 0) - 1
            else:
                counts[version] = counts.get(version, 0) + 1
                images[version] = image_ids[row]
            if counts[version] > 0:
                running.add(version)
            else:
                running.discard(version)
            i += 1
        whole = next(iter(running)) if len(running) == 1 else None
        if current and current[0] != whole:
            stretches.append(Stretch(current[0], images.get(current[0]), _instant(current[1]),
                                     _instant(at)))
            current = None
        if whole and current is None:
            current = (whole, at)
    if current:
        stretches.append(Stretch(current[0], images.get(current[0]), _instant(current[1]),
                                 None))
    return stretches


def _ns(column: pd.Series):
    """Integer nanoseconds since the epoch (NaT: the smallest int64)."""
    return pd.to_datetime(column, utc=True).astype("datetime64[ns, UTC]").array.asi8


def _instant(ns: int) -> pd.Timestamp:
    return pd.Timestamp(ns, unit="ns", tz="UTC")


def rollback_target(spans: pd.DataFrame, current: str | None,
                    bad: Collection[str] = (),
                    stretches: list[Stretch] | None = None) -> Stretch | None:
    """The last version the group ran in full, other than its current one and the versions
    marked bad for it (`stretches`: full_stretches(spans), when the caller has them)."""
    stretches = full_stretches(spans) if stretches is None else stretches
    for stretch in reversed(stretches):
        if stretch.version != current and stretch.version not in bad:
            return stretch
    return None


def rollout_durations(spans: pd.DataFrame, group_spans: pd.DataFrame,
                      stretches: list[Stretch] | None = None) -> list[float]:
    """Seconds from each change of the desired version until the group ran it in full."""
    stretches = full_stretches(spans) if stretches is None else stretches
    durations = []
    previous = None
    for row in group_spans.sort_values("start").itertuples(index=False):
        if previous is not None and row.desired_version != previous:
            done = next((s.start for s in stretches
                         if s.version == row.desired_version and s.start >= row.start), None)
            if done is not None:
                durations.append((done - row.start).total_seconds())
        previous = row.desired_version
    return durations


@dataclass(frozen=True)
class Readiness:
    """Whether a group can be rolled back now, and to what; `why` says what stands in the way,
    `note` what the rollback will do besides (stop the update under way); `skipped` the
    versions passed over because they are marked bad."""

    ready: bool
    target: Stretch | None
    why: str = ""
    estimate_s: float | None = None
    note: str = ""
    skipped: tuple[str, ...] = ()
    inferred: str = ""  # the records the target's history was rebuilt from, if it was

    def describe(self) -> str:
        """One line: "ready: back to 2.3.0 (will stop the update under way)" or why not."""
        if not self.ready:
            return f"not ready: {self.why}"
        text = f"ready: back to {self.target.version}" if self.target else "ready"
        return f"{text} ({self.note})" if self.note else text


def group_history(store, now: datetime, scopes: Sequence[str] | None = None,
                  regions: Sequence[str] | None = None,
                  groups: Sequence[str] | None = None) -> pd.DataFrame:
    """The grouped instances' spans over the lookback, as readiness sweeps them."""
    with store.reading() as conn:
        return queries.group_history(conn, to_us(now - LOOKBACK), to_us(now), scopes, regions,
                                     groups)


_READ = object()  # readiness reads the group's lock itself


def readiness(store, scope_config, scope: str, region: str, group: str,
              now: datetime | None = None, images: pd.DataFrame | None = None,
              bad: Collection[str] | None = None, spans: pd.DataFrame | None = None,
              gspans: pd.DataFrame | None = None, lock: object = _READ) -> Readiness:
    """`images`: store.images(), `bad` the group's bad versions, `spans` its group_history,
    `gspans` its group_spans and `lock` its locks.current, when the caller read them already
    (the plan, or the table of every group, which reads each once for all)."""
    now = now or datetime.now(UTC)
    if spans is None:
        spans = group_history(store, now, scopes=[scope], regions=[region], groups=[group])
    if gspans is None:
        gspans = store.group_spans(now - LOOKBACK, now, scopes=[scope], regions=[region],
                                   groups=[group])
    alive = gspans[gspans["end"].isna()]
    current = alive["desired_version"].iloc[-1] if not alive.empty else None
    updating = bool(alive["updating"].iloc[-1]) if not alive.empty else False
    if bad is None:
        bad = set(quarantine.bad_for(store, scope, region, group))
    # During a rollout the group wants what it rolls out (an AWS refresh's DesiredConfiguration
    # as a MIG's new template), so the last other version it ran in full is what it replaces.
    stretches = full_stretches(spans)  # once: the sweep is the costly part
    target = rollback_target(spans, current, bad, stretches)
    skipped = tuple(sorted({s.version for s in stretches} & set(bad)))
    durations = rollout_durations(spans, gspans, stretches)
    estimate = float(pd.Series(durations).median()) if durations else None
    reasons = []
    if scope_config is None or not getattr(scope_config, "actions", False):
        reasons.append(f"scope {scope} is read-only (set actions = true in the config)")
    if target is None:
        reasons.append("history shows no earlier version that the group ran in full")
    else:
        images = store.images() if images is None else images
        mine = images[(images["scope"] == scope) & (images["image_id"] == target.image_id)]
        if not mine.empty and bool(mine["gone"].iloc[0]):
            reasons.append(f"the image of {target.version} ({target.image_id}) no longer "
                           "exists")
    if lock is _READ:
        lock = locks.current(store, scope, region, group)
    if lock is not None:
        reasons.append(lock.describe())
    # A rollout in flight is what a rollback is most often for: the plan stops it first.
    notes = ["will stop the update under way"] if updating else []
    inferred = inferred_sources(spans, target)
    if inferred:
        notes.append(f"{target.version} as the group's last full version comes from history "
                     f"rebuilt from cloud records ({inferred}), not from polls FleetView watched")
    return Readiness(not reasons, target, "; ".join(reasons), estimate, "; ".join(notes),
                     skipped, inferred)


def readiness_table(store, scope_configs: Mapping[str, object],
                    keys: Iterable[tuple[str, str, str]],
                    now: datetime | None = None) -> dict[tuple, Readiness]:
    """Readiness of every (scope, region, group) in `keys`, reading the store once for all:
    one query per group made the table of a large fleet take seconds. `scope_configs`: scope
    name -> its config (a scope missing is read-only)."""
    now = now or datetime.now(UTC)
    keys = list(dict.fromkeys(tuple(k) for k in keys))
    if not keys:
        return {}
    scopes = sorted({k[0] for k in keys})
    try:
        spans = group_history(store, now, scopes=scopes)
        gspans = store.group_spans(now - LOOKBACK, now, scopes=scopes)
        images = store.images()
        every = quarantine.marks(store)
        held = {(lk.scope, lk.region, lk.group): lk for lk in locks.held(store)}
    except FleetViewError as exc:
        return {k: Readiness(False, None, str(exc)) for k in keys}
    by_spans = {k: g for k, g in spans.groupby(["scope", "region", "group"], sort=False)}
    by_gspans = {k: g for k, g in gspans.groupby(["scope", "region", "group"], sort=False)}
    out = {}
    for key in keys:
        scope, region, group = key
        try:
            out[key] = readiness(
                store, scope_configs.get(scope), scope, region, group, now=now, images=images,
                bad=set(quarantine.bad_for(store, scope, region, group, every)),
                spans=by_spans.get(key, spans.iloc[0:0]),
                gspans=by_gspans.get(key, gspans.iloc[0:0]), lock=held.get(key))
        except FleetViewError as exc:
            out[key] = Readiness(False, None, str(exc))
    return out


def inferred_sources(spans: pd.DataFrame, target: Stretch | None) -> str:
    """The records (CloudTrail, Auto Scaling activities, ...) behind the spans that make
    `target` a time the group ran in full, where a backfill inferred them; "" when polls
    saw it."""
    if target is None or spans.empty or "source" not in spans:
        return ""
    end = target.end if target.end is not None else pd.Timestamp.max.tz_localize("UTC")
    mine = spans[(spans["version"] == target.version) & (spans["start"] < end)
                 & (spans["end"].isna() | (spans["end"] > target.start))
                 & (spans["source"] != OBSERVED)]
    found = sorted({part.strip() for text in mine["source"].dropna()
                    for part in str(text).split(",") if part.strip()})
    return ", ".join(found)
