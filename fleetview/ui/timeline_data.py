"""The timeline's arrays: spans as row-sorted numpy segments, and the rows' layout."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fleetview.domain.versions import version_key
from fleetview.ui.timeline_mix import VersionMix

GroupKey = tuple[str, str, str | None]  # scope, region, group (None: standalone instances)
HEADER, INSTANCE, BAND = 0, 1, 2
BAND_ROWS = 2  # rows a collapsed group's summary band takes under its header
OBSERVED = "observed"  # a span a poll saw; any other `source` was rebuilt from cloud records
_EPOCH = pd.Timestamp(0, tz="UTC")


def _interned(values) -> np.ndarray:
    """Strings as an object array sharing one str per distinct value: a million spans name a
    few dozen images, and one str object per span would cost tens of megabytes."""
    codes, uniques = pd.factorize(pd.Series(values).astype("string").fillna(""))
    return np.asarray(uniques, dtype=object)[codes] if len(uniques) else \
        np.full(len(codes), "", dtype=object)


def epoch_seconds(values) -> np.ndarray:
    """datetime64 (any unit, UTC) -> float seconds since the epoch; NaT -> nan."""
    times = pd.to_datetime(pd.Series(values), utc=True)
    return ((times - _EPOCH) / pd.Timedelta(seconds=1)).to_numpy(dtype=float, na_value=np.nan)


@dataclass
class TimelineData:
    """Instances ordered by scope, region, group, then live ones (an open span) first, newest
    launch first; segments by instance, start.

    An open span (end NaT) has end = +inf; the widget draws it up to now. `seg_source` codes
    index `sources`: 0 is "observed" (polled), others name the cloud record a span was
    inferred from. `mix` is each group's version mix over time, for the summary bands.
    """

    groups: list[GroupKey] = field(default_factory=list)
    inst_key: np.ndarray = field(default_factory=lambda: np.empty(0, object))  # scope/id
    inst_id: np.ndarray = field(default_factory=lambda: np.empty(0, object))
    inst_name: np.ndarray = field(default_factory=lambda: np.empty(0, object))
    inst_group: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    seg_inst: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    seg_x0: np.ndarray = field(default_factory=lambda: np.empty(0, float))
    seg_x1: np.ndarray = field(default_factory=lambda: np.empty(0, float))
    seg_ver: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    seg_image: np.ndarray = field(default_factory=lambda: np.empty(0, object))
    seg_state: np.ndarray = field(default_factory=lambda: np.empty(0, object))
    versions: list[str | None] = field(default_factory=list)
    inst_first: np.ndarray = field(default_factory=lambda: np.empty(0, float))  # first start
    inst_last: np.ndarray = field(default_factory=lambda: np.empty(0, float))  # last end, inf
    seg_source: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    sources: list[str] = field(default_factory=lambda: [OBSERVED])
    mix: VersionMix = field(default_factory=VersionMix)

    @property
    def n_instances(self) -> int:
        return len(self.inst_id)

    @property
    def n_segments(self) -> int:
        return len(self.seg_x0)

    def time_bounds(self, now: float) -> tuple[float, float] | None:
        if not self.n_segments:
            return None
        return float(np.nanmin(self.seg_x0)), float(np.nanmax(np.minimum(self.seg_x1, now)))

    @property
    def inst_live(self) -> np.ndarray:
        return np.isposinf(self.inst_last)

    def in_range(self, t0: float, t1: float, now: float) -> np.ndarray:
        """Per instance: it has a span in [t0, t1] (its life from first start to last end,
        an open one drawn to `now`, overlaps it)."""
        return (self.inst_first <= t1) & (np.minimum(self.inst_last, now) >= t0)

    def group_label(self, g: int) -> str:
        scope, region, group = self.groups[g]
        return f"{group or 'standalone'}  ·  {scope} / {region}"

    @classmethod
    def from_spans(cls, spans: pd.DataFrame) -> TimelineData:
        if spans is None or not len(spans):
            return cls()
        df = pd.DataFrame({
            "scope": spans["scope"].astype(str).to_numpy(),
            "region": spans["region"].astype("string").fillna("").to_numpy(dtype=object),
            "group": spans["group"].astype(object).where(spans["group"].notna(), None).to_numpy(),
            "instance_id": spans["instance_id"].astype(str).to_numpy(),
            "name": spans["name"].astype("string").fillna("").to_numpy(dtype=object),
            "x0": epoch_seconds(spans["start"]),
            "x1": epoch_seconds(spans["end"]),
        })
        df["x1"] = df["x1"].fillna(np.inf)
        df["key"] = df["scope"] + "\x1f" + df["instance_id"]
        # Standalone instances sort after the groups of their region.
        df["group_sort"] = np.where(pd.isna(df["group"]), "\uffff", df["group"].astype(object))

        inst = (df.groupby("key", sort=False)
                  .agg(scope=("scope", "first"), region=("region", "last"),
                       group=("group", "last"), group_sort=("group_sort", "last"),
                       instance_id=("instance_id", "first"), name=("name", "last"),
                       first=("x0", "min"), last=("x1", "max"))
                  .reset_index())
        # The instances running now on top, newest launch first, so a rollout draws as a
        # staircase; then the gone ones, the latest to go first.
        live = np.isposinf(inst["last"].to_numpy())
        inst["gone"] = ~live
        inst["newest"] = -np.where(live, inst["first"], inst["last"])
        inst = inst.sort_values(["scope", "region", "group_sort", "gone", "newest",
                                 "instance_id"], kind="stable").reset_index(drop=True)
        group_codes, group_uniques = pd.factorize(
            inst["scope"] + "\x1f" + inst["region"] + "\x1f" + inst["group_sort"], sort=False)
        first_of_group = np.unique(group_codes, return_index=True)[1]
        groups: list[GroupKey] = [
            (inst["scope"].iat[i], inst["region"].iat[i],
             None if pd.isna(inst["group"].iat[i]) else str(inst["group"].iat[i]))
            for i in first_of_group
        ]
        position = pd.Series(np.arange(len(inst)), index=inst["key"].to_numpy())
        seg_inst = position.loc[df["key"].to_numpy()].to_numpy()

        # Versions coded by factorize (a million spans name a handful), then renumbered in
        # version order; a span without one gets the code after the last (None).
        ver_codes, ver_uniques = pd.factorize(spans["version"].astype(object))
        versions = sorted({str(v) for v in ver_uniques}, key=version_key)
        code_of = {v: i for i, v in enumerate(versions)}
        renumber = np.array([code_of[str(v)] for v in ver_uniques] + [len(versions)], np.int64)
        seg_ver = renumber[ver_codes]  # factorize's -1 (missing) takes the last entry
        if (ver_codes < 0).any():
            versions.append(None)

        order = np.lexsort((df["x0"].to_numpy(), seg_inst))
        image = spans["image_name"].astype("string").fillna("")
        image = _interned(image.where(image != "",
                                      spans["image_id"].astype("string").fillna("")))
        sources = [OBSERVED]
        seg_source = np.zeros(len(spans), np.int64)
        if "source" in spans.columns:
            source = spans["source"].astype("string").fillna(OBSERVED).to_numpy(dtype=object)
            codes, uniques = pd.factorize(source)
            sources += [str(u) for u in uniques if u != OBSERVED]
            code_of_source = {name: n for n, name in enumerate(sources)}
            seg_source = np.asarray([code_of_source[str(u)] for u in uniques],
                                    np.int64)[codes] if len(uniques) else seg_source
        inst_group = np.asarray(group_codes, dtype=np.int64)
        seg_inst = seg_inst[order].astype(np.int64)
        seg_ver = seg_ver[order]
        x0, x1 = df["x0"].to_numpy()[order], df["x1"].to_numpy()[order]
        state = _interned(spans["state"])[order]
        mix = VersionMix.from_segments(inst_group[seg_inst], seg_ver, x0, x1, len(groups),
                                       len(versions), counted=state != "terminated")
        return cls(
            groups=groups,
            inst_key=inst["key"].to_numpy(dtype=object),
            inst_id=inst["instance_id"].to_numpy(dtype=object),
            inst_name=inst["name"].to_numpy(dtype=object),
            inst_group=inst_group,
            seg_inst=seg_inst,
            seg_x0=x0,
            seg_x1=x1,
            seg_ver=seg_ver,
            seg_image=image[order],
            seg_state=state,
            versions=versions,
            inst_first=inst["first"].to_numpy(dtype=float),
            inst_last=inst["last"].to_numpy(dtype=float),
            seg_source=seg_source[order],
            sources=sources,
            mix=mix,
        )


@dataclass
class TimelineLayout:
    """Which row each group header, summary band and instance gets.

    A collapsed group is its header and BAND_ROWS rows of its version mix; an expanded one
    its header and the instances shown. `seg` indexes TimelineData's segment arrays in row
    order (then start), `seg_row` is each one's row, non-decreasing, so the rows in view are
    one searchsorted slice.
    """

    row_kind: np.ndarray  # HEADER, INSTANCE or BAND
    row_ref: np.ndarray  # group index for a header or band, instance index for an instance
    inst_row: np.ndarray  # row of each instance, -1 when not shown (collapsed or hidden)
    seg: np.ndarray
    seg_row: np.ndarray
    collapsed: frozenset[int]
    group_row: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))  # header, -1
    shown_count: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))  # per group

    @property
    def n_rows(self) -> int:
        return len(self.row_kind)

    @property
    def header_rows(self) -> np.ndarray:
        return np.flatnonzero(self.row_kind == HEADER)

    def segments_of_row(self, row: int) -> slice:
        lo = int(np.searchsorted(self.seg_row, row, "left"))
        hi = int(np.searchsorted(self.seg_row, row, "right"))
        return slice(lo, hi)


def make_layout(data: TimelineData, collapsed: frozenset[int] = frozenset(),
                shown: np.ndarray | None = None,
                groups_shown: np.ndarray | None = None) -> TimelineLayout:
    """Rows for `data`: every group in `groups_shown` (default all) gets a header; a group in
    `collapsed` a summary band, the others a row per instance in `shown` (default all)."""
    n_inst, n_groups = data.n_instances, len(data.groups)
    if not n_inst:
        empty = np.empty(0, np.int64)
        return TimelineLayout(empty.astype(np.int8), empty, empty, empty, empty, collapsed,
                              np.full(n_groups, -1, np.int64), np.zeros(n_groups, np.int64))
    # Instances are sorted by group, so each group's instances are one contiguous run.
    g_of = data.inst_group
    is_collapsed = np.zeros(n_groups, bool)
    is_collapsed[[g for g in collapsed if 0 <= g < n_groups]] = True
    has_header = np.ones(n_groups, bool) if groups_shown is None else np.asarray(groups_shown,
                                                                                 bool).copy()
    present = np.zeros(n_groups, bool)
    present[g_of] = True
    has_header &= present
    show = np.ones(n_inst, bool) if shown is None else np.asarray(shown, bool).copy()
    show &= ~is_collapsed[g_of] & has_header[g_of]
    shown_count = np.bincount(g_of[show], minlength=n_groups).astype(np.int64)
    rows_per = np.where(has_header, 1 + np.where(is_collapsed, BAND_ROWS, shown_count), 0)
    group_row = np.cumsum(rows_per) - rows_per
    group_row[~has_header] = -1
    n_rows = int(rows_per.sum())
    row_kind = np.full(n_rows, INSTANCE, np.int8)
    row_ref = np.zeros(n_rows, np.int64)
    headed = np.flatnonzero(has_header)
    row_kind[group_row[headed]] = HEADER
    row_ref[group_row[headed]] = headed
    banded = np.flatnonzero(has_header & is_collapsed)
    for k in range(1, BAND_ROWS + 1):
        row_kind[group_row[banded] + k] = BAND
        row_ref[group_row[banded] + k] = banded
    idx = np.flatnonzero(show)
    # An instance's place among its group's shown ones: its rank overall less the group's
    # first rank (groups are contiguous, so ranks run on from group to group).
    rank = np.arange(len(idx))
    first_rank = np.r_[0, np.cumsum(shown_count)][:-1]
    inst_row = np.full(n_inst, -1, dtype=np.int64)
    inst_row[idx] = group_row[g_of[idx]] + 1 + rank - first_rank[g_of[idx]]
    row_ref[inst_row[idx]] = idx
    seg_rows_all = inst_row[data.seg_inst]
    seg = np.flatnonzero(seg_rows_all >= 0)
    return TimelineLayout(row_kind, row_ref, inst_row, seg, seg_rows_all[seg],
                          frozenset(collapsed), group_row, shown_count)
