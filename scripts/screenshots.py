"""Render the main window on a demo-like fleet to docs/screenshots/*.png (for the README).

    QT_QPA_PLATFORM=offscreen python scripts/screenshots.py [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PySide6.QtCore import QSettings, Qt  # noqa: E402
from PySide6.QtGui import QColor, QGuiApplication, QPalette  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from fleetview.config import Config, PollConfig, StoreConfig  # noqa: E402
from fleetview.sim.sample_fleet import demo_fleet  # noqa: E402
from fleetview.store import Store  # noqa: E402
from fleetview.ui.app import application  # noqa: E402
from fleetview.ui.main_window import MainWindow  # noqa: E402


def wait_loaded(window: MainWindow, app: QApplication, keys: set[str]) -> None:
    seen: set[str] = set()
    window.loaded.connect(seen.add)
    while not keys <= seen:
        app.processEvents()
        window.tasks.wait(50)
    for _ in range(5):
        app.processEvents()


def shoot(window: MainWindow, app: QApplication, path: Path) -> None:
    for _ in range(5):
        app.processEvents()
    window.grab().save(str(path), "PNG")
    print(f"wrote {path}")


def dark_palette() -> QPalette:
    p = QPalette()
    role, group = QPalette.ColorRole, QPalette.ColorGroup
    colours = {
        role.Window: "#202124", role.WindowText: "#e8eaed", role.Base: "#17181a",
        role.AlternateBase: "#232427", role.ToolTipBase: "#303134", role.ToolTipText: "#e8eaed",
        role.Text: "#e8eaed", role.Button: "#2b2c2f", role.ButtonText: "#e8eaed",
        role.BrightText: "#ffffff", role.Highlight: "#3d7bd9", role.HighlightedText: "#ffffff",
        role.Link: "#8ab4f8", role.PlaceholderText: "#9aa0a6", role.Mid: "#3c4043",
        role.Dark: "#101112", role.Light: "#3c4043", role.Midlight: "#34363a",
        role.Shadow: "#000000",
    }
    for r, c in colours.items():
        p.setColor(r, QColor(c))
    for r in (role.Text, role.WindowText, role.ButtonText):
        p.setColor(group.Disabled, r, QColor("#6f7378"))
    return p


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    app = application()
    app.setStyle("Fusion")
    tmp = Path(tempfile.mkdtemp(prefix="fleetview-shots-"))
    url = f"sqlite:///{tmp / 'history.db'}"
    sim = demo_fleet()
    with Store.open(url) as store:
        sim.seed(store)
    config = Config(store=StoreConfig(url=url), poll=PollConfig(interval_s=60))
    light = app.palette()
    for scheme in ("light", "dark"):
        # The offscreen platform has no system scheme to follow: set the palette a dark
        # desktop would hand Qt.
        QGuiApplication.styleHints().setColorScheme(
            Qt.ColorScheme.Light if scheme == "light" else Qt.ColorScheme.Dark)
        app.setPalette(light if scheme == "light" else dark_palette())
        store = Store.open(url, readonly=True)
        settings = QSettings(str(tmp / f"{scheme}.ini"), QSettings.Format.IniFormat)
        window = MainWindow(store, config, settings=settings)
        window.resize(1600, 960)
        window.show()
        window.start()
        wait_loaded(window, app, {"fleet", "history", "freshness"})
        window.tree.select(("group", "prod-aws", "us-east-1", "web"))
        wait_loaded(window, app, {"rollout"})
        window.timeline.plot.show_last(2 * 86400)
        shoot(window, app, args.out / f"main-window-{scheme}.png")
        if scheme == "light":
            window.open_palette()
            window.palette_popup.search.setText("web")
            shoot(window, app, args.out / "command-palette.png")
            window.palette_popup.close_palette()
            window.table.set_filter_text("drift:yes")
            window.select_instance(str(window.table.model.instance_at(0)))
            shoot(window, app, args.out / "drift-filter.png")
        window.close()
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
