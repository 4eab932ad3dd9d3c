"""A report over a time range: read the store once, then work out every row and figure."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import sqlalchemy as sa

from fleetview.domain.backfill import OBSERVED
from fleetview.reports.journal_rows import ActionRow, read_actions
from fleetview.reports.lanes import Segment, group_spans_of, segments
from fleetview.reports.metrics import Metrics, Week, compute, weeks
from fleetview.reports.params import ReportArgumentError, ReportParams
from fleetview.reports.rollouts import Rollout, desired_spans, group_rollouts, mark_failures
from fleetview.reports.span_arrays import read_span_arrays
from fleetview.reports.versions import VersionRow, version_rows
from fleetview.store.schema import backfills, group_spans, polls
from fleetview.store.schema import spans as span_table
from fleetview.store.times import from_us, to_us


@dataclass(frozen=True)
class Report:
    """Everything a report shows; instants are integer microseconds (UTC).

    `lanes`: each group's segments clipped to the range, by "scope/region/group".
    `watched`: each scope's first and last poll the store holds, to say what the report
    cannot see (a range that starts before FleetView watched). `rebuilt`: where each scope's
    history rebuilt from cloud records (backfill) begins, for the scopes that have some."""

    params: ReportParams
    generated: int
    rollouts: list[Rollout]
    actions: list[ActionRow]
    versions: list[VersionRow]
    metrics: Metrics
    weeks: list[Week]
    lanes: dict[str, list[Segment]] = field(default_factory=dict)
    watched: dict[str, tuple[int, int]] = field(default_factory=dict)
    rebuilt: dict[str, int] = field(default_factory=dict)

    @property
    def t0(self) -> int:
        return to_us(self.params.start)

    @property
    def t1(self) -> int:
        return to_us(self.params.end)

    def notes(self) -> list[str]:
        """What the reader should know about what this report cannot see."""
        out = []
        if not self.watched and not self.rebuilt:
            out.append("The store holds no poll of the selected scopes: nothing was "
                       "observed, so there is nothing to report.")
        for scope in sorted(set(self.watched) | set(self.rebuilt)):
            first = self.watched[scope][0] if scope in self.watched else None
            begun = self.rebuilt.get(scope)
            if begun is not None and (first is None or begun < first):
                # Backfill: the history reaches back before the first poll.
                if first is None:
                    text = (f"FleetView has not polled {scope} yet: its history from "
                            f"{_when(begun)} was rebuilt from cloud records.")
                elif first > self.t0:
                    text = (f"FleetView has watched {scope} since {_when(first)}; its history "
                            f"from {_when(begun)} until then was rebuilt from cloud records.")
                else:
                    continue
                if begun > self.t0:
                    text += f" Rollouts before {_when(begun)} are not in this report."
                out.append(text)
            elif first is not None and first > self.t0:
                out.append(f"FleetView has watched {scope} only since {_when(first)}: "
                           "rollouts before that are not in this report.")
        return out


def _when(t: int) -> str:
    return f"{from_us(t):%Y-%m-%d %H:%M} UTC"


def _first_and_last_polls(store, scopes: tuple[str, ...]) -> dict[str, tuple[int, int]]:
    query = sa.select(polls.c.scope, sa.func.min(polls.c.started_us),
                      sa.func.max(polls.c.finished_us)).group_by(polls.c.scope)
    if scopes:
        query = query.where(polls.c.scope.in_(scopes))
    with store.reading() as conn:
        return {scope: (int(a), int(b)) for scope, a, b in conn.execute(query)}


def _rebuilt_since(store, scopes: tuple[str, ...]) -> dict[str, int]:
    """Where each backfilled scope's history begins: its earliest span not observed."""
    ran = sa.select(backfills.c.scope, sa.func.max(backfills.c.until_us)).group_by(
        backfills.c.scope)
    if scopes:
        ran = ran.where(backfills.c.scope.in_(scopes))
    out: dict[str, int] = {}
    with store.reading() as conn:
        for scope, until in conn.execute(ran).all():
            for table in (span_table, group_spans):
                # Inferred spans end by the backfill's `until`: (scope, end_us) finds them
                # without reading the scope's observed history.
                first = conn.execute(sa.select(sa.func.min(table.c.start_us)).where(
                    table.c.scope == scope, table.c.end_us <= until,
                    table.c.source != OBSERVED)).scalar()
                if first is not None:
                    out[scope] = min(int(first), out.get(scope, int(first)))
    return out


def known_groups(store) -> dict[str, set[str]]:
    """Every scope the store has polled, with the groups it has seen in it."""
    with store.reading() as conn:
        out: dict[str, set[str]] = {scope: set() for (scope,) in conn.execute(
            sa.select(polls.c.scope).distinct())}
        for scope, group in conn.execute(
                sa.select(group_spans.c.scope, group_spans.c.group_name).distinct()):
            out.setdefault(scope, set()).add(group)
    return out


def check_names(store, params: ReportParams) -> None:
    """Refuse a scope or group the store has never seen: a typo would give an empty report
    that looks like a quiet month."""
    if not params.scopes and not params.groups:
        return
    known = known_groups(store)
    missing = [s for s in params.scopes if s not in known]
    if missing:
        raise ReportArgumentError(
            f"no history of scope {', '.join(missing)} in the store; known scopes: "
            f"{', '.join(sorted(known)) or 'none yet'}")
    names = {g for scope, groups in known.items()
             if not params.scopes or scope in params.scopes for g in groups}
    missing = [g for g in params.groups if g not in names]
    if missing:
        where = f"scope {', '.join(params.scopes)}" if params.scopes else "the store"
        listed = ", ".join(sorted(names)[:30]) or "none yet"
        raise ReportArgumentError(
            f"no history of group {', '.join(missing)} in {where}; known groups: {listed}"
            f"{' …' if len(names) > 30 else ''}")


def _clip(segs: list[Segment], t0: int, t1: int) -> list[Segment]:
    out = []
    for s in segs:
        end = t1 if s.end is None else min(s.end, t1)
        if end > t0 and s.start < t1:
            out.append(Segment(max(s.start, t0), end, s.version, s.empty))
    return out


def build_report(store, params: ReportParams, now: datetime | None = None) -> Report:
    """The report of `params` from `store` (anything with the Store's query methods)."""
    t0, t1 = to_us(params.start), to_us(params.end)
    window_s = params.failure_window.total_seconds()
    # Read back a failure window before the range: a rollout early in the range may be the
    # rollback of one just before it.
    since = params.start - params.failure_window
    scopes = list(params.scopes) or None
    groups = list(params.groups) or None
    spans = read_span_arrays(store, to_us(since), t1, params.scopes, params.groups)
    gspans = store.group_spans(since, params.end, scopes=scopes, groups=groups)
    every_action = read_actions(store, to_us(since), t1, params.scopes, params.groups)
    images = store.images()
    created = {}
    if len(images):
        for scope, image_id, at in zip(images["scope"].astype(object),
                                       images["image_id"].astype(object),
                                       images["created_at"], strict=True):
            if at is not None and at == at:
                created[(scope, image_id)] = to_us(at.to_pydatetime())

    desired = desired_spans(gspans)
    by_group = group_spans_of(spans)
    rollouts: list[Rollout] = []
    lanes: dict[str, list[Segment]] = {}
    for key, group in by_group.items():
        segs = segments(group)
        rollbacks = [a for a in every_action if a.kind == "rollback"
                     and (a.scope, a.region, a.group) == key]
        found = group_rollouts(key, segs, group, desired.get(key, []), rollbacks, t1,
                               params.stall_after.total_seconds())
        found = mark_failures(found, rollbacks, window_s)
        rollouts.extend(replace(r, image_created=created.get((r.scope, r.image_id)))
                        for r in found if t0 <= r.start < t1)
        clipped = _clip(segs, t0, t1)
        if clipped:
            lanes["/".join(key)] = clipped
    rollouts.sort(key=lambda r: (r.start, r.scope, r.region, r.group))
    actions = [a for a in every_action if a.confirmed >= t0]
    return Report(
        params=params,
        generated=to_us(now or datetime.now(UTC)),
        rollouts=rollouts,
        actions=actions,
        versions=version_rows(spans, t0, t1),
        metrics=compute(rollouts, actions, t0, t1),
        weeks=weeks(rollouts, t0, t1),
        lanes=lanes,
        watched=_first_and_last_polls(store, params.scopes),
        rebuilt=_rebuilt_since(store, params.scopes),
    )
