"""The window's state model, as plain Python: what it holds and whom it tells."""

from __future__ import annotations

import gc
import subprocess
import sys
from types import SimpleNamespace

import pandas as pd
import pytest

from fleetview.ui.state import Emitter, FleetFrame, WindowState

FLEET = pd.DataFrame({
    "instance_id": ["w1", "w2", "b1"],
    "name": ["web-1", "web-2", "bastion"],
    "scope": ["prod", "prod", "lab"],
    "region": ["us-east-1", "us-east-1", "europe-west1"],
    "group": ["web", "web", None],
    "version": ["1.1", "1.0", "0.9"],
})
GROUPS = pd.DataFrame({"scope": ["prod"], "region": ["us-east-1"], "group": ["web"],
                       "desired_version": ["1.1"]})


def frame() -> FleetFrame:
    return FleetFrame(FLEET, GROUPS, version_counts={"1.1": 1, "1.0": 1, "0.9": 1})


def freshness(*rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["scope", "region", "last_poll", "last_ok", "ok", "error"])


def test_the_model_imports_no_qt():
    code = ("import sys, fleetview.ui.state; "
            "print(sorted(m for m in sys.modules if m.startswith(('PySide6', 'pyqtgraph'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_emitter_calls_in_order_and_forgets_what_disconnects():
    emitter, calls = Emitter("x"), []
    first = emitter.connect(lambda v: calls.append(("first", v)))
    emitter.connect(lambda v: calls.append(("second", v)))
    emitter.emit(1)
    emitter.disconnect(first)
    emitter.emit(2)
    assert calls == [("first", 1), ("second", 1), ("second", 2)]


def test_emitter_does_not_keep_a_gone_subscriber_alive():
    emitter, calls = Emitter(), []

    class View:
        def on_change(self, value):
            calls.append(value)

    view = View()
    emitter.connect(view.on_change)
    emitter.emit("seen")
    del view
    gc.collect()
    emitter.emit("not seen")
    assert calls == ["seen"]
    assert len(emitter) == 0


def test_a_new_fleet_frame_reaches_subscribers_and_answers_questions():
    state, seen = WindowState(), []
    state.fleet_changed.connect(seen.append)
    state.set_frame(frame())
    assert seen == [state.frame]
    assert list(state.fleet["instance_id"]) == ["w1", "w2", "b1"]
    assert state.desired_version("prod", "us-east-1", "web") == "1.1"
    assert state.desired_version("prod", "us-east-1", "api") is None
    assert state.scope_of("b1") == "lab"
    assert state.scope_of("gone") is None
    assert state.instance_row("w2")["version"] == "1.0"
    assert list(state.grouped_instances()["instance_id"]) == ["w1", "w2"]
    assert state.group_keys() == [("prod", "us-east-1", "web")]


def test_an_empty_state_answers_without_failing():
    state = WindowState()
    assert state.scope_of("w1") is None
    assert state.desired_version("prod", "us-east-1", "web") is None
    assert state.group_keys() == []
    assert len(state.grouped_instances()) == 0


def test_only_the_first_history_is_first():
    state, seen = WindowState(), []
    state.history_changed.connect(lambda history, first: seen.append(first))
    state.set_history(state.history)
    state.set_history(state.history)
    assert seen == [True, False]


def test_selection_says_where_it_came_from():
    state, seen = WindowState(), []
    state.instance_selected.connect(lambda iid, source: seen.append((iid, source)))
    state.group_selected.connect(lambda key: seen.append(key))
    state.select_instance("w1", "table")
    state.select_group(["prod", "us-east-1", "web"])
    state.select_instance(None, "window")
    assert seen == [("w1", "table"), ("prod", "us-east-1", "web"), (None, "window")]
    assert state.selected_group == ("prod", "us-east-1", "web")
    assert state.selected_instance is None


def test_a_scope_is_announced_once_and_its_polls_tracked():
    state, added, changed = WindowState(), [], []
    state.scope_added.connect(added.append)
    state.scope_changed.connect(lambda health: changed.append(
        (health.name, health.polling, dict(health.errors))))
    state.add_scopes(["prod", "prod", "lab"])
    assert added == ["prod", "lab"]
    state.poll_started("prod")
    assert state.polling()
    state.scope_failed("prod", "eu-west-1", "throttled")
    state.poll_finished("prod", "6 instances in 1.0 s", {None: "", "us-east-1": "denied"})
    assert not state.polling()
    assert changed == [("prod", True, {}), ("prod", True, {"eu-west-1": "throttled"}),
                       ("prod", False, {"us-east-1": "denied"})]
    assert state.scopes["prod"].summary == "6 instances in 1.0 s"
    state.scope_failed("prod", "us-east-1", None)  # cleared
    assert state.scopes["prod"].errors == {}


def test_the_stores_last_polls_set_freshness_and_errors():
    state, fresh = WindowState(), []
    state.freshness_changed.connect(fresh.append)
    now = pd.Timestamp("2026-01-01 12:00", tz="UTC")
    state.set_freshness(freshness(
        ("prod", "us-east-1", now, now, True, None),
        ("lab", "europe-west1", now, pd.NaT, False, "403 Forbidden")))
    assert fresh[0][("prod", "us-east-1")].status(now.timestamp() + 10, 60) == "ok"
    assert fresh[0][("lab", "europe-west1")].status(now.timestamp(), 60) == "error"
    assert state.scopes["lab"].errors == {"europe-west1": "403 Forbidden"}
    assert state.scopes["prod"].errors == {}
    assert not state.scopes["lab"].reported  # the store spoke, not the collector


def test_readiness_markers_and_messages_reach_subscribers():
    state, seen = WindowState(), []
    state.readiness_changed.connect(lambda r: seen.append(("readiness", r)))
    state.markers_changed.connect(lambda m: seen.append(("markers", len(m))))
    state.message.connect(lambda text, ms: seen.append(("message", text, ms)))
    ready = SimpleNamespace(ready=True, target=SimpleNamespace(version="1.0"), why="")
    state.set_readiness({("prod", "us-east-1", "web"): ready})
    state.set_markers(pd.DataFrame({"time": [pd.Timestamp.now(tz="UTC")], "label": ["x"]}))
    state.say("Planning…", 500)
    assert seen == [("readiness", {("prod", "us-east-1", "web"): ready}), ("markers", 1),
                    ("message", "Planning…", 500)]


def test_a_failing_subscriber_is_not_hidden():
    state = WindowState()

    def broken(_frame):
        raise ValueError("bug in a view")

    state.fleet_changed.connect(broken)
    with pytest.raises(ValueError, match="bug in a view"):
        state.set_frame(frame())


def test_the_model_carries_the_bad_marks_and_says_which_instance_runs_one():
    from fleetview.actions.quarantine import BadMark
    from fleetview.ui.state import bad_reasons

    wide = BadMark(1, "0.9", None, None, None, "0.9 leaks", "sec", "quarantine", None, 0)
    web = BadMark(2, "1.0", "prod", "us-east-1", "web", "1.0 returns 500s", "ana", "rollback",
                  "act-1", 1)
    state, calls = WindowState(), []
    state.bad_changed.connect(calls.append)
    state.set_frame(FleetFrame(FLEET, GROUPS, bad_marks=(wide, web)))
    state.set_frame(FleetFrame(FLEET, GROUPS, bad_marks=(wide, web)))  # the same: no event
    assert calls == [(wide, web)]
    assert state.bad_reason("prod", "us-east-1", "web", "1.0").endswith("1.0 returns 500s")
    assert state.bad_reason("prod", "us-east-1", "api", "1.0") is None  # web's mark only
    assert state.bad_reason("lab", "europe-west1", None, "0.9").endswith("0.9 leaks")
    assert set(state.quarantined()) == {"0.9"}
    reasons = bad_reasons(FLEET, state.bad_marks)
    assert [r is not None for r in reasons] == [False, True, True]
    state.set_frame(FleetFrame(FLEET, GROUPS))  # a frame that did not read marks keeps them
    assert state.bad_marks == (wide, web)
