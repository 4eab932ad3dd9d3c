"""Values from a cloud or a config inside Qt text: escaped in rich text, never taken for it.

A QLabel or a tooltip decides by itself whether its text is rich (`Qt.mightBeRichText`): a
group named `<img src=...>` or an error message quoting HTML would be drawn as markup. Rich
text FleetView builds escapes every value with `escape`; a tooltip made of plain values goes
through `plain_tooltip`, and a label showing one is made with `plain_label`.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtGui import Qt as GuiQt
from PySide6.QtWidgets import QLabel, QWidget


def escape(value: object) -> str:
    """`value` as text that rich text shows as it is."""
    return html.escape("" if value is None else str(value))


def plain_tooltip(text: str) -> str:
    """A tooltip that shows `text` as it is (line breaks kept), even if it looks like HTML."""
    if text and GuiQt.mightBeRichText(text):
        return GuiQt.convertFromPlainText(text, Qt.WhiteSpaceMode.WhiteSpaceNormal)
    return text


def plain_label(text: str = "", parent: QWidget | None = None) -> QLabel:
    """A QLabel that never reads its text as rich text."""
    label = QLabel(parent)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setText(text)
    return label
