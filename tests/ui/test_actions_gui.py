"""Replace and rollback from the window, against moto through boto3: the keyboard path to a
confirmed rollback, the plan preview, refusals, the journal and audit, and the timeline."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

import pytest
from PySide6.QtCore import QSettings, Qt

from fleetview.actions import audit
from fleetview.actions.journal import Journal
from fleetview.actions.steps import run_steps
from fleetview.config import load_config
from fleetview.domain.model import State
from fleetview.domain.timing import FakeClock
from fleetview.providers import make_provider
from fleetview.sim.aws_fleet import GroupSpec, seed_aws_fleet
from fleetview.ui.app import open_window
from fleetview.ui.collector_process import CollectorProcess, collector_command
from tests.helpers.aws import moto_server  # noqa: F401

OLD, NEW = "1.3.0", "1.4.0"
REGION = "us-east-1"


def write_config(tmp_path, url, actions=True, protect=()):
    path = tmp_path / "config.toml"
    protect_line = f"protect = {list(protect)!r}\n".replace("'", '"') if protect else ""
    path.write_text(f"""{protect_line}
[store]
url = "sqlite:///{tmp_path / 'history.db'}"
[poll]
interval_s = 5
jitter_s = 0
[[aws]]
name = "prod"
regions = ["{REGION}"]
endpoint_url = "{url}"
actions = {"true" if actions else "false"}
""")
    return load_config(path)


@pytest.fixture
def history(moto_server, tmp_path):  # noqa: F811
    """Group "api" ran OLD in full two hours ago, then was deployed to NEW: real polls of
    moto recorded in the store, the deploy done through the provider itself."""
    fleet = seed_aws_fleet(moto_server.url, regions=(REGION,), versions=(OLD, NEW),
                           groups=(GroupSpec("api", size=3, version=OLD),), standalone=1,
                           unlabelled=0)
    new_ami = fleet.regions[REGION].images[NEW]
    config = write_config(tmp_path, moto_server.url)
    from fleetview.store import Store

    provider = make_provider(config.scopes[0], config.versions,
                             timing=FakeClock().timing(interval_s=1.0))
    with Store.open(config.store.url) as store:
        now = datetime.now(UTC)
        first = provider.poll()
        store.record_poll(first, now - timedelta(hours=2), now - timedelta(hours=2))
        from fleetview.domain.model import Image

        plan = provider.plan_rollback(  # the deploy of NEW, through the provider itself
            first, "api", REGION, NEW,
            known_images={new_ami: Image("aws", new_ami, f"app-{NEW}", version=NEW)})
        for _ in run_steps(provider, plan):
            pass
        store.record_poll(provider.poll(), now - timedelta(hours=1), now - timedelta(hours=1))
    provider.close()
    return config


def idle_collector():
    """Stands in for the collector where a test writes the store itself."""
    return CollectorProcess(sys.executable, ["-c", "import sys; sys.stdin.read()"])


def open_on(config, qtbot, tmp_path, collector=None):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = open_window(config, collect=True, collector=collector or idle_collector(),
                         settings=settings)
    qtbot.addWidget(window)
    seen: set[str] = set()
    window.loaded.connect(seen.add)
    window.show()
    window.start()
    qtbot.waitUntil(lambda: {"fleet", "history"} <= seen, timeout=15000)
    qtbot.waitUntil(lambda: bool(window.action_controller.readiness), timeout=15000)
    return window


def wait_dialog(window, qtbot):
    controller = window.action_controller
    qtbot.waitUntil(lambda: controller.dialog is not None and controller.dialog.isVisible(),
                    timeout=30000)
    return controller.dialog


def test_keyboard_only_rollback_in_four_interactions_converges_and_shows(
        history, qtbot, tmp_path):
    program, args = collector_command(history)
    window = open_on(history, qtbot, tmp_path, CollectorProcess(program, args))
    controller = window.action_controller
    ready = controller.readiness[("prod", REGION, "api")]
    assert ready.ready and ready.target.version == OLD

    # 1. open the palette
    qtbot.keyClick(window, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier)
    assert window.palette_popup.isVisible()
    # 2. type the group (with the verb)
    qtbot.keyClicks(window.palette_popup.search, "rollback api")
    assert window.palette_popup.shown_titles()[0] == "Roll back api"
    # 3. choose rollback: the plan preview opens, its reason box focused
    qtbot.keyClick(window.palette_popup.search, Qt.Key.Key_Return)
    dialog = wait_dialog(window, qtbot)
    assert dialog.prepared.ok, dialog.prepared.refusal
    plan = dialog.prepared.plan
    assert plan.to_version == OLD and set(plan.from_versions) == {NEW}
    assert len(plan.instances) == 3 and plan.mechanism in ("rolling-replacement",
                                                            "instance-refresh")
    assert "arn:aws" in dialog.findChild(type(dialog.title), "actingAs").text()
    assert not dialog.run_button.isEnabled()  # no reason yet
    # 4. confirm: a reason, then Enter
    qtbot.keyClicks(dialog.reason, "1.4.0 leaks memory")
    with qtbot.waitSignal(controller.action_finished, timeout=120000) as finished:
        qtbot.keyClick(dialog.reason, Qt.Key.Key_Return)
    action_id, record = finished.args
    assert record.status == "recovered", record.message
    assert record.time_to_recover_s is not None

    provider = make_provider(history.scopes[0], history.versions)
    api = [i for i in provider.poll().instances
           if i.group == "api" and i.state == State.RUNNING]
    assert len(api) == 3 and {i.version for i in api} == {OLD}

    # The timeline shows it once the collector has polled: every live api row on OLD.
    window.poll_now()
    qtbot.waitUntil(lambda: set(window.fleet.loc[window.fleet["group"] == "api", "version"])
                    == {OLD}, timeout=60000)
    events = [e.event for e in audit.entries(window.store)]
    assert events[0] == "plan_confirmed" and events[-1] == "recovered"
    # The timeline marks when the action was confirmed and when it recovered.
    qtbot.waitUntil(lambda: len(window.timeline.plot._marker_items) == 2, timeout=15000)
    labels = [m.label.format for m in window.timeline.plot._marker_items]
    assert any("rollback api → 1.3.0" in text for text in labels), labels
    assert audit.verify(window.store).ok
    qtbot.waitUntil(lambda: controller.panel.tree.topLevelItemCount() == 1, timeout=10000)
    assert controller.panel.tree.topLevelItem(0).text(2) == "recovered"


def test_replace_from_the_table_brings_a_new_instance(history, qtbot, tmp_path):
    window = open_on(history, qtbot, tmp_path)
    controller = window.action_controller
    victim = window.fleet.loc[window.fleet["group"] == "api", "instance_id"].iloc[0]
    controller.replace(victim)
    dialog = wait_dialog(window, qtbot)
    assert dialog.prepared.ok, dialog.prepared.refusal
    assert dialog.prepared.plan.instances == (victim,)
    qtbot.keyClicks(dialog.reason, "disk errors")
    with qtbot.waitSignal(controller.action_finished, timeout=120000) as finished:
        dialog.run_button.click()
    assert finished.args[1].status == "recovered", finished.args[1].message
    api = [i for i in make_provider(history.scopes[0], history.versions).poll().instances
           if i.group == "api" and i.state == State.RUNNING]
    assert victim not in {i.id for i in api}
    assert len(api) == 3 and {i.version for i in api} == {NEW}


def test_second_action_on_the_group_is_refused(history, qtbot, tmp_path):
    window = open_on(history, qtbot, tmp_path)
    controller = window.action_controller
    from fleetview.actions import locks

    locks.acquire(window.store, "prod", REGION, "api", "other-action", owner="bo@ws2:42")
    controller.rollback("prod", REGION, "api")
    dialog = wait_dialog(window, qtbot)
    assert not dialog.prepared.ok and "already running" in dialog.prepared.refusal
    assert "bo@ws2:42" in dialog.refusal.text()
    assert not dialog.run_button.isEnabled()


def test_read_only_scope_refuses_and_says_how(moto_server, qtbot, tmp_path):  # noqa: F811
    seed_aws_fleet(moto_server.url, regions=(REGION,), versions=(OLD, NEW),
                   groups=(GroupSpec("api", size=2, version=NEW),), standalone=0, unlabelled=0)
    config = write_config(tmp_path, moto_server.url, actions=False)
    from fleetview.store import Store

    with Store.open(config.store.url) as store:
        now = datetime.now(UTC)
        store.record_poll(make_provider(config.scopes[0], config.versions).poll(), now, now)
    window = open_on(config, qtbot, tmp_path)
    instance = window.fleet["instance_id"].iloc[0]
    window.action_controller.replace(instance)
    dialog = wait_dialog(window, qtbot)
    assert not dialog.prepared.ok
    assert "read-only" in dialog.prepared.refusal and "actions = true" in dialog.prepared.refusal
    refused = [e for e in audit.entries(window.store) if e.event == "refused"]
    assert refused and "read-only" in refused[0].detail


def test_protected_group_asks_for_its_name(history, qtbot, tmp_path, moto_server):  # noqa: F811
    import boto3

    boto3.client("autoscaling", region_name=REGION, endpoint_url=moto_server.url
                 ).create_or_update_tags(Tags=[{
                     "ResourceId": "api", "ResourceType": "auto-scaling-group", "Key": "env",
                     "Value": "prod", "PropagateAtLaunch": False}])
    config = write_config(tmp_path, moto_server.url, protect=("env=prod",))
    window = open_on(config, qtbot, tmp_path)
    window.action_controller.rollback("prod", REGION, "api")
    dialog = wait_dialog(window, qtbot)
    assert dialog.prepared.protected == "env=prod" and dialog.typed.isVisible()
    qtbot.keyClicks(dialog.reason, "bad deploy")
    assert not dialog.run_button.isEnabled()
    qtbot.keyClicks(dialog.typed, "api")
    assert dialog.run_button.isEnabled()
    assert Journal(window.store).recent() == []
