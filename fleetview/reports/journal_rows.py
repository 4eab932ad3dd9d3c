"""Rollbacks and replaces as the journal and the audit log hold them, for a report."""

from __future__ import annotations

import json
from dataclasses import dataclass

import sqlalchemy as sa

from fleetview.store.action_tables import actions, audit_log

KINDS = ("rollback", "replace")


@dataclass(frozen=True)
class ActionRow:
    """One confirmed rollback or replace. Instants are integer microseconds.
    `time_to_recover_s`: confirmation to every target instance on the target version and
    running, as the runner measured it (None: it did not converge, or has not yet).
    `audit_seq`: the audit log entry that recorded its confirmation."""

    action_id: str
    kind: str
    scope: str
    region: str
    group: str | None
    from_versions: tuple[str, ...]
    to_version: str | None
    instances: int
    reason: str
    actor: str
    status: str
    confirmed: int
    finished: int | None
    recovered: int | None
    stopped_by: str | None
    audit_seq: int | None

    @property
    def time_to_recover_s(self) -> float | None:
        if self.recovered is None:
            return None
        return (self.recovered - self.confirmed) / 1e6


def read_actions(store, t0: int, t1: int, scopes: tuple[str, ...] = (),
                 groups: tuple[str, ...] = ()) -> list[ActionRow]:
    """Rollbacks and replaces confirmed in [t0, t1), oldest first."""
    a = actions
    confirmed = sa.func.coalesce(a.c.confirmed_us, a.c.created_us)
    query = sa.select(
        a.c.action_id, a.c.kind, a.c.scope, a.c.region, a.c.group_name, a.c.plan, a.c.to_version,
        a.c.reason, a.c.actor, a.c.status, confirmed, a.c.finished_us, a.c.recovered_us,
        a.c.stop_actor,
    ).where(a.c.kind.in_(KINDS), confirmed >= t0, confirmed < t1)
    if scopes:
        query = query.where(a.c.scope.in_(scopes))
    if groups:
        query = query.where(a.c.group_name.in_(groups))
    with store.reading() as conn:
        rows = conn.execute(query).all()
        ids = [r[0] for r in rows]
        seqs: dict[str, int] = {}
        for chunk in range(0, len(ids), 500):
            part = ids[chunk:chunk + 500]
            for action_id, seq in conn.execute(
                    sa.select(audit_log.c.action_id, sa.func.min(audit_log.c.seq))
                    .where(audit_log.c.event == "plan_confirmed",
                           audit_log.c.action_id.in_(part))
                    .group_by(audit_log.c.action_id)):
                seqs[action_id] = int(seq)
    out = []
    for (action_id, kind, scope, region, group, plan, to_version, reason, actor, status,
         when, finished, recovered, stop_actor) in rows:
        try:
            detail = json.loads(plan)
        except ValueError:  # a journal row is never rewritten; an odd one still reports
            detail = {}
        out.append(ActionRow(
            action_id, kind, scope, region, group,
            tuple(v for v in detail.get("from_versions", ()) if v),
            to_version, len(detail.get("instances", ()) or ()), reason, actor, status,
            int(when), finished, recovered, stop_actor, seqs.get(action_id)))
    out.sort(key=lambda r: (r.confirmed, r.action_id))
    return out
