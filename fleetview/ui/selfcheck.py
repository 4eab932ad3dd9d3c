"""Offscreen self-check: can this install (or bundle) open its main window and reach its data files?

`python -m fleetview.ui.selfcheck`, or the bundle's `FLEETVIEW_SELFCHECK=1 fleetview`. Exits 0, or 1
naming what is broken, so a missing Qt plugin, image format or SDK data file fails CI instead of
a user's first start. Qt is imported only inside the window check, like cli.py does for the GUI.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

PAINT_TIMEOUT_S = 20.0


class SelfCheckFailed(Exception):
    """One check failed; the message says what is missing."""


def check_resources() -> str:
    from fleetview import resources

    pngs = resources.icon_pngs()
    palette = resources.palette()
    for name in resources.images():
        resources.image_bytes(name)
    return f"{len(pngs)} icon sizes, {len(palette.versions)} version colours, " \
           f"{len(resources.images())} images"


def sdk_checks() -> list[tuple[str, Callable[[], str]]]:
    """One check per registered cloud: its SDK loads and builds clients without a network."""
    from fleetview import providers

    return [(f"{cloud.name} sdk", lambda cloud=cloud: providers.load(cloud.name, "sdk_check")())
            for cloud in providers.clouds() if cloud.sdk_check]


def check_store(directory: Path) -> str:
    if importlib.util.find_spec("fleetview.store") is None:
        return "no store package in this version"
    from fleetview.store import Store

    store = Store.open(f"sqlite:///{directory / 'history.db'}")
    try:
        rows = len(store.fleet_at())
    finally:
        store.close()
    return f"empty SQLite store opened ({rows} instances)"


def check_window(directory: Path) -> str:
    """Open the main window offscreen on an empty store; wait until it painted and loaded."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QEvent, QObject
    from PySide6.QtGui import QIcon, QImageReader
    from PySide6.QtWidgets import QApplication

    from fleetview import resources

    app = _application()
    formats = {bytes(f.data()).decode() for f in QImageReader.supportedImageFormats()}
    lacking = {"png", "svg"} - formats
    if lacking:
        raise SelfCheckFailed(f"Qt cannot read {', '.join(sorted(lacking))} images: the "
                              "imageformats plugins (qsvg) are missing from the bundle")
    icon = QIcon(str(resources.icon_svg()))
    if icon.pixmap(64, 64).isNull():
        raise SelfCheckFailed("the SVG icon does not render: the Qt SVG module is missing")
    for size, path in resources.icon_pngs().items():
        if QIcon(str(path)).pixmap(size, size).isNull():
            raise SelfCheckFailed(f"the {size}px icon {path} does not load")

    window, what, expected = _main_window(directory)

    class Watch(QObject):
        painted = False

        def eventFilter(self, obj, event):  # noqa: N802 - Qt's name
            if event.type() == QEvent.Type.Paint:
                self.painted = True
            return False

    watch, loaded = Watch(), set()
    window.installEventFilter(watch)
    if expected:
        window.loaded.connect(loaded.add)
    window.resize(1000, 700)
    window.show()
    if hasattr(window, "start"):
        window.start()
    deadline = time.monotonic() + PAINT_TIMEOUT_S
    while (not watch.painted or not expected <= loaded) and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.01)
    try:
        if not watch.painted:
            raise SelfCheckFailed(f"the {what} did not paint within {PAINT_TIMEOUT_S:.0f} s")
        if not expected <= loaded:
            raise SelfCheckFailed(f"the {what} did not load {sorted(expected - loaded)} from the "
                                  f"empty store within {PAINT_TIMEOUT_S:.0f} s")
        if window.grab().isNull():
            raise SelfCheckFailed(f"the {what} could not be rendered to an image")
    finally:
        window.close()
        store = getattr(window, "store", None)
        if store is not None:
            store.close()
        window.deleteLater()
        app.processEvents()
    done = f", loaded {', '.join(sorted(loaded))}" if loaded else ""
    return f"{what} painted offscreen ({QApplication.platformName()} platform{done})"


def _application():
    if importlib.util.find_spec("fleetview.ui.app") is not None:
        from fleetview.ui.app import application

        return application(["fleetview-selfcheck"])
    from PySide6.QtWidgets import QApplication

    return QApplication.instance() or QApplication(["fleetview-selfcheck"])


def _main_window(directory: Path):
    """(window, what it is, the loads to wait for): the real main window when the UI has one,
    else a stand-in that uses Qt the same way. Looked up at run time, so this check works
    before and after the main window exists."""
    app_module = importlib.util.find_spec("fleetview.ui.app")
    if app_module is not None:
        from PySide6.QtCore import QSettings

        from fleetview.ui.app import open_window

        # Read-only, no collector: what `fleetview --no-collect` opens; settings kept apart
        # from the user's.
        settings = QSettings(str(directory / "settings.ini"), QSettings.Format.IniFormat)
        window = open_window(_empty_config(directory), collect=False, settings=settings)
        return window, "main window", {"fleet", "history", "freshness"}
    from PySide6.QtSvgWidgets import QSvgWidget
    from PySide6.QtWidgets import QLabel, QMainWindow, QVBoxLayout, QWidget

    from fleetview import resources

    window = QMainWindow()
    window.setWindowTitle("FleetView self-check")
    body = QWidget()
    layout = QVBoxLayout(body)
    layout.addWidget(QSvgWidget(str(resources.icon_svg())))
    layout.addWidget(QLabel("fleetview.ui.app is not there yet"))
    window.setCentralWidget(body)
    return window, "stand-in window (fleetview.ui.app not found)", set()


def _empty_config(directory: Path):
    from fleetview.config import Config, StoreConfig

    return Config(path=None, store=StoreConfig(url=f"sqlite:///{directory / 'history.db'}"))


def main(argv: list[str] | None = None) -> int:
    from fleetview import __version__

    print(f"fleetview {__version__} self-check ({'bundle' if _frozen() else sys.executable})")
    with tempfile.TemporaryDirectory(prefix="fleetview-selfcheck-") as tmp:
        directory = Path(tmp)
        checks: list[tuple[str, Callable[[], str]]] = [
            ("resources", check_resources),
            *sdk_checks(),
            ("store", lambda: check_store(directory)),
            ("window", lambda: check_window(directory)),
        ]
        failed = 0
        for name, check in checks:
            try:
                print(f"  ok   {name}: {check()}")
            except Exception as exc:  # noqa: BLE001 - report every broken part, then fail
                failed += 1
                print(f"  FAIL {name}: {type(exc).__name__}: {exc}")
    print("self-check passed" if not failed else f"self-check FAILED ({failed} checks)")
    return 1 if failed else 0


def _frozen() -> bool:
    return bool(getattr(sys, "frozen", False))


if __name__ == "__main__":
    sys.exit(main())
