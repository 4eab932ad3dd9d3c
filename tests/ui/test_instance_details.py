"""The details of one instance: its lifecycle, why it changed state, and who owns its group."""

from __future__ import annotations

import pandas as pd

from fleetview.ui.colors import VersionColors
from fleetview.ui.instance_details import InstanceDetails
from fleetview.ui.state import FleetFrame, WindowState


def state_with(fleet: pd.DataFrame, groups: pd.DataFrame) -> WindowState:
    state = WindowState()
    state.set_frame(FleetFrame(fleet=fleet, groups=groups))
    return state


FLEET = pd.DataFrame({
    "instance_id": ["i-1", "i-2"], "name": ["web-1", "i-2"], "version": ["1.1", "1.1"],
    "desired_version": ["1.1", None], "drift": [False, False], "state": ["stopped", "running"],
    "group": ["web", None], "scope": ["prod", "prod"], "provider": ["aws", "aws"],
    "account": ["1234", "1234"], "region": ["us-east-1", "us-east-1"],
    "zone": ["us-east-1a", "us-east-1b"], "image_name": ["app-1.1", "app-1.1"],
    "image_id": ["ami-1", "ami-1"], "start": [pd.Timestamp("2026-01-01", tz="UTC")] * 2,
    "lifecycle": ["spot", None], "state_reason": ["Spot interruption", None],
    "standby": [False, False], "warm": [True, False],
})
GROUPS = pd.DataFrame({"scope": ["prod"], "region": ["us-east-1"], "group": ["web"],
                       "desired_version": ["1.1"], "owner": ["CloudFormation stack web"],
                       "notes": [("image from SSM parameter /app/ami",)]})


def test_a_spot_instance_says_why_it_stopped_and_who_owns_its_group(qtbot):
    state = state_with(FLEET, GROUPS)
    details = InstanceDetails(VersionColors(), state=state)
    qtbot.addWidget(details)
    state.select_instance("i-1")
    text = details.label.text()
    assert "Spot interruption" in text and ">spot<" in text
    assert "stopped (in the warm pool)" in text
    assert "CloudFormation stack web" in text
    assert "image from SSM parameter /app/ami" in text
    state.select_instance("i-2")
    text = details.label.text()
    assert "on demand" in text and "standalone" in text and "nan" not in text.lower()


def test_a_store_without_the_new_columns_shows_what_it_has(qtbot):
    old = FLEET.drop(columns=["lifecycle", "state_reason", "standby", "warm"])
    state = state_with(old, GROUPS.drop(columns=["owner", "notes"]))
    details = InstanceDetails(VersionColors(), state=state)
    qtbot.addWidget(details)
    state.select_instance("i-1")
    text = details.label.text()
    assert "Lifecycle" not in text and "Owned by" not in text and "web" in text
