"""The audit log: append-only, each entry hash-chained to the one before it, its head
copied to witnesses outside the store (fleetview/store/witness.py) after every entry."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from fleetview.store import witness
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
            witness.record(store, seq, digest, at)
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
    """`checked` entries hold before `broken_seq`; `witnessed` heads of witnesses were
    compared with the log; `notes` say what the check could not see (no witness file...)."""

    ok: bool
    checked: int
    broken_seq: int | None = None
    problem: str = ""
    witnessed: int = 0
    notes: tuple[str, ...] = ()


def verify(store, witnesses: Sequence[Path] | None = None) -> ChainReport:
    """Walk the chain from the first entry and report the first entry that does not hold;
    then hold the log against every head its witnesses saw (default: the witness file of
    this machine), which shows the last entries deleted, all deleted, or the chain
    rewritten with recomputed hashes."""
    chain = list(entries(store))
    broken = _walk(chain)
    paths = [witness.default_path()] if witnesses is None else list(witnesses)
    notes: list[str] = []
    heads = _heads_of(store, paths, notes)
    found = _against_witnesses(chain, heads)
    if broken is None and found is None:
        return ChainReport(True, len(chain), witnessed=len(heads), notes=tuple(notes))
    problems = sorted((r for r in (broken, found) if r is not None), key=lambda r: r[1])
    checked = broken[0] if broken is not None else len(chain)
    return ChainReport(False, min(checked, problems[0][1] - 1), problems[0][1],
                       "; ".join(r[2] for r in problems), len(heads), tuple(notes))


def _walk(chain: list[AuditEntry]) -> tuple[int, int, str] | None:
    """(entries that hold, first broken seq, why) or None when every link holds."""
    prev, expected_seq, checked = GENESIS, 1, 0
    for entry in chain:
        if entry.seq != expected_seq:
            return (checked, expected_seq, f"entry {expected_seq} is missing (the next entry "
                    f"is {entry.seq}): entries were deleted")
        if entry.prev_hash != prev:
            return (checked, entry.seq, f"entry {entry.seq} does not link to entry "
                    f"{entry.seq - 1}: an entry before it was replaced")
        fields = asdict(entry)
        fields.pop("hash")
        fields.pop("seq")
        fields.pop("prev_hash")
        if entry_hash(prev, entry.seq, **{"group_name": fields.pop("group_name"), **fields}) \
                != entry.hash:
            return (checked, entry.seq, f"entry {entry.seq} ({entry.event} at "
                    f"{_when(entry.at_us)}) was modified: its content does not match its hash")
        prev, expected_seq, checked = entry.hash, entry.seq + 1, checked + 1
    return None


def _heads_of(store, paths: list[Path], notes: list[str]) -> list[witness.Head]:
    store_id = store.store_id
    heads: list[witness.Head] = []
    for path in paths:
        if not path.exists():
            notes.append(f"no witness file at {path}: deleting the last entries of the log "
                         "or rewriting it would not show")
            continue
        problems: list[str] = []
        every = witness.read_all([path], problems)
        notes.extend(problems)
        own = [h for h in every if h.store == store_id]
        if not own:
            elsewhere = {h.store for h in every if h.location == store.path_or_url}
            if elsewhere:
                notes.append(f"{path} saw the audit log of another database at "
                             f"{store.path_or_url} (store id {', '.join(sorted(elsewhere))}, "
                             f"this one is {store_id}): the database there was replaced")
            else:
                notes.append(f"{path} has no head of this store (id {store_id}) yet")
        heads.extend(own)
    return sorted(heads, key=lambda h: (h.seq, h.witnessed_us))


def _against_witnesses(chain: list[AuditEntry], heads: list[witness.Head]
                       ) -> tuple[int, int, str] | None:
    """(0, first seq in question, why) when the log is shorter than a head a witness saw,
    or an entry is not the one it saw; None when every head is in the log."""
    by_seq = {e.seq: e.hash for e in chain}
    last = max(by_seq, default=0)
    found: list[tuple[int, str]] = []
    good = 0  # the highest head that matches: entries up to it are as witnessed
    for head in heads:
        now = by_seq.get(head.seq)
        if head.seq > last or now is None:
            continue  # past the end: below; deleted from the middle: the chain walk says
        if now != head.hash:
            found.append((good + 1, f"the chain was rewritten: entry {head.seq} has hash "
                          f"{now[:12]}…, but {head.source} saw hash {head.hash[:12]}… at "
                          f"{_when(head.witnessed_us)}, so entries {good + 1} to {head.seq} "
                          "are not the ones written then"))
            break
        good = head.seq
    beyond = [h for h in heads if h.seq > last]
    if beyond:
        gone = max(beyond, key=lambda h: h.seq)
        what = ("all entries were deleted: the log is empty" if last == 0 else
                f"the last entries were deleted: the log ends at entry {last}")
        found.append((last + 1, f"{what}, but {gone.source} saw entry {gone.seq} (hash "
                      f"{gone.hash[:12]}…, written {_when(gone.entry_at_us)}) at "
                      f"{_when(gone.witnessed_us)}"))
    if not found:
        return None
    return (0, min(seq for seq, _ in found), "; ".join(text for _, text in found))


def _when(at_us: int) -> str:
    return f"{from_us(at_us).astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"  # type: ignore[union-attr]


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
