"""The task runner: work off the GUI thread, results on it, newer tasks win."""

from __future__ import annotations

import threading

from PySide6.QtCore import QThread

from fleetview.ui.tasks import TaskRunner, TaskState


def test_result_arrives_on_the_gui_thread(qtbot):
    runner = TaskRunner()
    gui = QThread.currentThread()
    seen = {}

    def work(x):
        seen["worker"] = threading.current_thread() is threading.main_thread()
        return x * 2

    def done(result):
        seen["result"] = result
        seen["gui"] = QThread.currentThread() is gui

    runner.start("k", work, 21, on_done=done)
    qtbot.waitUntil(lambda: "result" in seen, timeout=5000)
    assert seen == {"worker": False, "result": 42, "gui": True}
    assert not runner.busy
    runner.shutdown()


def test_a_newer_task_of_the_same_key_wins(qtbot):
    runner = TaskRunner(max_threads=2)
    release = threading.Event()
    results = []

    def slow():
        release.wait(5)
        return "old"

    runner.start("k", slow, on_done=results.append)
    runner.start("k", lambda: "new", on_done=results.append)
    qtbot.waitUntil(lambda: results == ["new"], timeout=5000)
    release.set()
    runner.wait(5000)
    qtbot.wait(50)  # let the old result arrive, to be ignored
    assert results == ["new"]
    runner.shutdown()


def test_errors_go_to_on_error(qtbot):
    runner = TaskRunner()
    errors = []

    def boom():
        raise ValueError("no such table")

    runner.start("k", boom, on_done=lambda r: None, on_error=errors.append)
    qtbot.waitUntil(lambda: bool(errors), timeout=5000)
    assert isinstance(errors[0], ValueError)
    runner.shutdown()


def test_different_keys_run_side_by_side(qtbot):
    runner = TaskRunner()
    results = {}
    for key in ("a", "b", "c"):
        runner.start(key, lambda k=key: k.upper(), on_done=lambda r, k=key: results.update({k: r}))
    qtbot.waitUntil(lambda: len(results) == 3, timeout=5000)
    assert results == {"a": "A", "b": "B", "c": "C"}
    runner.shutdown()


def test_long_work_reports_progress_on_the_gui_thread_without_holding_up_reads(qtbot):
    runner = TaskRunner()
    gui = QThread.currentThread()
    release = threading.Event()
    progress, results = [], []

    def action(state: TaskState, steps: int) -> str:
        for n in range(1, steps + 1):
            state.report(n)
        release.wait(5)
        return "recovered"

    runner.start_long("action", action, 3, on_done=results.append,
                      on_progress=lambda n: progress.append((n, QThread.currentThread() is gui)))
    runner.start("read", lambda: "fleet", on_done=results.append)  # not queued behind it
    qtbot.waitUntil(lambda: results == ["fleet"] and len(progress) == 3, timeout=5000)
    assert progress == [(1, True), (2, True), (3, True)]
    assert runner.running_long() == ["action"]
    release.set()
    qtbot.waitUntil(lambda: results == ["fleet", "recovered"], timeout=5000)
    assert runner.running_long() == [] and not runner.busy
    runner.shutdown()


def test_shutdown_asks_long_work_to_stop_and_does_not_wait_for_it(qtbot):
    runner = TaskRunner()
    started, release = threading.Event(), threading.Event()
    seen = {}

    def action(state: TaskState) -> str:
        seen["state"] = state
        started.set()
        release.wait(10)
        return "late"

    results = []
    runner.start_long("action", action, on_done=results.append)
    assert started.wait(5)
    runner.shutdown()  # returns at once
    assert seen["state"].is_interruption_requested()
    release.set()
    qtbot.wait(50)
    assert results == []  # nothing is delivered after shutdown


def test_starting_long_work_again_stops_the_previous(qtbot):
    runner = TaskRunner()
    states, results = [], []

    def action(state: TaskState, name: str) -> str:
        states.append(state)
        while name == "first" and not state.is_interruption_requested():
            threading.Event().wait(0.01)
        return name

    runner.start_long("k", action, "first", on_done=results.append)
    qtbot.waitUntil(lambda: len(states) == 1, timeout=5000)
    runner.start_long("k", action, "second", on_done=results.append)
    qtbot.waitUntil(lambda: results == ["second"], timeout=5000)
    assert states[0].is_interruption_requested()
    runner.wait(5000)
    qtbot.wait(50)
    assert results == ["second"]
    runner.shutdown()


def test_a_task_state_works_without_qt():
    state, seen = TaskState(), []
    state.report("ignored without a listener")
    state = TaskState(seen.append)
    state.report(1)
    assert seen == [1] and not state.is_interruption_requested()
    state.request_interruption()
    assert state.is_interruption_requested()


def test_no_process_wide_setting_changes_when_a_runner_is_made(qtbot):
    import sys

    before = sys.getswitchinterval()
    sys.setswitchinterval(0.005)
    try:
        runner = TaskRunner()
        assert sys.getswitchinterval() == 0.005  # app.launch sets it, not a widget
        runner.shutdown()
    finally:
        sys.setswitchinterval(before)


def test_a_stop_has_a_reason_and_cuts_a_pause_short_an_interruption_does_not():
    import time

    from fleetview.ui.tasks import TaskState

    state = TaskState()
    state.request_interruption()  # the window closes: not a stop
    assert state.stop_reason() is None
    started = time.monotonic()
    state.pause(0.05)
    assert time.monotonic() - started >= 0.04
    state.request_stop("stopped by ana: wrong group")
    assert state.stop_reason() == "stopped by ana: wrong group"
    assert state.is_interruption_requested()
    started = time.monotonic()
    state.pause(30)
    assert time.monotonic() - started < 1
