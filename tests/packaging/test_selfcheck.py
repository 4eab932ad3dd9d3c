"""The offscreen self-check the bundle runs in CI passes from the source tree too."""

import os
import subprocess
import sys

from fleetview.ui import selfcheck


def test_selfcheck_opens_the_main_window_on_an_empty_store(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path),
               XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_DATA_HOME=str(tmp_path / "data"))
    result = subprocess.run([sys.executable, "-m", "fleetview.ui.selfcheck"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "self-check passed" in result.stdout
    assert "ok   window: main window painted offscreen" in result.stdout, result.stdout
    # the user's data dir is never touched: the store is a temporary one
    assert not (tmp_path / "data" / "fleetview").exists()


def test_a_failing_check_fails_the_selfcheck(monkeypatch, capsys):
    def broken() -> str:
        raise FileNotFoundError("palette.json")

    monkeypatch.setattr(selfcheck, "check_resources", broken)
    monkeypatch.setattr(selfcheck, "sdk_checks", lambda: [("sdk", lambda: "skipped here")])
    monkeypatch.setattr(selfcheck, "check_store", lambda directory: "skipped here")
    monkeypatch.setattr(selfcheck, "check_window", lambda directory: "skipped here")
    assert selfcheck.main() == 1
    out = capsys.readouterr().out
    assert "FAIL resources: FileNotFoundError: palette.json" in out
    assert "self-check FAILED (1 checks)" in out
