"""A failing region becomes a clear error on the Inventory; the other regions still answer."""

import pytest

from fleetview.domain.errors import ProviderError
from fleetview.domain.timing import Timing
from fleetview.domain.versions import VersionRules
from fleetview.providers.aws.provider import AwsProvider
from fleetview.providers.aws.scope import AwsScopeConfig
from fleetview.sim.aws_fleet import GroupSpec, seed_aws_fleet
from tests.helpers.aws import (  # noqa: F401
    FaultProxy,
    closed_port_url,
    moto_server_module,
)

REGIONS = ("us-east-1", "eu-west-1")
BAD = "eu-west-1"


@pytest.fixture(scope="module")
def fleet(moto_server_module):  # noqa: F811
    """Seeded once: a poll only reads, whatever fails."""
    return seed_aws_fleet(moto_server_module.url, REGIONS, groups=[GroupSpec("web", size=2)],
                          standalone=1, unlabelled=0)


@pytest.fixture
def moto_server(moto_server_module):  # noqa: F811
    return moto_server_module


def make(url, endpoint_for=None, profile=None, attempts=2) -> AwsProvider:
    config = AwsScopeConfig(name="prod", regions=REGIONS, endpoint_url=url, profile=profile)
    return AwsProvider(config, VersionRules(), endpoint_for=endpoint_for,
                       timing=Timing(attempts=attempts), connect_timeout_s=2)


def assert_only_good_region(inventory, fleet, *words):
    assert inventory.regions_ok == ("us-east-1",)
    assert [e.region for e in inventory.errors] == [BAD]
    good = fleet.regions["us-east-1"]
    assert {i.id for i in inventory.instances} == (set(good.standalone)
                                                   | set(good.groups["web"]))
    assert {g.region for g in inventory.groups} == {"us-east-1"}
    message = inventory.errors[0].message
    for word in words:
        assert word in message, message
    return message


def test_a_region_whose_endpoint_refuses_connections(moto_server, fleet):  # noqa: F811
    dead = closed_port_url()
    provider = make(moto_server.url, endpoint_for=lambda r: dead if r == BAD else None)
    inventory = provider.poll()
    provider.close()
    assert_only_good_region(inventory, fleet, BAD, "DescribeInstances",
                            "cannot reach the endpoint", dead)


def test_throttling_that_persists_is_reported_after_retries(moto_server, fleet):  # noqa: F811
    def fault(action, region):
        if region == BAD and action == "DescribeInstances":
            return 503, "RequestLimitExceeded", "Request limit exceeded."
        return None

    with FaultProxy(moto_server.url, fault) as proxy:
        provider = make(moto_server.url, endpoint_for=lambda r: proxy.url, attempts=2)
        inventory = provider.poll()
        provider.close()
        tries = proxy.seen.count(("DescribeInstances", BAD))
    assert tries == 2  # botocore's standard mode retried (with backoff)
    assert_only_good_region(inventory, fleet, "throttled", "RequestLimitExceeded",
                            "DescribeInstances", "1 retry", "poll.interval_s")


def test_throttling_that_passes_is_retried_and_counted(moto_server, fleet):  # noqa: F811
    left = {"n": 2}

    def fault(action, region):
        if region == BAD and action == "DescribeInstances" and left["n"] > 0:
            left["n"] -= 1
            return 503, "RequestLimitExceeded", "Request limit exceeded."
        return None

    with FaultProxy(moto_server.url, fault) as proxy:
        provider = make(moto_server.url, endpoint_for=lambda r: proxy.url, attempts=3)
        throttled = provider.poll()
        calm = provider.poll()
        provider.close()
    assert throttled.ok and calm.ok and throttled.regions_ok == REGIONS
    assert len(throttled.instances) == fleet.instance_count
    # the two throttled attempts were requests too
    assert throttled.api_calls >= calm.api_calls + 2


def test_an_expired_token_in_one_region(moto_server, fleet):  # noqa: F811
    def fault(action, region):
        if region == BAD:
            return 400, "RequestExpired", "Request has expired."
        return None

    with FaultProxy(moto_server.url, fault) as proxy:
        provider = make(moto_server.url, endpoint_for=lambda r: proxy.url)
        inventory = provider.poll()
        provider.close()
    assert_only_good_region(inventory, fleet, "expired", "aws sso login")


def test_access_denied_names_the_missing_iam_action(moto_server, fleet):  # noqa: F811
    def fault(action, region):
        if region == BAD and action == "DescribeAutoScalingGroups":
            return 403, "AccessDenied", "User is not authorized to perform this operation"
        return None

    with FaultProxy(moto_server.url, fault) as proxy:
        provider = make(moto_server.url, endpoint_for=lambda r: proxy.url)
        inventory = provider.poll()
        provider.close()
    assert_only_good_region(inventory, fleet, "access denied",
                            "autoscaling:DescribeAutoScalingGroups")


def test_a_server_error_that_persists(moto_server, fleet):  # noqa: F811
    def fault(action, region):
        if region == BAD and action == "DescribeImages":
            return 500, "InternalError", "An internal error has occurred"
        return None

    with FaultProxy(moto_server.url, fault) as proxy:
        provider = make(moto_server.url, endpoint_for=lambda r: proxy.url)
        inventory = provider.poll()
        provider.close()
    assert_only_good_region(inventory, fleet, "server error", "InternalError", "try again")


def test_an_expired_sso_session_says_to_log_in(moto_server, tmp_path, monkeypatch):  # noqa: F811
    config = tmp_path / "config"
    config.write_text("[profile sso-dev]\nsso_start_url = https://example.invalid/start\n"
                      "sso_region = us-east-1\nsso_account_id = 123456789012\n"
                      "sso_role_name = Reader\nregion = us-east-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("HOME", str(tmp_path))  # no cached SSO token
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    provider = make(moto_server.url, profile="sso-dev")
    inventory = provider.poll()
    assert not inventory.regions_ok and not inventory.instances
    assert [e.region for e in inventory.errors] == list(REGIONS)
    assert "aws sso login --profile sso-dev" in inventory.errors[0].message
    with pytest.raises(ProviderError, match="aws sso login --profile sso-dev"):
        provider.identity()
    provider.close()


def test_no_permission_for_instance_refreshes_keeps_the_region(moto_server, fleet):  # noqa: F811
    def fault(action, region):
        if region == BAD and action == "DescribeInstanceRefreshes":
            return 403, "AccessDenied", "not authorized"
        return None

    with FaultProxy(moto_server.url, fault) as proxy:
        provider = make(moto_server.url, endpoint_for=lambda r: proxy.url)
        inventory = provider.poll()
        provider.close()
    assert inventory.ok and inventory.regions_ok == REGIONS
    web = inventory.group("web", BAD)
    assert web.updating is False
    assert "autoscaling:DescribeInstanceRefreshes" in web.extra["instance_refresh_error"]
