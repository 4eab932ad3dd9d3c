"""One store with the known history of tests/helpers/report_history.py per database (SQLite,
a real PostgreSQL), shared by a test module."""

from __future__ import annotations

import pytest

from fleetview.reports.params import ReportParams
from fleetview.reports.report import build_report
from fleetview.store import Store
from tests.helpers import report_history as known
from tests.helpers.pg import pg_server, pg_url, store_url  # noqa: F401


@pytest.fixture(scope="module",
                params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def seeded_url(request, tmp_path_factory):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('report') / 'history.db'}"
    else:
        server = request.getfixturevalue("pg_server")
        url = server.create_database()
    with Store.open(url) as store:
        known.seed(store)
    yield url
    if request.param != "sqlite":
        server.drop_database(url)


@pytest.fixture(scope="module")
def seeded(seeded_url):
    with Store.open(seeded_url, readonly=True) as store:
        yield store


@pytest.fixture(scope="module")
def report(seeded):
    params = ReportParams(known.h(0), known.h(known.END_H), stall_after=known.STALL_AFTER,
                          failure_window=known.FAILURE_WINDOW)
    return build_report(seeded, params, now=known.h(known.END_H))
