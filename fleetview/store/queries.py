"""Read queries that hand pandas DataFrames to the UI: spans, the fleet at T, version share."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from fleetview.domain.versions import version_key
from fleetview.store.schema import backfills as backfill_table
from fleetview.store.schema import group_spans as gspans
from fleetview.store.schema import images as imgs
from fleetview.store.schema import poll_regions
from fleetview.store.schema import polls as poll_table
from fleetview.store.schema import spans as ispans
from fleetview.store.times import us_column

SPAN_COLUMNS = ["span_id", "provider", "scope", "account", "region", "zone", "group",
                "instance_id", "name", "image_id", "image_name", "version", "state", "start",
                "end", "source", "lifecycle", "state_reason", "standby", "warm"]
# What the clouds say of an instance besides its image: billing, why its state changed, held
# out of service (Standby) or waiting in a warm pool.
INSTANCE_EXTRA = ["lifecycle", "state_reason", "standby", "warm"]
FLEET_COLUMNS = ["provider", "scope", "account", "region", "zone", "group", "instance_id",
                 "name", "image_id", "image_name", "version", "state", "start",
                 "desired_version", "canary_version", "drift", *INSTANCE_EXTRA]
# `notes`: one a line. `source` of a span: "observed", or the records it was inferred from.
GROUP_COLUMNS = ["provider", "scope", "account", "region", "zone", "group", "kind",
                 "desired_version", "desired_image_id", "canary_version", "canary_image_id",
                 "target_size", "updating", "owner", "notes"]
GROUP_SPAN_COLUMNS = ["span_id", *GROUP_COLUMNS, "start", "end", "source"]
BACKFILL_COLUMNS = ["backfill_id", "scope", "provider", "finished", "since", "until", "spans",
                    "group_spans", "records", "api_calls", "gaps", "skipped"]
FRESHNESS_COLUMNS = ["scope", "provider", "region", "last_poll", "last_ok", "ok", "error"]
IMAGE_COLUMNS = ["image_id", "provider", "scope", "name", "version", "created_at", "gone",
                 "deprecated", "first_seen"]
POLL_COLUMNS = ["poll_id", "scope", "provider", "started", "finished", "ok", "error",
                "instances", "api_calls"]
_TIMES = {"start", "end", "last_poll", "last_ok", "created_at", "first_seen", "started",
          "finished", "since", "until"}


_BOOLS = {"ok", "gone", "deprecated", "updating", "drift", "standby", "warm"}
_INTS = {"span_id", "poll_id", "target_size", "instances", "api_calls", "backfill_id", "spans",
         "group_spans", "records"}


def _frame(rows: Sequence[Sequence], columns: Sequence[str]) -> pd.DataFrame:
    """A DataFrame from row tuples: instants (integer microseconds) become
    datetime64[ns, UTC] (NaT for an open end), strings pandas' str dtype (NaN when missing)."""
    # Plain tuples: pandas probes each SQLAlchemy Row for namedtuple fields, at a cost.
    rows = [tuple(r) for r in rows]
    frame = pd.DataFrame.from_records(rows, columns=list(columns), coerce_float=False)
    for name in columns:
        if name in _TIMES:
            frame[name] = pd.to_datetime(frame[name].astype("float64"), unit="us", utc=True
                                         ).astype("datetime64[ns, UTC]")
        elif name in _BOOLS:
            frame[name] = frame[name].astype(bool)
        elif name in _INTS:
            frame[name] = frame[name].astype(np.int64)
        elif not rows:
            frame[name] = frame[name].astype("str")
    return frame


def _image_names(conn: Connection, frame: pd.DataFrame) -> pd.Series:
    """image_name for each row of `frame` (scope, image_id), looked up in pandas: a join
    per span in SQL costs more than the whole scan."""
    if frame.empty:
        return pd.Series([], dtype="str", index=frame.index)
    wanted = sa.select(imgs.c.scope, imgs.c.image_id, imgs.c.name).where(
        imgs.c.scope.in_(frame["scope"].dropna().unique().tolist()))
    names = pd.DataFrame.from_records([tuple(r) for r in conn.execute(wanted)],
                                      columns=["scope", "image_id", "image_name"])
    if names.empty:
        return pd.Series(np.nan, dtype="str", index=frame.index)
    joined = frame[["scope", "image_id"]].merge(names, how="left", on=["scope", "image_id"])
    return pd.Series(joined["image_name"].to_numpy(), dtype="str", index=frame.index)


def _alive(table: sa.Table, at: int | None):
    if at is None:
        return table.c.end_us.is_(None)
    return sa.and_(table.c.start_us <= at,
                   sa.or_(table.c.end_us.is_(None), table.c.end_us > at))


def _overlapping(table: sa.Table, t0: int, t1: int):
    return sa.and_(table.c.start_us <= t1,
                   sa.or_(table.c.end_us.is_(None), table.c.end_us > t0))


def _filters(table: sa.Table, **wanted: Sequence[str] | None) -> list:
    out = []
    for column, values in wanted.items():
        if values is not None:
            out.append(table.c[column].in_(list(values)))
    return out


def _order(conn: Connection, *columns: sa.ColumnElement) -> list:
    """ORDER BY that gives the same order on both databases: code-point order of strings
    (PostgreSQL's default collation would differ) and NULLs first."""
    postgres = conn.dialect.name == "postgresql"
    out = []
    for column in columns:
        if postgres and isinstance(column.type, sa.String):
            column = column.collate("C")
        out.append(column.nulls_first())
    return out


def _sorted(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    # Sorted here, not in SQL: PostgreSQL's collation and NULL order differ from SQLite's.
    return frame.sort_values(by, kind="stable", na_position="first").reset_index(drop=True)


def spans(conn: Connection, t0: int, t1: int, scopes=None, regions=None, groups=None,
          versions=None) -> pd.DataFrame:
    s = ispans
    query = sa.select(
        s.c.span_id, s.c.provider, s.c.scope, s.c.account, s.c.region, s.c.zone,
        s.c.group_name, s.c.instance_id, s.c.name, s.c.image_id, s.c.version, s.c.state,
        s.c.start_us, s.c.end_us, s.c.source, s.c.lifecycle, s.c.state_reason, s.c.standby,
        s.c.warm,
    ).where(_overlapping(s, t0, t1),
            *_filters(s, scope=scopes, region=regions, group_name=groups, version=versions),
    ).order_by(*_order(conn, s.c.scope, s.c.region, s.c.group_name, s.c.instance_id,
                       s.c.start_us))
    columns = [c for c in SPAN_COLUMNS if c != "image_name"]
    frame = _frame(conn.execute(query).all(), columns)
    frame.insert(SPAN_COLUMNS.index("image_name"), "image_name", _image_names(conn, frame))
    return frame


# What rollback readiness sweeps: no names, zones or image names to join.
HISTORY_COLUMNS = ["scope", "region", "group", "instance_id", "version", "image_id", "state",
                   "start", "end", "source"]


def group_history(conn: Connection, t0: int, t1: int, scopes=None, regions=None,
                  groups=None) -> pd.DataFrame:
    """The grouped instances' spans over [t0, t1], lean: one read for every group a caller
    checks (the readiness table) costs what one group's full spans() read costs."""
    s = ispans
    query = sa.select(
        s.c.scope, s.c.region, s.c.group_name, s.c.instance_id, s.c.version, s.c.image_id,
        s.c.state, s.c.start_us, s.c.end_us, s.c.source,
    ).where(_overlapping(s, t0, t1), s.c.group_name.is_not(None),
            *_filters(s, scope=scopes, region=regions, group_name=groups),
    ).order_by(*_order(conn, s.c.scope, s.c.region, s.c.group_name, s.c.instance_id,
                       s.c.start_us))
    return _frame(conn.execute(query).all(), HISTORY_COLUMNS)


def group_spans(conn: Connection, t0: int, t1: int, scopes=None, regions=None,
                groups=None) -> pd.DataFrame:
    g = gspans
    query = sa.select(
        g.c.span_id, g.c.provider, g.c.scope, g.c.account, g.c.region, g.c.zone,
        g.c.group_name, g.c.kind, g.c.desired_version, g.c.desired_image_id,
        g.c.canary_version, g.c.canary_image_id, g.c.target_size, g.c.updating, g.c.owner,
        g.c.notes, g.c.start_us, g.c.end_us, g.c.source,
    ).where(_overlapping(g, t0, t1),
            *_filters(g, scope=scopes, region=regions, group_name=groups))
    frame = _frame(conn.execute(query).all(), GROUP_SPAN_COLUMNS)
    return _sorted(frame, ["scope", "region", "group", "start"])


def groups_at(conn: Connection, at: int | None) -> pd.DataFrame:
    g = gspans
    query = sa.select(
        g.c.provider, g.c.scope, g.c.account, g.c.region, g.c.zone, g.c.group_name, g.c.kind,
        g.c.desired_version, g.c.desired_image_id, g.c.canary_version, g.c.canary_image_id,
        g.c.target_size, g.c.updating, g.c.owner, g.c.notes,
    ).where(_alive(g, at))
    frame = _frame(conn.execute(query).all(), GROUP_COLUMNS)
    return _sorted(frame, ["scope", "region", "group"])


def fleet_at(conn: Connection, at: int | None) -> pd.DataFrame:
    s = ispans
    query = sa.select(
        s.c.provider, s.c.scope, s.c.account, s.c.region, s.c.zone, s.c.group_name,
        s.c.instance_id, s.c.name, s.c.image_id, s.c.version, s.c.state, s.c.start_us,
        s.c.lifecycle, s.c.state_reason, s.c.standby, s.c.warm, s.c.desired_version,
    ).where(_alive(s, at), s.c.state != "terminated").order_by(
        *_order(conn, s.c.scope, s.c.region, s.c.group_name, s.c.instance_id))
    columns = ["provider", "scope", "account", "region", "zone", "group", "instance_id",
               "name", "image_id", "version", "state", "start", *INSTANCE_EXTRA, "own_desired"]
    frame = _frame(conn.execute(query).all(), columns)
    frame.insert(columns.index("image_id") + 1, "image_name", _image_names(conn, frame))
    wanted = groups_at(conn, at)[["scope", "region", "group", "desired_version",
                                  "canary_version"]]
    frame = frame.merge(wanted, how="left", on=["scope", "region", "group"])
    # An instance of a type a mixed instances override launches from its own template or AMI
    # wants that override's version, not the group's (drift per instance type).
    own = frame["own_desired"]
    frame["desired_version"] = own.where(own.notna(), frame["desired_version"])
    # Drift: the group says what it wants and the instance runs something else (a MIG's
    # canary version is wanted too).
    desired = frame["desired_version"]
    frame["drift"] = (
        frame["group"].notna() & desired.notna() & (frame["version"] != desired)
        & (frame["version"] != frame["canary_version"]) & ~frame["warm"]
    ).astype(bool)
    return frame[FLEET_COLUMNS]


def version_share(conn: Connection, scope: str | None, region: str | None, group: str | None,
                  t0: int, t1: int, step: int) -> pd.DataFrame:
    """Instances per version at t0, t0 + step, ... up to t1 (not terminated ones)."""
    s = ispans
    query = sa.select(s.c.version, s.c.start_us, s.c.end_us).where(
        _overlapping(s, t0, t1), s.c.state != "terminated",
        *[s.c[col] == value for col, value in
          (("scope", scope), ("region", region), ("group_name", group)) if value is not None])
    rows = conn.execute(query).all()
    steps = np.arange(t0, t1 + 1, step, dtype=np.int64)
    by_version: dict[str | None, tuple[list[int], list[int]]] = {}
    for version, start, end in rows:
        starts, ends = by_version.setdefault(version, ([], []))
        starts.append(start)
        ends.append(np.iinfo(np.int64).max if end is None else end)
    counts = {}
    for version in sorted(by_version, key=version_key):
        starts, ends = (np.sort(np.asarray(a, dtype=np.int64)) for a in by_version[version])
        alive = (np.searchsorted(starts, steps, side="right")
                 - np.searchsorted(ends, steps, side="right"))
        counts[version] = alive.astype(np.int64)
    index = us_column(steps.tolist())
    index.name = "time"
    return pd.DataFrame(counts, index=index, columns=list(counts))


def freshness(conn: Connection) -> pd.DataFrame:
    pr = poll_regions
    latest = (
        sa.select(pr.c.scope, pr.c.region,
                  sa.func.max(pr.c.poll_id).label("last_id"),
                  sa.func.max(sa.case((pr.c.ok, pr.c.finished_us))).label("last_ok"))
        .group_by(pr.c.scope, pr.c.region).subquery()
    )
    query = (
        sa.select(pr.c.scope, poll_table.c.provider, pr.c.region, pr.c.finished_us,
                  latest.c.last_ok, pr.c.ok, pr.c.error)
        .select_from(
            pr.join(latest, sa.and_(latest.c.last_id == pr.c.poll_id,
                                    latest.c.scope == pr.c.scope,
                                    sa.or_(latest.c.region == pr.c.region,
                                           sa.and_(latest.c.region.is_(None),
                                                   pr.c.region.is_(None)))))
            .join(poll_table, poll_table.c.poll_id == pr.c.poll_id))
    )
    best: dict[tuple, list] = {}
    for scope, provider, region, finished, last_ok, ok, error in conn.execute(query):
        row = [scope, provider, region, finished, last_ok, bool(ok), error]
        key = (scope, region)
        if key not in best or best[key][3] < finished:
            best[key] = row
    # A whole-scope failure (region NULL) speaks for every region of that scope.
    scope_wide = {k[0]: v for k, v in best.items() if k[1] is None}
    out = []
    for (scope, region), row in best.items():
        wide = scope_wide.get(scope)
        if region is None:
            if any(k[0] == scope and k[1] is not None for k in best):
                continue
        elif wide is not None:
            row = list(row)
            if wide[3] > row[3]:
                row[1], row[3], row[5], row[6] = wide[1], wide[3], wide[5], wide[6]
            if wide[4] is not None and (row[4] is None or wide[4] > row[4]):
                row[4] = wide[4]
        out.append(row)
    frame = _frame(out, FRESHNESS_COLUMNS)
    return _sorted(frame, ["scope", "region"])


def images(conn: Connection) -> pd.DataFrame:
    i = imgs
    query = sa.select(i.c.image_id, i.c.provider, i.c.scope, i.c.name, i.c.version,
                      i.c.created_us, i.c.gone, i.c.deprecated, i.c.first_seen_us)
    frame = _frame(conn.execute(query).all(), IMAGE_COLUMNS)
    return _sorted(frame, ["scope", "image_id"])


def polls(conn: Connection, t0: int | None, t1: int | None, scopes=None) -> pd.DataFrame:
    p = poll_table
    conditions = _filters(p, scope=scopes)
    if t0 is not None:
        conditions.append(p.c.finished_us >= t0)
    if t1 is not None:
        conditions.append(p.c.finished_us <= t1)
    query = sa.select(p.c.poll_id, p.c.scope, p.c.provider, p.c.started_us, p.c.finished_us,
                      p.c.ok, p.c.error, p.c.instances, p.c.api_calls).where(*conditions)
    frame = _frame(conn.execute(query).all(), POLL_COLUMNS)
    return frame.sort_values(["finished", "poll_id"]).reset_index(drop=True)


def backfills(conn: Connection, scopes=None) -> pd.DataFrame:
    b = backfill_table
    query = sa.select(b.c.backfill_id, b.c.scope, b.c.provider, b.c.finished_us, b.c.since_us,
                      b.c.until_us, b.c.spans, b.c.group_spans, b.c.records, b.c.api_calls,
                      b.c.gaps, b.c.skipped).where(*_filters(b, scope=scopes))
    frame = _frame(conn.execute(query).all(), BACKFILL_COLUMNS)
    return frame.sort_values(["finished", "backfill_id"]).reset_index(drop=True)


__all__ = ["backfills", "fleet_at", "freshness", "group_history", "groups_at", "images",
           "polls", "spans", "version_share"]
