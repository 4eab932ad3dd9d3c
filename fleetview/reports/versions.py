"""Per version: where it ran in the range, for how long, its instance-hours, who still runs it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fleetview.reports.span_arrays import SpanArrays


@dataclass(frozen=True)
class VersionRow:
    """One version in the range. Instants are integer microseconds; `last_seen` None: still
    running at the range's end. `groups`: "scope/region/group" where it ran (standalone
    instances as "scope/region/(standalone)"); `running_in`: where it runs at the range's
    end, with how many instances."""

    version: str
    first_seen: int
    last_seen: int | None
    instance_hours: float
    instances: int
    groups: tuple[str, ...]
    running_in: tuple[tuple[str, int], ...]

    @property
    def instances_now(self) -> int:
        return sum(n for _, n in self.running_in)


def version_rows(spans: SpanArrays, t0: int, t1: int) -> list[VersionRow]:
    """Live spans clipped to [t0, t1); versions in order of first appearance."""
    lo, hi = np.maximum(spans.start, t0), np.minimum(spans.end, t1)
    inside = hi > lo
    if not inside.any():
        return []
    version, place = spans.version[inside], spans.place[inside]
    instance, lo, hi = spans.instance[inside], lo[inside], hi[inside]
    still = spans.end[inside] >= t1
    names = ["/".join(p) for p in spans.places]
    n = len(spans.versions)
    first = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(first, version, lo)
    last = np.zeros(n, dtype=np.int64)
    np.maximum.at(last, version, hi)
    micro = np.bincount(version, weights=(hi - lo).astype(np.float64), minlength=n)
    running = np.bincount(version, weights=still, minlength=n)
    # Pairs as one integer each: np.unique of integers, not of rows, is the fast one.
    width_i, width_p = int(instance.max()) + 1, max(1, len(spans.places))
    instances = np.bincount(np.unique(version * width_i + instance) // width_i, minlength=n)
    where = np.unique(version * width_p + place)
    now, now_counts = np.unique(version[still] * width_p + place[still], return_counts=True)
    out = []
    for code in np.flatnonzero(np.bincount(version, minlength=n)).tolist():
        mine = where[where // width_p == code] % width_p
        here = now // width_p == code
        out.append(VersionRow(
            spans.versions[code], int(first[code]),
            None if running[code] else int(last[code]), float(micro[code]) / 3.6e9,
            int(instances[code]), tuple(sorted(names[p] for p in mine.tolist())),
            tuple(sorted((names[p], int(c)) for p, c in zip(
                (now[here] % width_p).tolist(), now_counts[here].tolist(), strict=True)))))
    out.sort(key=lambda r: (r.first_seen, r.version))
    return out
