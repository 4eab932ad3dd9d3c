"""Bad versions: a version a rollback moved a group away from, or one quarantined by hand, is
never the default rollback target again; choosing it anyway means typing it."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from fleetview.actions import audit
from fleetview.domain.actions import ActionRefused
from fleetview.store.action_tables import bad_versions
from fleetview.store.times import from_us, now_us


@dataclass(frozen=True)
class BadMark:
    """Why a version is bad, and for which scope, region and group (None: every one)."""

    id: int
    version: str
    scope: str | None
    region: str | None
    group: str | None
    reason: str
    actor: str
    source: str  # "rollback" or "quarantine"
    action_id: str | None
    created_us: int

    def describe(self) -> str:
        where = self.group or "every group"
        if self.scope and not self.group:
            where = f"every group of {self.scope}"
        when = from_us(self.created_us).strftime("%Y-%m-%d %H:%M UTC")
        how = "rolled back from" if self.source == "rollback" else "quarantined"
        return f"{self.version} was {how} on {where} by {self.actor} at {when}: {self.reason}"


def mark(store, version: str, reason: str, actor: str, *, scope: str | None = None,
         region: str | None = None, group: str | None = None, source: str = "quarantine",
         action_id: str | None = None) -> BadMark:
    """Mark `version` bad (for one group, or more widely where scope/region/group are None)."""
    if not version.strip():
        raise ActionRefused("name the version to mark bad")
    if not reason.strip():
        raise ActionRefused("give a reason: it is shown wherever the version is offered again")
    now = now_us()
    with store.writing("mark a version bad") as conn:
        result = conn.execute(sa.insert(bad_versions).values(
            version=version, scope=scope, region=region, group_name=group, reason=reason,
            actor=actor, source=source, action_id=action_id, created_us=now))
        mark_id = result.inserted_primary_key[0]
    audit.append(store, "version_marked_bad" if source == "rollback" else "quarantined", actor,
                 action_id=action_id, scope=scope, region=region, group=group, reason=reason,
                 detail={"version": version, "source": source})
    return BadMark(mark_id, version, scope, region, group, reason, actor, source, action_id,
                   now)


def lift(store, version: str, reason: str, actor: str, *, scope: str | None = None,
         group: str | None = None) -> int:
    """Lift the marks on `version` that match scope and group exactly (None: the wide ones);
    returns how many were lifted."""
    if not reason.strip():
        raise ActionRefused("give a reason for lifting the mark: it goes to the audit log")
    now = now_us()
    where = [bad_versions.c.version == version, bad_versions.c.lifted_us.is_(None),
             bad_versions.c.scope.is_(None) if scope is None else bad_versions.c.scope == scope,
             bad_versions.c.group_name.is_(None) if group is None
             else bad_versions.c.group_name == group]
    with store.writing("lift a bad-version mark") as conn:
        lifted = conn.execute(sa.update(bad_versions).where(*where).values(
            lifted_us=now, lifted_by=actor, lift_reason=reason)).rowcount
    if not lifted:
        raise ActionRefused(f"{version} has no mark to lift for "
                            f"{group or 'every group'}{f' of {scope}' if scope else ''}; "
                            "`fleetview quarantine --list` shows the marks")
    audit.append(store, "quarantine_lifted", actor, scope=scope, group=group, reason=reason,
                 detail={"version": version, "lifted": lifted})
    return lifted


def marks(store, *, include_lifted: bool = False) -> list[BadMark]:
    query = sa.select(bad_versions).order_by(bad_versions.c.created_us)
    if not include_lifted:
        query = query.where(bad_versions.c.lifted_us.is_(None))
    with store.reading() as conn:
        rows = conn.execute(query).mappings().all()
    return [BadMark(r["id"], r["version"], r["scope"], r["region"], r["group_name"],
                    r["reason"], r["actor"], r["source"], r["action_id"], r["created_us"])
            for r in rows]


def bad_for(store, scope: str, region: str, group: str | None,
            every: list[BadMark] | None = None) -> dict[str, BadMark]:
    """The versions bad for one group (its own marks and the wide ones) -> the latest mark."""
    found: dict[str, BadMark] = {}
    for m in marks(store) if every is None else every:
        if (m.scope in (None, scope) and m.region in (None, region)
                and m.group in (None, group)):
            found[m.version] = m
    return found
