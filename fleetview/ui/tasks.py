"""The one task runner: pure functions on worker threads, results back on the GUI thread;
long work (an action) reports progress and can be asked to stop through a TaskState."""

from __future__ import annotations

import concurrent.futures
import contextlib
import itertools
import logging
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Signal

log = logging.getLogger(__name__)

# Workers and the GUI thread share the GIL. Each time the GUI thread comes back from Qt it
# waits for a running worker to yield, up to the switch interval (5 ms by default); a paint
# makes dozens of such trips, so the default turns one busy worker into a stalled window.
GIL_SWITCH_INTERVAL_S = 0.0005


def share_the_gil_finely() -> None:
    """Shorten the interpreter's switch interval to GIL_SWITCH_INTERVAL_S: a process-wide
    setting, so the application sets it once at launch (app.launch), never a widget."""
    if sys.getswitchinterval() > GIL_SWITCH_INTERVAL_S:
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)


class TaskState:
    """What long work sees of its runner (as Orange's TaskState): `report(value)` hands a
    progress value to the widget's `on_progress` on the GUI thread, and
    `is_interruption_requested()` says that the widget asked it to stop (it is closing, or
    started the task again). Work that cannot stop mid-way may go on; its result is dropped.

    A stop the operator asked for carries a reason (`request_stop(reason)`): `stop_reason()`
    returns it, and `pause(seconds)` (a `sleep` for waiting loops) ends early once it is
    asked. A bare interruption (the window closing) has no reason: work that must not be cut
    short by a closing window (an action in the cloud) goes on, and only its result is lost.

    Plain Python: a function taking a TaskState is tested without Qt, with `TaskState()`.
    """

    def __init__(self, report: Callable[[object], None] | None = None):
        self._report = report
        self._interrupt = threading.Event()
        self._stop = threading.Event()
        self._stop_reason: str | None = None

    def report(self, value: object) -> None:
        if self._report is not None:
            self._report(value)

    def request_interruption(self) -> None:
        self._interrupt.set()

    def is_interruption_requested(self) -> bool:
        return self._interrupt.is_set()

    def request_stop(self, reason: str) -> None:
        """Ask the work to stop, for `reason` (said in its journal and audit log)."""
        self._stop_reason = reason
        self._stop.set()
        self._interrupt.set()

    def stop_reason(self) -> str | None:
        """The reason of a stop asked for, or None (a bare interruption is not a stop)."""
        return self._stop_reason

    def pause(self, seconds: float) -> None:
        """Sleep up to `seconds`; return at once when a stop is asked."""
        self._stop.wait(max(0.0, seconds))


@dataclass
class _Pending:
    key: str
    on_done: Callable[[Any], None]
    on_error: Callable[[BaseException], None] | None
    future: concurrent.futures.Future
    on_progress: Callable[[object], None] | None = None
    state: TaskState | None = None  # long tasks only


class TaskRunner(QObject):
    """Runs `fn(*args)` on a worker thread; `on_done(result)` / `on_error(exc)` on this thread.

    Tasks have a key: starting a task again under the same key drops the previous one (taken
    off the queue if it has not started, its result ignored if it has), so a widget that asks
    twice only ever sees the newest answer.

    The workers are Python threads (a ThreadPoolExecutor), not QThreadPool threads: Python
    gives a thread that Qt started a fresh thread state on every call, so per-thread state
    (SQLAlchemy's per-thread SQLite connections, threading.local) would not last from one
    task to the next, and a pool keyed by thread then closes connections still in use.
    Results come back through a queued Qt signal.

    `start_long` runs work that takes minutes (an action) on a thread of its own, so it never
    holds up the reads queued behind it, and a daemon one, so closing the window never waits
    for it; it gets a TaskState for progress and interruption.
    """

    _finished = Signal(int, bool, object)
    _progress = Signal(int, object)
    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None, max_threads: int = 1):
        super().__init__(parent)
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_threads, thread_name_prefix="fleetview-task")
        self._ids = itertools.count(1)
        self._latest: dict[str, int] = {}
        self._pending: dict[int, _Pending] = {}
        self._closed = False
        self._finished.connect(self._deliver)
        self._progress.connect(self._deliver_progress)

    def start(self, key: str, fn: Callable, *args: Any,
              on_done: Callable[[Any], None],
              on_error: Callable[[BaseException], None] | None = None, **kwargs: Any) -> int:
        if self._closed:
            raise RuntimeError("the task runner is shut down")
        self.cancel(key)
        task_id = next(self._ids)
        was_idle = not self._pending
        self._latest[key] = task_id
        future = self._executor.submit(self._run, task_id, fn, args, kwargs)
        self._pending[task_id] = _Pending(key, on_done, on_error, future)
        if was_idle:
            self.busy_changed.emit(True)
        return task_id

    def start_long(self, key: str, fn: Callable, *args: Any,
                   on_done: Callable[[Any], None],
                   on_error: Callable[[BaseException], None] | None = None,
                   on_progress: Callable[[object], None] | None = None,
                   **kwargs: Any) -> TaskState:
        """Run `fn(state, *args)` on a daemon thread of its own; `state.report(value)` calls
        `on_progress(value)` on this thread. Returns the state, to ask the work to stop."""
        if self._closed:
            raise RuntimeError("the task runner is shut down")
        self.cancel(key)
        task_id = next(self._ids)
        was_idle = not self._pending
        self._latest[key] = task_id
        state = TaskState(lambda value: self._emit("_progress", task_id, value))
        future: concurrent.futures.Future = concurrent.futures.Future()
        future.set_running_or_notify_cancel()
        self._pending[task_id] = _Pending(key, on_done, on_error, future, on_progress, state)
        thread = threading.Thread(target=self._run_long,
                                  args=(task_id, future, fn, (state, *args), kwargs),
                                  name=f"fleetview-long-{key}"[:60], daemon=True)
        thread.start()
        if was_idle:
            self.busy_changed.emit(True)
        return state

    def _run(self, task_id: int, fn: Callable, args: tuple, kwargs: dict) -> None:
        try:
            result, ok = fn(*args, **kwargs), True
        except Exception as exc:  # handed to on_error on the GUI thread
            result, ok = exc, False
        self._emit("_finished", task_id, ok, result)

    def _run_long(self, task_id: int, future: concurrent.futures.Future, fn: Callable,
                  args: tuple, kwargs: dict) -> None:
        try:
            self._run(task_id, fn, args, kwargs)
        finally:
            future.set_result(None)

    def _emit(self, signal: str, *args: Any) -> None:
        # From a worker: a long task can outlive its runner (the window closed, and Qt deleted
        # the runner with it); then nobody listens, and emitting raises RuntimeError.
        with contextlib.suppress(RuntimeError):
            getattr(self, signal).emit(*args)

    def cancel(self, key: str) -> None:
        """Drop the task of this key: off the queue if it has not started, its result (and
        progress) ignored if it has; a long task is asked to stop."""
        old = self._latest.pop(key, None)
        pending = self._pending.get(old) if old is not None else None
        if pending is None:
            return
        if pending.state is not None:
            pending.state.request_interruption()
        elif pending.future.cancel():
            self._forget(old)

    def is_running(self, key: str) -> bool:
        return key in self._latest

    def running_long(self) -> list[str]:
        """The keys of the long tasks under way."""
        return [p.key for p in self._pending.values()
                if p.state is not None and self._latest.get(p.key) is not None]

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    def wait(self, timeout_ms: int = -1) -> bool:
        """Wait for the tasks started so far (results still arrive through the event loop)."""
        futures = [p.future for p in self._pending.values()]
        timeout = None if timeout_ms < 0 else timeout_ms / 1000
        _, not_done = concurrent.futures.wait(futures, timeout=timeout)
        return not not_done

    def shutdown(self) -> None:
        """Drop queued tasks, wait for running ones (long ones are only asked to stop),
        deliver nothing more."""
        self._closed = True
        for pending in self._pending.values():
            if pending.state is not None:
                pending.state.request_interruption()
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._latest.clear()
        self._pending.clear()

    def _forget(self, task_id: int) -> None:
        self._pending.pop(task_id, None)
        if not self._pending:
            self.busy_changed.emit(False)

    def _deliver_progress(self, task_id: int, value: object) -> None:
        pending = self._pending.get(task_id)
        if pending is None or self._latest.get(pending.key) != task_id:
            return
        if pending.on_progress is not None:
            pending.on_progress(value)

    def _deliver(self, task_id: int, ok: bool, result: object) -> None:
        pending = self._pending.get(task_id)
        if pending is None:
            return
        self._forget(task_id)
        if self._latest.get(pending.key) != task_id:
            return  # superseded by a newer task of the same key
        del self._latest[pending.key]
        if ok:
            pending.on_done(result)
        elif pending.on_error is not None:
            pending.on_error(result)  # type: ignore[arg-type]
        else:
            log.error("background task %s failed", pending.key, exc_info=result)  # type: ignore[arg-type]
