"""The task runner: work off the GUI thread, results on it, newer tasks win."""

from __future__ import annotations

import threading

from PySide6.QtCore import QThread

from fleetview.ui.tasks import TaskRunner


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
