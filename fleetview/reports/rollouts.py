"""Rollouts read from history: each change of the version a group runs in full.

A rollout of a group from A to B starts when the group stops running A in full (its first
instance of another version appears) or, if earlier, when the group's desired version turns
to B; it ends when every live instance of the group runs B. It was rolled back when the
group went back to A before that, or when a rollback of the group was confirmed (journal) or
observed (a rollout back to A) within the failure window after it started.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from fleetview.reports.journal_rows import ActionRow
from fleetview.reports.lanes import GroupKey, GroupSpans, Segment, to_us

COMPLETED, IN_PROGRESS, ROLLED_BACK = "completed", "in progress", "rolled back"


@dataclass(frozen=True)
class Rollout:
    """One rollout. Instants are integer microseconds; `end` None: not completed.

    `kind` is "rollout", or "rollback" for a rollout back to an earlier version (one a
    rollback action asked for, or a return to the version a rollout within the failure
    window left). `rolled_back`: a rollback followed within the failure window (the change
    failed); `restored`: when the group ran a version other than this one's target in full
    again after that. `longest_wait_s`: the longest time without a new instance on the
    target; `stalled` when it reached the stall threshold. `paused`: the cloud stopped
    reporting the update in progress while it was not complete."""

    scope: str
    region: str
    group: str
    from_version: str
    to_version: str
    kind: str
    status: str
    start: int
    end: int | None
    instances: int
    group_size: int
    longest_wait_s: float
    stalled: bool
    paused: bool
    rolled_back: bool = False
    rollback_by: str | None = None
    restored: int | None = None
    image_id: str | None = None
    image_created: int | None = None

    @property
    def key(self) -> GroupKey:
        return (self.scope, self.region, self.group)

    @property
    def duration_s(self) -> float | None:
        return None if self.end is None else (self.end - self.start) / 1e6

    @property
    def lead_time_s(self) -> float | None:
        """Image creation to the group running it in full (a rollback has none: its image
        is an old one)."""
        if self.kind != "rollout" or self.end is None or self.image_created is None:
            return None
        return (self.end - self.image_created) / 1e6

    @property
    def time_to_restore_s(self) -> float | None:
        if not self.rolled_back or self.restored is None:
            return None
        return (self.restored - self.start) / 1e6


@dataclass(frozen=True)
class DesiredSpan:
    version: str | None
    updating: bool
    start: int
    end: int | None


def desired_spans(group_spans: pd.DataFrame) -> dict[GroupKey, list[DesiredSpan]]:
    """Each group's desired version over time, in time order."""
    if group_spans.empty:
        return {}
    starts, ends = to_us(group_spans["start"]), to_us(group_spans["end"])
    open_end = np.iinfo(np.int64).max
    out: dict[GroupKey, list[DesiredSpan]] = {}
    for scope, region, group, version, updating, start, end in zip(
            group_spans["scope"].astype(object), group_spans["region"].astype(object),
            group_spans["group"].astype(object), group_spans["desired_version"].astype(object),
            group_spans["updating"], starts.tolist(), ends.tolist(), strict=True):
        out.setdefault((scope, region, group), []).append(DesiredSpan(
            version if isinstance(version, str) else None, bool(updating), start,
            None if end == open_end else end))
    for spans in out.values():
        spans.sort(key=lambda s: s.start)
    return out


def _desired_during(desired: list[DesiredSpan], t0: int, t1: int | None) -> list[DesiredSpan]:
    return [d for d in desired
            if (t1 is None or d.start < t1) and (d.end is None or d.end > t0)]


def _target_in_gap(spans: GroupSpans, desired: list[DesiredSpan], left: str, t0: int,
                   t1: int | None) -> str | None:
    """What a rollout that never completed was going to: the desired version the group named
    during it, else the version most instances started on meanwhile."""
    named = [d.version for d in _desired_during(desired, t0, t1)
             if d.version is not None and d.version != left]
    if named:
        return named[-1]
    seen = Counter(spans.versions_started(t0, t1, left))
    return seen.most_common(1)[0][0] if seen else None


def _start(desired: list[DesiredSpan], target: str, after: int, gap_start: int) -> int:
    """The earlier of the gap's start and the group naming the target as desired (since the
    stretch before the rollout began)."""
    named = [d.start for d in desired
             if d.version == target and after < d.start <= gap_start]
    return min([gap_start, *named])


def _longest_wait(spans: GroupSpans, target: str, start: int, end: int) -> float:
    moves = spans.starts_of(target, start, end)
    marks = np.concatenate([[start], moves, [end]])
    return float(np.diff(marks).max()) / 1e6 if len(marks) > 1 else 0.0


def _paused(desired: list[DesiredSpan], start: int, end: int) -> bool:
    flags = [d.updating for d in _desired_during(desired, start, end)]
    return any(a and not b for a, b in zip(flags, flags[1:], strict=False))


def group_rollouts(key: GroupKey, segs: list[Segment], spans: GroupSpans,
                   desired: list[DesiredSpan], rollbacks: list[ActionRow], now: int,
                   stall_after_s: float) -> list[Rollout]:
    """The rollouts of one group, before failure marking (see mark_failures)."""
    whole = [s for s in segs if s.whole]
    out: list[Rollout] = []

    def make(left: Segment, target: str, gap_start: int, end: int | None, status: str,
             restored: int | None = None) -> Rollout:
        start = _start(desired, target, left.start, gap_start)
        # Measured up to its end, to the group's return for one rolled back, else to now.
        until = end if end is not None else restored if restored is not None else now
        wait = _longest_wait(spans, target, start, until)
        return Rollout(*key, left.version or "", target, "rollout", status, start, end,
                       spans.instances_moved(target, start, until), spans.alive_at(until),
                       wait, wait >= stall_after_s, _paused(desired, start, until),
                       restored=restored, image_id=spans.image_of(target, until))

    for n, left in enumerate(whole):
        if left.end is None:
            # Still whole on its version: a desired version named since, with no instance on
            # it yet, is a rollout that has started and moved nothing.
            pending = [d for d in desired if d.start > left.start and d.end is None
                       and d.version is not None and d.version != left.version]
            if pending:
                out.append(make(left, pending[-1].version, pending[-1].start, None,  # type: ignore[arg-type]
                                IN_PROGRESS))
            break
        right = whole[n + 1] if n + 1 < len(whole) else None
        gap = [s for s in segs if s.start >= left.end and (right is None or s.start < right.start)]
        if right is not None and right.version == left.version:
            if all(s.empty for s in gap):
                continue  # scaled to zero and back on the same version: no rollout
            target = _target_in_gap(spans, desired, left.version or "", left.end, right.start)
            if target is not None:
                out.append(make(left, target, left.end, None, ROLLED_BACK,
                                restored=right.start))
        elif right is not None:
            out.append(make(left, right.version or "", left.end, right.start, COMPLETED))
        else:
            target = _target_in_gap(spans, desired, left.version or "", left.end, None)
            if target is not None:
                out.append(make(left, target, left.end, None, IN_PROGRESS))
    return _mark_rollbacks(out, rollbacks)


def _mark_rollbacks(rollouts: list[Rollout], rollbacks: list[ActionRow]) -> list[Rollout]:
    """Which rollouts were rollbacks: asked for by a rollback action (journal), or back to
    the version an earlier rollout of the group left."""
    out: list[Rollout] = []
    for n, r in enumerate(rollouts):
        earliest = rollouts[n - 1].start if n else 0
        action = next((a for a in rollbacks if a.to_version == r.to_version
                       and earliest <= a.confirmed <= (r.end or r.start)), None)
        if action is not None:
            out.append(replace(r, kind="rollback", rollback_by=action.actor))
        elif n and rollouts[n - 1].from_version == r.to_version \
                and rollouts[n - 1].status == COMPLETED:
            out.append(replace(r, kind="rollback", rollback_by="observed"))
        else:
            out.append(r)
    return out


def mark_failures(rollouts: list[Rollout], rollbacks: list[ActionRow], window_s: float
                  ) -> list[Rollout]:
    """A rollout (not itself a rollback) was rolled back when the group went back before it
    completed, or a rollback of the group was confirmed, or a rollout back to its from
    version started, within `window_s` of its start. `restored`: when the group then ran a
    version other than the failed one in full."""
    window = int(window_s * 1e6)
    out: list[Rollout] = []
    for n, r in enumerate(rollouts):
        if r.kind != "rollout":
            out.append(r)
            continue
        later = rollouts[n + 1:]
        # A rollback belongs to the latest rollout before it: none after the next one counts.
        after = next((x.start for x in later if x.kind == "rollout"), None)
        until = r.start + window if after is None else min(r.start + window, after)
        action = next((a for a in rollbacks if r.start <= a.confirmed <= until), None)
        back = next((x for x in later if x.kind == "rollback"
                     and x.to_version == r.from_version
                     and r.start <= x.start <= r.start + window), None)
        if r.status == ROLLED_BACK:
            by = action.actor if action is not None else "observed"
            out.append(replace(r, rolled_back=True, rollback_by=by))
        elif action is not None or back is not None:
            restore = back if back is not None else next(
                (x for x in later if x.to_version != r.to_version), None)
            restored = restore.end if restore is not None else None
            by = action.actor if action is not None else "observed"
            out.append(replace(r, rolled_back=True, rollback_by=by, restored=restored))
        else:
            out.append(r)
    return out
