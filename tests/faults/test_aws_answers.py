"""AWS through a fault-injecting proxy in front of moto, with real boto3: an answer that is not
EC2's is a failed region naming the endpoint, never "every instance gone"; an answer that is
EC2's but loses most of the fleet at once is held as suspect; slow answers still count; an
edited version tag shows at the next poll."""

from __future__ import annotations

import io
import json

import boto3
import pytest

from fleetview import collect
from fleetview.config import Config, PollConfig, StoreConfig
from fleetview.domain.timing import Timing
from fleetview.domain.versions import VersionRules
from fleetview.providers.aws.provider import AwsProvider
from fleetview.providers.aws.scope import AwsScopeConfig
from fleetview.sim.aws_fleet import GroupSpec, seed_aws_fleet
from fleetview.store import Store
from fleetview.store.store import SUSPECT
from tests.helpers.aws import moto_server, moto_server_module  # noqa: F401
from tests.helpers.faults import PORTAL_JSON, PORTAL_XML, FaultyProxy

REGIONS = ("us-east-1", "eu-west-1")
GOOD, BAD = REGIONS
# A well-formed EC2 answer with no instance in it: what another account or region would say.
EMPTY_EC2 = (b'<?xml version="1.0" encoding="UTF-8"?>\n<DescribeInstancesResponse xmlns='
             b'"http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>4b1e9c1d-0000-4000-8000-'
             b"000000000000</requestId><reservationSet/></DescribeInstancesResponse>")


@pytest.fixture(scope="module")
def fleet(moto_server_module):  # noqa: F811
    return seed_aws_fleet(moto_server_module.url, REGIONS, groups=[GroupSpec("web", size=3)],
                          standalone=2, unlabelled=0)


@pytest.fixture
def proxy(moto_server_module):  # noqa: F811
    with FaultyProxy(moto_server_module.url) as faulty:
        yield faulty


def through(proxy: FaultyProxy, moto_url: str, regions=(BAD,), deadline_s: float = 20.0,
            attempts: int = 2) -> AwsProvider:
    """A provider whose `regions` go through the proxy, the others straight to moto."""
    config = AwsScopeConfig(name="prod", regions=REGIONS, endpoint_url=moto_url)
    return AwsProvider(config, VersionRules(),
                       endpoint_for=lambda r: proxy.url if r in regions else None,
                       timing=Timing(attempts=attempts, backoff_s=0.1,
                                     poll_deadline_s=deadline_s))


def bad_ids(fleet) -> set[str]:
    seeded = fleet.regions[BAD]
    return set(seeded.standalone) | {i for ids in seeded.groups.values() for i in ids}


def action(name: str):
    return lambda request: request.action == name


@pytest.mark.parametrize(("operation", "body", "content_type"), [
    ("DescribeInstances", PORTAL_XML, "text/xml"),
    ("DescribeInstances", PORTAL_JSON, "application/json"),
    ("DescribeInstances", EMPTY_EC2.replace(b"<requestId>4b1e9c1d-0000-4000-8000-000000000000"
                                            b"</requestId>", b""), "text/xml"),
    ("DescribeAutoScalingGroups", PORTAL_XML, "text/xml"),
    ("DescribeImages", PORTAL_XML, "text/xml"),
], ids=["ec2-portal-xml", "ec2-portal-json", "ec2-no-request-id", "asg-portal",
        "images-portal"])
def test_an_answer_that_is_not_the_apis_fails_the_region_and_erases_nothing(
        operation, body, content_type, fleet, proxy, moto_server_module, tmp_path):  # noqa: F811
    provider = through(proxy, moto_server_module.url)
    with Store.open(f"sqlite:///{tmp_path / 'h.db'}") as store:
        first = provider.poll()
        assert first.ok
        store.record_poll(first, first.polled_at, first.polled_at)
        proxy.foreign(body, content_type, when=action(operation))
        second = provider.poll()
        provider.close()
        assert proxy.faulted >= 1
        assert second.regions_ok == (GOOD,) and [e.region for e in second.errors] == [BAD]
        message = second.errors[0].message
        assert proxy.url in message
        assert "not AWS's" in message or "not an AWS response" in message
        assert "endpoint_url" in message and "bug" not in message
        summary = store.record_poll(second, second.polled_at, second.polled_at)
        assert (summary.closed, summary.gone) == (0, 0)
        assert bad_ids(fleet) <= set(store.fleet_at()["instance_id"])
        assert not any(img.gone for img in second.images.values())


def test_a_caller_identity_that_is_not_stss_fails_every_region(fleet, proxy,
                                                               moto_server_module):  # noqa: F811
    proxy.foreign(when=action("GetCallerIdentity"))
    provider = through(proxy, moto_server_module.url, regions=REGIONS)
    inventory = provider.poll()
    provider.close()
    assert not inventory.regions_ok and [e.region for e in inventory.errors] == list(REGIONS)
    assert proxy.url in inventory.errors[0].message and "bug" not in inventory.errors[0].message


def test_an_empty_answer_that_is_ec2s_is_held_until_the_next_poll_confirms_it(
        fleet, proxy, moto_server_module, tmp_path):  # noqa: F811
    provider = through(proxy, moto_server_module.url)
    with Store.open(f"sqlite:///{tmp_path / 'h.db'}") as store:
        def poll():
            inventory = provider.poll()
            assert inventory.ok  # EC2's own shape: nothing for the provider to refuse
            return store.record_poll(inventory, inventory.polled_at, inventory.polled_at,
                                     suspect_share=0.3)

        poll()
        proxy.foreign(EMPTY_EC2, when=action("DescribeInstances"))
        held = poll()
        assert held.held and held.held.startswith(SUSPECT) and held.closed == 0
        assert bad_ids(fleet) <= set(store.fleet_at()["instance_id"])
        proxy.passing()
        assert poll().closed == 0  # the fleet is back: the hold changed nothing
        proxy.foreign(EMPTY_EC2, when=action("DescribeInstances"))
        assert poll().held
        confirmed = poll()
        provider.close()
    assert confirmed.held is None and confirmed.gone == len(bad_ids(fleet))


def test_the_collector_shows_a_held_poll_and_exits_partial(fleet, proxy, tmp_path):
    scope = AwsScopeConfig(name="prod", regions=(BAD,), endpoint_url=proxy.url)
    config = Config(store=StoreConfig(url=f"sqlite:///{tmp_path / 'h.db'}"),
                    poll=PollConfig(60.0, 0.0), scopes=(scope,))

    def run() -> tuple[int, dict]:
        out = io.StringIO()
        code = collect.serve(config, [scope], True, out, None)
        events = [json.loads(line) for line in out.getvalue().splitlines()]
        return code, next(e for e in events if e["event"] == "poll_finished")

    code, clean = run()
    assert code == collect.EXIT_OK and clean["ok"]
    proxy.foreign(EMPTY_EC2, when=action("DescribeInstances"))
    code, held = run()
    assert code == collect.EXIT_PARTIAL
    assert not held["ok"] and held["error"].startswith(SUSPECT) and held["closed"] == 0


def test_a_server_error_from_a_proxy_is_retried(fleet, proxy, moto_server_module):  # noqa: F811
    proxy.error(502, times=1, when=action("DescribeInstances"))
    provider = through(proxy, moto_server_module.url)
    inventory = provider.poll()
    assert inventory.ok and bad_ids(fleet) <= {i.id for i in inventory.instances}
    proxy.error(503, when=action("DescribeInstances"))
    failed = provider.poll()
    provider.close()
    assert [e.region for e in failed.errors] == [BAD] and "server error" in failed.errors[0].message


def test_slow_answers_within_the_deadline_are_kept(fleet, proxy, moto_server_module):  # noqa: F811
    proxy.delay(0.3)
    provider = through(proxy, moto_server_module.url, deadline_s=20.0)
    inventory = provider.poll()
    provider.close()
    assert inventory.ok and inventory.regions_ok == REGIONS
    assert bad_ids(fleet) <= {i.id for i in inventory.instances}


def test_an_edited_version_tag_is_seen_at_the_next_poll(moto_server):  # noqa: F811
    seeded = seed_aws_fleet(moto_server.url, (GOOD,), groups=[GroupSpec("web", size=2)],
                            standalone=0, unlabelled=0)
    ami = seeded.regions[GOOD].images["1.4.0"]
    config = AwsScopeConfig(name="prod", regions=(GOOD,), endpoint_url=moto_server.url)
    provider = AwsProvider(config, VersionRules())
    assert provider.poll().images[ami].version == "1.4.0"
    boto3.client("ec2", region_name=GOOD, endpoint_url=moto_server.url).create_tags(
        Resources=[ami], Tags=[{"Key": "version", "Value": "1.4.1"}])
    inventory = provider.poll()
    provider.close()
    assert inventory.images[ami].version == "1.4.1"
    assert {i.version for i in inventory.instances if i.image_id == ami} == {"1.4.1"}
