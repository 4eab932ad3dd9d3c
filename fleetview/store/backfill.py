"""Writing a backfill: the spans a scope's cloud records support, stored apart from observed
ones (their `source`), before the scope's observed history begins, never over it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from fleetview.domain.backfill import OBSERVED, Backfill, infer, versions_of
from fleetview.domain.model import Image, Scope
from fleetview.store.bulk import insert
from fleetview.store.schema import backfills, group_spans, images, spans
from fleetview.store.times import from_us, now_us, to_us

# An inferred span says only that the instance ran; a terminated one simply ends.
INFERRED_STATE = "running"
_SPAN_COLUMNS = ("provider", "scope", "account", "region", "zone", "group_name", "instance_id",
                 "name", "image_id", "version", "state", "start_us", "end_us", "source",
                 "standby", "warm")
_GROUP_COLUMNS = ("provider", "scope", "account", "region", "zone", "group_name", "kind",
                  "desired_image_id", "desired_version", "target_size", "updating", "start_us",
                  "end_us", "source")


@dataclass(frozen=True)
class BackfillSummary:
    """What one backfill wrote: spans (instances, groups), gaps left, records read, where
    observed history begins (`until`: nothing inferred reaches past it), and what it skipped."""

    scope: str
    spans: int
    group_spans: int
    gaps: int
    records: int
    since: datetime
    until: datetime
    gap_summary: str = ""
    skipped: tuple[str, ...] = ()
    api_calls: int = 0

    def describe(self) -> str:
        text = (f"{self.scope}: rebuilt {self.spans} instance spans and {self.group_spans} group "
                f"spans from {self.records} cloud records ({self.since:%Y-%m-%d} to "
                f"{self.until:%Y-%m-%d %H:%M} UTC, {self.api_calls} API calls)")
        if self.gap_summary:
            text += f"; {self.gap_summary}"
        if self.skipped:
            text += "; skipped: " + "; ".join(self.skipped)
        return text


def observed_since(conn: Connection, scope: str) -> int | None:
    """When the scope's observed history begins (microseconds), None if it has none."""
    first = None
    for table in (spans, group_spans):
        found = conn.execute(sa.select(sa.func.min(table.c.start_us)).where(
            table.c.scope == scope, table.c.source == OBSERVED)).scalar()
        if found is not None and (first is None or found < first):
            first = int(found)
    return first


def write_backfill(conn: Connection, scope: Scope, backfill: Backfill, since: datetime,
                   until: datetime, version_of: Callable[[Image], str],
                   claim: Callable[[Connection, str, int], tuple]) -> BackfillSummary:
    """Infer spans from `backfill` for [since, until), clipped to before the scope's observed
    history, replacing what an earlier backfill inferred for that range; record the backfill.
    `claim` takes the scope's write lock (Store._claim)."""
    name = scope.name
    claim(conn, name, 0)
    first = observed_since(conn, name)
    until_us = to_us(until) if first is None else min(to_us(until), first)
    since_us = min(to_us(since), until_us)
    bound = from_us(until_us)
    inference = infer(backfill.records, from_us(since_us), bound)
    for table in (spans, group_spans):
        conn.execute(sa.delete(table).where(
            table.c.scope == name, table.c.source != OBSERVED, table.c.start_us < until_us,
            table.c.end_us > since_us))
    known = dict(conn.execute(sa.select(images.c.image_id, images.c.version)
                              .where(images.c.scope == name)).all())
    versions = versions_of(backfill, version_of, known)
    instance_rows = [(
        scope.provider, name, scope.account, s.region, s.zone, s.group, s.instance_id, s.name,
        s.image_id, versions.get(s.image_id, s.image_id), INFERRED_STATE, to_us(s.start),
        to_us(s.end), s.source, False, False,
    ) for s in inference.spans]
    group_rows = [(
        scope.provider, name, scope.account, g.region, g.zone, g.group, g.kind or "group",
        g.image_id, versions.get(g.image_id, g.image_id) if g.image_id else None, 0, False,
        to_us(g.start), to_us(g.end), g.source,
    ) for g in inference.group_spans]
    insert(conn, spans, _SPAN_COLUMNS, instance_rows)
    insert(conn, group_spans, _GROUP_COLUMNS, group_rows)
    _write_images(conn, scope, backfill, version_of, set(known), until_us)
    skipped = tuple(backfill.skipped)
    gap_text = inference.gap_summary()
    conn.execute(sa.insert(backfills).values(
        scope=name, provider=scope.provider, finished_us=now_us(), since_us=since_us,
        until_us=until_us, spans=len(instance_rows), group_spans=len(group_rows),
        records=len(backfill.records), api_calls=int(backfill.api_calls),
        gaps=gap_text or None, skipped="\n".join(skipped) or None))
    return BackfillSummary(name, len(instance_rows), len(group_rows), len(inference.gaps),
                           len(backfill.records), from_us(since_us), bound,
                           gap_text, skipped, int(backfill.api_calls))


def _write_images(conn: Connection, scope: Scope, backfill: Backfill,
                  version_of: Callable[[Image], str], known: set[str], at: int) -> None:
    """Images the records name that the store has not seen yet, so spans show their names;
    images a poll already wrote are its to keep current."""
    rows = [{
        "scope": scope.name, "image_id": image_id, "provider": image.provider,
        "name": image.name, "version": version_of(image),
        "created_us": to_us(image.created_at) if image.created_at else None,
        "deprecated": bool(image.deprecated), "gone": bool(image.gone),
        "first_seen_us": at, "last_seen_us": at,
    } for image_id, image in backfill.images.items() if image_id not in known]
    if rows:
        conn.execute(sa.insert(images), rows)
