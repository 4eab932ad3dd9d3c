"""Names and messages from a cloud or a config are shown as text, never read as markup."""

from __future__ import annotations

import pandas as pd
from PySide6.QtCore import Qt

from fleetview.ui.colors import VersionColors
from fleetview.ui.rich_text import escape, plain_label, plain_tooltip
from fleetview.ui.scope_tree import ScopeTree
from fleetview.ui.state import WindowState
from fleetview.ui.status_bar import ScopeStatus
from fleetview.ui.timeline import Legend

EVIL = "<img src=x onerror=alert(1)><b>web</b>"


def test_a_tooltip_that_looks_like_html_is_shown_as_text():
    shown = plain_tooltip(f"{EVIL}: wants 1.1\nline two")
    assert "&lt;img src=x" in shown and "<img" not in shown and "<br" in shown
    assert plain_tooltip("web: wants 1.1\nline two") == "web: wants 1.1\nline two"
    assert escape(None) == "" and escape("a<b") == "a&lt;b"
    assert plain_label(EVIL).textFormat() == Qt.TextFormat.PlainText


def test_a_scope_name_is_escaped_in_the_status_bar(qtbot):
    state = WindowState()
    status = ScopeStatus(EVIL, state)
    qtbot.addWidget(status)
    assert "&lt;b&gt;web&lt;/b&gt;" in status.name.text()
    state.scope_failed(EVIL, None, "<b>denied</b>")
    assert "&lt;b&gt;denied&lt;/b&gt;" in status.badge.toolTip()


def test_a_version_is_escaped_in_the_legend(qtbot):
    legend = Legend(VersionColors())
    qtbot.addWidget(legend)
    legend.set_counts({"<b>1.0</b>": 3})
    chip = legend.findChild(type(plain_label()), "legendChip")
    assert "&lt;b&gt;1.0&lt;/b&gt;" in chip.text()


def test_a_group_name_is_text_in_the_tree_tooltip(qtbot):
    tree = ScopeTree(VersionColors())
    qtbot.addWidget(tree)
    fleet = pd.DataFrame({"scope": ["s"], "region": ["r"], "group": [EVIL],
                          "instance_id": ["i1"], "name": ["n1"], "version": ["1.0"],
                          "drift": [False]})
    groups = pd.DataFrame({"scope": ["s"], "region": ["r"], "group": [EVIL], "kind": ["asg"],
                           "desired_version": ["1.0"], "target_size": [1]})
    tree.set_fleet(fleet, groups)
    tip = tree.item_for(("group", "s", "r", EVIL)).toolTip(0)
    assert "&lt;img src=x" in tip and "<img" not in tip
