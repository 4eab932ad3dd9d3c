"""A real SQLite store per test, for the journal, the locks and the audit log."""

import pytest

from fleetview.store import Store


@pytest.fixture
def store(tmp_path):
    with Store.open(f"sqlite:///{tmp_path / 'history.db'}") as opened:
        yield opened
