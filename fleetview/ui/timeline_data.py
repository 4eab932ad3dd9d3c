"""The timeline's arrays: spans as row-sorted numpy segments, and the rows' layout."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fleetview.domain.versions import version_key

GroupKey = tuple[str, str, str | None]  # scope, region, group (None: standalone instances)
HEADER, INSTANCE = 0, 1
_EPOCH = pd.Timestamp(0, tz="UTC")


def epoch_seconds(values) -> np.ndarray:
    """datetime64 (any unit, UTC) -> float seconds since the epoch; NaT -> nan."""
    times = pd.to_datetime(pd.Series(values), utc=True)
    return ((times - _EPOCH) / pd.Timedelta(seconds=1)).to_numpy(dtype=float, na_value=np.nan)


@dataclass
class TimelineData:
    """Instances ordered by scope, region, group, then launch; segments by instance, start.

    An open span (end NaT) has end = +inf; the widget draws it up to now.
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
                       first=("x0", "min"))
                  .reset_index())
        # Newest launch first inside a group: the instances running now are on top, and a
        # rollout draws as a staircase.
        inst["newest"] = -inst["first"]
        inst = inst.sort_values(["scope", "region", "group_sort", "newest", "instance_id"],
                                kind="stable").reset_index(drop=True)
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

        version_series = spans["version"].astype(object).where(spans["version"].notna(), None)
        versions = sorted({v for v in version_series if v is not None}, key=version_key)
        code_of = {v: i for i, v in enumerate(versions)}
        seg_ver = np.fromiter((code_of.get(v, len(versions)) for v in version_series),
                              dtype=np.int64, count=len(spans))
        if (seg_ver == len(versions)).any():
            versions.append(None)

        order = np.lexsort((df["x0"].to_numpy(), seg_inst))
        image = spans["image_name"].astype("string").fillna("").to_numpy(dtype=object)
        image_id = spans["image_id"].astype("string").fillna("").to_numpy(dtype=object)
        image = np.where(image == "", image_id, image)
        return cls(
            groups=groups,
            inst_key=inst["key"].to_numpy(dtype=object),
            inst_id=inst["instance_id"].to_numpy(dtype=object),
            inst_name=inst["name"].to_numpy(dtype=object),
            inst_group=np.asarray(group_codes, dtype=np.int64),
            seg_inst=seg_inst[order].astype(np.int64),
            seg_x0=df["x0"].to_numpy()[order],
            seg_x1=df["x1"].to_numpy()[order],
            seg_ver=seg_ver[order],
            seg_image=image[order],
            seg_state=spans["state"].astype("string").fillna("").to_numpy(dtype=object)[order],
            versions=versions,
        )


@dataclass
class TimelineLayout:
    """Which row each group header and instance gets, given the collapsed groups.

    `seg` indexes TimelineData's segment arrays in row order (then start), `seg_row` is each
    one's row, non-decreasing, so the rows in view are one searchsorted slice.
    """

    row_kind: np.ndarray  # HEADER or INSTANCE
    row_ref: np.ndarray  # group index for a header, instance index for an instance row
    inst_row: np.ndarray  # row of each instance, -1 when its group is collapsed
    seg: np.ndarray
    seg_row: np.ndarray
    collapsed: frozenset[int]

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


def make_layout(data: TimelineData, collapsed: frozenset[int] = frozenset()) -> TimelineLayout:
    n_inst = data.n_instances
    if not n_inst:
        empty = np.empty(0, np.int64)
        return TimelineLayout(empty.astype(np.int8), empty, empty, empty, empty, collapsed)
    # Instances are sorted by group, so each group's instances are one contiguous run.
    starts = np.flatnonzero(np.r_[True, data.inst_group[1:] != data.inst_group[:-1]])
    ends = np.r_[starts[1:], n_inst]
    kinds, refs = [], []
    inst_row = np.full(n_inst, -1, dtype=np.int64)
    row = 0
    for lo, hi in zip(starts, ends, strict=True):
        g = int(data.inst_group[lo])
        kinds.append(np.array([HEADER], np.int8))
        refs.append(np.array([g], np.int64))
        row += 1
        if g in collapsed:
            continue
        kinds.append(np.full(hi - lo, INSTANCE, np.int8))
        refs.append(np.arange(lo, hi, dtype=np.int64))
        inst_row[lo:hi] = np.arange(row, row + hi - lo)
        row += hi - lo
    seg_rows_all = inst_row[data.seg_inst]
    seg = np.flatnonzero(seg_rows_all >= 0)
    return TimelineLayout(np.concatenate(kinds), np.concatenate(refs), inst_row, seg,
                          seg_rows_all[seg], collapsed)
