"""Engines for the two databases: SQLite in WAL mode (the default) and PostgreSQL."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.pool import StaticPool

from fleetview.store import files
from fleetview.store.errors import StoreError

# A write waits this long for another writer (the collector) before it reports "busy".
SQLITE_BUSY_MS = 15_000


def parse_url(url: str) -> URL:
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError:
        raise StoreError(f"store.url {url!r} is not a database URL; use e.g. "
                         '"sqlite:////path/history.db" or '
                         '"postgresql+psycopg://user@host/fleetview"') from None
    if parsed.drivername in ("postgresql", "postgres"):
        # Plain postgresql:// would pick psycopg2, which FleetView does not ship.
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise StoreError(f"store.url {url!r}: FleetView stores history in SQLite or "
                         "PostgreSQL; use a sqlite:/// or postgresql+psycopg:// URL")
    return parsed


def display(url: URL) -> str:
    if url.get_backend_name() == "sqlite":
        return url.database or ":memory:"
    return url.render_as_string(hide_password=True)


def create(url: URL, readonly: bool) -> Engine:
    if url.get_backend_name() == "sqlite":
        return _sqlite(url, readonly)
    engine = sa.create_engine(
        url, pool_pre_ping=True, connect_args={"connect_timeout": 5},
    )
    if readonly:
        engine = engine.execution_options(postgresql_readonly=True)
    return engine


def _sqlite(url: URL, readonly: bool) -> Engine:
    database = url.database or ""
    memory = database in ("", ":memory:")
    if memory:
        # One shared connection: for tests and one-thread use only.
        engine = sa.create_engine("sqlite://", poolclass=StaticPool,
                                  connect_args={"check_same_thread": False})
    else:
        path = Path(database).expanduser()
        if readonly:
            if not path.exists():
                raise StoreError(f"{path} holds no FleetView history yet; run `fleetview "
                                 "collect` once (or open the window without --no-collect)")
            uri = f"file:{path.resolve().as_posix()}?mode=ro"
            engine = sa.create_engine(
                "sqlite://",
                creator=lambda: sqlite3.connect(uri, uri=True, check_same_thread=False),
            )
        else:
            try:
                files.private_dir(path.parent)
            except OSError as exc:
                raise StoreError(f"cannot create the folder for the history database {path} "
                                 f"({exc}); check store.url and the folder's permissions") from None
            try:
                files.create_private_file(path)
            except OSError as exc:
                raise StoreError(f"cannot create the history database {path} ({exc}); check "
                                 "store.url and the folder's permissions") from None
            engine = sa.create_engine(f"sqlite:///{path}",
                                      connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # Let SQLAlchemy's begin event emit BEGIN itself: pysqlite's own transaction
        # handling defers BEGIN and would let a reader upgrade to a writer mid-way.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_MS}")
        if not readonly and not memory:
            _set_wal(cursor)
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        # A writer takes the lock up front, so two writers queue instead of deadlocking.
        immediate = conn.get_execution_options().get("fleetview_write") and not readonly
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _set_wal(cursor) -> None:
    # Turning a new file to WAL takes an exclusive lock that the busy timeout does not
    # cover, so collectors and GUIs opening a fresh file at once retry for a moment.
    for attempt in range(50):
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 49:
                raise
            time.sleep(0.05 + 0.01 * attempt)
