"""Timeline at fleet scale: 100,000 instances x 1,000,000 spans opened as summary bands, one
3,000-instance group expanded; frame, paint and band times beside a frame of 1,000 instances
measured in the same run, and the memory the arrays take."""

from __future__ import annotations

import gc
import os
import statistics
import sys
import time
import tracemalloc

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from tests.benchmarks import Figure  # noqa: E402
from tests.benchmarks.bench_timeline import VERSIONS, _frames  # noqa: E402

SIZES = {
    # group sizes (instances), spans per instance, frames per gesture, baseline instances
    "tiny": ([3_000, 1_000, 300, 300, 200, 100, 50, 50], 10, 6, 1_000),
    "full": ([3_000] * 20 + [300] * 100 + [50] * 200, 10, 30, 1_000),
}
DAYS = 30


def fleet_spans(group_sizes: list[int], per_instance: int, now: float,
                seed: int = 11) -> pd.DataFrame:
    """`per_instance` back-to-back spans for each instance of groups of `group_sizes`, over
    30 days; versions climb with time, as releases do. Built column-wise, with one string
    object per distinct value, as the store's reads are."""
    rng = np.random.default_rng(seed)
    n_inst = int(sum(group_sizes))
    inst_group = np.repeat(np.arange(len(group_sizes)), group_sizes)
    inst = np.repeat(np.arange(n_inst), per_instance)
    t0 = now - DAYS * 86400
    frac = np.sort(rng.random((n_inst, per_instance)), axis=1).ravel()
    frac[::per_instance] = rng.random(n_inst) * 0.03  # each instance's first span
    start = t0 + frac * DAYS * 86400
    last = np.r_[inst[1:] != inst[:-1], True]
    end = np.where(last, np.nan, np.r_[start[1:], np.nan])
    version = np.minimum((start - t0) / (DAYS * 86400) * len(VERSIONS),
                         len(VERSIONS) - 1).astype(int)

    def pick(names: list[str], codes: np.ndarray) -> np.ndarray:
        return np.asarray(names, dtype=object)[codes]

    groups = [f"group-{g:04d}" for g in range(len(group_sizes))]
    ids = np.asarray([f"i-{i:08x}" for i in range(n_inst)], dtype=object)
    return pd.DataFrame({
        "scope": "prod", "region": pick(["us-east-1", "eu-west-1"], inst_group[inst] % 2),
        "group": pick(groups, inst_group[inst]), "instance_id": ids[inst], "name": ids[inst],
        "image_id": pick([f"ami-{v}" for v in VERSIONS], version),
        "image_name": pick([f"app-{v}" for v in VERSIONS], version),
        "version": pick(VERSIONS, version), "state": "running",
        "start": pd.to_datetime(start, unit="s", utc=True),
        "end": pd.to_datetime(end, unit="s", utc=True),
    })


def _arrays_bytes(data) -> int:
    """What the timeline's arrays hold: numpy buffers, plus the strings object arrays point at
    (counted once each)."""
    total, seen = 0, set()
    arrays = [v for v in vars(data).values() if isinstance(v, np.ndarray)]
    arrays += [data.mix.offsets, data.mix.times, data.mix.counts]
    for a in arrays:
        total += a.nbytes
        if a.dtype == object:
            for value in a:
                if id(value) not in seen:
                    seen.add(id(value))
                    total += sys.getsizeof(value)
    return total


def run(size: str) -> list[Figure]:
    from PySide6.QtWidgets import QApplication

    from fleetview.ui.colors import VersionColors
    from fleetview.ui.timeline import BAND_ABOVE, DAY, TimelinePlot
    from fleetview.ui.timeline_data import TimelineData
    from fleetview.ui.timeline_mix import VersionMix

    app = QApplication.instance() or QApplication([])
    group_sizes, per, n, base_instances = SIZES[size]
    now = time.time()
    spans = fleet_spans(group_sizes, per, now)
    n_inst, n_spans = int(sum(group_sizes)), len(spans)
    colors = VersionColors(VERSIONS)
    med = statistics.median

    gc.collect()
    started = time.perf_counter()
    data = TimelineData.from_spans(spans)
    built_ms = (time.perf_counter() - started) * 1000
    # Again under tracemalloc, which slows it down: for its peak only.
    tracemalloc.start()
    TimelineData.from_spans(spans)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    gc.collect()
    seg_group = data.inst_group[data.seg_inst]
    started = time.perf_counter()
    VersionMix.from_segments(seg_group, data.seg_ver, data.seg_x0, data.seg_x1,
                             len(data.groups), len(data.versions))
    mix_ms = (time.perf_counter() - started) * 1000
    held = _arrays_bytes(data)

    def plot_of(timeline_data: TimelineData) -> TimelinePlot:
        plot = TimelinePlot(colors)
        plot.resize(1400, 800)
        plot.show()
        app.processEvents()
        plot.set_data(timeline_data, now)
        plot.show_last(7 * DAY)
        plot.update_rows()
        plot._fit_rows()
        plot.viewport().repaint()
        return plot

    def gestures(plot: TimelinePlot) -> dict[str, list]:
        return {"pan": [lambda: plot.pan(0.03)] * n,
                "zoom": [lambda k=k: plot.zoom(0.9 if k % 2 == 0 else 1 / 0.9)
                         for k in range(n)],
                "scroll": [lambda: plot.pan(rows=5)] * n}

    # Baseline: the first 1,000 instances, every row shown, in the same run.
    base = spans[spans["instance_id"].isin(spans["instance_id"].unique()[:base_instances])]
    base_plot = plot_of(TimelineData.from_spans(base))
    base_plot.set_collapsed(frozenset())
    base_frames = {k: _frames(base_plot, steps) for k, steps in gestures(base_plot).items()}
    base_plot.close()

    plot = plot_of(data)
    banded = len(plot.layout.collapsed)
    (x0, x1), (y0, y1) = plot.getViewBox().viewRange()
    # GUI-thread CPU time: the first frame samples every band in view, later ones (a pan)
    # reuse what was sampled.
    plot._bands = None
    band_ms = []
    for _ in range(n):
        started = time.thread_time()
        plot._bands_in_view(x0, x1, y0, y1)
        band_ms.append((time.thread_time() - started) * 1000)
    band_rects = plot.band_rects
    band_frames = {k: _frames(plot, steps) for k, steps in gestures(plot).items()}
    # Expand the largest group: its 3,000 rows, then pan and scroll through them.
    plot.focus_group(*data.groups[0])
    plot.update_rows()
    big_frames = {k: _frames(plot, steps) for k, steps in gestures(plot).items()}
    relayout = []
    for k in range(n):
        plot.zoom(0.9 if k % 2 == 0 else 1 / 0.9)
        started = time.perf_counter()
        plot.update_rows()
        relayout.append((time.perf_counter() - started) * 1000)
    plot.close()
    app.processEvents()

    base_name = f"{base_instances:,} instances, all rows"
    figures = [
        Figure(f"timeline arrays, {n_inst:,} instances x {n_spans:,} spans "
               "(TimelineData.from_spans, worker thread)", built_ms, "ms"),
        Figure("  of which the version mix for the bands (VersionMix.from_segments)", mix_ms,
               "ms"),
        Figure("timeline arrays held (numpy buffers + distinct strings)", held / 2**20, "MiB"),
        Figure("timeline arrays build peak (tracemalloc)", peak / 2**20, "MiB"),
        Figure(f"groups opened as bands (fleet above {BAND_ABOVE} instances)", banded,
               "groups"),
        Figure(f"band computation, first frame ({band_rects:,} band rectangles in view, "
               "GUI thread CPU)", band_ms[0], "ms", target="<= 16.7 ms"),
        Figure("band computation, next frames (median, GUI thread CPU)", med(band_ms[1:]),
               "ms", target="<= 16.7 ms"),
    ]
    for label, frames in (("banded", band_frames), ("3,000-instance group open", big_frames)):
        for key in ("pan", "zoom", "scroll"):
            wall, cpu = frames[key]
            bwall, bcpu = base_frames[key]
            figures.append(Figure(f"timeline {label}, {key} frame (wall, median)", med(wall),
                                  "ms", baseline=med(bwall), baseline_name=base_name,
                                  target="<= 16.7 ms"))
            figures.append(Figure(f"timeline {label}, {key} frame (GUI thread CPU, median)",
                                  med(cpu), "ms", baseline=med(bcpu), baseline_name=base_name,
                                  target="<= 16.7 ms"))
    figures.append(Figure("rows laid out again after a zoom (hiding empty rows, once per "
                          "gesture)", med(relayout), "ms"))
    figures.append(Figure("timeline worst frame of all gestures (wall)",
                          max(max(w) for frames in (band_frames, big_frames)
                              for w, _ in frames.values()), "ms"))
    return figures

