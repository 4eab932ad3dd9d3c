"""The icon, images and palette: present, well-formed, current, and found through one module."""

import ast
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from fleetview import resources
from fleetview.domain.errors import FleetViewError

PACKAGE = Path(resources.__file__).resolve().parent
HEX = re.compile(r"^#[0-9a-f]{6}$")
PATH_PATTERN = r"resources_data|(?:icons|images)[/\\][^\s'\"]*\.(?:png|svg|ico|icns)"


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("size", resources.ICON_SIZES)
def test_every_icon_size_is_a_png_of_that_size(size):
    assert png_size(resources.icon_png(size)) == (size, size)


def test_icon_sizes_cover_what_desktops_ask_for():
    # hicolor needs 16..256 for menus and docks; 512 for macOS and app stores.
    assert {16, 32, 48, 64, 128, 256, 512} <= set(resources.ICON_SIZES)
    assert list(resources.icon_pngs()) == sorted(resources.ICON_SIZES)


def test_unknown_icon_size_is_refused():
    with pytest.raises(ValueError, match="sizes are"):
        resources.icon_png(100)


def test_pngs_are_rendered_from_the_current_svg(qapp):
    """Editing the SVG without running packaging/make_icons.py fails here."""
    sys.path.insert(0, str(PACKAGE.parent / "packaging"))
    try:
        import make_icons
    finally:
        sys.path.pop(0)
    from PySide6.QtGui import QImage

    for size in (16, 64, 256):
        fresh = make_icons.render(resources.icon_svg(), size)
        stored = QImage(str(resources.icon_png(size))).convertToFormat(fresh.format())
        assert stored.size() == fresh.size()
        diff = max(
            abs(a - b)
            for y in range(0, size, max(1, size // 32))
            for x in range(0, size, max(1, size // 32))
            for a, b in zip(_rgba(fresh.pixel(x, y)), _rgba(stored.pixel(x, y)), strict=True)
        )
        assert diff <= 2, f"{resources.icon_png(size).name} is stale: run packaging/make_icons.py"


def _rgba(pixel: int) -> tuple[int, int, int, int]:
    return (pixel >> 16) & 255, (pixel >> 8) & 255, pixel & 255, (pixel >> 24) & 255


def test_svgs_are_well_formed_xml():
    import xml.etree.ElementTree as ET

    for path in [resources.icon_svg(), *(resources.image(n) for n in resources.images())]:
        root = ET.parse(path).getroot()
        assert root.tag == "{http://www.w3.org/2000/svg}svg", path


def test_images_are_found_by_name():
    assert {"status-ok", "status-stale", "status-error", "drift"} <= set(resources.images())
    assert resources.image_bytes("status-ok").lstrip().startswith(b"<?xml")
    with pytest.raises(KeyError, match="status-ok"):
        resources.image("no-such-image")


def test_palette_colours_are_hex():
    palette = resources.palette()
    colours = [*palette.versions, palette.unknown_version, *palette.states.values(),
               *palette.status.values()]
    assert all(HEX.match(c) for c in colours), colours
    assert len(set(palette.versions)) == len(palette.versions) >= 8
    assert palette.unknown_version not in palette.versions
    # every instance state the domain knows has a colour
    from fleetview.domain.model import State

    assert {s.value for s in State} <= set(palette.states)


def test_version_colours_follow_natural_order_not_input_order():
    palette = resources.palette()
    a = palette.version_colours(["1.10", "1.9", None, "1.2"])
    b = palette.version_colours(["1.2", "1.9", "1.10"])
    assert a["1.2"] == b["1.2"] == palette.versions[0]
    assert a["1.9"] == palette.versions[1]
    assert a["1.10"] == palette.versions[2]
    assert a[None] == palette.unknown_version


def test_version_colours_cycle_past_the_palette():
    palette = resources.palette()
    n = len(palette.versions)
    colours = palette.version_colours([f"1.{i}" for i in range(n + 1)])
    assert colours[f"1.{n}"] == colours["1.0"]


def test_missing_file_is_a_known_error(tmp_path, monkeypatch):
    monkeypatch.setattr(resources, "DATA_DIR", tmp_path)
    with pytest.raises(FleetViewError, match="reinstall"):
        resources.icon_pngs()


def test_resources_module_imports_no_qt():
    code = "import sys, fleetview.resources as r; r.palette(); print(any(m.startswith('PySide6') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_no_image_paths_scattered_in_code():
    """Only fleetview/resources.py names resource files; everything else asks it.

    A string literal that names a shipped resource file, its folder, or an icons/ or images/
    path is an offender (a file name the user saves to, like an export, is not).
    """
    shipped = {f.name for f in resources.all_files()} | {resources.ICON_NAME + ".svg"}
    pattern = re.compile(PATH_PATTERN)
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "resources.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
                if pattern.search(text) or any(name in text for name in shipped):
                    offenders.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert not offenders, f"resource paths outside fleetview/resources.py: {offenders}"


def test_the_scattered_path_check_catches_a_path():
    assert re.search(PATH_PATTERN, "icons/fleetview-16.png")
    assert re.search(PATH_PATTERN, "resources_data")
    assert not re.search(PATH_PATTERN, "projects/p/global/images/app-1")
    assert not re.search(PATH_PATTERN, "timeline-20261126.png")


def test_every_resource_file_is_under_the_resource_folder():
    files = resources.all_files()
    assert resources.icon_svg() in files
    assert all(resources.DATA_DIR in f.parents for f in files)
