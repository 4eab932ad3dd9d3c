"""A wheel (pip install fleetview) ships every resource file, as the bundle does."""

import subprocess
import sys
import zipfile
from pathlib import Path

from fleetview import resources

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_ships_every_resource_file(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                    "-q", "-w", str(tmp_path), str(ROOT)], check=True, timeout=300,
                   capture_output=True)
    wheel = next(tmp_path.glob("fleetview-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"fleetview/resources_data/{f.relative_to(resources.DATA_DIR).as_posix()}"
                for f in resources.all_files()}
    assert expected, "resources.all_files() found nothing"
    assert not expected - names, f"missing from the wheel: {sorted(expected - names)}"
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "fleetview").rglob("*.py")}
    assert not modules - names, f"packages missing from pyproject: {sorted(modules - names)}"


def test_the_spec_ships_the_resource_folder():
    spec = (ROOT / "packaging" / "pyinstaller" / "fleetview.spec").read_text(encoding="utf-8")
    assert '(str(resources.DATA_DIR), "fleetview/resources_data")' in spec
    assert resources.DATA_DIR == ROOT / "resources"
