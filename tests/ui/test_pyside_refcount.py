"""Guards the PySide6 pin: 6.12.0 on Python 3.11 drops None's refcount on every void call."""

import sys

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QImage, QPainter

RECTANGLES = 20_000


def test_painting_does_not_drop_nones_refcount(qapp):
    image = QImage(256, 256, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.white)
    painter = QPainter(image)
    brush = QBrush(QColor("#3b82f6"))
    before = sys.getrefcount(None)
    try:
        for i in range(RECTANGLES):
            painter.setBrush(brush)  # void calls: each one leaked a None decref on 6.12.0
            rect = QRectF(i % 200, (i // 200) % 200, 10, 10)
            rect.setWidth(12)
            painter.drawRect(rect)
    finally:
        painter.end()
    after = sys.getrefcount(None)
    # Other code may take references meanwhile, but the broken release loses at least one a
    # call, tens of thousands here; a clean one never drops below where it started.
    assert after >= before, (
        f"None's refcount fell by {before - after} over {RECTANGLES} paints: this PySide6 "
        "build corrupts it (see the pin in pyproject.toml)")
    assert image.pixelColor(5, 5) != QColor(Qt.GlobalColor.white)
