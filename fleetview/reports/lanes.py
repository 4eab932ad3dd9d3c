"""Each group's history as lanes: when it ran one version in full, when it was mixed or empty.

The sweep is vectorised: a report reads every span of 90 days of a large fleet, where a
Python loop over each start and end would take longer than the rest of the report.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from fleetview.reports.span_arrays import OPEN, STANDALONE, SpanArrays

# Codes of a group's state besides a version code (>= 0).
MIXED, EMPTY = -1, -2
_OPEN = OPEN


@dataclass(frozen=True)
class Segment:
    """A stretch of one group's history: `version` set while every live instance ran it;
    None while it was mixed (`empty` False) or had no live instance (`empty` True).
    Instants are integer microseconds; `end` None: still so."""

    start: int
    end: int | None
    version: str | None
    empty: bool = False

    @property
    def whole(self) -> bool:
        return self.version is not None


GroupKey = tuple[str, str, str]


@dataclass
class GroupSpans:
    """One group's live spans as arrays: version codes index `labels`; instants in
    microseconds, open ends as int64 max."""

    labels: list[str]
    instance: np.ndarray
    version: np.ndarray
    image_id: np.ndarray
    start: np.ndarray
    end: np.ndarray

    def __post_init__(self) -> None:
        self._codes = {label: n for n, label in enumerate(self.labels)}

    def code(self, version: str) -> int:
        return self._codes.get(version, -1)

    def alive_at(self, at: int) -> int:
        return int(np.count_nonzero((self.start <= at) & (self.end > at)))

    def _moved(self, version: str, t0: int, t1: int) -> np.ndarray:
        return (self.version == self.code(version)) & (self.start >= t0) & (self.start <= t1)

    def starts_of(self, version: str, t0: int, t1: int) -> np.ndarray:
        """Start instants of `version` spans in [t0, t1], sorted."""
        return np.sort(self.start[self._moved(version, t0, t1)])

    def instances_moved(self, version: str, t0: int, t1: int) -> int:
        return len(np.unique(self.instance[self._moved(version, t0, t1)]))

    def image_of(self, version: str, before: int) -> str | None:
        mine = self.version == self.code(version)
        mask = mine & (self.start <= before)
        if not mask.any():
            mask = mine
        if not mask.any():
            return None
        value = self.image_id[mask][int(np.argmax(self.start[mask]))]
        return value if isinstance(value, str) else None

    def versions_started(self, t0: int, t1: int | None, other_than: str) -> list[str]:
        """Labels of the spans that started in [t0, t1) on another version, one a span."""
        stop = _OPEN if t1 is None else t1
        mask = (self.start >= t0) & (self.start < stop) & (self.version != self.code(other_than))
        return [self.labels[c] for c in self.version[mask].tolist()]


def to_us(column: pd.Series) -> np.ndarray:
    """datetime64[ns, UTC] column as integer microseconds, NaT as int64 max (open)."""
    ns = column.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    out = ns // 1000
    out[column.isna().to_numpy()] = _OPEN
    return out


def group_spans_of(spans: SpanArrays) -> dict[GroupKey, GroupSpans]:
    """The live spans of grouped instances, by (scope, region, group)."""
    order = np.argsort(spans.place, kind="stable")
    place = spans.place[order]
    cuts = np.flatnonzero(np.diff(place)) + 1
    out: dict[GroupKey, GroupSpans] = {}
    for part in np.split(order, cuts) if len(order) else []:
        key = spans.places[int(spans.place[part[0]])]
        if key[2] == STANDALONE:
            continue
        out[key] = GroupSpans(spans.versions, spans.instance[part], spans.version[part],
                              spans.image_id[part], spans.start[part], spans.end[part])
    return dict(sorted(out.items()))


def segments(group: GroupSpans) -> list[Segment]:
    """The group's history as consecutive segments, from its first live span on.

    A version's count of live instances goes up at each span start and down at each end; the
    group runs a version in full while exactly one version has a count above zero. Events at
    the same instant are applied together, so a replacement (one span ends as another starts)
    never shows a moment in between."""
    present, codes = np.unique(group.version, return_inverse=True)
    labels = [group.labels[c] for c in present.tolist()]
    has_end = group.end != _OPEN
    t = np.concatenate([group.start, group.end[has_end]])
    v = np.concatenate([codes, codes[has_end]])
    d = np.concatenate([np.ones(len(codes), np.int64), -np.ones(int(has_end.sum()), np.int64)])
    # Per version, in time order: the count after each event, and where it crosses zero.
    order = np.lexsort((t, v))
    t, v, d = t[order], v[order], d[order]
    count = np.cumsum(d)
    first = np.r_[True, v[1:] != v[:-1]]
    base = np.maximum.accumulate(np.where(first, np.arange(len(v)), 0))
    count = count - np.where(base > 0, np.cumsum(d)[base - 1], 0)
    before = np.where(first, 0, np.r_[0, count[:-1]])
    up = (before == 0) & (count > 0)
    down = (before > 0) & (count == 0)
    change = up | down
    ct, cv = t[change], v[change]
    dn = np.where(up[change], 1, -1)
    # The number of versions running and the sum of their codes: with one running, the sum
    # is its code.
    order = np.argsort(ct, kind="stable")
    ct, dn, dv = ct[order], dn[order], (cv * np.where(up[change], 1, -1))[order]
    running, total = np.cumsum(dn), np.cumsum(dv)
    last = np.r_[ct[1:] != ct[:-1], True]
    ct, running, total = ct[last], running[last], total[last]
    state = np.where(running == 1, total, np.where(running == 0, EMPTY, MIXED))
    keep = np.r_[True, state[1:] != state[:-1]]
    ct, state = ct[keep], state[keep]
    out = []
    for n, (at, code) in enumerate(zip(ct.tolist(), state.tolist(), strict=True)):
        end = ct[n + 1].item() if n + 1 < len(ct) else None
        version = str(labels[code]) if code >= 0 else None
        out.append(Segment(at, end, version, code == EMPTY))
    return out
