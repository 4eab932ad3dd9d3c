"""The Store: open a database, record polls as spans, and answer the UI's queries."""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from fleetview.domain.backfill import Backfill
from fleetview.domain.model import Image, Inventory, Scope
from fleetview.store import engine as engines
from fleetview.store import queries
from fleetview.store.backfill import BackfillSummary, write_backfill
from fleetview.store.bulk import bulk as _bulk
from fleetview.store.bulk import insert as _insert
from fleetview.store.bulk import insert_sql as _insert_sql
from fleetview.store.errors import StoreError, StoreUnavailable
from fleetview.store.schema import (
    ensure_schema,
    group_spans,
    images,
    poll_regions,
    polls,
    read_store_id,
    scope_state,
    spans,
)
from fleetview.store.spans import (
    GROUP_FIELDS,
    INSTANCE_FIELDS,
    Coverage,
    diff_groups,
    diff_instances,
)
from fleetview.store.times import from_us, now_us, to_us

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PollSummary:
    """What one recorded poll changed. `stale` is set when the poll was older than what the
    store already had for its scope, so only its poll record was written. `clock_skew` says
    why a poll was recorded as an error although its changes were written: the writer's
    clock was behind the store's last poll of the scope. `held` says why a poll's changes were
    held as suspect (not written): it would have closed too many open spans at once."""

    scope: str
    opened: int = 0
    closed: int = 0
    unchanged: int = 0
    gone: int = 0
    groups_opened: int = 0
    groups_closed: int = 0
    images_written: int = 0
    poll_id: int | None = None
    stale: bool = False
    clock_skew: str | None = None
    held: str | None = None


@dataclass
class _ScopeCache:
    """A scope's open spans as the last write left them: instance id -> observation and
    instance id -> span id (to close it by primary key), groups, images."""

    generation: int
    instances: dict
    span_ids: dict
    groups: dict
    images: dict


_IMAGE_FIELDS = ("provider", "name", "version", "created_us", "deprecated", "gone")
_DAY_US = 86_400_000_000
# Clocks of collectors that NTP keeps in step still differ by some milliseconds: a poll
# behind the last one by less than this is written after it without an error.
CLOCK_SKEW_TOLERANCE_US = 2_000_000
# Pruning never reaches further back than this: a larger keep_days keeps everything.
_MAX_KEEP_DAYS = 1_000_000
# How a held poll's error begins: the next poll of its scope finds it by these words.
SUSPECT = "suspect poll held"


class Store:
    """History of one or more scopes in SQLite or PostgreSQL. Query methods are
    thread-safe (each call has its own connection); `record_*` may run on any one thread at
    a time per scope."""

    def __init__(self, engine: sa.Engine, url: sa.URL, readonly: bool):
        self._engine = engine
        self._writer = engine.execution_options(fleetview_write=True)
        self._url = url
        self.readonly = readonly
        self.path_or_url = engines.display(url)
        self._cache: dict[str, _ScopeCache] = {}
        self._lock = threading.Lock()
        self._store_id: str | None = None

    @classmethod
    def open(cls, url: str, readonly: bool = False) -> Store:
        parsed = engines.parse_url(url)
        engine = engines.create(parsed, readonly)
        store = cls(engine, parsed, readonly)
        try:
            with store._errors("open"):
                ensure_schema(engine, store.path_or_url, readonly, store._writer)
        except BaseException:
            engine.dispose()
            raise
        return store

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    @property
    def store_id(self) -> str | None:
        """The database's own id (kept in it since schema 2), for audit witnesses."""
        if self._store_id is None:
            with self._read() as conn:
                self._store_id = read_store_id(conn)
        return self._store_id

    # -- errors and connections -------------------------------------------------------------

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sa.exc.IntegrityError:
            raise  # a constraint doing its job (a lock taken, a seq raced): the caller decides
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
            raise StoreUnavailable(
                f"cannot {doing} the history database {self.path_or_url}: {reason}; check "
                "that it is reachable and store.url is right") from None
        except sa.exc.DBAPIError as exc:
            if exc.connection_invalidated:
                raise StoreUnavailable(f"lost the connection to {self.path_or_url} "
                                       f"while trying to {doing}; it will be retried") from None
            if isinstance(exc, sa.exc.DatabaseError) and self.dialect == "sqlite":
                reason = str(getattr(exc, "orig", exc)).strip()
                raise StoreError(f"cannot {doing} {self.path_or_url}: {reason}; point "
                                 "store.url at a FleetView database") from None
            raise

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._errors("read"), self._engine.connect() as conn:
            yield conn
            conn.rollback()

    @contextmanager
    def _write(self, doing: str) -> Iterator[Connection]:
        if self.readonly:
            raise StoreError("this store was opened read-only; the collector writes it")
        with self._errors(doing), self._writer.begin() as conn:
            yield conn

    # -- writing ------------------------------------------------------------------------------

    def record_poll(self, inventory: Inventory, started: datetime, finished: datetime,
                    *, now: datetime | None = None, suspect_share: float | None = None
                    ) -> PollSummary:
        """Write one poll of one scope in one transaction: only what changed, plus the poll
        records (one per region).

        With `suspect_share`, a poll that would close more than that share of the scope's
        open instance spans as gone at once is held as suspect (a wrong account or endpoint
        that still answers like the cloud): only its record is written, failed, saying so.
        The next poll of the scope applies what it sees if it would close as many again (it
        confirms the loss); a poll that sees the instances again is written as usual.

        A poll older than the scope's last one is late (another collector wrote a newer
        poll meanwhile): only its record is written. But when the writer's clock (`now`,
        default: this machine's) is itself behind that last poll, the poll is not old: the
        clocks disagree. Its changes are then written after the last poll, at the database
        server's time where it has one, and the poll is recorded as an error naming both
        clocks, so the scope's status shows it."""
        scope = inventory.scope.name
        at = to_us(inventory.polled_at)
        clock = now_us() if now is None else to_us(now)
        skew = None
        try:
            with self._write("write a poll to") as conn:
                generation, last_seen = self._claim(conn, scope, at)
                if at < last_seen and clock >= last_seen:
                    log.warning("poll of %s at %s is older than what the store has; only its "
                                "poll record is written", scope, inventory.polled_at)
                    poll_id = self._insert_poll(conn, inventory, started, finished)
                    summary = PollSummary(scope, poll_id=poll_id, stale=True)
                    cache = None
                else:
                    if at < last_seen:
                        server = self._server_clock(conn)
                        moved = max(last_seen + 1, server or 0)
                        if last_seen - clock > CLOCK_SKEW_TOLERANCE_US:
                            skew = _skew_message(scope, clock, last_seen, moved, by_server=(
                                server is not None and server > last_seen))
                            log.warning("%s", skew)
                        shift = timedelta(microseconds=moved - at)
                        at, started, finished = moved, started + shift, finished + shift
                    cache = self._open_state(conn, scope, generation)
                    summary, cache = self._write_changes(conn, inventory, at, cache,
                                                         suspect_share)
                    flag = "; ".join(f for f in (summary.held, skew) if f) or None
                    poll_id = self._insert_poll(conn, inventory, started, finished, flag)
                    summary = dataclasses.replace(summary, poll_id=poll_id, clock_skew=skew)
        except BaseException:
            with self._lock:
                self._cache.pop(scope, None)
            raise
        with self._lock:
            if cache is not None:
                self._cache[scope] = cache
        return summary

    def record_backfill(self, scope: Scope, backfill: Backfill, since: datetime,
                        until: datetime, version_of: Callable[[Image], str]
                        ) -> BackfillSummary:
        """Write the history `backfill`'s records support between `since` and `until`, in
        one transaction (`fleetview.store.backfill`). Nothing observed is touched."""
        with self._write("write a backfill to") as conn:
            summary = write_backfill(conn, scope, backfill, since, until, version_of,
                                     self._claim)
        with self._lock:
            self._cache.pop(scope.name, None)
        return summary

    def backfills(self, scopes: Sequence[str] | None = None) -> pd.DataFrame:
        """Every backfill recorded, oldest first: what it read, wrote and skipped."""
        with self._read() as conn:
            return queries.backfills(conn, scopes)

    def record_failed_poll(self, scope: str, provider: str, region: str | None,
                           started: datetime, finished: datetime, error: str) -> int:
        """A poll that failed as a whole (or for one region): recorded, no span changes."""
        with self._write("write a poll to") as conn:
            poll_id = conn.execute(sa.insert(polls).values(
                scope=scope, provider=provider, started_us=to_us(started),
                finished_us=to_us(finished), ok=False, error=error, instances=0, api_calls=0,
            ).returning(polls.c.poll_id)).scalar_one()
            conn.execute(sa.insert(poll_regions).values(
                poll_id=poll_id, seq=0, scope=scope, region=region,
                finished_us=to_us(finished), ok=False, error=error, instances=0))
        return poll_id

    def _claim(self, conn: Connection, scope: str, at: int) -> tuple[int, int]:
        """Bump the scope's generation first thing: it locks the scope for this writer.

        One upsert: with an UPDATE and then an INSERT, two first polls of a new scope would
        both insert, and PostgreSQL would refuse the second with a duplicate key."""
        if conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        claim = insert(scope_state).values(scope=scope, generation=1, last_seen_us=at)
        claim = claim.on_conflict_do_update(
            index_elements=[scope_state.c.scope],
            set_={"generation": scope_state.c.generation + 1},
        ).returning(scope_state.c.generation, scope_state.c.last_seen_us)
        row = conn.execute(claim).one()
        return int(row.generation), int(row.last_seen_us)

    @staticmethod
    def _server_clock(conn: Connection) -> int | None:
        """The database server's clock (PostgreSQL), None where the store has no clock of
        its own (SQLite runs on the writer's machine)."""
        if conn.dialect.name != "postgresql":
            return None
        return int(conn.exec_driver_sql(
            "SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::bigint").scalar_one())

    def _open_state(self, conn: Connection, scope: str, generation: int) -> _ScopeCache:
        with self._lock:
            cached = self._cache.pop(scope, None)
        if cached is not None and cached.generation == generation - 1:
            cached.generation = generation
            return cached
        # Someone else wrote this scope (or we just started): the database is the truth.
        cols = [spans.c[f] for f in INSTANCE_FIELDS]
        rows = conn.execute(sa.select(spans.c.instance_id, spans.c.span_id, *cols).where(
            spans.c.scope == scope, spans.c.end_us.is_(None)))
        instances, span_ids = {}, {}
        for row in rows:
            instances[row[0]] = tuple(row[2:])
            span_ids[row[0]] = row[1]
        gcols = [group_spans.c[f] for f in GROUP_FIELDS]
        rows = conn.execute(sa.select(group_spans.c.region, group_spans.c.group_name, *gcols)
                            .where(group_spans.c.scope == scope, group_spans.c.end_us.is_(None)))
        groups = {(r[0], r[1]): _group_obs(r[2:]) for r in rows}
        icols = [images.c[f] for f in _IMAGE_FIELDS]
        rows = conn.execute(sa.select(images.c.image_id, *icols).where(images.c.scope == scope))
        known = {r[0]: _image_obs(r[1:]) for r in rows}
        return _ScopeCache(generation, instances, span_ids, groups, known)

    def _write_changes(self, conn: Connection, inventory: Inventory, at: int,
                       cache: _ScopeCache, suspect_share: float | None = None
                       ) -> tuple[PollSummary, _ScopeCache]:
        scope = inventory.scope.name
        provider = inventory.scope.provider
        coverage = Coverage.of(inventory)

        inst = diff_instances(cache.instances, inventory, coverage)
        held = self._suspect(conn, scope, inst.gone, len(cache.instances), suspect_share)
        if held:  # nothing written: the cache is still what the database holds
            log.warning("%s", held)
            return PollSummary(scope, held=held), cache
        span_ids = cache.span_ids
        _bulk(conn, _CLOSE_SPAN, [(at, span_ids.pop(key)) for key in inst.closed])
        new_ids = _new_span_ids(conn, len(inst.opened))
        _insert(conn, spans, ("span_id", "provider", "scope", "instance_id", *INSTANCE_FIELDS,
                              "start_us"),
                [(span_id, provider, scope, key, *obs, at)
                 for span_id, (key, obs) in zip(new_ids, inst.opened.items(), strict=True)])
        span_ids.update(zip(inst.opened, new_ids, strict=True))
        inst.apply(cache.instances)

        grp = diff_groups(cache.groups, inventory, coverage)
        _bulk(conn, _CLOSE_GROUP, [(at, scope, *key) for key in grp.closed])
        _bulk(conn, _insert_sql(group_spans, ("provider", "scope", "region", "group_name",
                                              *GROUP_FIELDS, "start_us")),
              [(provider, scope, *key, *obs, at) for key, obs in grp.opened.items()])
        grp.apply(cache.groups)

        written = self._write_images(conn, inventory, at, cache.images)
        conn.execute(sa.update(scope_state).where(scope_state.c.scope == scope)
                     .values(last_seen_us=at))
        summary = PollSummary(
            scope, opened=len(inst.opened), closed=len(inst.closed), unchanged=inst.unchanged,
            gone=inst.gone, groups_opened=len(grp.opened), groups_closed=len(grp.closed),
            images_written=written,
        )
        return summary, cache

    @staticmethod
    def _suspect(conn: Connection, scope: str, gone: int, open_spans: int,
                 share: float | None) -> str | None:
        """Why this poll is held, or None to write it: it closes no more than `share` of the
        open spans, or the scope's last poll was held and this one confirms it."""
        if share is None or not open_spans or gone <= share * open_spans:
            return None
        last = conn.execute(
            sa.select(polls.c.error).where(polls.c.scope == scope)
            .order_by(polls.c.finished_us.desc(), polls.c.poll_id.desc()).limit(1)).first()
        if last is not None and (last[0] or "").startswith(SUSPECT):
            log.warning("poll of %s confirms the held one: closing %d of %d open spans as "
                        "gone", scope, gone, open_spans)
            return None
        return (f"{SUSPECT}: it would close {gone} of the {open_spans} open instances of "
                f"scope {scope} ({gone / open_spans:.0%}) as gone at once, more than "
                f"poll.suspect_share ({share:g}); history was left as it was. The next poll "
                "applies it if it sees the same; if these instances still run, check that the "
                "scope's endpoint, proxy and credentials reach the right account")

    @staticmethod
    def _write_images(conn: Connection, inventory: Inventory, at: int, known: dict) -> int:
        scope = inventory.scope.name
        inserts, updates = [], []
        for image_id, image in inventory.images.items():
            image_id = image.id or image_id
            obs = (image.provider, image.name, image.version,
                   to_us(image.created_at) if image.created_at else None,
                   bool(image.deprecated), bool(image.gone))
            old = known.get(image_id)
            if old == obs:
                continue
            values = dict(zip(_IMAGE_FIELDS, obs, strict=True))
            if old is None:
                inserts.append({"scope": scope, "image_id": image_id, **values,
                                "first_seen_us": at, "last_seen_us": at})
            else:
                updates.append({"k_scope": scope, "k_image": image_id, **values,
                                "last_seen_us": at})
            known[image_id] = obs
        if inserts:
            conn.execute(sa.insert(images), inserts)
        if updates:
            conn.execute(
                sa.update(images).where(images.c.scope == sa.bindparam("k_scope"),
                                        images.c.image_id == sa.bindparam("k_image")),
                updates)
        return len(inserts) + len(updates)

    @staticmethod
    def _insert_poll(conn: Connection, inventory: Inventory, started: datetime,
                     finished: datetime, skew: str | None = None) -> int:
        """The poll's record and one per place; `skew` (or a hold) marks every place failed
        with it. An error of the place "" is the whole scope's (no region was known): its
        row has no region, which speaks for every region of the scope."""
        scope = inventory.scope.name
        errors = {}
        for err in inventory.errors:
            errors.setdefault(err.region, err.message)
        message = "; ".join(f"{r}: {m}" if r else m for r, m in errors.items()) or None
        if skew:
            message = f"{skew}; {message}" if message else skew
        finished_us = to_us(finished)
        poll_id = conn.execute(sa.insert(polls).values(
            scope=scope, provider=inventory.scope.provider, started_us=to_us(started),
            finished_us=finished_us, ok=not errors and not skew, error=message,
            instances=len(inventory.instances), api_calls=int(inventory.api_calls),
        ).returning(polls.c.poll_id)).scalar_one()
        counts = Counter(i.region for i in inventory.instances)
        if not set(inventory.regions_ok) <= set(counts):  # places named by zone
            counts.update(i.zone for i in inventory.instances if i.zone)
        places = list(dict.fromkeys([*inventory.regions_ok, *errors]))
        rows = [
            {"poll_id": poll_id, "seq": n, "scope": scope, "region": place or None,
             "finished_us": finished_us, "ok": place not in errors and not skew,
             "error": errors.get(place) or skew, "instances": counts.get(place, 0)}
            for n, place in enumerate(places)
        ] or [{"poll_id": poll_id, "seq": 0, "scope": scope, "region": None,
               "finished_us": finished_us, "ok": not errors and not skew, "error": message,
               "instances": len(inventory.instances)}]
        conn.execute(sa.insert(poll_regions), rows)
        return poll_id

    def prune(self, keep_days: float) -> int:
        """Delete closed spans (and old poll records) that ended before now - keep_days;
        the latest poll and latest good poll of each scope and region are kept. Any number
        of days works: one reaching back before 1970 (or infinite) keeps everything."""
        if isinstance(keep_days, float) and math.isnan(keep_days):
            raise ValueError("keep_days must be a number of days, not NaN")
        if keep_days < 1:
            raise ValueError(f"keep_days must be at least 1, not {keep_days}")
        days = keep_days if keep_days < _MAX_KEEP_DAYS else _MAX_KEEP_DAYS
        cutoff = now_us() - int(days * _DAY_US)
        if cutoff <= 0:
            return 0
        with self._write("prune") as conn:
            deleted = 0
            for table in (spans, group_spans):
                deleted += conn.execute(sa.delete(table).where(
                    table.c.end_us.is_not(None), table.c.end_us < cutoff)).rowcount
            latest = sa.select(sa.func.max(poll_regions.c.poll_id)).group_by(
                poll_regions.c.scope, poll_regions.c.region)
            latest_ok = sa.select(sa.func.max(poll_regions.c.poll_id)).where(
                poll_regions.c.ok).group_by(poll_regions.c.scope, poll_regions.c.region)
            doomed = sa.select(polls.c.poll_id).where(
                polls.c.finished_us < cutoff, polls.c.poll_id.not_in(latest),
                polls.c.poll_id.not_in(latest_ok))
            ids = [r[0] for r in conn.execute(doomed)]
            for chunk in range(0, len(ids), 500):
                part = ids[chunk:chunk + 500]
                conn.execute(sa.delete(poll_regions).where(poll_regions.c.poll_id.in_(part)))
                conn.execute(sa.delete(polls).where(polls.c.poll_id.in_(part)))
        return deleted

    # The actions package (journal, locks, audit) keeps its tables in this store.
    def reading(self):
        """A connection for reads, with this store's error handling."""
        return self._read()

    def writing(self, doing: str):
        """A write transaction (committed on exit), with this store's error handling."""
        return self._write(doing)

    # -- queries ------------------------------------------------------------------------------

    def spans(self, t0: datetime, t1: datetime, scopes: Sequence[str] | None = None,
              regions: Sequence[str] | None = None, groups: Sequence[str] | None = None,
              versions: Sequence[str] | None = None) -> pd.DataFrame:
        with self._read() as conn:
            return queries.spans(conn, to_us(t0), to_us(t1), scopes, regions, groups, versions)

    def group_spans(self, t0: datetime, t1: datetime, scopes: Sequence[str] | None = None,
                    regions: Sequence[str] | None = None,
                    groups: Sequence[str] | None = None) -> pd.DataFrame:
        with self._read() as conn:
            return queries.group_spans(conn, to_us(t0), to_us(t1), scopes, regions, groups)

    def fleet_at(self, t: datetime | None = None) -> pd.DataFrame:
        with self._read() as conn:
            return queries.fleet_at(conn, None if t is None else to_us(t))

    def drift(self, t: datetime | None = None) -> pd.DataFrame:
        fleet = self.fleet_at(t)
        return fleet[fleet["drift"]].reset_index(drop=True)

    def groups_at(self, t: datetime | None = None) -> pd.DataFrame:
        with self._read() as conn:
            return queries.groups_at(conn, None if t is None else to_us(t))

    def version_share(self, scope: str | None, region: str | None, group: str | None,
                      t0: datetime, t1: datetime, step: timedelta) -> pd.DataFrame:
        if step <= timedelta(0):
            raise ValueError("step must be positive")
        with self._read() as conn:
            return queries.version_share(conn, scope, region, group, to_us(t0), to_us(t1),
                                         int(step / timedelta(microseconds=1)))

    def freshness(self) -> pd.DataFrame:
        with self._read() as conn:
            return queries.freshness(conn)

    def images(self) -> pd.DataFrame:
        with self._read() as conn:
            return queries.images(conn)

    def polls(self, t0: datetime | None = None, t1: datetime | None = None,
              scopes: Sequence[str] | None = None) -> pd.DataFrame:
        with self._read() as conn:
            return queries.polls(conn, None if t0 is None else to_us(t0),
                                 None if t1 is None else to_us(t1), scopes)


def _skew_message(scope: str, clock: int, last_seen: int, moved: int, by_server: bool) -> str:
    def iso(value: int) -> str:
        return from_us(value).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"  # type: ignore[union-attr]

    where = "the database server's time" if by_server else "just after the last poll"
    return (f"clock skew: this collector's clock says {iso(clock)}, behind the store's last "
            f"poll of {scope} at {iso(last_seen)} (by {(last_seen - clock) / 1e6:.1f} s); "
            f"its changes were recorded at {iso(moved)} ({where}). Set this machine's clock "
            "right (NTP), and check the clocks of the other collectors of this scope")


# Bulk writes go straight to the driver's executemany with row tuples: SQLAlchemy's
# per-row parameter handling would cost more than the database itself (see
# tests/benchmarks/bench_store_ingest.py).
_CLOSE_SPAN = "UPDATE spans SET end_us = {p} WHERE span_id = {p} AND end_us IS NULL"
_CLOSE_GROUP = ("UPDATE group_spans SET end_us = {p} WHERE scope = {p} AND end_us IS NULL "
                "AND region = {p} AND group_name = {p}")


def _new_span_ids(conn: Connection, count: int) -> list[int]:
    """Ids for new spans, known before the insert so the cache can close them by key."""
    if not count:
        return []
    if conn.dialect.name == "postgresql":
        ids = conn.exec_driver_sql(
            "SELECT array_agg(nextval(pg_get_serial_sequence('spans', 'span_id'))) "
            "FROM generate_series(1, %s)", (count,)).scalar_one()
        return list(ids)
    # SQLite: this transaction holds the write lock (BEGIN IMMEDIATE), nobody else inserts.
    top = conn.exec_driver_sql("SELECT COALESCE(MAX(span_id), 0) FROM spans").scalar_one()
    return list(range(top + 1, top + 1 + count))


def _group_obs(values: Sequence) -> tuple:
    # Databases hand booleans and integers back in their own types; compare like the diff.
    values = list(values)
    values[-2] = int(values[-2])
    values[-1] = bool(values[-1])
    return tuple(values)


def _image_obs(values: Sequence) -> tuple:
    values = list(values)
    values[-2] = bool(values[-2])
    values[-1] = bool(values[-1])
    return tuple(values)


__all__ = ["BackfillSummary", "PollSummary", "Store", "StoreError", "StoreUnavailable"]
