"""A group's version mix over time, and the stacked rectangles of its summary band."""

from __future__ import annotations

import numpy as np
import pytest

from fleetview.ui.timeline_mix import BandCache, VersionMix, band_rects

INF = np.inf


def mix() -> VersionMix:
    # Group 0: three instances on v0 from t=0; a rollout to v1 replaces two of them at t=10
    # and t=20. Group 1: one instance on v1 from t=5 to t=15.
    group = np.array([0, 0, 0, 0, 0, 1])
    version = np.array([0, 0, 0, 1, 1, 1])
    x0 = np.array([0.0, 0.0, 0.0, 10.0, 20.0, 5.0])
    x1 = np.array([INF, 10.0, 20.0, INF, INF, 15.0])
    return VersionMix.from_segments(group, version, x0, x1, n_groups=2, n_versions=2)


def test_counts_follow_the_rollout():
    m = mix()
    counts = m.counts_at(0, np.array([-1.0, 0.0, 5.0, 10.0, 15.0, 25.0]))
    assert counts.tolist() == [[0, 0], [3, 0], [3, 0], [2, 1], [2, 1], [1, 2]]
    assert m.counts_at(1, np.array([4.0, 5.0, 14.0, 15.0])).tolist() == \
        [[0, 0], [0, 1], [0, 1], [0, 0]]


def test_terminated_spans_do_not_count():
    group, version = np.array([0, 0]), np.array([0, 0])
    x0, x1 = np.array([0.0, 0.0]), np.array([INF, INF])
    m = VersionMix.from_segments(group, version, x0, x1, 1, 1,
                                 counted=np.array([True, False]))
    assert m.counts_at(0, np.array([1.0])).tolist() == [[1]]


def test_band_shares_and_stacked_rectangles():
    edges, shares = mix().band(0, 0.0, 30.0, 3)  # columns at 5, 15, 25
    assert edges.tolist() == [0.0, 10.0, 20.0, 30.0]
    assert shares[:, 1] == pytest.approx([0, 1 / 3, 2 / 3])
    rects = band_rects(edges, shares, top=1.0, height=3.0)
    old_x0, old_x1, old_y0, old_y1 = rects[0]
    new_x0, new_x1, new_y0, new_y1 = rects[1]
    # The newest version is on top of the band, the older one fills the rest below it.
    assert new_x0.tolist() == [10.0, 20.0] and new_y0.tolist() == [1.0, 1.0]
    assert new_y1 == pytest.approx([2.0, 3.0])
    assert old_y0 == pytest.approx([1.0, 2.0, 3.0]) and old_y1 == pytest.approx([4.0] * 3)


def test_steady_columns_merge_into_one_rectangle():
    edges, shares = mix().band(1, 6.0, 14.0, 50)
    (x0, x1, _, _), = [r for r in band_rects(edges, shares, 0.0, 1.0) if len(r[0])]
    assert x0.tolist() == [6.0] and x1 == pytest.approx([14.0])


def test_a_pan_reuses_the_band_already_sampled():
    cache = BandCache(mix())
    first = cache.rects(0, 0.0, 30.0, column_s=0.5, levels=100)
    sampled = cache._sampled[0]
    later = cache.rects(0, 5.0, 35.0, column_s=0.5, levels=100)
    assert cache._sampled[0] is sampled  # nothing sampled again
    # The newest version: from 10 on, a third then two thirds of the band, clipped to [5, 35].
    (x0, x1, y0, y1) = later[1]
    assert x0[0] == pytest.approx(10.0, abs=0.5) and x1[-1] == pytest.approx(35.0)
    assert (y1 - y0).tolist() == pytest.approx([0.33, 0.67], abs=0.01)
    assert first[0][0][0] == pytest.approx(0.0)
    cache.rects(0, 0.0, 300.0, column_s=5.0, levels=100)  # zoomed out: sampled anew
    assert cache._sampled[0] is not sampled
