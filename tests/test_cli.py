"""The command line: version, and honest answers from commands not built yet."""

import subprocess
import sys

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
