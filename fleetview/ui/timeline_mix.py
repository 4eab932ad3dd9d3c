"""A group's version mix over time, as step functions sampled for the timeline's summary bands."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass
class VersionMix:
    """How many instances of each group ran each version, at any time.

    For each (group, version) pair, `times[offsets[k]:offsets[k + 1]]` are the moments its
    count changed (sorted) and `counts[...]` the count from each on (k = group * n_versions +
    version). Built once per history, off the GUI thread; a lookup is one searchsorted per
    version, so a band of thousands of instances costs no more to draw than one of ten.
    """

    n_groups: int = 0
    n_versions: int = 0
    offsets: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    times: np.ndarray = field(default_factory=lambda: np.empty(0, float))
    counts: np.ndarray = field(default_factory=lambda: np.empty(0, np.int32))

    @classmethod
    def from_segments(cls, seg_group: np.ndarray, seg_ver: np.ndarray, x0: np.ndarray,
                      x1: np.ndarray, n_groups: int, n_versions: int,
                      counted: np.ndarray | None = None) -> VersionMix:
        """Segments (group, version code, start, end with +inf for open); `counted` picks the
        ones that count (terminated instances do not run anything)."""
        if counted is not None:
            seg_group, seg_ver, x0, x1 = (a[counted] for a in (seg_group, seg_ver, x0, x1))
        key = seg_group.astype(np.int64) * max(n_versions, 1) + seg_ver.astype(np.int64)
        ends = np.isfinite(x1)
        ev_key = np.concatenate([key, key[ends]])
        ev_t = np.concatenate([x0, x1[ends]])
        ev_d = np.concatenate([np.ones(len(key), np.int32), np.full(int(ends.sum()), -1, np.int32)])
        # One float sort instead of a lexsort (several times slower at millions of events):
        # the pair in the high part, the time within the history's span in the low part.
        if len(ev_t):
            t0 = float(ev_t.min())
            span = float(ev_t.max()) - t0 + 1.0
            order = np.argsort(ev_key * span + (ev_t - t0), kind="stable")
        else:
            order = np.empty(0, np.int64)
        ev_key, ev_t, ev_d = ev_key[order], ev_t[order], ev_d[order]
        pairs = n_groups * max(n_versions, 1)
        offsets = np.searchsorted(ev_key, np.arange(pairs + 1)).astype(np.int64)
        running = np.cumsum(ev_d, dtype=np.int64)
        # Each pair's count starts from zero: take off what the pairs before it summed to.
        before = np.r_[0, running][offsets[:-1]]
        lengths = np.diff(offsets)
        counts = (running - np.repeat(before, lengths)).astype(np.int32)
        return cls(n_groups, n_versions, offsets, ev_t, counts)

    def counts_at(self, g: int, t: np.ndarray) -> np.ndarray:
        """Instances of group `g` per version at each time of `t`: shape (len(t), n_versions)."""
        t = np.asarray(t, dtype=float)
        out = np.zeros((len(t), self.n_versions), np.int64)
        if not 0 <= g < self.n_groups:
            return out
        for v in range(self.n_versions):
            k = g * self.n_versions + v
            lo, hi = int(self.offsets[k]), int(self.offsets[k + 1])
            if lo == hi:
                continue
            idx = np.searchsorted(self.times[lo:hi], t, "right")
            hit = idx > 0
            out[hit, v] = self.counts[lo + idx[hit] - 1]
        return out

    def band(self, g: int, t0: float, t1: float, columns: int) -> tuple[np.ndarray, np.ndarray]:
        """The group's mix across [t0, t1] in `columns` equal steps: the column edges
        (columns + 1) and each column's share per version (columns, n_versions), taken at the
        column's middle; a column with no instance has all shares 0."""
        columns = max(1, int(columns))
        edges = np.linspace(t0, t1, columns + 1)
        counts = self.counts_at(g, (edges[:-1] + edges[1:]) / 2)
        total = counts.sum(axis=1, keepdims=True)
        shares = np.divide(counts, total, out=np.zeros(counts.shape, float), where=total > 0)
        return edges, shares


def band_rects(edges: np.ndarray, shares: np.ndarray, top: float, height: float,
               levels: int | None = None
               ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Stacked shares as rectangles per version (x0, x1, y0, y1), newest version on top.

    With `levels` (the band's height in pixels) each share is rounded to whole pixels, a
    share above zero keeping at least one (a version on a single instance of thousands still
    shows), and neighbouring columns that round the same merge into one rectangle: a group
    rolling out one instance at a time draws as a few dozen rectangles, not one per column.
    """
    n_cols, n_versions = shares.shape
    if not n_cols:
        return [(np.empty(0),) * 4 for _ in range(n_versions)]
    if levels:
        q = np.round(shares * levels)
        q[(shares > 0) & (q == 0)] = 1
        total = q.sum(axis=1, keepdims=True)
        shares = np.divide(q, total, out=np.zeros(q.shape, float), where=total > 0)
    change = np.r_[True, np.any(np.abs(np.diff(shares, axis=0)) > 1e-9, axis=1)]
    starts = np.flatnonzero(change)
    x0 = edges[starts]
    x1 = edges[np.r_[starts[1:], n_cols]]
    runs = shares[starts]
    # Highest version code (newest) at the top of the band.
    below = np.cumsum(runs[:, ::-1], axis=1)[:, ::-1] - runs
    out = []
    for v in range(n_versions):
        keep = runs[:, v] > 0
        y0 = top + below[keep, v] * height
        out.append((x0[keep], x1[keep], y0, y0 + runs[keep, v] * height))
    return out


@dataclass
class _Sampled:
    step: float
    levels: int
    k0: int
    k1: int
    rects: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]


class BandCache:
    """The bands already worked out, per group, in band-local heights (0 top, 1 bottom).

    Columns sit on a grid of the whole time axis (a step of about the column width, rounded
    to a half power of two), and each group is sampled over three times the span asked for:
    a pan reuses what was sampled and a frame works out only groups that came into view.
    Valid for one history: counts after the last span change stay as they are until new
    history comes, which gets a new cache.
    """

    def __init__(self, mix: VersionMix):
        self.mix = mix
        self._sampled: dict[int, _Sampled] = {}

    def rects(self, g: int, t_lo: float, t_hi: float, column_s: float, levels: int
              ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """Group `g`'s band over [t_lo, t_hi] with columns of about `column_s` seconds,
        shares rounded to `levels`: per version (x0, x1, y0, y1), clipped to the span."""
        step = 2.0 ** (math.floor(math.log2(max(column_s, 1e-3)) * 2) / 2)
        k_lo, k_hi = math.floor(t_lo / step), math.ceil(t_hi / step)
        hit = self._sampled.get(g)
        if hit is None or hit.step != step or hit.levels != levels or k_lo < hit.k0 \
                or k_hi > hit.k1:
            span = k_hi - k_lo
            k0, k1 = k_lo - span, k_hi + span
            edges = np.arange(k0, k1 + 1, dtype=float) * step
            # Each column shows the mix at its end: the column holding now shows the mix now,
            # so a rollout begun a moment ago is in the band at any zoom (a change is drawn
            # up to one column early).
            counts = self.mix.counts_at(g, edges[1:])
            total = counts.sum(axis=1, keepdims=True)
            shares = np.divide(counts, total, out=np.zeros(counts.shape, float),
                               where=total > 0)
            hit = self._sampled[g] = _Sampled(step, levels, k0, k1,
                                              band_rects(edges, shares, 0.0, 1.0, levels))
        out = []
        for x0, x1, y0, y1 in hit.rects:
            keep = (x1 > t_lo) & (x0 < t_hi)
            out.append((np.maximum(x0[keep], t_lo), np.minimum(x1[keep], t_hi), y0[keep],
                        y1[keep]))
        return out
