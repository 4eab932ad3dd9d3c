"""The collector child process: its JSON lines become events; stop ends it, kill if need be."""

from __future__ import annotations

import os
import sys
import textwrap

import pytest

from fleetview.config import load_config
from fleetview.ui.app import open_window
from fleetview.ui.collector_process import CollectorProcess, collector_command

# A stand-in that speaks the collector's protocol: lines out, `poll`/`stop` in.
FAKE = textwrap.dedent("""
    import json, sys
    def say(**event):
        print(json.dumps(event), flush=True)
    say(event="collector_started", scopes=["edge"])
    say(event="poll_started", scope="edge", provider="aws")
    print("not json: a stray log line", flush=True)
    say(event="scope_error", scope="edge", provider="aws", region="eu-west-1", message="throttled")
    say(event="poll_finished", scope="edge", provider="aws", ok=False, instances=3,
        region_errors=[{"region": "eu-west-1", "message": "throttled"}])
    for line in sys.stdin:
        if line.strip() == "poll":
            say(event="poll_started", scope="edge", provider="aws")
        elif line.strip() == "stop":
            say(event="collector_stopped", reason="stopped", unwritten=0)
            sys.exit(0)
""")

STUBBORN = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n" \
           "print('{\"event\": \"collector_started\"}', flush=True)\ntime.sleep(60)\n"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); QProcess reaps its child, so a zombie is a leak too.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_lines_become_events_and_stop_ends_the_process(qtbot):
    collector = CollectorProcess(sys.executable, ["-c", FAKE])
    events: list[dict] = []
    collector.event.connect(events.append)
    collector.start()
    qtbot.waitUntil(lambda: len(events) >= 4, timeout=10000)
    assert [e["event"] for e in events[:4]] == ["collector_started", "poll_started",
                                                "scope_error", "poll_finished"]
    assert collector.running
    pid = collector.pid
    assert collector.poll_now()
    qtbot.waitUntil(lambda: len(events) >= 5, timeout=5000)
    assert events[4]["event"] == "poll_started"
    collector.stop()
    assert not collector.running
    assert not _alive(pid)


def test_a_collector_that_ignores_sigterm_is_killed(qtbot):
    collector = CollectorProcess(sys.executable, ["-c", STUBBORN])
    events: list[dict] = []
    collector.event.connect(events.append)
    collector.start()
    qtbot.waitUntil(lambda: bool(events), timeout=10000)
    pid = collector.pid
    collector.stop(timeout_ms=300)
    assert not collector.running
    assert not _alive(pid)


def test_an_unexpected_exit_is_reported(qtbot):
    collector = CollectorProcess(sys.executable, ["-c", "import sys; sys.stderr.write('boom\\n');"
                                                       " sys.exit(3)"])
    with qtbot.waitSignal(collector.exited, timeout=10000) as blocker:
        collector.start()
    assert blocker.args[0] == 3
    assert "boom" in blocker.args[1]


def test_command_runs_this_interpreter_with_the_config(tmp_path):
    config_path = tmp_path / "config.toml"
    config_path.write_text('[[aws]]\nname = "prod"\nregions = ["us-east-1"]\n')
    program, args = collector_command(load_config(config_path))
    assert program == sys.executable
    assert args == ["-m", "fleetview", "collect", "--stop-on-eof", "--config", str(config_path)]


@pytest.fixture
def failing_config(tmp_path):
    """A config whose one scope fails fast: AWS at a port nothing listens on."""
    path = tmp_path / "config.toml"
    db = tmp_path / "history.db"
    path.write_text(textwrap.dedent(f"""
        [store]
        url = "sqlite:///{db}"
        [poll]
        interval_s = 3600
        [[aws]]
        name = "broken"
        regions = ["us-east-1"]
        endpoint_url = "http://127.0.0.1:9"
    """))
    return load_config(path)


def test_window_starts_the_real_collector_and_stops_it_on_close(qtbot, failing_config,
                                                                 tmp_path, monkeypatch):
    from PySide6.QtCore import QSettings

    # Fewer botocore retries: the scope should fail in a second, not after a backoff.
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("AWS_RETRY_MODE", "standard")
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    window = open_window(failing_config, collect=True, settings=settings)
    qtbot.addWidget(window)
    window.show()
    window.start()
    collector = window.collector
    qtbot.waitUntil(lambda: collector.running, timeout=10000)
    pid = collector.pid
    status = window._scope_status("broken")
    qtbot.waitUntil(lambda: status.badge.isVisibleTo(window), timeout=60000)
    assert "broken" in window.scope_status
    assert status.badge.toolTip()
    window.close()
    assert not collector.running
    assert not _alive(pid)
    window.store.close()


def test_no_collect_opens_the_store_read_only_and_starts_nothing(qtbot, failing_config,
                                                                 tmp_path):
    from PySide6.QtCore import QSettings

    from fleetview.store import Store

    Store.open(failing_config.store.url).close()  # someone else's collector made it
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    window = open_window(failing_config, collect=False, settings=settings)
    qtbot.addWidget(window)
    assert window.collector is None
    assert window.store.readonly
    window.show()
    window.start()
    assert "read-only" in window.collector_label.text()
    window.close()
    window.store.close()


def test_f5_asks_the_collector_to_poll_now(qtbot, seeded_store, tmp_path):
    from PySide6.QtCore import QSettings, Qt

    from fleetview.config import Config
    from fleetview.ui.main_window import MainWindow

    collector = CollectorProcess(sys.executable, ["-c", FAKE])
    window = MainWindow(seeded_store, Config(), collector=collector,
                        settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    events: list[dict] = []
    collector.event.connect(events.append)
    window.show()
    window.start()
    qtbot.waitUntil(lambda: len(events) >= 4, timeout=10000)
    # A scope the store has no polls of, so only the collector's word counts.
    assert window.scope_status["edge"].badge.isVisibleTo(window)  # eu-west-1 throttled
    qtbot.keyClick(window, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: len(events) >= 5, timeout=5000)
    assert events[-1]["event"] == "poll_started"
    assert window.scope_status["edge"].polling
    pid = collector.pid
    window.close()
    assert not _alive(pid)


def test_run_gui_opens_the_window_and_returns_when_it_closes(qtbot, failing_config, tmp_path,
                                                              monkeypatch):
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    import fleetview.ui.app as app_module

    # Not the user's own settings file.
    monkeypatch.setattr(app_module, "QSettings", lambda *_: QSettings(
        str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    from fleetview.store import Store
    from fleetview.ui.app import run_gui
    from fleetview.ui.main_window import MainWindow

    Store.open(failing_config.store.url).close()
    shown = []

    def close_when_shown():
        windows = [w for w in QApplication.topLevelWidgets()
                   if isinstance(w, MainWindow) and w.isVisible()]
        if windows:
            shown.extend(windows)
            windows[0].close()
        else:
            QTimer.singleShot(50, close_when_shown)

    QTimer.singleShot(50, close_when_shown)
    assert run_gui(failing_config, collect=False) == 0
    assert shown and shown[0].store.readonly
