"""The one place that knows where FleetView's icon, images and colour palette live."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fleetview.domain.errors import FleetViewError
from fleetview.domain.versions import version_key

# Installed (wheel, PyInstaller bundle) the files sit next to this module as resources_data/;
# in a source checkout (and an editable install) they are the repository's resources/.
_INSTALLED = Path(__file__).resolve().parent / "resources_data"
DATA_DIR = _INSTALLED if _INSTALLED.is_dir() else Path(__file__).resolve().parent.parent / "resources"

APP_ID = "org.fleetview.FleetView"
ICON_NAME = "fleetview"
# The hicolor sizes freedesktop desktops, macOS (.icns) and Windows (.ico) pick from.
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


class ResourceError(FleetViewError):
    """A resource file is missing or broken: the installation is incomplete."""


def _existing(path: Path) -> Path:
    if not path.is_file():
        raise ResourceError(f"{path} is missing; FleetView's installation is incomplete, "
                            "reinstall it (pip install --force-reinstall fleetview)")
    return path


def icon_svg() -> Path:
    """The application icon as SVG (the source of every PNG size)."""
    return DATA_DIR / f"{ICON_NAME}.svg"


def icon_png(size: int) -> Path:
    """The application icon rendered at `size` x `size` pixels; `size` must be in ICON_SIZES."""
    if size not in ICON_SIZES:
        raise ValueError(f"no {size}px icon; the sizes are {ICON_SIZES}")
    return DATA_DIR / "icons" / f"{ICON_NAME}-{size}.png"


def icon_pngs() -> dict[int, Path]:
    """Every PNG size of the icon, smallest first, for building a multi-size window icon."""
    return {size: _existing(icon_png(size)) for size in ICON_SIZES}


def images() -> tuple[str, ...]:
    """The names of the app's other images (status marks and the like)."""
    return tuple(sorted(p.stem for p in (DATA_DIR / "images").glob("*.svg")))


def image(name: str) -> Path:
    """An image by name, e.g. "status-ok"; the UI loads it with QIcon/QSvgRenderer."""
    path = DATA_DIR / "images" / f"{name}.svg"
    if not path.is_file():
        raise KeyError(f"no image {name!r}; the images are: {', '.join(images())}")
    return path


def image_bytes(name: str) -> bytes:
    return image(name).read_bytes()


@dataclass(frozen=True)
class Palette:
    """Colours as "#rrggbb" strings: versions in order, states, and status marks."""

    versions: tuple[str, ...]
    unknown_version: str
    states: dict[str, str]
    status: dict[str, str]

    def version_colours(self, versions: Iterable[str | None]) -> dict[str | None, str]:
        """A colour per version: natural version order picks the palette in turn, cycling.

        So the same set of versions always gets the same colours, whatever order the
        caller saw them in; None (an image no rule labels) gets `unknown_version`.
        """
        labels = sorted({v for v in versions if v is not None}, key=version_key)
        colours: dict[str | None, str] = {
            label: self.versions[n % len(self.versions)] for n, label in enumerate(labels)
        }
        colours[None] = self.unknown_version
        return colours


@cache
def palette() -> Palette:
    path = _existing(DATA_DIR / "palette.json")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Palette(
            versions=tuple(data["versions"]),
            unknown_version=data["unknown_version"],
            states=dict(data["states"]),
            status=dict(data["status"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ResourceError(f"{path} is broken ({exc!r}); reinstall FleetView") from None


def all_files() -> list[Path]:
    """Every resource file, for packaging checks (the bundle must ship each one)."""
    return sorted(p for p in DATA_DIR.rglob("*") if p.is_file() and p.name != "__pycache__")
