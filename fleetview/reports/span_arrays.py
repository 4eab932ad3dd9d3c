"""The instance spans a report needs, read straight into arrays: one lean query instead of a
DataFrame of every column, since a report reads 90 days of a whole fleet."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import sqlalchemy as sa

from fleetview.store.schema import spans as span_table

OPEN = np.iinfo(np.int64).max
LIVE_STATES = ("pending", "running")
UNKNOWN_VERSION = "(unknown)"
STANDALONE = "(standalone)"


@dataclass
class SpanArrays:
    """Live spans (pending or running) overlapping the range, one entry per span.

    `place` codes index `places` ((scope, region, group) with group STANDALONE for an
    instance outside any group); `version` codes index `versions`; instants are integer
    microseconds, an open end is int64 max."""

    places: list[tuple[str, str, str]]
    versions: list[str]
    place: np.ndarray
    version: np.ndarray
    instance: np.ndarray  # integer codes of instance ids
    instance_id: np.ndarray  # object
    image_id: np.ndarray  # object
    start: np.ndarray
    end: np.ndarray

    def __len__(self) -> int:
        return len(self.start)


def _codes(values, missing: str) -> tuple[np.ndarray, list[str]]:
    """Integer codes of text values (None as `missing`) and the labels they index."""
    codes, labels = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=False)
    labels = [missing if not isinstance(v, str) else v for v in labels.tolist()]
    return codes.astype(np.int64), labels


def read_span_arrays(store, t0: int, t1: int, scopes: tuple[str, ...] = (),
                     groups: tuple[str, ...] = ()) -> SpanArrays:
    s = span_table
    query = sa.select(s.c.scope, s.c.region, s.c.group_name, s.c.instance_id, s.c.version,
                      s.c.image_id, s.c.start_us,
                      sa.func.coalesce(s.c.end_us, sa.literal(OPEN, sa.BigInteger))).where(
        s.c.start_us <= t1, sa.or_(s.c.end_us.is_(None), s.c.end_us > t0),
        s.c.state.in_(LIVE_STATES))
    if scopes:
        query = query.where(s.c.scope.in_(scopes))
    if groups:
        query = query.where(s.c.group_name.in_(groups))
    with store.reading() as conn:
        result = conn.execute(query)
        # Fetched from the driver's cursor: SQLAlchemy's Row objects cost more than the query.
        rows = result.cursor.fetchall()
        result.close()
    if not rows:
        empty = np.zeros(0, dtype=np.int64)
        return SpanArrays([], [], empty, empty, empty, np.zeros(0, object),
                          np.zeros(0, object), empty, empty)
    scope, region, group, iid, version, image, start, end = zip(*rows, strict=True)
    scope_code, scope_names = _codes(scope, "")
    region_code, region_names = _codes(region, "")
    group_code, group_names = _codes(group, STANDALONE)
    combined = (scope_code * len(region_names) + region_code) * len(group_names) + group_code
    place, firsts = pd.factorize(combined)
    places = []
    for value in firsts.tolist():
        rest, g = divmod(value, len(group_names))
        sc, rg = divmod(rest, len(region_names))
        places.append((scope_names[sc], region_names[rg], group_names[g]))
    vcode, versions = _codes(version, UNKNOWN_VERSION)
    instance, _ = _codes(iid, "")
    return SpanArrays(
        places, versions, place.astype(np.int64), vcode, instance,
        np.asarray(iid, dtype=object), np.asarray(image, dtype=object),
        np.asarray(start, dtype=np.int64), np.asarray(end, dtype=np.int64))
