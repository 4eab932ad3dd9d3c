"""The audit log: append-only, each entry hash-chained to the one before it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import pandas as pd
import sqlalchemy as sa

from fleetview.store.action_tables import audit_log
from fleetview.store.times import from_us, now_us

GENESIS = "0" * 64
# Events: plan_confirmed, step_started, step_done, step_failed, finished, failed, refused,
# abandoned, resumed, lock_taken_over.
_APPEND_TRIES = 5


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at_us: int
    event: str
    actor: str
    action_id: str | None
    scope: str | None
    region: str | None
    group_name: str | None
    reason: str | None
    detail: str
    prev_hash: str
    hash: str

    @property
    def at(self) -> datetime:
        return from_us(self.at_us)  # type: ignore[return-value]


def entry_hash(prev_hash: str, seq: int, at_us: int, event: str, actor: str,
               action_id: str | None, scope: str | None, region: str | None,
               group_name: str | None, reason: str | None, detail: str) -> str:
    """SHA-256 over the previous hash and the entry's fields in a fixed, typed encoding."""
    body = json.dumps([prev_hash, seq, at_us, event, actor, action_id, scope, region,
                       group_name, reason, detail], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def append(store, event: str, actor: str, *, action_id: str | None = None,
           scope: str | None = None, region: str | None = None, group: str | None = None,
           reason: str | None = None, detail: dict | None = None) -> AuditEntry:
    """Append one entry. Two writers racing for the same seq: the primary key refuses the
    second, which reads the new tail and tries again, so the chain never forks."""
    detail_text = json.dumps(detail or {}, sort_keys=True, default=str)
    last_error: Exception | None = None
    for _ in range(_APPEND_TRIES):
        try:
            with store.writing("append to the audit log") as conn:
                tail = conn.execute(sa.select(audit_log.c.seq, audit_log.c.hash)
                                    .order_by(audit_log.c.seq.desc()).limit(1)).first()
                seq, prev = (tail.seq + 1, tail.hash) if tail else (1, GENESIS)
                at = now_us()
                digest = entry_hash(prev, seq, at, event, actor, action_id, scope, region,
                                    group, reason, detail_text)
                row = dict(seq=seq, at_us=at, event=event, actor=actor, action_id=action_id,
                           scope=scope, region=region, group_name=group, reason=reason,
                           detail=detail_text, prev_hash=prev, hash=digest)
                conn.execute(sa.insert(audit_log), [row])
            return AuditEntry(**row)
        except sa.exc.IntegrityError as exc:
            last_error = exc
    raise RuntimeError(f"could not append to the audit log after {_APPEND_TRIES} tries") \
        from last_error


def entries(store, action_id: str | None = None) -> Iterator[AuditEntry]:
    query = sa.select(audit_log).order_by(audit_log.c.seq)
    if action_id is not None:
        query = query.where(audit_log.c.action_id == action_id)
    with store.reading() as conn:
        rows = conn.execute(query).mappings().all()
    for row in rows:
        yield AuditEntry(**row)


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    broken_seq: int | None = None
    problem: str = ""


def verify(store) -> ChainReport:
    """Walk the chain from the first entry; report the first entry that does not hold."""
    prev, expected_seq, checked = GENESIS, 1, 0
    for entry in entries(store):
        if entry.seq != expected_seq:
            return ChainReport(False, checked, expected_seq,
                               f"entry {expected_seq} is missing (the next entry is "
                               f"{entry.seq}): entries were deleted")
        if entry.prev_hash != prev:
            return ChainReport(False, checked, entry.seq,
                               f"entry {entry.seq} does not link to entry {entry.seq - 1}: "
                               "an entry before it was replaced")
        fields = asdict(entry)
        fields.pop("hash")
        fields.pop("seq")
        fields.pop("prev_hash")
        if entry_hash(prev, entry.seq, **{"group_name": fields.pop("group_name"), **fields}) \
                != entry.hash:
            return ChainReport(False, checked, entry.seq,
                               f"entry {entry.seq} ({entry.event} at "
                               f"{entry.at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC) was modified: "
                               "its content does not match its hash")
        prev, expected_seq, checked = entry.hash, entry.seq + 1, checked + 1
    return ChainReport(True, checked)


def frame(store) -> pd.DataFrame:
    """The log as a DataFrame for the audit view and the export."""
    rows = [asdict(e) for e in entries(store)]
    columns = ["seq", "at", "event", "actor", "action_id", "scope", "region", "group",
               "reason", "detail", "prev_hash", "hash"]
    if not rows:
        return pd.DataFrame(columns=columns)
    df = pd.DataFrame(rows)
    df["at"] = pd.to_datetime(df.pop("at_us"), unit="us", utc=True)
    df = df.rename(columns={"group_name": "group"})
    return df[columns]
