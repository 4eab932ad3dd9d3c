"""The timeline in the main window: new history arrives after a poll even while an action's
reads hold the window's worker, and each scope's last good poll reaches the timeline."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from fleetview.domain.model import Inventory
from tests.ui.conftest import PROD, _group, _image, _inst


def test_a_poll_reaches_the_timeline_while_an_action_read_holds_the_worker(
        qtbot, window, seeded_store, known_fleet):
    release = threading.Event()
    # An action's read that takes long (preparing a rollback of a large fleet took minutes).
    window.tasks.start("plan", release.wait, 30, on_done=lambda _: None)
    try:
        last = known_fleet.inventories()[-1]
        when = known_fleet.now + timedelta(seconds=2)
        w5 = _inst("w5", "1.1", "us-east-1", "web", when)
        images = {**last.images, "ami-1.1": _image("1.1")}
        poll = Inventory(PROD, when, (*last.instances, w5),
                         (_group("web", "us-east-1", "1.1", 4), *last.groups[1:]), images, (),
                         PROD.regions, api_calls=2)
        seeded_store.record_poll(poll, when - timedelta(seconds=1), when)
        window.refresh()
        qtbot.waitUntil(lambda: "w5" in set(window.timeline.plot.data.inst_id), timeout=10000)
        assert window.tasks.is_running("plan")  # still held: the history came around it
    finally:
        release.set()


def test_the_scopes_last_good_poll_reaches_the_timeline(window, known_fleet):
    plot = window.timeline.plot
    last = (known_fleet.now - timedelta(minutes=1)).timestamp()
    assert plot._last_ok[("prod", "us-east-1")] == pytest.approx(last, abs=2)
    web = plot.data.groups.index(("prod", "us-east-1", "web"))
    # Stale as the tree says it: no good poll for three intervals (of 60 s here).
    assert plot.stale_grace_s == 180
    assert plot.stale_since(web) is None
    plot.set_now(last + 2 * 3600)
    assert plot.stale_since(web) == pytest.approx(last, abs=2)
