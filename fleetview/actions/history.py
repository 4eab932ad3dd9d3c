"""What history says about a group: its rollback target, its readiness, its rollout pace."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd

from fleetview.actions import locks, quarantine
from fleetview.domain.backfill import OBSERVED

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
    events: dict[pd.Timestamp, list[tuple[str, str | None, int]]] = {}
    for row in live.itertuples(index=False):
        events.setdefault(row.start, []).append((row.version, row.image_id, +1))
        if not pd.isna(row.end):
            events.setdefault(row.end, []).append((row.version, row.image_id, -1))
    counts: dict[str, int] = {}
    images: dict[str, str | None] = {}
    stretches: list[Stretch] = []
    current: tuple[str, pd.Timestamp] | None = None
    for at in sorted(events):
        for version, image_id, delta in events[at]:
            counts[version] = counts.get(version, 0) + delta
            if delta > 0:
                images[version] = image_id
        running = [v for v, n in counts.items() if n > 0]
        whole = running[0] if len(running) == 1 else None
        if current and current[0] != whole:
            stretches.append(Stretch(current[0], images.get(current[0]), current[1], at))
            current = None
        if whole and current is None:
            current = (whole, at)
    if current:
        stretches.append(Stretch(current[0], images.get(current[0]), current[1], None))
    return stretches


def rollback_target(spans: pd.DataFrame, current: str | None,
                    bad: Collection[str] = ()) -> Stretch | None:
    """The last version the group ran in full, other than its current one and the versions
    marked bad for it."""
    for stretch in reversed(full_stretches(spans)):
        if stretch.version != current and stretch.version not in bad:
            return stretch
    return None


def rollout_durations(spans: pd.DataFrame, group_spans: pd.DataFrame) -> list[float]:
    """Seconds from each change of the desired version until the group ran it in full."""
    stretches = full_stretches(spans)
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


def readiness(store, scope_config, scope: str, region: str, group: str,
              now: datetime | None = None, images: pd.DataFrame | None = None,
              bad: Collection[str] | None = None) -> Readiness:
    """`images`: store.images(), and `bad` the group's bad versions, when the caller checks
    many groups and read them once."""
    now = now or datetime.now(UTC)
    spans = store.spans(now - LOOKBACK, now, scopes=[scope], regions=[region], groups=[group])
    gspans = store.group_spans(now - LOOKBACK, now, scopes=[scope], regions=[region],
                               groups=[group])
    alive = gspans[gspans["end"].isna()]
    current = alive["desired_version"].iloc[-1] if not alive.empty else None
    updating = bool(alive["updating"].iloc[-1]) if not alive.empty else False
    if bad is None:
        bad = set(quarantine.bad_for(store, scope, region, group))
    # During a rollout the target is the version the group last ran in full, even where the
    # group still names it as desired (an AWS refresh with a DesiredConfiguration moves the
    # group only when it succeeds): that is what the rollout is replacing.
    target = rollback_target(spans, None if updating else current, bad)
    skipped = tuple(sorted({s.version for s in full_stretches(spans)} & set(bad)))
    durations = rollout_durations(spans, gspans)
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
