"""The one task runner: pure functions on a thread pool, results back on the GUI thread."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

log = logging.getLogger(__name__)


@dataclass
class _Pending:
    key: str
    on_done: Callable[[Any], None]
    on_error: Callable[[BaseException], None] | None
    runnable: QRunnable


class _Job(QRunnable):
    def __init__(self, runner: TaskRunner, task_id: int, fn: Callable, args: tuple, kwargs: dict):
        super().__init__()
        self.setAutoDelete(False)  # the runner holds the Python reference until delivery
        self._runner, self._id, self._fn, self._args, self._kwargs = runner, task_id, fn, args, kwargs

    def run(self) -> None:
        try:
            result, ok = self._fn(*self._args, **self._kwargs), True
        except Exception as exc:  # handed to on_error on the GUI thread
            result, ok = exc, False
        self._runner._finished.emit(self._id, ok, result)


class TaskRunner(QObject):
    """Runs `fn(*args)` on a worker thread; `on_done(result)` / `on_error(exc)` on this thread.

    Tasks have a key: starting a task again under the same key drops the previous one (taken
    off the queue if it has not started, its result ignored if it has), so a widget that asks
    twice only ever sees the newest answer.
    """

    _finished = Signal(int, bool, object)
    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None, max_threads: int = 2):
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(max_threads)
        self._ids = itertools.count(1)
        self._latest: dict[str, int] = {}
        self._pending: dict[int, _Pending] = {}
        self._finished.connect(self._deliver)

    def start(self, key: str, fn: Callable, *args: Any,
              on_done: Callable[[Any], None],
              on_error: Callable[[BaseException], None] | None = None, **kwargs: Any) -> int:
        self.cancel(key)
        task_id = next(self._ids)
        job = _Job(self, task_id, fn, args, kwargs)
        was_idle = not self._pending
        self._latest[key] = task_id
        self._pending[task_id] = _Pending(key, on_done, on_error, job)
        self._pool.start(job)
        if was_idle:
            self.busy_changed.emit(True)
        return task_id

    def cancel(self, key: str) -> None:
        old = self._latest.pop(key, None)
        if old is not None and old in self._pending and self._pool.tryTake(self._pending[old].runnable):
            self._forget(old)

    def is_running(self, key: str) -> bool:
        return key in self._latest

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    def wait(self, timeout_ms: int = -1) -> bool:
        """Wait for the worker threads (results still arrive through the event loop)."""
        return self._pool.waitForDone(timeout_ms)

    def shutdown(self) -> None:
        """Drop queued tasks, wait for running ones, deliver nothing more."""
        self._pool.clear()
        self._pool.waitForDone()
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
