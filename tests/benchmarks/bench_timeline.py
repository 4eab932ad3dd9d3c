"""Timeline: build time and frame time of pan/zoom at 10,000 rows x 100,000 segments, beside
one graphics item per segment."""

from __future__ import annotations

import os
import statistics
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from tests.benchmarks import Figure  # noqa: E402

SIZES = {
    # instances, segments, frames per gesture, baseline segments
    "tiny": (200, 2_000, 6, 2_000),
    "full": (10_000, 100_000, 40, 100_000),
}
VERSIONS = ["1.2.0", "1.3.0", "1.3.1", "1.4.0", "1.4.2", "1.5.0"]
DAYS = 30


def synthetic_spans(instances: int, segments: int, now: float, seed: int = 7) -> pd.DataFrame:
    """`segments` spans over `instances` in groups of 50, back to back over 30 days."""
    rng = np.random.default_rng(seed)
    per = np.full(instances, segments // instances)
    per[: segments - per.sum()] += 1
    inst = np.repeat(np.arange(instances), per)
    # Cut each instance's 30 days at sorted random points.
    t0 = now - DAYS * 86400
    frac = rng.random(len(inst))
    order = np.lexsort((frac, inst))
    inst, frac = inst[order], frac[order]
    first = np.r_[True, inst[1:] != inst[:-1]]
    start = np.where(first, t0 + rng.random(len(inst)) * 86400, t0 + frac * DAYS * 86400)
    last = np.r_[inst[1:] != inst[:-1], True]
    end = np.where(last, np.nan, np.r_[start[1:], np.nan])
    # Versions climb over time, as releases do.
    version = np.minimum((start - t0) / (DAYS * 86400) * len(VERSIONS), len(VERSIONS) - 1)
    version = np.asarray(VERSIONS, dtype=object)[version.astype(int)]
    group = np.asarray([f"group-{i // 50:03d}" for i in range(instances)], dtype=object)
    ids = np.asarray([f"i-{i:08x}" for i in range(instances)], dtype=object)
    return pd.DataFrame({
        "scope": "prod", "region": np.where(inst % 2 == 0, "us-east-1", "eu-west-1"),
        "group": group[inst], "instance_id": ids[inst], "name": ids[inst],
        "image_id": "ami-" + version, "image_name": "app-" + version, "version": version,
        "state": "running",
        "start": pd.to_datetime(start, unit="s", utc=True),
        "end": pd.to_datetime(end, unit="s", utc=True),
    })


def _frames(plot, steps) -> tuple[list[float], list[float]]:
    """Apply each view change, then paint the plot synchronously: wall and GUI-thread CPU
    milliseconds of both. On a shared machine the CPU time is the steadier figure."""
    wall, cpu = [], []
    viewport = plot.viewport()
    for step in steps:
        w0, c0 = time.perf_counter(), time.thread_time()
        step()
        viewport.repaint()
        cpu.append((time.thread_time() - c0) * 1000)
        wall.append((time.perf_counter() - w0) * 1000)
    return wall, cpu


def _gestures(plot, n: int) -> dict[str, list]:
    vb = plot.getViewBox()
    return {
        "pan": [lambda: plot.pan(0.03)] * n,
        "zoom": [lambda k=k: plot.zoom(0.9 if k % 2 == 0 else 1 / 0.9) for k in range(n)],
        "scroll": [lambda: plot.pan(rows=5)] * n,
        "wide": [lambda: vb.setXRange(*plot.time_bounds(), padding=0)]
        + [lambda: plot.pan(0.01)] * (n - 1),
    }


def run(size: str) -> list[Figure]:
    import pyqtgraph as pg
    from PySide6.QtWidgets import QApplication, QGraphicsRectItem

    from fleetview.ui.colors import VersionColors
    from fleetview.ui.timeline import DAY, MAX_VISIBLE_ROWS, TimelinePlot
    from fleetview.ui.timeline_data import TimelineData

    app = QApplication.instance() or QApplication([])
    instances, segments, n, base_segments = SIZES[size]
    now = time.time()
    spans = synthetic_spans(instances, segments, now)
    colors = VersionColors(VERSIONS)

    plot = TimelinePlot(colors)
    plot.resize(1400, 800)
    plot.show()
    app.processEvents()
    started = time.perf_counter()
    data = TimelineData.from_spans(spans)
    built = time.perf_counter()
    plot.set_data(data, now)
    plot.show_last(7 * DAY)
    plot._fit_rows()
    plot.viewport().repaint()
    shown = time.perf_counter()
    frames = {name: _frames(plot, steps) for name, steps in _gestures(plot, n).items()}
    # The most the timeline ever draws: MAX_VISIBLE_ROWS rows over all 30 days.
    vb = plot.getViewBox()
    vb.setRange(xRange=plot.time_bounds(), yRange=(0, MAX_VISIBLE_ROWS), padding=0)
    frames["densest"] = _frames(plot, [lambda: plot.pan(0.01)] * n)
    densest_rects = plot.visible_rects
    plot.close()

    # Baseline: one QGraphicsRectItem per segment in a plain pyqtgraph plot.
    base = spans.iloc[:base_segments]
    base_data = TimelineData.from_spans(base)
    widget = pg.PlotWidget()
    widget.resize(1400, 800)
    widget.show()
    app.processEvents()
    b_started = time.perf_counter()
    # The items hang under one parent added to the plot once: ViewBox.addItem per item
    # re-measures the view each time and takes minutes for 100,000 items, which would
    # measure pyqtgraph's bookkeeping rather than painting.
    holder = QGraphicsRectItem()
    holder.setPen(pg.mkPen(None))
    brushes = [pg.mkBrush(colors.color(v)) for v in base_data.versions]
    no_pen = pg.mkPen(None)
    for s in range(base_data.n_segments):
        x0 = float(base_data.seg_x0[s])
        x1 = float(min(base_data.seg_x1[s], now))
        item = QGraphicsRectItem(x0, float(base_data.seg_inst[s]) + 0.15, x1 - x0, 0.7, holder)
        item.setBrush(brushes[int(base_data.seg_ver[s])])
        item.setPen(no_pen)
    widget.addItem(holder)
    bvb = widget.getViewBox()
    bvb.invertY(True)
    bvb.setRange(xRange=(now - 7 * DAY, now), yRange=(0, 44), padding=0)
    widget.viewport().repaint()
    b_built = (time.perf_counter() - b_started) * 1000

    def bpan():
        (x0, x1), _ = bvb.viewRange()
        d = (x1 - x0) * 0.03
        bvb.setXRange(x0 + d, x1 + d, padding=0)

    def bzoom(k):
        (x0, x1), _ = bvb.viewRange()
        c, f = (x0 + x1) / 2, 0.9 if k % 2 == 0 else 1 / 0.9
        bvb.setXRange(c - (c - x0) * f, c + (x1 - c) * f, padding=0)

    bn = n
    b_pan = _frames(widget, [bpan] * bn)
    b_zoom = _frames(widget, [lambda k=k: bzoom(k) for k in range(bn)])
    bvb.setRange(xRange=(now - DAYS * 86400, now), yRange=(0, MAX_VISIBLE_ROWS), padding=0)
    b_dense = _frames(widget, [bpan] * bn)
    widget.close()
    app.processEvents()

    scale = segments / base_segments
    note = "" if scale == 1 else f" (baseline at {base_segments:,} segments x{scale:g})"
    med = statistics.median
    base_name = f"one item per segment{'' if scale == 1 else f' at {base_segments:,}'}"
    figures = [
        Figure(f"timeline build, {instances:,} rows x {segments:,} segments{note}",
               (built - started) * 1000 + (shown - built) * 1000, "ms",
               baseline=b_built * scale, baseline_name="one item per segment"),
        Figure("  of which arrays (TimelineData.from_spans, on the worker thread)",
               (built - started) * 1000, "ms"),
    ]
    baselines = {"pan": b_pan, "zoom": b_zoom, "densest": b_dense}
    labels = {"pan": "pan step (last week)", "zoom": "zoom step", "scroll": "row scroll step",
              "wide": "pan at all 30 days", "densest": f"densest view ({densest_rects:,} bars)"}
    for key, label in labels.items():
        wall, cpu = frames[key]
        base = baselines.get(key)
        figures.append(Figure(f"timeline {label}, median frame (wall)", med(wall), "ms",
                              baseline=med(base[0]) if base else None,
                              baseline_name=base_name if base else None, target="<= 16.7 ms"))
        figures.append(Figure(f"timeline {label}, median frame (GUI thread CPU)", med(cpu), "ms",
                              baseline=med(base[1]) if base else None,
                              baseline_name=base_name if base else None, target="<= 16.7 ms"))
    figures.append(Figure("timeline worst frame of all gestures (wall)",
                          max(max(w) for w, _ in frames.values()), "ms"))
    return figures
