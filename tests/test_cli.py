"""The command line: version, honest answers from commands not built yet, the window's
system libraries checked before Qt loads, and which config each command read."""

import json
import os
import subprocess
import sys

import pytest

from fleetview import __version__
from fleetview.cli import main


def test_version_through_python_m():
    result = subprocess.run([sys.executable, "-m", "fleetview", "--version"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert result.stdout.strip() == f"fleetview {__version__}"


def test_help_lists_the_commands(capsys):
    try:
        main(["--help"])
    except SystemExit as exc:
        assert exc.code == 0
    out = capsys.readouterr().out
    for command in ("snapshot", "collect", "audit", "doctor", "--demo", "--no-collect"):
        assert command in out


def test_a_missing_demo_says_how_to_install_it(monkeypatch, capsys):
    """A bundle leaves out the demo's local clouds: say so, and how to get them."""
    import importlib

    real = importlib.import_module

    def without_sim(name, *args):
        if name.startswith("fleetview.sim"):
            raise ModuleNotFoundError(f"No module named {name!r}", name="fleetview.sim")
        return real(name, *args)

    monkeypatch.setattr("fleetview.cli.importlib.import_module", without_sim)
    assert main(["--demo"]) == 1
    err = capsys.readouterr().err
    assert "not part of this installation" in err and 'pip install "fleetview[demo]"' in err


# -- the window's platform, checked before Qt loads ---------------------------------------------

def fake_ldd_on_path(tmp_path, monkeypatch, output: str) -> None:
    """`ldd` is a program we run: this one answers as on a machine lacking X libraries."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    ldd = bin_dir / "ldd"
    ldd.write_text(f"#!/bin/sh\nprintf '{output}'\n")
    ldd.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("FLEETVIEW_SKIP_PLATFORM_CHECK", raising=False)
    monkeypatch.setenv("XDG_SESSION_TYPE", "x11")
    monkeypatch.setenv("DISPLAY", ":0")


linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the platform check is for Linux")


@linux_only
@pytest.mark.parametrize("argv", [[], ["--demo"]])
def test_a_window_without_its_x_libraries_exits_with_the_package_to_install(
        tmp_path, monkeypatch, capsys, argv):
    fake_ldd_on_path(tmp_path, monkeypatch,
                     r"\tlibxcb-icccm.so.4 => not found\n\tlibxcb-cursor.so.0 => not found\n")
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "libxcb-icccm.so.4" in err and "libxcb-cursor.so.0" in err
    assert "libxcb-icccm4" in err or "xcb-util-wm" in err
    assert "starting" not in err  # the demo was not seeded first


@linux_only
def test_the_headless_commands_need_no_x_libraries(tmp_path, monkeypatch, capsys):
    fake_ldd_on_path(tmp_path, monkeypatch, r"\tlibxcb-icccm.so.4 => not found\n")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    assert main(["doctor"]) == 2  # the config's problem, not the window's
    assert "libxcb" not in capsys.readouterr().err


# -- which config a command read -----------------------------------------------------------------

def test_doctor_and_snapshot_name_the_config_they_looked_for(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    looked_for = tmp_path / "config" / "fleetview" / "config.toml"
    for command in ("doctor", "snapshot"):
        assert main([command]) == 2
        err = capsys.readouterr().err
        assert f"{looked_for} (not found)" in err and "no scopes configured" in err


@pytest.fixture
def memory_world(monkeypatch):
    from fleetview import providers
    from tests.helpers import memory_cloud as mem

    monkeypatch.setitem(providers.REGISTRY, "memory", "tests.helpers.memory_cloud")
    world = mem.lab_fleet()
    monkeypatch.setitem(mem.WORLDS, world.account, world)
    return world


def test_doctor_and_snapshot_name_the_config_they_read(memory_world, tmp_path, capsys):
    path = tmp_path / "lab.toml"
    path.write_text('[[memory]]\nname = "lab-mem"\naccount = "lab"\nregions = ["mem-1"]\n')
    assert main(["doctor", "--config", str(path)]) == 0
    assert f"Config: {path}" in capsys.readouterr().out
    assert main(["snapshot", "--config", str(path)]) == 0
    captured = capsys.readouterr()
    assert f"polling 1 scope of {path}" in captured.err
    snapshot = json.loads(captured.out)
    assert snapshot["config"] == str(path) and snapshot["instances"]
