"""Witnesses of the audit log: its head (sequence, hash, time) copied outside the store.

The hash chain shows an entry edited, removed from the middle or reordered, but someone who
can write the database can also delete the last entries, or all of them, or recompute every
hash after a change: the chain then holds. A witness is an append-only file outside the
store (by default `audit-witness.jsonl` in the user's data folder; `FLEETVIEW_AUDIT_WITNESS`
names another) that gets one JSON line per head: after every audit entry and, from the
collector, at least once a day. `fleetview audit verify` then finds the log shorter than a
head it saw (truncation) or an entry whose hash is not the one it saw (a rewrite).

Each line names its store by the id the database keeps in `fleetview_meta` (and its
location, for people), so one witness serves several stores.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import platformdirs
import sqlalchemy as sa

from fleetview.store.action_tables import audit_log
from fleetview.store.files import append_private
from fleetview.store.times import now_us

log = logging.getLogger(__name__)

WITNESS_ENV = "FLEETVIEW_AUDIT_WITNESS"
DAILY_S = 86_400.0


def default_path() -> Path:
    """`FLEETVIEW_AUDIT_WITNESS` when set, else audit-witness.jsonl in the user data folder."""
    named = os.environ.get(WITNESS_ENV)
    if named:
        return Path(named).expanduser()
    return Path(platformdirs.user_data_dir("fleetview")) / "audit-witness.jsonl"


@dataclass(frozen=True)
class Head:
    """The audit log's last entry as a witness saw it, at `witnessed_us`."""

    store: str
    seq: int
    hash: str
    entry_at_us: int
    witnessed_us: int
    location: str = ""
    source: str = field(default="", compare=False)  # the witness file (not written)

    def line(self) -> bytes:
        record = asdict(self)
        record.pop("source")
        return (json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n").encode()


def head_of(store) -> Head | None:
    """The store's audit head now; None when the log is empty."""
    with store.reading() as conn:
        row = conn.execute(sa.select(audit_log.c.seq, audit_log.c.hash, audit_log.c.at_us)
                           .order_by(audit_log.c.seq.desc()).limit(1)).first()
    if row is None:
        return None
    return Head(store.store_id or "", int(row.seq), row.hash, int(row.at_us), now_us(),
                store.path_or_url)


def write(head: Head, path: Path | None = None) -> Path:
    """Append `head` to the witness file (created 0600). OSError when it cannot be written."""
    path = path or default_path()
    append_private(path, head.line())
    return path


def record(store, seq: int, hash_: str, entry_at_us: int, path: Path | None = None) -> None:
    """Witness a head just appended. A witness that cannot be written is logged, never
    raised: the entry is in the log already, and the action it records goes on."""
    head = Head(store.store_id or "", seq, hash_, entry_at_us, now_us(), store.path_or_url)
    try:
        write(head, path)
    except OSError as exc:
        log.warning("could not write the audit head to the witness %s (%s); `fleetview "
                    "audit verify` cannot see this entry deleted", path or default_path(), exc)


def record_if_due(store, path: Path | None = None, every_s: float = DAILY_S) -> bool:
    """Witness the store's head unless the witness saw this same head within `every_s`:
    the collector calls it on start and then hourly, so a head is witnessed at least daily.
    True when a line was written."""
    head = head_of(store)
    if head is None:
        return False
    path = path or default_path()
    last = None
    for seen in read(path, head.store):
        last = seen
    if (last is not None and (last.seq, last.hash) == (head.seq, head.hash)
            and head.witnessed_us - last.witnessed_us < every_s * 1e6):
        return False
    write(head, path)
    return True


def read(path: Path, store_id: str | None = None, problems: list[str] | None = None
         ) -> Iterator[Head]:
    """The heads in a witness file, of one store or all; unreadable lines go to `problems`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            head = Head(str(data["store"]), int(data["seq"]), str(data["hash"]),
                        int(data["entry_at_us"]), int(data["witnessed_us"]),
                        str(data.get("location", "")), str(path))
        except (ValueError, KeyError, TypeError):
            if problems is not None:
                problems.append(f"{path}:{number} is not a witness line")
            continue
        if store_id is None or head.store == store_id:
            yield head


def read_all(paths: Iterable[Path], problems: list[str] | None = None) -> list[Head]:
    heads: list[Head] = []
    for path in paths:
        heads.extend(read(path, None, problems))
    return heads
