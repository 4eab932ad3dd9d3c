"""Python's garbage collector runs on the GUI thread only, while a window is open.

Left automatic, a collection can start in whichever thread allocates, such as a store query
on a worker; if it then frees a Qt object, Qt is touched off its thread and the process can
crash (seen here as a segfault while a worker merged DataFrames). So while a window lives, the
automatic collector is off and a timer collects on the GUI thread instead.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

_INTERVAL_MS = 1000
# Young objects each second; a full pass walks every live object with the GIL held (tens of
# milliseconds with a fleet loaded), so it runs only every few minutes.
_MIDDLE_EVERY = 15
_FULL_EVERY = 300


class _Collector(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.users = 0
        self.ticks = 0
        self.was_enabled = True
        self.timer = QTimer(self)
        self.timer.setInterval(_INTERVAL_MS)
        self.timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        self.ticks += 1
        if self.ticks % _FULL_EVERY == 0:
            gc.collect(2)
        elif self.ticks % _MIDDLE_EVERY == 0:
            gc.collect(1)
        else:
            gc.collect(0)


_collector: _Collector | None = None


def acquire() -> None:
    """Called by each window as it opens (on the GUI thread)."""
    global _collector
    if _collector is None:
        _collector = _Collector()
    if _collector.users == 0:
        _collector.was_enabled = gc.isenabled()
        gc.disable()
        _collector.timer.start()
    _collector.users += 1


def release() -> None:
    """Called by each window as it closes; the last one gives collection back to Python."""
    if _collector is None or _collector.users == 0:
        return
    _collector.users -= 1
    if _collector.users == 0:
        _collector.timer.stop()
        gc.collect()
        if _collector.was_enabled:
            gc.enable()
