"""Version colours: stable, distinct for neighbours, readable."""

from __future__ import annotations

from PySide6.QtGui import QColor

from fleetview.ui.colors import UNKNOWN_VERSION, VersionColors, text_on


def test_colours_follow_version_order_and_stay_put():
    colors = VersionColors(["1.10", "1.9", "1.2"])
    assert colors.versions == ["1.2", "1.9", "1.10"]
    before = {v: colors.hex(v) for v in colors.versions}
    colors.update(["1.11"])  # a new release sorts last: the others keep their colours
    assert {v: colors.hex(v) for v in before} == before
    hexes = [colors.hex(v) for v in colors.versions]
    assert all(a != b for a, b in zip(hexes, hexes[1:], strict=False))
    assert colors.hex(None) == UNKNOWN_VERSION
    assert colors.hex("never-seen") == UNKNOWN_VERSION


def test_same_versions_same_colours_whatever_the_order():
    assert VersionColors(["2.0", "1.0"]).hex("2.0") == VersionColors(["1.0", "2.0"]).hex("2.0")


def test_text_colour_for_a_chip():
    assert text_on(QColor("#ffffff")).name() == "#111111"
    assert text_on(QColor("#000000")).name() == "#ffffff"
