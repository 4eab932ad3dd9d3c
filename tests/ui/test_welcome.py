"""`fleetview` without a config: the welcome page, its sample config, "Try the demo", no store."""

from __future__ import annotations

import sys

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtGui import QGuiApplication

from fleetview.cli import main
from fleetview.config import load_config, parse_config
from fleetview.ui.app import FirstRun, wants_welcome
from fleetview.ui.main_window import MainWindow
from fleetview.ui.welcome import DOCTOR_COMMAND, WelcomeWindow, sample_config
from tests.helpers.processes import alive


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A user with no FleetView files: config and data directories of their own."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    return tmp_path


def files_under(path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())


def test_the_sample_config_parses_with_fleetviews_own_loader(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(sample_config(), encoding="utf-8")
    config = load_config(path)
    assert [(s.provider, s.name) for s in config.scopes] == [("aws", "prod-aws"),
                                                            ("gcp", "prod-gcp")]
    assert not any(s.actions for s in config.scopes)  # read-only until the user says so
    assert config.scope("prod-aws").regions == ("us-east-1", "eu-west-1")
    assert parse_config(sample_config()).poll.interval_s == 60


def test_no_scope_means_the_welcome_page_unless_reading_someone_elses_store(home):
    config = load_config()
    assert config.scopes == () and wants_welcome(config, collect=True)
    assert not wants_welcome(config, collect=False)  # --no-collect: a shared store
    assert not wants_welcome(load_config_text(home, sample_config()), collect=True)


def load_config_text(home, text):
    path = home / "some.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def test_the_page_names_the_config_it_looked_for(qtbot, home):
    welcome = WelcomeWindow(load_config())
    qtbot.addWidget(welcome)
    expected = home / "config" / "fleetview" / "config.toml"
    assert welcome.path_label.text() == str(expected)
    texts = " ".join(label.text() for label in welcome.findChildren(type(welcome.path_label)))
    assert "found no file" in texts
    welcome.shutdown()


def test_a_config_without_scopes_is_named_as_read(qtbot, home):
    config = load_config_text(home, "[poll]\ninterval_s = 30\n")
    welcome = WelcomeWindow(config)
    qtbot.addWidget(welcome)
    assert welcome.path_label.text() == str(home / "some.toml")
    texts = " ".join(label.text() for label in welcome.findChildren(type(welcome.path_label)))
    assert "read its config from" in texts and "names no account or project" in texts
    welcome.shutdown()


def test_copy_buttons_put_the_sample_the_path_and_doctor_on_the_clipboard(qtbot, home):
    welcome = WelcomeWindow(load_config())
    qtbot.addWidget(welcome)
    clipboard = QGuiApplication.clipboard()
    welcome.copy_sample.click()
    assert clipboard.text() == sample_config()
    assert welcome.copy_sample.text() == "Copied"
    assert len(parse_config(clipboard.text()).scopes) == 2  # what is pasted still parses
    welcome.copy_path.click()
    assert clipboard.text() == str(home / "config" / "fleetview" / "config.toml")
    welcome.copy_doctor.click()
    assert clipboard.text() == DOCTOR_COMMAND == "fleetview doctor"
    welcome.shutdown()


def test_without_the_demo_installed_the_button_says_how_to_get_it(qtbot, home):
    welcome = WelcomeWindow(load_config(), start_demo=None)
    qtbot.addWidget(welcome)
    assert not welcome.demo_button.isEnabled()
    assert 'pip install "fleetview[demo]"' in welcome.demo_status.text()
    welcome.shutdown()


def test_a_demo_that_cannot_start_says_why_and_can_be_tried_again(qtbot, home, monkeypatch):
    from fleetview.sim import demo

    monkeypatch.setitem(sys.modules, "moto", None)  # moto's server missing, as without [demo]
    welcome = WelcomeWindow(load_config(), start_demo=demo.start_demo)
    qtbot.addWidget(welcome)
    welcome.demo_button.click()
    assert not welcome.demo_button.isEnabled()
    qtbot.waitUntil(welcome.demo_button.isEnabled, timeout=10000)
    assert "could not start" in welcome.demo_status.text()
    assert 'pip install "fleetview[demo]"' in welcome.demo_status.text()
    assert welcome.demo is None
    welcome.shutdown()


def test_fleetview_without_a_config_opens_the_welcome_page_and_creates_no_store(
        qapp, home, capsys):
    """The real command: `fleetview` with nothing configured. The page shows; closing it
    leaves no database (nor any other file) behind."""
    seen: dict[str, object] = {}

    def look() -> None:
        try:
            shown = [w for w in qapp.topLevelWidgets() if w.isVisible()]
            seen["windows"] = [type(w).__name__ for w in shown]
            welcome = next(w for w in shown if isinstance(w, WelcomeWindow))
            seen["path"] = welcome.path_label.text()
            seen["demo"] = welcome.demo_button.isEnabled()
        finally:
            # Closing the last window ends the event loop main() runs, as a user would.
            for window in shown:
                window.close()

    QTimer.singleShot(300, look)
    assert main([]) == 0
    assert seen["windows"] == ["WelcomeWindow"]
    assert seen["path"] == str(home / "config" / "fleetview" / "config.toml")
    assert seen["demo"] is True  # this installation has the demo
    assert files_under(home) == []




@pytest.mark.slow
def test_try_the_demo_opens_the_demo_fleet_and_closing_stops_it(qtbot, home):
    """"Try the demo" is `fleetview --demo`: the local clouds start, the demo's window opens
    on both clouds' groups, the welcome page goes; closing stops the clouds."""
    from fleetview.sim import demo_story
    from fleetview.sim.demo import start_demo

    first_run = FirstRun(load_config(), start_demo)
    try:
        welcome = first_run.welcome
        qtbot.addWidget(welcome)
        welcome.demo_button.click()
        assert "Starting the local clouds" in welcome.demo_status.text()
        qtbot.waitUntil(lambda: first_run.window is not None or welcome.demo_button.isEnabled(),
                        timeout=120000)
        assert first_run.window is not None, welcome.demo_status.text()
        window = first_run.window
        assert isinstance(window, MainWindow) and window.isVisible()
        assert not welcome.isVisible()
        demo = welcome.demo
        children = list(demo.pids)
        assert children and all(alive(pid) for pid in children)

        def groups_of(scope: str) -> set[str]:
            return {k[3] for k in window.tree.node_keys() if k[0] == "group" and k[1] == scope}

        qtbot.waitUntil(lambda: bool(groups_of(demo_story.AWS_SCOPE)
                                     and groups_of(demo_story.GCP_SCOPE)), timeout=30000)
        assert {"api", "web", "worker"} <= groups_of(demo_story.AWS_SCOPE)
        assert not window.skeleton.loading
    finally:
        first_run.close()
    qtbot.waitUntil(lambda: not any(alive(pid) for pid in children), timeout=20000)
    assert not demo.workdir.exists()
    assert files_under(home) == []  # the demo's store lived in its own directory
