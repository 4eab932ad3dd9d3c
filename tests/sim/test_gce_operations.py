"""Operations, errors, faults and requestId idempotence on the emulator, via the real client."""

from __future__ import annotations

import pytest
import requests
from google.api_core import exceptions
from google.cloud import compute_v1

from tests.helpers import gce as gce_fixtures
from tests.helpers.gce import PROJECT

gce_emulator = gce_fixtures.gce_emulator
gce_client_kwargs = gce_fixtures.gce_client_kwargs

ZONE = "us-central1-a"


@pytest.fixture
def web(gce_emulator):
    state = gce_emulator.state
    state.create_image("app-1-0-0")
    state.create_image("app-2-0-0")
    state.create_instance_template("t1", "app-1-0-0")
    state.create_instance_template("t2", "app-2-0-0")
    state.create_mig("web", "t1", zone=ZONE, target_size=3)
    return gce_emulator


def _patch_request(request_id=None, template="t2"):
    return compute_v1.PatchInstanceGroupManagerRequest(
        project=PROJECT, zone=ZONE, instance_group_manager="web", request_id=request_id,
        instance_group_manager_resource=compute_v1.InstanceGroupManager(
            versions=[compute_v1.InstanceGroupManagerVersion(instance_template=template)],
            update_policy=compute_v1.InstanceGroupManagerUpdatePolicy(type_="PROACTIVE")))


def test_operation_runs_then_is_done(web, gce_client_kwargs):
    groups = compute_v1.InstanceGroupManagersClient(**gce_client_kwargs)
    ops = compute_v1.ZoneOperationsClient(**gce_client_kwargs)
    op = groups.patch_unary(request=_patch_request())
    assert op.status == compute_v1.Operation.Status.RUNNING
    assert op.zone.endswith(f"/zones/{ZONE}")
    assert op.target_link.endswith("/instanceGroupManagers/web")
    got = ops.get(project=PROJECT, zone=ZONE, operation=op.name)
    assert got.status == compute_v1.Operation.Status.RUNNING and got.id == op.id
    web.clock.advance(web.state.op_seconds)
    got = ops.get(project=PROJECT, zone=ZONE, operation=op.name)
    assert got.status == compute_v1.Operation.Status.DONE and got.progress == 100
    assert got.end_time

    # wait on a manual clock finishes the operation it waits for, and nothing else.
    op2 = groups.resize_unary(project=PROJECT, zone=ZONE, instance_group_manager="web", size=4)
    before = web.clock.now()
    waited = ops.wait(project=PROJECT, zone=ZONE, operation=op2.name)
    assert waited.status == compute_v1.Operation.Status.DONE
    assert web.clock.now() == before
    with pytest.raises(exceptions.NotFound):
        ops.get(project=PROJECT, zone="us-central1-b", operation=op2.name)


def test_global_operations_answer_not_found_for_unknown_names(gce_emulator, gce_client_kwargs):
    ops = compute_v1.GlobalOperationsClient(**gce_client_kwargs)
    with pytest.raises(exceptions.NotFound):
        ops.get(project=PROJECT, operation="operation-nope")


def test_same_request_id_returns_the_same_operation_without_acting_twice(
        web, gce_client_kwargs):
    groups = compute_v1.InstanceGroupManagersClient(**gce_client_kwargs)
    first = groups.resize_unary(request=compute_v1.ResizeInstanceGroupManagerRequest(
        project=PROJECT, zone=ZONE, instance_group_manager="web", size=5,
        request_id="6a3f1e2c-0000-4000-8000-000000000001"))
    again = groups.resize_unary(request=compute_v1.ResizeInstanceGroupManagerRequest(
        project=PROJECT, zone=ZONE, instance_group_manager="web", size=8,
        request_id="6a3f1e2c-0000-4000-8000-000000000001"))
    assert again.name == first.name and again.id == first.id
    group = groups.get(project=PROJECT, zone=ZONE, instance_group_manager="web")
    assert group.target_size == 5
    assert web.state.calls["compute.instanceGroupManagers.resize"] == 2
    web.clock.advance(60)  # let the two new instances finish creating

    name = sorted(m.instance for m in groups.list_managed_instances(
        project=PROJECT, zone=ZONE, instance_group_manager="web"))[0]
    recreate = compute_v1.RecreateInstancesInstanceGroupManagerRequest(
        project=PROJECT, zone=ZONE, instance_group_manager="web", request_id="rid-2",
        instance_group_managers_recreate_instances_request_resource={"instances": [name]})
    one = groups.recreate_instances_unary(request=recreate)
    # Without the requestId this would be a 409: the instance is already recreating.
    two = groups.recreate_instances_unary(request=recreate)
    assert one.name == two.name


def test_errors_come_back_in_googles_error_json(web):
    base = f"{web.endpoint}/compute/v1/projects/{PROJECT}"
    missing = requests.get(f"{base}/zones/{ZONE}/instances/nope", timeout=10)
    assert missing.status_code == 404
    body = missing.json()["error"]
    assert body["code"] == 404
    assert body["errors"][0]["reason"] == "notFound"
    assert body["message"] == (
        f"The resource 'projects/{PROJECT}/zones/{ZONE}/instances/nope' was not found")
    assert requests.get(f"{base}/global/images/nope", timeout=10).status_code == 404
    bad_template = requests.patch(
        f"{base}/zones/{ZONE}/instanceGroupManagers/web", timeout=10,
        json={"versions": [{"instanceTemplate": "global/instanceTemplates/missing"}]})
    assert bad_template.status_code == 404
    assert requests.get(f"{base}/nothing/here", timeout=10).status_code == 404


def test_client_raises_the_matching_exceptions(web, gce_client_kwargs):
    instances = compute_v1.InstancesClient(**gce_client_kwargs)
    with pytest.raises(exceptions.NotFound):
        instances.get(project=PROJECT, zone=ZONE, instance="nope")
    groups = compute_v1.InstanceGroupManagersClient(**gce_client_kwargs)
    with pytest.raises(exceptions.BadRequest):
        groups.recreate_instances_unary(
            project=PROJECT, zone=ZONE, instance_group_manager="web",
            instance_group_managers_recreate_instances_request_resource={
                "instances": [f"zones/{ZONE}/instances/not-a-member"]})


def test_throttling_answers_rate_limit_exceeded_for_the_next_calls(web, gce_client_kwargs):
    instances = compute_v1.InstancesClient(**gce_client_kwargs)
    web.faults.throttle(2)
    for _ in range(2):
        with pytest.raises(exceptions.Forbidden) as throttled:
            list(instances.aggregated_list(project=PROJECT))
        assert throttled.value.errors[0]["reason"] == "rateLimitExceeded"
        assert throttled.value.code == 403
    assert len([i for _, s in instances.aggregated_list(project=PROJECT)
                for i in s.instances]) == 3

    web.faults.throttle(1, methods=["compute.instanceGroupManagers.get"])
    list(instances.aggregated_list(project=PROJECT))  # other methods pass
    groups = compute_v1.InstanceGroupManagersClient(**gce_client_kwargs)
    with pytest.raises(exceptions.Forbidden):
        groups.get(project=PROJECT, zone=ZONE, instance_group_manager="web")
    groups.get(project=PROJECT, zone=ZONE, instance_group_manager="web")


def test_denied_method_answers_403_forbidden_naming_the_permission(web, gce_client_kwargs):
    web.faults.deny("compute.instanceGroupManagers.patch",
                    permission="compute.instanceGroupManagers.update")
    groups = compute_v1.InstanceGroupManagersClient(**gce_client_kwargs)
    with pytest.raises(exceptions.Forbidden) as denied:
        groups.patch_unary(request=_patch_request("rid-denied"))
    assert denied.value.errors[0]["reason"] == "forbidden"
    assert "compute.instanceGroupManagers.update" in denied.value.message
    group = groups.get(project=PROJECT, zone=ZONE, instance_group_manager="web")
    assert group.instance_template.endswith("/t1")  # nothing happened
    web.faults.allow("compute.instanceGroupManagers.patch")
    groups.patch_unary(request=_patch_request("rid-denied"))
    group = groups.get(project=PROJECT, zone=ZONE, instance_group_manager="web")
    assert group.instance_template.endswith("/t2")


def test_patch_refuses_an_update_policy_the_api_refuses_and_changes_nothing(
        web, gce_client_kwargs):
    groups = compute_v1.InstanceGroupManagersClient(**gce_client_kwargs)
    request = _patch_request()
    request.instance_group_manager_resource.update_policy.max_surge.fixed = 0
    request.instance_group_manager_resource.update_policy.max_unavailable.fixed = 0
    with pytest.raises(exceptions.BadRequest) as refused:
        groups.patch_unary(request=request)
    assert "maxUnavailable" in refused.value.message
    group = groups.get(project=PROJECT, zone=ZONE, instance_group_manager="web")
    assert group.instance_template.endswith("/t1")

    web.state.create_mig("api", "t1", region="us-central1", target_size=3)
    regional = compute_v1.RegionInstanceGroupManagersClient(**gce_client_kwargs)
    with pytest.raises(exceptions.BadRequest) as refused:
        regional.patch_unary(
            project=PROJECT, region="us-central1", instance_group_manager="api",
            instance_group_manager_resource={"update_policy": {"max_surge": {"fixed": 2}}})
    assert "number of zones" in refused.value.message


def test_unknown_projects_are_not_found_and_seeding_makes_them_exist(web, gce_client_kwargs):
    images = compute_v1.ImagesClient(**gce_client_kwargs)
    with pytest.raises(exceptions.NotFound):
        list(images.list(project="someone-elses-project"))
    web.state.create_image("debian-12-v1", family="debian-12", project="debian-cloud")
    assert images.get_from_family(project="debian-cloud", family="debian-12").name == (
        "debian-12-v1")


def test_image_deprecate_and_delete_run_as_global_operations(web, gce_client_kwargs):
    images = compute_v1.ImagesClient(**gce_client_kwargs)
    ops = compute_v1.GlobalOperationsClient(**gce_client_kwargs)
    op = images.deprecate_unary(project=PROJECT, image="app-1-0-0",
                                deprecation_status_resource={"state": "DEPRECATED"})
    assert op.operation_type == "compute.images.deprecate"
    assert op.status == compute_v1.Operation.Status.RUNNING and not op.zone and not op.region
    assert ops.get(project=PROJECT, operation=op.name).status == (
        compute_v1.Operation.Status.RUNNING)
    assert ops.wait(project=PROJECT, operation=op.name).status == (
        compute_v1.Operation.Status.DONE)
    assert images.get(project=PROJECT, image="app-1-0-0").deprecated.state == "DEPRECATED"
    images.deprecate_unary(project=PROJECT, image="app-1-0-0",
                           deprecation_status_resource={"state": "ACTIVE"})
    assert not images.get(project=PROJECT, image="app-1-0-0").deprecated.state
    images.delete_unary(project=PROJECT, image="app-2-0-0")
    with pytest.raises(exceptions.NotFound):
        images.get(project=PROJECT, image="app-2-0-0")


def _template_body(name: str, image: str, **extra) -> compute_v1.InstanceTemplate:
    """The body `gcloud compute instance-templates create` sends, in short."""
    return compute_v1.InstanceTemplate(
        name=name, description="made through the API",
        properties=compute_v1.InstanceProperties(
            machine_type="e2-small", labels={"team": "web"},
            disks=[compute_v1.AttachedDisk(
                boot=True, auto_delete=True, type_="PERSISTENT",
                initialize_params=compute_v1.AttachedDiskInitializeParams(
                    source_image=image, disk_size_gb=20))],
            network_interfaces=[compute_v1.NetworkInterface(network="global/networks/default")],
            metadata=compute_v1.Metadata(items=[compute_v1.Items(key="startup-script",
                                                                 value="echo hi")]),
            **extra))


def test_instance_templates_insert_global_and_regional(web, gce_client_kwargs):
    templates = compute_v1.InstanceTemplatesClient(**gce_client_kwargs)
    op = templates.insert_unary(request={
        "project": PROJECT, "request_id": "11111111-2222-3333-4444-555555555555",
        "instance_template_resource": _template_body(
            "t3", f"projects/{PROJECT}/global/images/app-2-0-0")})
    assert op.operation_type == "insert" and op.target_link.endswith("/instanceTemplates/t3")
    assert not op.zone and not op.region
    done = compute_v1.GlobalOperationsClient(**gce_client_kwargs).wait(
        project=PROJECT, operation=op.name)
    assert done.status == compute_v1.Operation.Status.DONE
    t3 = templates.get(project=PROJECT, instance_template="t3")
    assert t3.properties.machine_type == "e2-small" and t3.description == "made through the API"
    assert t3.properties.disks[0].initialize_params.source_image.endswith("/images/app-2-0-0")
    assert t3.properties.disks[0].initialize_params.disk_size_gb == 20
    assert t3.properties.metadata.items[0].value == "echo hi"
    assert dict(t3.properties.labels) == {"team": "web"}
    # The same requestId is the same insert, not a 409.
    again = templates.insert_unary(request={
        "project": PROJECT, "request_id": "11111111-2222-3333-4444-555555555555",
        "instance_template_resource": _template_body("t3", "app-2-0-0")})
    assert again.name == op.name
    with pytest.raises(exceptions.Conflict, match="already exists"):
        templates.insert_unary(project=PROJECT,
                               instance_template_resource=_template_body("t3", "app-2-0-0"))
    with pytest.raises(exceptions.NotFound, match="app-9-9-9"):
        templates.insert_unary(project=PROJECT,
                               instance_template_resource=_template_body("t4", "app-9-9-9"))
    with pytest.raises(exceptions.BadRequest, match="resource.name"):
        templates.insert_unary(project=PROJECT,
                               instance_template_resource=_template_body("T_4", "app-2-0-0"))
    no_image = _template_body("t4", "app-2-0-0")
    no_image.properties.disks[0].initialize_params.source_image = ""
    with pytest.raises(exceptions.BadRequest, match="sourceImage"):
        templates.insert_unary(project=PROJECT, instance_template_resource=no_image)

    regional = compute_v1.RegionInstanceTemplatesClient(**gce_client_kwargs)
    op = regional.insert_unary(project=PROJECT, region="us-central1",
                               instance_template_resource=_template_body("t3", "app-1-0-0"))
    assert op.region.endswith("/regions/us-central1")
    rt = regional.get(project=PROJECT, region="us-central1", instance_template="t3")
    assert rt.region.endswith("/regions/us-central1")
    assert rt.properties.disks[0].initialize_params.source_image == "app-1-0-0"

    # A group rolled to the new template makes instances from its image.
    groups = compute_v1.InstanceGroupManagersClient(**gce_client_kwargs)
    groups.patch_unary(request=_patch_request(template="global/instanceTemplates/t3"))
    web.clock.advance(600)
    disks = compute_v1.DisksClient(**gce_client_kwargs).list(project=PROJECT, zone=ZONE)
    assert {d.source_image.rsplit("/", 1)[-1] for d in disks} == {"app-2-0-0"}
    assert web.state.calls["compute.instanceTemplates.insert"] == 6
