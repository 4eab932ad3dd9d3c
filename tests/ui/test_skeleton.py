"""The window's first frame is its skeleton ("Loading fleet…" in each panel), never black."""

from __future__ import annotations

import gc
import sys
from collections import Counter

from PySide6.QtCore import QSettings
from PySide6.QtGui import QGuiApplication, QImage

from fleetview.config import Config, StoreConfig
from fleetview.ui.app import launch
from fleetview.ui.collector_process import CollectorProcess
from fleetview.ui.skeleton import LOADING_TEXT, LoadingOverlay, LoadingSkeleton


def colours(image: QImage, step: int = 8) -> Counter:
    return Counter(image.pixel(x, y) & 0xFFFFFF for x in range(0, image.width(), step)
                   for y in range(0, image.height(), step))


def test_the_first_frame_on_screen_is_the_skeleton_then_the_fleet(qtbot, seeded_store,
                                                                     store_url, tmp_path):
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    window = launch(Config(store=StoreConfig(url=store_url)), collect=False, settings=settings)
    qtbot.addWidget(window)
    loads: list[str] = []
    window.loaded.connect(loads.append)
    try:
        qtbot.waitUntil(lambda: window.skeleton.painted, timeout=10000)
        # What the window system got first: the window's backing store, as the screen has it.
        frame = QGuiApplication.primaryScreen().grabWindow(window.winId()).toImage()
        assert loads == []  # painted before any data was read
        assert frame.width() > 400 and frame.height() > 300
        seen = colours(frame)
        black = seen.get(0x000000, 0) / sum(seen.values())
        assert black < 0.01, f"{black:.0%} of the first frame is black"
        assert len(seen) > 5, "the first frame is one flat colour"
        overlays = window.findChildren(LoadingOverlay)
        assert {o.parentWidget() for o in overlays} == {window.tree, window.timeline,
                                                         window.table}
        assert all(o.isVisible() and o.text == LOADING_TEXT == "Loading fleet…"
                   for o in overlays)

        qtbot.waitUntil(lambda: {"fleet", "history"} <= set(loads), timeout=10000)
        assert not window.skeleton.loading
        assert not any(o.isVisible() for o in window.findChildren(LoadingOverlay))
        assert window.table.model.total_count() == 6  # the fleet took the skeleton's place
    finally:
        window.shutdown()
        window.store.close()
        gc.unfreeze()


def test_a_window_closed_before_its_first_paint_starts_no_collector(qtbot, seeded_store,
                                                                    store_url, tmp_path):
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    collector = CollectorProcess(sys.executable, ["-c", "import time; time.sleep(30)"])
    window = launch(Config(store=StoreConfig(url=store_url)), collect=True, collector=collector,
                    settings=settings)
    qtbot.addWidget(window)
    window.shutdown()
    window.store.close()
    gc.unfreeze()
    qtbot.waitUntil(lambda: window.skeleton.painted, timeout=10000)
    qtbot.wait(LoadingSkeleton.FIRST_PAINT_WAIT_MS + 100)
    assert not collector.running
