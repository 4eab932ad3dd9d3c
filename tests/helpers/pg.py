"""A throw-away PostgreSQL server for the tests: Debian's initdb/pg_ctl in a temp dir.

`FLEETVIEW_TEST_PG_URL` (an admin URL, e.g. postgresql+psycopg://postgres@127.0.0.1/postgres)
uses an existing server instead. Tests skip, with the reason, only when no server can be had.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

_counter = itertools.count()


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parent.parent.name))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PgCluster:
    """One PostgreSQL cluster on 127.0.0.1; `stop()` and `start()` again keep its port."""

    def __init__(self) -> None:
        self.bin = _bin_dir()
        if self.bin is None:
            raise RuntimeError("no PostgreSQL server binaries (initdb) found; install them "
                               "with `apt-get install -y postgresql`")
        self.as_user: list[str] = []
        self.owner: tuple[int, int] | None = None
        if os.geteuid() == 0:
            # PostgreSQL refuses to run as root.
            try:
                entry = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root and there is no `postgres` user to run "
                                   "the server as") from None
            runuser = shutil.which("runuser")
            if runuser is None:
                raise RuntimeError("running as root and `runuser` is missing")
            self.as_user = [runuser, "-u", "postgres", "--"]
            self.owner = (entry.pw_uid, entry.pw_gid)
        self.root = Path(tempfile.mkdtemp(prefix="fleetview-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        if self.owner:
            os.chown(self.root, *self.owner)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "fleetview",
                  "-E", "UTF8", "--no-locale", "--no-sync")
        self.start()

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([*self.as_user, str(self.bin / tool), *args],
                              capture_output=True, text=True, timeout=60)
        if check and done.returncode != 0:
            raise RuntimeError(f"{tool} failed: {done.stderr.strip() or done.stdout.strip()}")
        return done

    def start(self) -> None:
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                   "-c max_connections=200")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-o", options,
                  "-w", "-t", "30", "start")

    def stop(self, mode: str = "fast") -> None:
        # "fast" ends sessions and flushes: with synchronous_commit off, "immediate" would
        # lose the last commits, which is a crash, not the outage a test means.
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://fleetview@127.0.0.1:{self.port}/postgres"


class PgServer:
    """Hands out fresh databases on one server."""

    def __init__(self, admin_url: str, cluster: PgCluster | None = None):
        self.admin_url = admin_url
        self.cluster = cluster

    def _admin(self):
        import psycopg

        url = make_url(self.admin_url)
        return psycopg.connect(
            host=url.host, port=url.port or 5432, user=url.username, password=url.password,
            dbname=url.database or "postgres", autocommit=True, connect_timeout=5)

    def create_database(self) -> str:
        name = f"fv_test_{os.getpid()}_{next(_counter)}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return make_url(self.admin_url).set(database=name).render_as_string(
            hide_password=False)

    def drop_database(self, url: str) -> None:
        name = make_url(url).database
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start_server() -> PgServer:
    """A server from FLEETVIEW_TEST_PG_URL, else a fresh local cluster; RuntimeError if
    neither works (the caller turns that into a visible skip)."""
    url = os.environ.get("FLEETVIEW_TEST_PG_URL")
    if url:
        server = PgServer(url)
        server._admin().close()
        return server
    cluster = PgCluster()
    return PgServer(cluster.admin_url, cluster)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    try:
        server = start_server()
    except Exception as exc:  # any failure to get a server is a visible skip, not an error
        pytest.skip(f"no PostgreSQL server could be started: {exc}")
    yield server
    if server.cluster is not None:
        server.cluster.destroy()


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """A fresh, empty database on the test server."""
    url = pg_server.create_database()
    yield url
    pg_server.drop_database(url)


@pytest.fixture
def pg_cluster() -> Iterator[PgCluster]:
    """A cluster of this test's own, for tests that stop and restart the server."""
    try:
        cluster = PgCluster()
    except Exception as exc:
        pytest.skip(f"no PostgreSQL server could be started: {exc}")
    yield cluster
    cluster.destroy()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request, tmp_path) -> str:
    """The same tests on SQLite and on a real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'history.db'}"
    return request.getfixturevalue("pg_url")
