"""Screenshots of `fleetview --demo` for the README: the window, the rollback plan, the
actions after a rollback, a stale scope, a scope rebuilt from cloud records, and the large demo
on group bands. Runs the real demo (moto, the GCE emulator, a collector) offscreen.

    python scripts/demo_screenshots.py [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from fleetview.sim import demo_story  # noqa: E402
from fleetview.sim.demo import start_demo  # noqa: E402
from fleetview.ui.app import application, open_window  # noqa: E402


def pump(app: QApplication, until=lambda: True, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not until():
        if time.monotonic() > deadline:
            raise SystemExit("screenshots: timed out waiting for the window")
        app.processEvents()
        time.sleep(0.02)
    for _ in range(10):
        app.processEvents()
        time.sleep(0.02)


def shoot(widget, path: Path) -> None:
    widget.grab().save(str(path), "PNG")
    print(f"wrote {path}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    app = application()
    with tempfile.TemporaryDirectory() as tmp:
        demo = start_demo("small", tmp)
        try:
            settings = QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat)
            window = open_window(demo.config, collect=True, settings=settings)
            window.resize(1600, 1000)
            window.show()
            window.start()
            controller = window.action_controller
            pump(app, lambda: any(k[0] == demo_story.AWS_SCOPE and k[2] == "api"
                                  for k in controller.readiness))
            key = next(k for k in controller.readiness
                       if k[0] == demo_story.AWS_SCOPE and k[2] == "api")
            window.tree.select(("group", *key))

            def rolling_out() -> bool:  # the bad build on screen: a few batches in
                f = window.fleet
                rows = f[(f["scope"] == key[0]) & (f["group"] == "api")]
                return (rows["version"] == demo_story.BAD_VERSION).sum() >= 2

            pump(app, rolling_out, timeout_s=90)
            window.timeline.plot.show_last(3600)
            pump(app, timeout_s=3)
            shoot(window, args.out / "demo-main-window.png")

            controller.rollback(*key)
            pump(app, lambda: controller.dialog is not None and controller.dialog.isVisible())
            dialog = controller.dialog
            dialog.resize(900, 900)  # room for the steps and notes of a stop-and-roll-back
            dialog.reason.setText(f"{demo_story.BAD_VERSION} {demo_story.BAD_SYMPTOM}; stop it, "
                                  "back to the last good build")
            pump(app, timeout_s=2)
            shoot(dialog, args.out / "demo-rollback-plan.png")

            finished = []
            controller.action_finished.connect(lambda *a: finished.append(a))
            dialog.run_button.click()
            pump(app, lambda: bool(finished), timeout_s=180)
            window.poll_now()
            target = controller.readiness[key].target.version

            def rolled_back() -> bool:
                f = window.fleet
                rows = f[(f["scope"] == key[0]) & (f["group"] == "api")]
                return len(rows) > 0 and set(rows["version"]) == {target}

            pump(app, rolled_back, timeout_s=60)
            window.timeline.plot.show_last(3600 * 6)
            pump(app, timeout_s=3)
            shoot(window, args.out / "demo-after-rollback.png")

            # A scope whose polls fail: its last known spans hatched from its last good poll.
            window.tree.select(("scope", demo_story.FAILING_SCOPE))
            window.timeline.plot.show_last(3600 * 6)
            pump(app, timeout_s=3)
            shoot(window, args.out / "demo-stale-scope.png")

            # A scope FleetView never watched: a month rebuilt from CloudTrail and activities.
            window.tree.select(("scope", demo_story.BACKFILLED_SCOPE))
            window.timeline.plot.show_last(3600 * 24 * 30)
            pump(app, timeout_s=3)
            shoot(window, args.out / "demo-backfilled-scope.png")
            window.close()
        finally:
            demo.stop()
    large_fleet(app, args.out)
    return 0


def large_fleet(app: QApplication, out: Path) -> None:
    """`--size large` (10,000+ instances) at a laptop's 1366x768: groups open as bands."""
    with tempfile.TemporaryDirectory() as tmp:
        demo = start_demo("large", tmp)
        try:
            settings = QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat)
            window = open_window(demo.config, collect=True, settings=settings)
            window.resize(1366, 768)
            window.show()
            window.start()
            pump(app, lambda: window.timeline.plot.data.n_instances > 10_000, timeout_s=240)
            window.timeline.plot.show_last(3600 * 24 * 30)
            pump(app, timeout_s=5)
            shoot(window, out / "demo-large-fleet.png")
            window.close()
        finally:
            demo.stop()


if __name__ == "__main__":
    sys.exit(main())
