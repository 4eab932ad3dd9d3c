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
