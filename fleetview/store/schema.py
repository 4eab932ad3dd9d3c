"""The tables (SQLAlchemy Core, one schema for SQLite and PostgreSQL), its version, migrations.

Instants are integer microseconds since the epoch (UTC): compact, exact, and compared the
same way on both databases. An open span has `end_us` NULL.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from fleetview.store.errors import StoreError

SCHEMA_VERSION = 1

# SQLite only makes an INTEGER PRIMARY KEY the rowid alias (fast, autoincrementing).
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TIME = sa.BigInteger

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
    sa.Column("scope", sa.String(128), nullable=False),
    sa.Column("account", sa.String(128)),
    sa.Column("region", sa.String(64), nullable=False),
    sa.Column("zone", sa.String(64)),
    sa.Column("group_name", sa.String(256)),
    sa.Column("instance_id", sa.String(128), nullable=False),
    sa.Column("name", sa.String(256)),
    sa.Column("image_id", sa.String(256)),
    sa.Column("version", sa.String(256)),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("start_us", _TIME, nullable=False),
    sa.Column("end_us", _TIME),
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
    sa.Column("scope", sa.String(128), nullable=False),
    sa.Column("account", sa.String(128)),
    sa.Column("region", sa.String(64), nullable=False),
    sa.Column("zone", sa.String(64)),
    sa.Column("group_name", sa.String(256), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("desired_image_id", sa.String(256)),
    sa.Column("desired_version", sa.String(256)),
    sa.Column("canary_image_id", sa.String(256)),
    sa.Column("canary_version", sa.String(256)),
    sa.Column("target_size", sa.Integer, nullable=False),
    sa.Column("updating", sa.Boolean, nullable=False),
    sa.Column("start_us", _TIME, nullable=False),
    sa.Column("end_us", _TIME),
    sa.Index("ix_group_spans_scope_end", "scope", "end_us", "region", "group_name"),
    sa.Index("ix_group_spans_group", "scope", "region", "group_name", "start_us"),
)

images = sa.Table(
    "images", metadata,
    sa.Column("scope", sa.String(128), primary_key=True),
    sa.Column("image_id", sa.String(256), primary_key=True),
    sa.Column("provider", sa.String(8), nullable=False),
    sa.Column("name", sa.String(512)),
    sa.Column("version", sa.String(256)),
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
    sa.Column("scope", sa.String(128), nullable=False),
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
    sa.Column("scope", sa.String(128), nullable=False),
    sa.Column("region", sa.String(64)),
    sa.Column("finished_us", _TIME, nullable=False),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("instances", sa.Integer, nullable=False),
    sa.Index("ix_poll_regions_scope_region", "scope", "region", "finished_us"),
)

# Per-scope write counter: a writer bumps it first in each poll's transaction, which
# serialises writers of one scope and tells a cached copy of the open spans it is current.
scope_state = sa.Table(
    "scope_state", metadata,
    sa.Column("scope", sa.String(128), primary_key=True),
    sa.Column("generation", sa.BigInteger, nullable=False),
    sa.Column("last_seen_us", _TIME, nullable=False),
)

# Forward migrations: MIGRATIONS[n] takes a database at version n to n + 1.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {}


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
            return SCHEMA_VERSION
        while found < SCHEMA_VERSION:
            MIGRATIONS[found](conn)
            found += 1
        conn.execute(sa.update(meta).where(meta.c.key == "schema_version")
                     .values(value=str(found)))
    return found
