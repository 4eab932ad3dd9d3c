"""The one task runner: pure functions on worker threads, results back on the GUI thread."""

from __future__ import annotations

import concurrent.futures
import itertools
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Signal

log = logging.getLogger(__name__)

# Workers and the GUI thread share the GIL. Each time the GUI thread comes back from Qt it
# waits for a running worker to yield, up to the switch interval (5 ms by default); a paint
# makes dozens of such trips, so the default turns one busy worker into a stalled window.
GIL_SWITCH_INTERVAL_S = 0.0005


@dataclass
class _Pending:
    key: str
    on_done: Callable[[Any], None]
    on_error: Callable[[BaseException], None] | None
    future: concurrent.futures.Future


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
    """

    _finished = Signal(int, bool, object)
    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None, max_threads: int = 1):
        super().__init__(parent)
        if sys.getswitchinterval() > GIL_SWITCH_INTERVAL_S:
            sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_threads, thread_name_prefix="fleetview-task")
        self._ids = itertools.count(1)
        self._latest: dict[str, int] = {}
        self._pending: dict[int, _Pending] = {}
        self._closed = False
        self._finished.connect(self._deliver)

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

    def _run(self, task_id: int, fn: Callable, args: tuple, kwargs: dict) -> None:
        try:
            result, ok = fn(*args, **kwargs), True
        except Exception as exc:  # handed to on_error on the GUI thread
            result, ok = exc, False
        self._finished.emit(task_id, ok, result)

    def cancel(self, key: str) -> None:
        old = self._latest.pop(key, None)
        if old is not None and old in self._pending and self._pending[old].future.cancel():
            self._forget(old)

    def is_running(self, key: str) -> bool:
        return key in self._latest

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
        """Drop queued tasks, wait for running ones, deliver nothing more."""
        self._closed = True
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._latest.clear()
        self._pending.clear()

    def _forget(self, task_id: int) -> None:
        self._pending.pop(task_id, None)
        if not self._pending:
            self.busy_changed.emit(False)

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
