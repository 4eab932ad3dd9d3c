"""The emulator's Cloud Audit Logs: what its operations write, seeded history, and entries.list
as google-cloud-logging (REST) reads it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from google.api_core import exceptions as gexc
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1
from google.cloud import logging as cloud_logging

from fleetview.domain.timestamps import parse_time
from fleetview.sim.gce.audit import log_time, project_number, seed_rollouts
from tests.helpers import gce as gce_fixtures
from tests.helpers.gce import PROJECT, ROLLOUTS, seed_history

gce_emulator = gce_fixtures.gce_emulator

ACTIVITY = f'logName="projects/{PROJECT}/logs/cloudaudit.googleapis.com%2Factivity"'
EVER = 'timestamp>="2020-01-01T00:00:00Z"'


def client(emulator) -> cloud_logging.Client:
    return cloud_logging.Client(project=PROJECT, credentials=AnonymousCredentials(),
                                _use_grpc=False,
                                client_options={"api_endpoint": emulator.endpoint})


def entries(emulator, filter_: str = "", **kw) -> list:
    terms = " AND ".join(t for t in (ACTIVITY, EVER, filter_) if t)
    return list(client(emulator).list_entries(resource_names=[f"projects/{PROJECT}"],
                                              filter_=terms, **kw))


def methods(found) -> list[str]:
    return [e.payload_json["methodName"] for e in found]


def test_a_patch_through_the_api_logs_the_patch_and_every_instance_the_mig_replaces(
        gce_emulator):
    state = gce_emulator.state
    seed_history(state)
    old = {i["id"] for i in state.list_instances() if i["name"].startswith("web-")}
    state.calls.clear()
    migs = compute_v1.InstanceGroupManagersClient(**gce_emulator.client_kwargs())
    migs.patch(project=PROJECT, zone="us-central1-a", instance_group_manager="web",
               instance_group_manager_resource={"versions": [
                   {"instance_template": "global/instanceTemplates/app-1-3-0-tmpl"}]})
    gce_emulator.clock.advance(900)
    new = {i["id"] for i in state.list_instances() if i["name"].startswith("web-")}
    assert new.isdisjoint(old) and len(new) == 4

    since = f'timestamp>="{log_time(gce_fixtures.CLOCK_START)}"'
    found = entries(gce_emulator, since)
    patch = [e for e in found if e.payload_json["methodName"].endswith("Managers.patch")]
    assert len(patch) == 2  # the operation's first and last entries
    first = next(e for e in patch if e.operation.get("first"))
    assert first.payload_json["request"]["versions"][0]["instanceTemplate"].endswith(
        "app-1-3-0-tmpl")
    assert first.resource.type == "gce_instance_group_manager"
    assert first.resource.labels["instance_group_manager_name"] == "web"
    assert first.log_name == f"projects/{PROJECT}/logs/cloudaudit.googleapis.com%2Factivity"

    inserts = [e for e in found if e.payload_json["methodName"] == "v1.compute.instances.insert"
               and e.operation.get("first")]
    deletes = [e for e in found if e.payload_json["methodName"] == "v1.compute.instances.delete"
               and e.operation.get("last")]
    assert {e.resource.labels["instance_id"] for e in inserts} == new
    assert {e.resource.labels["instance_id"] for e in deletes} == old
    made = inserts[0].payload_json
    # A MIG acts as the project's service agent and names the project by number.
    assert made["requestMetadata"]["callerSuppliedUserAgent"] == "GCE Managed Instance Group"
    assert made["authenticationInfo"]["principalEmail"].startswith(project_number(PROJECT))
    assert made["resourceName"].startswith(f"projects/{project_number(PROJECT)}/zones/")
    boot = made["request"]["disks"][0]["initializeParams"]["sourceImage"]
    assert boot.endswith("global/images/app-1-3-0")
    # Every entry happened: none from after the clock's now, times in order.
    stamps = [e.timestamp for e in found]
    assert stamps == sorted(stamps)
    assert max(stamps) <= gce_emulator.clock.now_datetime()
    assert state.calls["logging.entries.list"] >= 1


def test_seeded_history_matches_the_live_instances_and_the_rollouts(gce_emulator):
    state = gce_emulator.state
    seed_history(state)
    web = [e for e in entries(gce_emulator, 'protoPayload.methodName="v1.compute.'
                                            'instanceGroupManagers.patch"')
           if e.operation.get("first")]
    now = gce_emulator.clock.now_datetime()
    assert [round((now - e.timestamp) / timedelta(days=1), 2) for e in web] == \
        [d for d, _ in ROLLOUTS["web"][1:]]
    # The live members' creation times are the last rollout's launches.
    live = {i["id"]: i["creationTimestamp"] for i in state.list_instances()
            if i["name"].startswith("web-")}
    launches = {e.resource.labels["instance_id"]: e.timestamp for e in entries(
        gce_emulator, 'protoPayload.methodName="v1.compute.instances.insert" AND '
                      'resource.labels.instance_id=(' + " OR ".join(f'"{i}"' for i in live)
        + ')') if e.operation.get("first")}
    assert set(launches) == set(live)
    for instance_id, created in live.items():
        assert launches[instance_id] == parse_time(created)
    # Each rollout launched as many instances as the group has (4), the creation too.
    inserts = entries(gce_emulator, 'resource.type="gce_instance" AND '
                                    'protoPayload.methodName="v1.compute.instances.insert" '
                                    'AND protoPayload.resourceName:"/instances/web-"')
    assert len([e for e in inserts if e.operation.get("first")]) == 4 * len(ROLLOUTS["web"])


def test_seeding_refuses_a_history_gce_could_not_have_written(gce_emulator):
    state = gce_emulator.state
    state.create_image("app-1", created=timedelta(days=10))
    state.create_instance_template("t1", "app-1", created=timedelta(days=10))
    state.create_mig("web", "t1", zone="us-central1-a", target_size=2)
    with pytest.raises(ValueError, match="created after"):
        seed_rollouts(state, "web", [(timedelta(days=20), "t1")])
    state.create_image("app-2")
    state.create_instance_template("t2", "app-2")
    with pytest.raises(ValueError, match="runs now"):
        seed_rollouts(state, "web", [(timedelta(days=5), "t1"), (timedelta(hours=1), "t2")])
    with pytest.raises(ValueError, match="still replacing"):
        seed_rollouts(state, "web", [(timedelta(days=5), "t1"), (timedelta(days=5, seconds=30),
                                                                 "t1")])


def test_pages_follow_their_token_in_either_order(gce_emulator):
    seed_history(gce_emulator.state)
    whole = entries(gce_emulator)
    paged = entries(gce_emulator, page_size=7)
    assert [e.insert_id for e in paged] == [e.insert_id for e in whole]
    newest_first = entries(gce_emulator, page_size=9, order_by=cloud_logging.DESCENDING)
    assert [e.insert_id for e in newest_first] == [e.insert_id for e in reversed(whole)]
    assert gce_emulator.state.calls["logging.entries.list"] > len(whole) // 9


def test_a_standalone_instance_is_logged_as_an_operators_insert(gce_emulator):
    gce_emulator.state.create_image("img")
    gce_emulator.state.create_instance("vm", "us-central1-b", "img",
                                       created=timedelta(days=3))
    found = entries(gce_emulator, 'resource.labels.zone="us-central1-b"')
    assert methods(found) == ["v1.compute.instances.insert"] * 2
    payload = found[0].payload_json
    assert payload["authenticationInfo"]["principalEmail"] == "operator@example.com"
    assert "metadata" not in payload["request"]  # no group made it
    assert found[0].timestamp == gce_emulator.clock.now_datetime() - timedelta(days=3)


def test_errors_are_loggings_own(gce_emulator):
    gce_emulator.state.create_image("img")
    with pytest.raises(gexc.BadRequest, match="Unparseable filter"):
        entries(gce_emulator, "protoPayload.methodName=")
    with pytest.raises(gexc.BadRequest, match="OR between comparisons"):
        entries(gce_emulator, 'severity="NOTICE" OR severity="ERROR"')
    gce_emulator.faults.deny("logging.entries.list", "logging.logEntries.list")
    with pytest.raises(gexc.Forbidden, match="logging.logEntries.list"):
        entries(gce_emulator)
    gce_emulator.faults.clear()
    gce_emulator.faults.throttle(1, ["logging.entries.list"])
    with pytest.raises(gexc.TooManyRequests):
        entries(gce_emulator)
    assert entries(gce_emulator) == []


def test_the_read_quota_is_sixty_a_minute_per_project(gce_emulator):
    gce_emulator.state.create_image("img")
    for _ in range(60):
        entries(gce_emulator)
    with pytest.raises(gexc.TooManyRequests, match="Read requests per minute"):
        entries(gce_emulator)
    gce_emulator.clock.advance(60)
    assert entries(gce_emulator) == []
