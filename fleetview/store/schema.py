"""The tables (SQLAlchemy Core, one schema for SQLite and PostgreSQL), its version, migrations.

Instants are integer microseconds since the epoch (UTC): compact, exact, and compared the
same way on both databases. An open span has `end_us` NULL. Every value that comes from a
cloud or a config (names, ids, versions) is unbounded text: PostgreSQL refuses a value longer
than a VARCHAR(n), which would drop a whole poll over one long tag.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from fleetview.store.errors import StoreError

SCHEMA_VERSION = 4

# SQLite only makes an INTEGER PRIMARY KEY the rowid alias (fast, autoincrementing).
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TIME = sa.BigInteger
_TEXT = sa.Text

metadata = sa.MetaData()

meta = sa.Table(
    "fleetview_meta", metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

# One row per instance per unbroken stretch of identical observations.
spans = sa.Table(
    "spans", metadata,
    sa.Column("span_id", _ID, primary_key=True, autoincrement=True),
    sa.Column("provider", sa.String(8), nullable=False),
    sa.Column("scope", _TEXT, nullable=False),
    sa.Column("account", _TEXT),
    sa.Column("region", _TEXT, nullable=False),
    sa.Column("zone", _TEXT),
    sa.Column("group_name", _TEXT),
    sa.Column("instance_id", _TEXT, nullable=False),
    sa.Column("name", _TEXT),
    sa.Column("image_id", _TEXT),
    sa.Column("version", _TEXT),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("start_us", _TIME, nullable=False),
    sa.Column("end_us", _TIME),
    # "observed" (a poll saw it) or the records a backfill inferred it from.
    sa.Column("source", _TEXT, nullable=False, server_default="observed"),
    sa.Column("lifecycle", _TEXT),
    sa.Column("state_reason", _TEXT),
    sa.Column("standby", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("warm", sa.Boolean, nullable=False, server_default=sa.false()),
    # What its group launches for an instance like it when that is not the group's own image
    # (a mixed instances override's); NULL: the group's.
    sa.Column("desired_image_id", _TEXT),
    sa.Column("desired_version", _TEXT),
    # A scope's open spans (read when a writer starts); a poll closes spans by span_id.
    # New rows land at the end of this index, where an index on instance ids (random
    # strings) would cost each insert a B-tree search: see bench_store_ingest. Time-window
    # queries scan, which at the retention FleetView keeps stays well under the UI's budget.
    sa.Index("ix_spans_scope_end", "scope", "end_us"),
)

# A group's desired version over time: same idea as instance spans.
group_spans = sa.Table(
    "group_spans", metadata,
    sa.Column("span_id", _ID, primary_key=True, autoincrement=True),
    sa.Column("provider", sa.String(8), nullable=False),
    sa.Column("scope", _TEXT, nullable=False),
    sa.Column("account", _TEXT),
    sa.Column("region", _TEXT, nullable=False),
    sa.Column("zone", _TEXT),
    sa.Column("group_name", _TEXT, nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("desired_image_id", _TEXT),
    sa.Column("desired_version", _TEXT),
    sa.Column("canary_image_id", _TEXT),
    sa.Column("canary_version", _TEXT),
    sa.Column("target_size", sa.Integer, nullable=False),
    sa.Column("updating", sa.Boolean, nullable=False),
    sa.Column("start_us", _TIME, nullable=False),
    sa.Column("end_us", _TIME),
    sa.Column("source", _TEXT, nullable=False, server_default="observed"),
    sa.Column("owner", _TEXT),
    sa.Column("notes", _TEXT),  # one note a line
    sa.Index("ix_group_spans_scope_end", "scope", "end_us", "region", "group_name"),
    sa.Index("ix_group_spans_group", "scope", "region", "group_name", "start_us"),
)

images = sa.Table(
    "images", metadata,
    sa.Column("scope", _TEXT, primary_key=True),
    sa.Column("image_id", _TEXT, primary_key=True),
    sa.Column("provider", sa.String(8), nullable=False),
    sa.Column("name", _TEXT),
    sa.Column("version", _TEXT),
    sa.Column("created_us", _TIME),
    sa.Column("deprecated", sa.Boolean, nullable=False),
    sa.Column("gone", sa.Boolean, nullable=False),
    sa.Column("first_seen_us", _TIME, nullable=False),
    sa.Column("last_seen_us", _TIME, nullable=False),
)

# One row per poll of a scope (api calls are counted per scope), one per region below it.
polls = sa.Table(
    "polls", metadata,
    sa.Column("poll_id", _ID, primary_key=True, autoincrement=True),
    sa.Column("scope", _TEXT, nullable=False),
    sa.Column("provider", sa.String(8), nullable=False),
    sa.Column("started_us", _TIME, nullable=False),
    sa.Column("finished_us", _TIME, nullable=False),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("instances", sa.Integer, nullable=False),
    sa.Column("api_calls", sa.Integer, nullable=False),
    sa.Index("ix_polls_scope_finished", "scope", "finished_us"),
)

# region NULL: the whole scope failed before any region answered.
poll_regions = sa.Table(
    "poll_regions", metadata,
    sa.Column("poll_id", _ID, sa.ForeignKey("polls.poll_id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("scope", _TEXT, nullable=False),
    sa.Column("region", _TEXT),
    sa.Column("finished_us", _TIME, nullable=False),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("instances", sa.Integer, nullable=False),
    sa.Index("ix_poll_regions_scope_region", "scope", "region", "finished_us"),
)

# One row per backfill of a scope: the range it read, what it wrote, what it had to skip.
backfills = sa.Table(
    "backfills", metadata,
    sa.Column("backfill_id", _ID, primary_key=True, autoincrement=True),
    sa.Column("scope", _TEXT, nullable=False),
    sa.Column("provider", sa.String(8), nullable=False),
    sa.Column("finished_us", _TIME, nullable=False),
    sa.Column("since_us", _TIME, nullable=False),
    sa.Column("until_us", _TIME, nullable=False),
    sa.Column("spans", sa.Integer, nullable=False),
    sa.Column("group_spans", sa.Integer, nullable=False),
    sa.Column("records", sa.Integer, nullable=False),
    sa.Column("api_calls", sa.Integer, nullable=False),
    sa.Column("gaps", sa.Text),  # one sentence
    sa.Column("skipped", sa.Text),  # one sentence a line
    sa.Index("ix_backfills_scope", "scope", "finished_us"),
)

# Per-scope write counter: a writer bumps it first in each poll's transaction, which
# serialises writers of one scope and tells a cached copy of the open spans it is current.
scope_state = sa.Table(
    "scope_state", metadata,
    sa.Column("scope", _TEXT, primary_key=True),
    sa.Column("generation", sa.BigInteger, nullable=False),
    sa.Column("last_seen_us", _TIME, nullable=False),
)

# Which collector polls a scope: a lease it renews every cycle; another collector takes a
# scope over only once its lease has expired (or its holder's process is gone).
scope_leases = sa.Table(
    "scope_leases", metadata,
    sa.Column("scope", _TEXT, primary_key=True),
    sa.Column("holder", _TEXT, nullable=False),  # "host:pid:uuid" of the collector
    sa.Column("host", _TEXT, nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("taken_us", _TIME, nullable=False),
    sa.Column("renewed_us", _TIME, nullable=False),
    sa.Column("expires_us", _TIME, nullable=False),
)

# Each notification a collector sent (or claimed to send): its key makes a restart, or a
# second collector, send no event twice.
notifications_sent = sa.Table(
    "notifications_sent", metadata,
    sa.Column("event_key", _TEXT, primary_key=True),
    sa.Column("target", _TEXT, primary_key=True),  # the [[notify]] table's name
    sa.Column("kind", _TEXT, nullable=False),
    sa.Column("claimed_us", _TIME, nullable=False),
    sa.Column("sent_us", _TIME),  # NULL: claimed, not yet delivered
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("error", _TEXT),
)

# Schema 1 held provider and config values in VARCHAR(n) columns of these lengths; schema 2
# makes them TEXT (table -> column -> length in schema 1).
V1_BOUNDED: dict[str, dict[str, int]] = {
    "spans": {"scope": 128, "account": 128, "region": 64, "zone": 64, "group_name": 256,
              "instance_id": 128, "name": 256, "image_id": 256, "version": 256},
    "group_spans": {"scope": 128, "account": 128, "region": 64, "zone": 64,
                    "group_name": 256, "desired_image_id": 256, "desired_version": 256,
                    "canary_image_id": 256, "canary_version": 256},
    "images": {"scope": 128, "image_id": 256, "name": 512, "version": 256},
    "polls": {"scope": 128},
    "poll_regions": {"scope": 128, "region": 64},
    "scope_state": {"scope": 128},
    "actions": {"scope": 128, "region": 64, "group_name": 256, "to_version": 256,
                "actor": 512, "owner": 256},
    "action_steps": {"key": 256},
    "group_locks": {"scope": 128, "region": 64, "group_name": 256, "owner": 256},
    "audit_log": {"actor": 512, "scope": 128, "region": 64, "group_name": 256},
}


def _to_2(conn: Connection) -> None:
    """Unbounded text for provider and config values (widening only: no row changes), and
    an id for the store that audit witnesses name."""
    if conn.dialect.name == "postgresql":
        for table, columns in V1_BOUNDED.items():
            alters = ", ".join(f"ALTER COLUMN {column} TYPE TEXT" for column in columns)
            conn.execute(sa.text(f"ALTER TABLE {table} {alters}"))
    # SQLite never enforced the lengths: its VARCHAR(n) columns already hold any text.
    _ensure_store_id(conn)


# Columns version 3 added to the journal: convergence progress and a requested stop.
V3_ACTION_COLUMNS = {"on_target": "INTEGER", "needed": "INTEGER",
                     "stop_requested_us": "BIGINT", "stop_reason": "TEXT", "stop_actor": "TEXT"}


def _to_3(conn: Connection) -> None:
    """Actions track convergence and can be stopped; versions can be marked bad (new table)."""
    have = {c["name"] for c in sa.inspect(conn).get_columns("actions")}
    for column, kind in V3_ACTION_COLUMNS.items():
        if column not in have:
            conn.execute(sa.text(f"ALTER TABLE actions ADD COLUMN {column} {kind}"))
    metadata.tables["bad_versions"].create(conn, checkfirst=True)


# Columns version 4 added (table -> column -> SQL type and default): where a span came from
# (backfill), and what the clouds say of an instance's billing and state and of a group's owner.
V4_COLUMNS = {
    "spans": {"source": "TEXT NOT NULL DEFAULT 'observed'", "lifecycle": "TEXT",
              "state_reason": "TEXT", "standby": "BOOLEAN NOT NULL DEFAULT FALSE",
              "warm": "BOOLEAN NOT NULL DEFAULT FALSE", "desired_image_id": "TEXT",
              "desired_version": "TEXT"},
    "group_spans": {"source": "TEXT NOT NULL DEFAULT 'observed'", "owner": "TEXT",
                    "notes": "TEXT"},
}


def _to_4(conn: Connection) -> None:
    """Spans say where they came from (every existing one was observed); instances their
    lifecycle, state reason, standby, warm pool and what their group wants of their type;
    groups their owner and notes; backfills, scope leases and notifications sent are recorded
    (new tables). Adding a column with a constant default rewrites no row."""
    inspector = sa.inspect(conn)
    for table, columns in V4_COLUMNS.items():
        have = {c["name"] for c in inspector.get_columns(table)}
        for column, kind in columns.items():
            if column not in have:
                conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN {column} {kind}"))
    for table in ("backfills", "scope_leases", "notifications_sent"):
        metadata.tables[table].create(conn, checkfirst=True)


# Forward migrations: MIGRATIONS[n] takes a database at version n to n + 1.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _to_2, 2: _to_3, 3: _to_4}


def _ensure_store_id(conn: Connection) -> str:
    found = read_store_id(conn)
    if found is None:
        found = str(uuid.uuid4())
        conn.execute(sa.insert(meta), [{"key": "store_id", "value": found}])
    return found


def read_store_id(conn: Connection) -> str | None:
    """The id this database got when it was created (or migrated to schema 2): witnesses of
    the audit log name their store by it."""
    return conn.execute(
        sa.select(meta.c.value).where(meta.c.key == "store_id")
    ).scalar_one_or_none()


def read_version(conn: Connection) -> int | None:
    """The schema version recorded in the database, None if it has no FleetView tables."""
    if not sa.inspect(conn).has_table(meta.name):
        return None
    value = conn.execute(
        sa.select(meta.c.value).where(meta.c.key == "schema_version")
    ).scalar_one_or_none()
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise StoreError(f"the database records schema version {value!r}, which is not a "
                         "FleetView schema; point store.url at a FleetView database") from None


def too_new(found: int, where: str) -> StoreError:
    return StoreError(
        f"{where} was written by a newer FleetView (schema {found}; this FleetView knows up "
        f"to {SCHEMA_VERSION}); upgrade FleetView, or point store.url at another database. "
        "The database was not modified."
    )


# Any constant: PostgreSQL advisory lock that makes collectors starting at once create or
# migrate the schema one after the other.
_SCHEMA_LOCK = 0x464C5456


def ensure_schema(engine: Engine, where: str, readonly: bool, writer: Engine | None = None
                  ) -> int:
    """Create or migrate the schema (never when readonly); refuse a newer one untouched.

    `writer` is the engine whose transactions take the write lock up front (SQLite)."""
    with engine.connect() as conn:
        found = read_version(conn)
        conn.rollback()
    if found is not None and found > SCHEMA_VERSION:
        raise too_new(found, where)
    if found == SCHEMA_VERSION:
        return found
    if readonly:
        if found is None:
            raise StoreError(f"{where} holds no FleetView history yet; run `fleetview collect` "
                             "once (or open the window without --no-collect)")
        raise StoreError(f"{where} has an older schema ({found}); run `fleetview collect` once "
                         "to upgrade it")
    with (writer or engine).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK})
        # Read again inside the write transaction: another process may have got there first.
        found = read_version(conn)
        if found is not None and found > SCHEMA_VERSION:
            raise too_new(found, where)
        if found is None:
            clash = sorted(set(sa.inspect(conn).get_table_names()) & set(metadata.tables))
            if clash:
                raise StoreError(
                    f"{where} has tables named like FleetView's ({', '.join(clash)}) but no "
                    "FleetView schema version, so it is not a FleetView database; point "
                    "store.url at a new file or an empty database. Nothing was changed.")
            metadata.create_all(conn)
            conn.execute(sa.insert(meta), [
                {"key": "schema_version", "value": str(SCHEMA_VERSION)},
            ])
            _ensure_store_id(conn)
            return SCHEMA_VERSION
        while found < SCHEMA_VERSION:
            MIGRATIONS[found](conn)
            found += 1
        conn.execute(sa.update(meta).where(meta.c.key == "schema_version")
                     .values(value=str(found)))
    return found
