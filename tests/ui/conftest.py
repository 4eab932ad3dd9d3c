"""UI test settings: fail on Qt warnings; a real Store seeded with a small known fleet."""

from __future__ import annotations

import gc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fleetview.domain.model import Group, Image, Instance, Inventory, RegionError, Scope, State

UI_DIR = Path(__file__).parent


@pytest.fixture(autouse=True)
def _collect_qt_garbage_here():
    """Collect each test's Qt garbage on this, the GUI thread. Left for later, a collection
    that starts in some worker thread (a demo seeding thread, a store query) would free Qt
    objects off their thread, which crashes the process."""
    yield
    gc.collect()


def pytest_collection_modifyitems(config, items):
    # pytest-qt's `qt_log_level_fail` ini option lives in pyproject, which this package does
    # not own; the marker does the same for the UI tests.
    for item in items:
        if UI_DIR in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.qt_log_level_fail("WARNING"))
            # The offscreen platform warns that it cannot size windows to their hints; that
            # is the test platform talking, not FleetView.
            item.add_marker(pytest.mark.qt_log_ignore(r"does not support propagateSizeHints"))


PROD = Scope("aws", "prod", "123456789012", ("us-east-1", "eu-west-1"))
LAB = Scope("gcp", "lab", "lab-project", ("europe-west1",))
LAB_ERROR = "403 Forbidden: compute.instances.list denied; grant roles/compute.viewer"


def _image(version: str) -> Image:
    return Image("aws", f"ami-{version}", f"app-{version}", version=version)


def _inst(iid: str, version: str, region: str, group: str | None, launched: datetime,
          state: State = State.RUNNING) -> Instance:
    return Instance("aws", iid, f"{iid}-name", "prod", PROD.account, region, f"{region}a", group,
                    f"ami-{version}", state, launched_at=launched, version=version)


def _group(name: str, region: str, version: str, size: int) -> Group:
    return Group("aws", "prod", PROD.account, region, name, "asg", f"ami-{version}", size,
                 desired_version=version)


class KnownFleet:
    """The seeded history (times relative to `now`):

    - now-3h: web (us-east-1) w1 w2 w3 on 1.0; api (eu-west-1) a1 a2 on 2.0; bastion b1 on 0.9
    - now-2h: web wants 1.1; w1 replaced by w4 on 1.1 (a rollout under way)
    - now-1h: a2 replaced by hand by a3 on 1.9 (drift)
    - now-1min: the same again; the lab scope's poll fails.
    """

    def __init__(self, now: datetime):
        self.now = now
        self.t1, self.t2, self.t3 = now - timedelta(hours=3), now - timedelta(hours=2), \
            now - timedelta(hours=1)

    def inventories(self) -> list[Inventory]:
        t1, t2, t3 = self.t1, self.t2, self.t3
        b1 = _inst("b1", "0.9", "us-east-1", None, t1)
        w = [_inst(f"w{n}", "1.0", "us-east-1", "web", t1) for n in (1, 2, 3)]
        w4 = _inst("w4", "1.1", "us-east-1", "web", t2)
        a1, a2 = (_inst(f"a{n}", "2.0", "eu-west-1", "api", t1) for n in (1, 2))
        a3 = _inst("a3", "1.9", "eu-west-1", "api", t3)
        polls = [
            (t1, [*w, a1, a2, b1], [_group("web", "us-east-1", "1.0", 3),
                                    _group("api", "eu-west-1", "2.0", 2)]),
            (t2, [w4, w[1], w[2], a1, a2, b1], [_group("web", "us-east-1", "1.1", 3),
                                                _group("api", "eu-west-1", "2.0", 2)]),
            (t3, [w4, w[1], w[2], a1, a3, b1], [_group("web", "us-east-1", "1.1", 3),
                                                _group("api", "eu-west-1", "2.0", 2)]),
            (self.now - timedelta(minutes=1), [w4, w[1], w[2], a1, a3, b1],
             [_group("web", "us-east-1", "1.1", 3), _group("api", "eu-west-1", "2.0", 2)]),
        ]
        out = []
        for when, instances, groups in polls:
            images = {f"ami-{v}": _image(v) for v in {i.version for i in instances}
                      | {g.desired_version for g in groups}}
            out.append(Inventory(PROD, when, tuple(instances), tuple(groups), images, (),
                                 PROD.regions, api_calls=2))
        return out

    def seed(self, store) -> None:
        for inv in self.inventories():
            store.record_poll(inv, inv.polled_at - timedelta(seconds=1), inv.polled_at)
        failed = Inventory(LAB, self.now, (), (), {}, (RegionError("europe-west1", LAB_ERROR),),
                           (), api_calls=1)
        store.record_poll(failed, self.now - timedelta(seconds=2), self.now)


@pytest.fixture
def known_fleet() -> KnownFleet:
    return KnownFleet(datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5))


@pytest.fixture
def store_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'history.db'}"


@pytest.fixture
def seeded_store(store_url, known_fleet):
    from fleetview.store import Store

    store = Store.open(store_url)
    known_fleet.seed(store)
    yield store
    store.close()


# What a MainWindow loads before it shows a fleet.
LOADS = {"fleet", "history", "freshness"}


@pytest.fixture
def window(qtbot, seeded_store, store_url, tmp_path):
    """A MainWindow on the seeded store, shown, with its first loads done."""
    from PySide6.QtCore import QSettings

    from fleetview.config import Config, PollConfig, StoreConfig
    from fleetview.ui.main_window import MainWindow

    config = Config(store=StoreConfig(url=store_url), poll=PollConfig(interval_s=60))
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    w = MainWindow(seeded_store, config, settings=settings)
    qtbot.addWidget(w)
    seen: set[str] = set()
    w.loaded.connect(seen.add)
    w.show()
    w.start()
    qtbot.waitUntil(lambda: seen >= LOADS, timeout=10000)
    yield w
    w.close()
