"""Store test fixtures: a SQLite file and a throw-away PostgreSQL server."""

from tests.helpers.pg import pg_cluster, pg_server, pg_url, store_url  # noqa: F401
