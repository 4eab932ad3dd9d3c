"""The report's charts as inline SVG text, drawn in plain Python (no browser script, no
network): rollouts per week, durations over time, and a lane of versions per group."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from html import escape

from fleetview.reports import colors as palette
from fleetview.reports.lanes import Segment
from fleetview.reports.metrics import Week
from fleetview.store.times import from_us

FONT = "font-family=\"system-ui, -apple-system, 'Segoe UI', sans-serif\" font-size=\"11\""
TEXT = "#333333"
GRID = "#e3e3e3"
# Lanes drawn at most: past this the chart would be taller than anyone reads.
MAX_LANES = 60


def _svg(width: int, height: int, body: list[str], title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
            f'width="100%" role="img" aria-label="{escape(title)}" {FONT}>'
            f'<title>{escape(title)}</title>' + "".join(body) + "</svg>")


_STEPS = [timedelta(hours=h) for h in (1, 2, 3, 6, 12)] + \
    [timedelta(days=d) for d in (1, 2, 7, 14, 28, 56, 91, 182, 364)]


def _time_ticks(t0: int, t1: int, most: int = 10) -> list[tuple[int, str]]:
    """Round instants between t0 and t1 with labels, at most `most` of them: hours on
    midnight-aligned steps, weeks on Mondays."""
    first, span = from_us(t0), timedelta(microseconds=t1 - t0)
    step = next((s for s in _STEPS if span / s <= most), _STEPS[-1])
    at = datetime(first.year, first.month, first.day, tzinfo=UTC)
    if step >= timedelta(days=7):
        at -= timedelta(days=first.weekday())
    fmt = "%d %b %H:%M" if step < timedelta(days=1) else "%d %b"
    out = []
    while True:
        value = int((at - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1))
        if value > t1:
            break
        if value >= t0:
            out.append((value, at.strftime(fmt)))
        at += step
    return out


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for k in (1, 2, 2.5, 5, 10):
        if value <= k * power:
            return k * power
    return 10 * power


def weekly_bars(weeks: list[Week], width: int = 720, height: int = 220) -> str:
    """Stacked bars a week: rollouts that held, rollouts rolled back, and rollbacks."""
    left, right, top, bottom = 40, 12, 26, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    body: list[str] = []
    most = max([w.rollouts + w.rollbacks for w in weeks] + [0])
    top_value = _nice_max(most)
    for k in range(5):
        value = top_value * k / 4
        y = top + plot_h - plot_h * k / 4
        body.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
                    f'stroke="{GRID}"/>')
        label = f"{value:g}"
        body.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" '
                    f'fill="{TEXT}">{label}</text>')
    slot = plot_w / max(1, len(weeks))
    bar = min(46.0, slot * 0.7)
    label_every = max(1, math.ceil(len(weeks) / 12))
    for n, week in enumerate(weeks):
        x = left + slot * n + (slot - bar) / 2
        y = top + plot_h
        parts = ((week.rollouts - week.rolled_back, palette.BLUE, "held"),
                 (week.rolled_back, palette.ERROR, "rolled back"),
                 (week.rollbacks, palette.STALE, "rollbacks"))
        day = from_us(week.start).strftime("%d %b")
        for count, colour, what in parts:
            if count <= 0:
                continue
            h = plot_h * count / top_value
            y -= h
            body.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                        f'fill="{colour}"><title>week of {day}: {count} {what}</title></rect>')
        if n % label_every == 0:
            body.append(f'<text x="{x + bar / 2:.1f}" y="{height - bottom + 16}" '
                        f'text-anchor="middle" fill="{TEXT}">{day}</text>')
    body.append(_legend([("rollouts", palette.BLUE), ("rolled back", palette.ERROR),
                         ("rollbacks", palette.STALE)], left, 14))
    return _svg(width, height, body, "Rollouts per week")


def _legend(items: list[tuple[str, str]], x: float, y: float) -> str:
    out = []
    for label, colour in items:
        out.append(f'<rect x="{x:.1f}" y="{y - 9:.1f}" width="10" height="10" '
                   f'fill="{colour}"/><text x="{x + 14:.1f}" y="{y:.1f}" '
                   f'fill="{TEXT}">{escape(label)}</text>')
        x += 22 + 6.5 * len(label)
    return "".join(out)


def durations_over_time(series: list[tuple[str, str, list[tuple[int, float]]]], t0: int,
                        t1: int, width: int = 720, height: int = 220) -> str:
    """Points (instant, seconds) of each (label, colour, points) series, in hours."""
    left, right, top, bottom = 48, 12, 26, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v / 3600 for _, _, points in series for _, v in points]
    top_value = _nice_max(max(values + [0.0]))
    body: list[str] = []
    for k in range(5):
        value = top_value * k / 4
        y = top + plot_h - plot_h * k / 4
        body.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
                    f'stroke="{GRID}"/><text x="{left - 6}" y="{y + 4:.1f}" '
                    f'text-anchor="end" fill="{TEXT}">{value:g} h</text>')

    def x_of(at: int) -> float:
        return left + plot_w * (at - t0) / max(1, t1 - t0)

    for at, label in _time_ticks(t0, t1, most=max(2, plot_w // 110)):
        if x_of(at) > width - right - 30:
            continue  # its label would be cut at the edge
        body.append(f'<line x1="{x_of(at):.1f}" x2="{x_of(at):.1f}" y1="{top}" '
                    f'y2="{top + plot_h}" stroke="{GRID}"/><text x="{x_of(at):.1f}" '
                    f'y="{height - bottom + 16}" text-anchor="middle" '
                    f'fill="{TEXT}">{escape(label)}</text>')
    for name, colour, points in series:
        # Points only: consecutive points are often different groups, a line would
        # suggest a trend of one.
        coords = [(x_of(at), top + plot_h - plot_h * (v / 3600) / top_value)
                  for at, v in sorted(points)]
        for (x, y), (at, v) in zip(coords, sorted(points), strict=True):
            when = from_us(at).strftime("%Y-%m-%d %H:%M")
            body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}">'
                        f'<title>{escape(name)} {v / 3600:.1f} h, {when} UTC</title></circle>')
    if not values:
        body.append(f'<text x="{left + plot_w / 2:.1f}" y="{top + plot_h / 2:.1f}" '
                    f'text-anchor="middle" fill="{TEXT}">nothing measured in this range</text>')
    body.append(_legend([(name, colour) for name, colour, _ in series], left, 14))
    return _svg(width, height, body, "Lead time and time to restore")


def version_lanes(lanes: dict[str, list[Segment]], t0: int, t1: int,
                  colours: dict[str, str], width: int = 960) -> str:
    """One lane a group: its version while it ran one in full, grey while mixed (a rollout
    under way), pale while it had no live instance."""
    names = sorted(lanes)[:MAX_LANES]
    label_w = min(300, 16 + 6.2 * max([len(n) for n in names] + [8]))
    right, top, lane_h, gap, bottom = 12, 30, 16, 5, 30
    height = top + len(names) * (lane_h + gap) + bottom
    plot_w = width - label_w - right

    def x_of(at: int) -> float:
        return label_w + plot_w * (at - t0) / max(1, t1 - t0)

    body: list[str] = []
    for at, label in _time_ticks(t0, t1, most=max(2, int(plot_w // 100))):
        x = x_of(at)
        if x > width - right - 30:
            continue
        body.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top - 4}" '
                    f'y2="{height - bottom}" stroke="{GRID}"/><text x="{x:.1f}" '
                    f'y="{height - bottom + 16}" text-anchor="middle" '
                    f'fill="{TEXT}">{escape(label)}</text>')
    for n, name in enumerate(names):
        y = top + n * (lane_h + gap)
        body.append(f'<text x="{label_w - 8:.1f}" y="{y + lane_h - 4}" text-anchor="end" '
                    f'fill="{TEXT}">{escape(name)}</text>')
        for seg in lanes[name]:
            end = t1 if seg.end is None else seg.end
            x0, x1 = x_of(seg.start), x_of(end)
            if seg.version is not None:
                colour, what = colours.get(seg.version, palette.unknown()), seg.version
            else:
                colour, what = (palette.EMPTY, "no live instance") if seg.empty else \
                    (palette.MIXED, "mixed (rollout under way)")
            span = f"{from_us(seg.start):%Y-%m-%d %H:%M} to {from_us(end):%Y-%m-%d %H:%M}"
            body.append(f'<rect x="{x0:.1f}" y="{y}" width="{max(0.8, x1 - x0):.1f}" '
                        f'height="{lane_h}" fill="{colour}"><title>{escape(name)}: '
                        f'{escape(what)}, {span} UTC</title></rect>')
    legend = [(v, c) for v, c in colours.items()
              if any(s.version == v for name in names for s in lanes[name])]
    body.append(_legend([*legend, ("mixed", palette.MIXED)], label_w, 16))
    if len(lanes) > MAX_LANES:
        body.append(f'<text x="{label_w}" y="{height - 4}" fill="{TEXT}">and '
                    f'{len(lanes) - MAX_LANES} more groups (select fewer groups or scopes '
                    'to see them)</text>')
    return _svg(width, height, body, "Versions over time, a lane per group")
