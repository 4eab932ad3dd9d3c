"""`fleetview` without a command: the application, the main window, the collector beside it."""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable

from PySide6.QtCore import QSettings
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from fleetview import resources
from fleetview.config import Config
from fleetview.ui import tasks
from fleetview.ui.collector_process import CollectorProcess, collector_command
from fleetview.ui.main_window import MainWindow

ORGANISATION = "fleetview"
APPLICATION = "FleetView"


def application(argv: list[str] | None = None) -> QApplication:
    """The QApplication (made once), with the app's name and icon; Qt's own style follows the
    system's light or dark scheme."""
    app = QApplication.instance()
    if app is None:
        app = QApplication(argv if argv is not None else sys.argv[:1])
    app.setOrganizationName(ORGANISATION)
    app.setApplicationName(APPLICATION)
    app.setDesktopFileName(resources.APP_ID)
    icon = QIcon()
    for path in resources.icon_pngs().values():
        icon.addFile(str(path))
    app.setWindowIcon(icon)
    return app  # type: ignore[return-value]


def open_window(config: Config, collect: bool = True,
                collector: CollectorProcess | None = None,
                settings: QSettings | None = None) -> MainWindow:
    """The main window on the configured store; with `collect`, a collector child process.

    Without `collect` the store is opened read-only: a shared store written by someone
    else's collector.
    """
    from fleetview.store import Store

    store = Store.open(config.store.url, readonly=not collect)
    if collect and collector is None:
        program, args = collector_command(config)
        collector = CollectorProcess(program, args)
    window = MainWindow(store, config, collector=collector if collect else None,
                        settings=settings or QSettings(ORGANISATION, APPLICATION))
    if window.collector is not None:
        window.collector.setParent(window)
    from fleetview.ui.action_controller import ActionController

    window.action_controller = ActionController(window)
    return window


def launch(config: Config, collect: bool = True, collector: CollectorProcess | None = None,
           settings: QSettings | None = None) -> MainWindow:
    """Open the window and set it going: the window paints its skeleton first, then the first
    reads start (their results arrive through the event loop)."""
    # Process-wide, so here and not in a widget: the window's reader threads share the GIL
    # with the GUI thread (see tasks.GIL_SWITCH_INTERVAL_S).
    tasks.share_the_gil_finely()
    window = open_window(config, collect, collector=collector, settings=settings)
    # What is alive now (modules, widgets) lives as long as the app: keep it out of the
    # garbage collector's full passes, which walk it all while holding the GIL, a pause of
    # tens of milliseconds in the GUI thread each time. Collect first, so no garbage is kept.
    gc.collect()
    gc.freeze()
    window.show()
    # The first reads start once the window's skeleton ("Loading fleet…" in each panel) is
    # on screen: a first result handled before the first paint left the window black.
    window.skeleton.after_first_paint(window.start)
    return window


def wants_welcome(config: Config, collect: bool) -> bool:
    """No scope to watch: the welcome page instead of a window (and a store) on nothing. With
    --no-collect the window still opens, on a store someone else's collector writes."""
    return collect and not config.scopes


def run_gui(config: Config, collect: bool = True, settings_path: str | None = None,
            start_demo: Callable[[str], object] | None = None) -> int:
    """The application until its window closes. `settings_path`: keep window geometry in this
    INI file instead of the user's settings (the demo, so it never moves the user's window).
    `start_demo`: the demo's start, for the welcome page's "Try the demo"."""
    app = application()
    if wants_welcome(config, collect):
        return _run_welcome(app, config, start_demo)
    settings = (QSettings(settings_path, QSettings.Format.IniFormat)
                if settings_path else None)
    window = launch(config, collect, settings=settings)
    try:
        return app.exec()
    finally:
        window.shutdown()
        window.store.close()
        gc.unfreeze()


class FirstRun:
    """The welcome page, and the demo's main window once its "Try the demo" has started one."""

    def __init__(self, config: Config, start_demo: Callable[[str], object] | None = None):
        from fleetview.ui.welcome import WelcomeWindow

        self.welcome = WelcomeWindow(config, start_demo=start_demo)
        self.window: MainWindow | None = None
        self.welcome.demo_started.connect(self._open_demo)
        self.welcome.show()

    def _open_demo(self, demo) -> None:
        settings = QSettings(str(demo.workdir / "window.ini"), QSettings.Format.IniFormat)
        self.window = launch(demo.config, collect=True, settings=settings)
        self.welcome.close()  # after the demo's window is up: the app must not quit between

    def close(self) -> None:
        """Close the demo's window (its collector), then stop the demo; safe to call twice."""
        if self.window is not None:
            window, self.window = self.window, None
            window.shutdown()
            window.store.close()
            gc.unfreeze()
        self.welcome.shutdown()


def _run_welcome(app: QApplication, config: Config,
                 start_demo: Callable[[str], object] | None) -> int:
    """The welcome page until it (or the demo's window it opened) closes; then the demo stops."""
    first_run = FirstRun(config, start_demo)
    try:
        return app.exec()
    finally:
        first_run.close()
