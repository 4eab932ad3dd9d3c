"""The details of one instance: where it runs, its version against its group's, its history."""

from __future__ import annotations

import html
import math
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QScrollArea, QVBoxLayout, QWidget

from fleetview.ui.colors import DRIFT, RED, VersionColors
from fleetview.ui.state import BAD_COLUMN, FleetFrame, WindowState
from fleetview.ui.timeline_data import TimelineData


def _when(t: float) -> str:
    if not math.isfinite(t):
        return "now"
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _present(value: object) -> bool:
    return value is not None and value is not pd.NaT and not (
        isinstance(value, float) and math.isnan(value)) and value != ""


def _flag(value: object) -> bool:
    return _present(value) and bool(value)


class InstanceDetails(QWidget):
    """One instance's details; given a WindowState, the selected instance's, kept current."""

    def __init__(self, colors: VersionColors, parent=None, state: WindowState | None = None):
        super().__init__(parent)
        self.colors = colors
        self._state = state
        self.label = QLabel("Click an instance in the timeline or the table.", self)
        self.label.setObjectName("instanceDetails")
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.label.setWordWrap(True)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(self.label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(scroll)
        self.instance_id: str | None = None
        if state is not None:
            state.instance_selected.connect(self._on_instance_selected)
            state.fleet_changed.connect(self._on_fleet_changed)

    def _on_instance_selected(self, instance_id: str | None, source: str = "") -> None:
        if instance_id is None:
            self.clear()
        else:
            self.show_selected(instance_id)

    def _on_fleet_changed(self, frame: FleetFrame) -> None:
        if self.instance_id:  # the same instance, as of the new frame
            self.show_selected(self.instance_id)

    def show_selected(self, instance_id: str) -> None:
        state = self._state
        if state is None:
            self.show_instance(instance_id, None, None)
        else:
            self.show_instance(instance_id, state.instance_row(instance_id), state.history)

    def show_instance(self, instance_id: str, row: pd.Series | None,
                      timeline: TimelineData | None) -> None:
        self.instance_id = instance_id
        rows = []

        def add(name: str, value: object) -> None:
            if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
                return
            rows.append(f"<tr><td style='padding-right:12px; opacity:0.7'>{name}</td>"
                        f"<td>{value}</td></tr>")

        def esc(value: object) -> str | None:
            return None if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)) \
                else html.escape(str(value))

        title = instance_id
        if row is not None:
            title = str(row.get("name") or instance_id)
            version = row.get("version")
            chip = (f"<span style='color:{self.colors.hex(version)}'>■</span> "
                    f"{html.escape(str(version))}")
            add("Instance", esc(instance_id))
            add("Version", chip)
            why = row.get(BAD_COLUMN)
            if why is not None and not pd.isna(why):
                add("Marked bad", f"<b style='color:{RED}'>⚠</b> {esc(why)}")
            desired = row.get("desired_version")
            if bool(row.get("drift")):
                add("Desired", f"{esc(desired)} <b style='color:{DRIFT}'>◆ drift</b>")
            else:
                add("Desired", esc(desired))
            state = esc(row.get("state"))
            held = [word for flag, word in (("standby", "standby: held out of service"),
                                            ("warm", "in the warm pool"))
                    if _flag(row.get(flag))]
            add("State", f"{state} ({', '.join(held)})" if held and state else state)
            add("State reason", esc(row.get("state_reason")))
            lifecycle = row.get("lifecycle")
            add("Lifecycle", esc(lifecycle) if _present(lifecycle) else
                ("on demand" if "lifecycle" in row.index else None))
            add("Group", esc(row.get("group")) or "standalone")
            owner, notes = self._group_owner(row)
            add("Owned by", esc(owner))
            for note in notes:
                add("Note", esc(note))
            add("Scope", esc(f"{row.get('scope')} ({row.get('provider')}, {row.get('account')})"))
            add("Region", esc(f"{row.get('region')} / {row.get('zone')}"))
            add("Image", esc(f"{row.get('image_name')} ({row.get('image_id')})"))
            start = row.get("start")
            if start is not None and not pd.isna(start):
                add("Running since", esc(pd.Timestamp(start).strftime("%Y-%m-%d %H:%M UTC")))
        else:
            add("Instance", f"{esc(instance_id)} — not running at the time shown")
        history = ""
        if timeline is not None and timeline.n_instances:
            hits = np.flatnonzero(timeline.inst_id == instance_id)
            if len(hits):
                segs = np.flatnonzero(timeline.seg_inst == hits[0])
                items = []
                for s in segs[::-1][:20]:
                    version = timeline.versions[int(timeline.seg_ver[s])]
                    items.append(
                        f"<tr><td><span style='color:{self.colors.hex(version)}'>■</span> "
                        f"{html.escape(str(version))}</td><td style='padding-left:10px'>"
                        f"{_when(float(timeline.seg_x0[s]))} → {_when(float(timeline.seg_x1[s]))}"
                        f"</td><td style='padding-left:10px; opacity:0.7'>"
                        f"{html.escape(str(timeline.seg_state[s]))}</td></tr>")
                history = "<p style='margin-top:8px'><b>History</b></p><table>" + \
                    "".join(items) + "</table>"
        self.label.setText(f"<h3 style='margin:0 0 6px 0'>{html.escape(title)}</h3>"
                           f"<table>{''.join(rows)}</table>{history}")

    def _group_owner(self, row: pd.Series) -> tuple[str | None, list[str]]:
        """The instance's group's owner and notes, when the store keeps them."""
        groups = self._state.groups if self._state is not None else None
        group = row.get("group")
        if groups is None or not len(groups) or not _present(group) or (
                "owner" not in groups and "notes" not in groups):
            return None, []
        hit = groups[(groups["scope"] == row.get("scope")) & (groups["region"] == row.get("region"))
                     & (groups["group"] == group)]
        if not len(hit):
            return None, []
        owner = hit["owner"].iat[0] if "owner" in hit else None
        notes = hit["notes"].iat[0] if "notes" in hit else None
        if isinstance(notes, str):
            notes = [notes] if notes else []
        return (str(owner) if _present(owner) else None,
                [str(n) for n in notes] if isinstance(notes, list | tuple) else [])

    def clear(self) -> None:
        self.instance_id = None
        self.label.setText("Click an instance in the timeline or the table.")
