"""The audit log tab: read when it is shown, following each new entry, in readable words."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings

from fleetview.actions import audit
from fleetview.config import Config, PollConfig, StoreConfig
from fleetview.ui.action_controller import ActionController
from fleetview.ui.audit_view import detail_text
from fleetview.ui.main_window import MainWindow


@pytest.fixture
def window(qtbot, seeded_store, store_url, tmp_path):
    config = Config(store=StoreConfig(url=store_url), poll=PollConfig(interval_s=60))
    w = MainWindow(seeded_store, config,
                   settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    w.action_controller = ActionController(w)
    qtbot.addWidget(w)
    w.show()
    w.start()
    yield w
    w.shutdown()


def rows(window) -> list[str]:
    table = window.action_controller.audit_view.table
    return [table.item(r, 2).text() for r in range(table.rowCount())]


def test_the_tab_loads_when_shown_and_follows_new_entries(qtbot, seeded_store, window):
    controller = window.action_controller
    audit.append(seeded_store, "plan_confirmed", "alice", scope="prod", group="web",
                 reason="1.1 is bad", detail={"to_version": "1.0", "instances": ["w2", "w3"]})
    controller.actions_dock.raise_()
    qtbot.wait(300)
    assert rows(window) == []  # behind the Actions tab: not read yet
    controller.audit_dock.raise_()  # the tab clicked, not the palette's command
    qtbot.waitUntil(lambda: rows(window) == ["plan_confirmed"], timeout=10000)
    detail = controller.audit_view.table.item(0, 7).text()
    assert detail == "instances: w2, w3 · to version: 1.0"  # keys as stored (sorted)
    audit.append(seeded_store, "recovered", "alice", scope="prod", group="web")
    qtbot.waitUntil(lambda: rows(window) == ["recovered", "plan_confirmed"], timeout=10000)


def test_details_read_as_words_not_python():
    assert detail_text('{"kind": "rollback", "steps": [], "stop": true, "batch": '
                       '{"size": 2, "pause_s": 30}}') == \
        "kind: rollback · stop: yes · batch: size 2, pause s 30"
    assert detail_text("not json") == "not json"
    assert detail_text(None) == ""
