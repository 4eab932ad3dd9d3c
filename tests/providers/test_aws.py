"""The AWS provider's poll against a real moto server over HTTP."""

import pytest

from fleetview.domain.model import State
from fleetview.domain.versions import VersionRules
from fleetview.providers import make_provider
from fleetview.providers.aws.provider import AwsProvider
from fleetview.providers.aws.scope import AwsScopeConfig
from fleetview.providers.aws.shapes import STATE_MAP
from fleetview.sim.aws_fleet import seed_aws_fleet
from tests.helpers.aws import moto_server_module  # noqa: F401

REGIONS = ("us-east-1", "eu-west-1")


def scope(url, **kw) -> AwsScopeConfig:
    return AwsScopeConfig(name="prod", regions=kw.pop("regions", REGIONS), endpoint_url=url,
                          **kw)


@pytest.fixture(scope="module")
def fleet(moto_server_module):  # noqa: F811
    """Seeded once: every test in this module only reads it."""
    return seed_aws_fleet(moto_server_module.url, REGIONS)


@pytest.fixture
def provider(moto_server_module):  # noqa: F811
    p = AwsProvider(scope(moto_server_module.url), VersionRules())
    yield p
    p.close()


def test_registry_builds_the_aws_provider(moto_server_module):  # noqa: F811
    p = make_provider(scope(moto_server_module.url))
    assert isinstance(p, AwsProvider)
    p.close()


def test_poll_gives_every_instance_its_version_group_and_account(fleet, provider):
    inv = provider.poll()
    assert inv.ok and inv.regions_ok == REGIONS
    assert inv.scope.provider == "aws" and inv.scope.name == "prod"
    assert inv.scope.account == "123456789012"
    assert len(inv.instances) == fleet.instance_count
    for region, seeded in fleet.regions.items():
        version_of_image = {ami: v for v, ami in seeded.images.items()}
        for name, ids in seeded.groups.items():
            for iid in ids:
                inst = inv.instance(iid)
                assert inst.region == region and inst.group == name
                assert inst.state is State.RUNNING
                assert inst.version == version_of_image[inst.image_id]
                assert inst.tags["aws:autoscaling:groupName"] == name
        for iid, version in seeded.standalone.items():
            inst = inv.instance(iid)
            assert inst.group is None and inst.version == version


def test_versions_come_from_tag_name_or_the_ami_id(fleet, provider):
    inv = provider.poll()
    east = fleet.regions["us-east-1"]
    tagged, named = east.images["1.2.0"], east.images["1.3.0"]
    assert inv.images[tagged].tags == {"version": "1.2.0"} and inv.images[tagged].version == "1.2.0"
    assert "1.3.0" in inv.images[named].name and inv.images[named].tags == {}
    assert inv.images[named].version == "1.3.0"
    legacy = east.unlabelled_image
    assert inv.images[legacy].version == legacy  # no rule matched: the AMI id is the label
    assert any(i.image_id == legacy and i.version == legacy for i in inv.instances)


def test_desired_versions_resolve_numbers_latest_and_default_and_show_drift(fleet, provider):
    inv = provider.poll()
    for region in REGIONS:
        web, api, worker = (inv.group(n, region) for n in ("web", "api", "worker"))
        assert (web.desired_version, web.extra["launch_template_pointer"]) == ("1.4.0", "1")
        # api's template moved on ($Latest is now version 2) while its instances run 1.3.0
        assert api.extra["launch_template_pointer"] == "$Latest"
        assert api.extra["launch_template_version"] == 2 and api.desired_version == "1.4.0"
        assert {i.version for i in inv.instances if i.group == "api" and i.region == region} \
            == {"1.3.0"}
        assert worker.extra["mixed_instances"] is True
        assert worker.extra["launch_template_pointer"] == "$Default"
        assert worker.desired_version == "1.3.0" and worker.target_size == 2
        assert web.tags == {"app": "web"} and web.kind == "asg" and not web.updating


def test_api_calls_are_counted_and_a_warm_poll_costs_pages_plus_three_per_region(fleet,
                                                                                 provider):
    cold = provider.poll()
    warm = provider.poll()
    # cold: caller identity, then per region instances, groups, template versions,
    # the instance-refresh capability probe and one batch of images
    assert cold.api_calls == 1 + 2 * 5
    # warm: numbered template versions are cached; one page of instances, the groups, the
    # moving $Latest/$Default pointers, and the images in use (their tags may have changed)
    assert warm.api_calls == 2 * 4
    assert [i.version for i in warm.instances] == [i.version for i in cold.instances]


def test_state_map_covers_every_ec2_state():
    for word in ("pending", "running", "shutting-down", "stopping", "stopped", "terminated"):
        assert word in STATE_MAP
    assert STATE_MAP["shutting-down"] is State.STOPPING


def test_identity_and_assumed_role(fleet, moto_server_module):  # noqa: F811
    plain = AwsProvider(scope(moto_server_module.url), VersionRules())
    assert plain.identity().startswith("arn:aws:sts::123456789012:")
    plain.close()
    role = "arn:aws:iam::123456789012:role/fleetview-reader"
    assumed = AwsProvider(scope(moto_server_module.url, role_arn=role), VersionRules())
    arn = assumed.identity()
    assert ":assumed-role/fleetview-reader/fleetview" in arn
    inv = assumed.poll()
    assumed.close()
    assert inv.ok and len(inv.instances) == fleet.instance_count


def test_regions_on_their_own_endpoints_are_polled_at_once_shared_ones_in_turn():
    aws = AwsProvider(AwsScopeConfig(name="p", regions=REGIONS), VersionRules())
    assert aws.poller.lanes(REGIONS) == [["us-east-1"], ["eu-west-1"]]
    moto = AwsProvider(scope("http://127.0.0.1:5000"), VersionRules())
    assert moto.poller.lanes(REGIONS) == [list(REGIONS)]
    split = AwsProvider(scope("http://127.0.0.1:5000"), VersionRules(),
                        endpoint_for=lambda r: "http://127.0.0.1:1" if r == "eu-west-1" else None)
    assert split.poller.lanes(REGIONS) == [["us-east-1"], ["eu-west-1"]]
