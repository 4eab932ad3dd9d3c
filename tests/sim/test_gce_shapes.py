"""The emulator's JSON checked against example responses and against Google's own schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
from google.cloud import compute_v1
from google.protobuf import json_format

from tests.helpers import gce as gce_fixtures
from tests.helpers.gce import PROJECT

gce_emulator = gce_fixtures.gce_emulator

DATA = Path(__file__).parent / "data"
ZONE = "us-central1-a"


def _shape_errors(example: Any, actual: Any, path: str = "$") -> list[str]:
    """Where `actual` lacks a key of `example` or holds another JSON type; [] if none."""
    if isinstance(example, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected an object, got {type(actual).__name__}"]
        if path == "$.items":  # keyed by scope: each scope must match one example scope
            return [e for scope, value in actual.items()
                    for e in _first_match(list(example.values()), value, f"{path}.{scope}")]
        errors = []
        for key, value in example.items():
            if key not in actual:
                errors.append(f"{path}.{key}: missing")
            else:
                errors.extend(_shape_errors(value, actual[key], f"{path}.{key}"))
        return errors
    if isinstance(example, list):
        if not isinstance(actual, list):
            return [f"{path}: expected a list, got {type(actual).__name__}"]
        if not example:
            return []
        return [e for i, item in enumerate(actual)
                for e in _first_match(example, item, f"{path}[{i}]")]
    if type(example) is not type(actual):
        return [f"{path}: expected {type(example).__name__}, got {type(actual).__name__}"]
    return []


def _first_match(alternatives: list[Any], actual: Any, path: str) -> list[str]:
    """[] if `actual` has the shape of one of `alternatives`, else the closest one's errors."""
    results = [_shape_errors(a, actual, path) for a in alternatives]
    return min(results, key=len)


def _load(name: str) -> dict[str, Any]:
    return json.loads((DATA / name).read_text())


@pytest.fixture
def estate(gce_emulator):
    state = gce_emulator.state
    state.create_image("web-1-0-0", family="web", labels={"version": "1-0-0"})
    state.create_image("web-2-0-0", family="web", labels={"version": "2-0-0"})
    state.create_instance_template("web-v1", "web-1-0-0", labels={"team": "web"})
    state.create_instance_template("web-v2", "web-2-0-0", labels={"team": "web"},
                                   region="us-central1")
    state.create_mig("web", "web-v1", zone=ZONE, target_size=4,
                     versions=[{"instanceTemplate": "web-v1", "name": "v1"}])
    state.create_mig("api", "web-v1", region="us-central1", target_size=3)
    state.create_instance("bastion", "us-central1-b", "web-1-0-0", labels={"team": "web"})
    return gce_emulator


def _get(emulator, path: str, **params: Any) -> dict[str, Any]:
    response = requests.get(f"{emulator.endpoint}/compute/v1/projects/{PROJECT}/{path}",
                            params=params, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def _post(emulator, path: str, body: dict | None = None, method: str = "post",
          **params: Any) -> dict[str, Any]:
    response = requests.request(method, f"{emulator.endpoint}/compute/v1/projects/{PROJECT}/"
                                f"{path}", json=body, params=params, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_shape_checker_catches_missing_keys_and_wrong_types():
    example = {"id": "1", "items": {"zones/a": {"instances": [{"id": "2", "n": 1}]}}}
    assert _shape_errors(example, {"id": "3", "items": {"zones/b": {
        "instances": [{"id": "4", "n": 5, "extra": True}]}}}) == []
    assert _shape_errors(example, {"id": 3, "items": {}}) == ["$.id: expected str, got int"]
    assert _shape_errors(example, {"id": "3", "items": {"zones/b": {"instances": [{"id": "4"}]}}}
                         ) == ["$.items.zones/b.instances[0].n: missing"]


def test_instances_aggregated_list_matches_the_reference_example(estate):
    estate.faults.zone_unreachable("us-central1-c")
    actual = _get(estate, "aggregated/instances", maxResults=3)
    assert _shape_errors(_load("instances_aggregatedList.json"), actual) == []
    assert any("instances" in s for s in actual["items"].values())
    assert any(s.get("warning", {}).get("code") == "NO_RESULTS_ON_PAGE"
               for s in actual["items"].values())
    second = _get(estate, "aggregated/instances", maxResults=3,
                  pageToken=actual["nextPageToken"])
    assert _shape_errors(_load("instances_aggregatedList.json"), second) == []


def test_list_managed_instances_matches_the_reference_example(estate):
    _post(estate, f"zones/{ZONE}/instanceGroupManagers/web", method="patch", body={
        "versions": [{"instanceTemplate": "regions/us-central1/instanceTemplates/web-v2",
                      "name": "v2"}],
        "updatePolicy": {"type": "PROACTIVE", "maxSurge": {"fixed": 2},
                         "maxUnavailable": {"fixed": 0}}})
    actual = _post(estate, f"zones/{ZONE}/instanceGroupManagers/web/listManagedInstances")
    actions = sorted(m["currentAction"] for m in actual["managedInstances"])
    assert actions == ["CREATING", "CREATING", "NONE", "NONE", "NONE", "NONE"]
    assert _shape_errors(_load("instanceGroupManagers_listManagedInstances.json"),
                         actual) == []
    assert "id" not in [m for m in actual["managedInstances"]
                        if m["currentAction"] == "CREATING"][0]


@pytest.mark.parametrize(("path", "message"), [
    ("aggregated/instances", compute_v1.InstanceAggregatedList),
    ("aggregated/disks", compute_v1.DiskAggregatedList),
    ("aggregated/instanceGroupManagers", compute_v1.InstanceGroupManagerAggregatedList),
    ("aggregated/instanceTemplates", compute_v1.InstanceTemplateAggregatedList),
    (f"zones/{ZONE}/instances", compute_v1.InstanceList),
    ("zones/us-central1-b/instances/bastion", compute_v1.Instance),
    ("zones/us-central1-b/disks/bastion", compute_v1.Disk),
    ("global/images", compute_v1.ImageList),
    ("global/images/family/web", compute_v1.Image),
    ("global/instanceTemplates/web-v1", compute_v1.InstanceTemplate),
    ("regions/us-central1/instanceTemplates/web-v2", compute_v1.InstanceTemplate),
    (f"zones/{ZONE}/instanceGroupManagers/web", compute_v1.InstanceGroupManager),
    ("regions/us-central1/instanceGroupManagers", compute_v1.RegionInstanceGroupManagerList),
])
def test_every_key_the_emulator_sends_is_in_googles_schema(estate, path, message):
    estate.faults.zone_unreachable("us-central1-c")
    raw = json.dumps(_get(estate, path))
    # ignore_unknown_fields=False: a key or type the real API does not have fails here.
    json_format.Parse(raw, message.pb()(), ignore_unknown_fields=False)


def test_operations_and_managed_instances_parse_strictly(estate):
    op = _post(estate, "regions/us-central1/instanceGroupManagers/api/resize", size=5)
    json_format.Parse(json.dumps(op), compute_v1.Operation.pb()(), ignore_unknown_fields=False)
    got = _get(estate, f"regions/us-central1/operations/{op['name']}")
    assert got["status"] == "RUNNING"
    json_format.Parse(json.dumps(got), compute_v1.Operation.pb()(),
                      ignore_unknown_fields=False)
    managed = _post(estate, "regions/us-central1/instanceGroupManagers/api/"
                            "listManagedInstances")
    json_format.Parse(json.dumps(managed),
                      compute_v1.RegionInstanceGroupManagersListInstancesResponse.pb()(),
                      ignore_unknown_fields=False)
