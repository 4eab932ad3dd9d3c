"""`fleetview --demo` in a real window: both clouds' groups appear, a rollback of the bad
group converges on screen, and closing leaves no child process behind."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings

from fleetview.sim import demo_story
from fleetview.sim.demo import start_demo
from fleetview.ui.app import open_window
from tests.helpers.processes import alive


@pytest.mark.slow
def test_demo_window_shows_both_clouds_rolls_back_and_cleans_up(qtbot, tmp_path):
    demo = start_demo("small", tmp_path)
    children = list(demo.pids)
    try:
        settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
        window = open_window(demo.config, collect=True, settings=settings)
        qtbot.addWidget(window)
        window.show()
        window.start()
        controller = window.action_controller

        def groups_of(scope: str) -> set[str]:
            return {k[3] for k in window.tree.node_keys() if k[0] == "group" and k[1] == scope}

        qtbot.waitUntil(lambda: bool(groups_of(demo_story.AWS_SCOPE)
                                     and groups_of(demo_story.GCP_SCOPE)), timeout=30000)
        assert {"api", "web", "worker"} <= groups_of(demo_story.AWS_SCOPE)
        assert {"api", "batch", "frontend"} <= groups_of(demo_story.GCP_SCOPE)
        collector_pid = window.collector.pid
        assert collector_pid and alive(collector_pid)

        def api_readiness():
            return next(((k, r) for k, r in controller.readiness.items()
                         if k[0] == demo_story.AWS_SCOPE and k[2] == "api"), (None, None))

        # Until the collector's first poll the window reads the stored past, in which api
        # wanted 2.3.0 (so 2.2.0 was its rollback); the responder acts once the rollout of the
        # bad build shows, and the rollback then stops it and goes back to 2.3.0.
        qtbot.waitUntil(lambda: "stop the update" in (api_readiness()[1].note
                                                       if api_readiness()[1] else ""),
                        timeout=60000)
        key, ready = api_readiness()
        assert ready.ready, ready.why
        target = ready.target.version
        assert target == "2.3.0", ready.describe()
        controller.rollback(*key)
        qtbot.waitUntil(lambda: controller.dialog is not None and controller.dialog.isVisible(),
                        timeout=30000)
        dialog = controller.dialog
        assert dialog.prepared.ok, dialog.prepared.refusal
        assert dialog.prepared.plan.to_version == target
        qtbot.keyClicks(dialog.reason, "2.4.0 is bad")
        with qtbot.waitSignal(controller.action_finished, timeout=180000) as finished:
            dialog.run_button.click()
        assert finished.args[1].status == "recovered", finished.args[1].message

        def api_versions() -> set[str]:
            fleet = window.fleet
            rows = fleet[(fleet["scope"] == key[0]) & (fleet["region"] == key[1])
                         & (fleet["group"] == "api")]
            return set(rows["version"])

        # The collector's next poll shows it; a poll that missed its deadline on a busy
        # machine is followed by another, as the user would see it.
        try:
            for _ in range(4):
                window.poll_now()
                try:
                    qtbot.waitUntil(lambda: api_versions() == {target}, timeout=20000)
                    break
                except qtbot.TimeoutError:
                    continue
            else:
                raise qtbot.TimeoutError
        except qtbot.TimeoutError:
            fleet = window.fleet
            rows = fleet[(fleet["scope"] == key[0]) & (fleet["group"] == "api")]
            raise AssertionError(f"api should run only {target} after the rollback; the "
                                 f"window shows {rows[['instance_id', 'version', 'state']]}"
                                 ) from None
        window.close()
        qtbot.waitUntil(lambda: not alive(collector_pid), timeout=20000)
    finally:
        demo.stop()
    assert not [pid for pid in children if alive(pid)]
    assert not demo.workdir.exists()
