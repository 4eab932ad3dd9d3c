"""A hung endpoint (it accepts connections and never answers) is a failed poll within the
poll's deadline, "no answer from ENDPOINT in N s", through real boto3 and google-cloud-compute;
the regions that answer keep their answers."""

from __future__ import annotations

import io
import json
import time

import pytest

from fleetview import collect
from fleetview.config import Config, ConfigError, PollConfig, StoreConfig, parse_config
from fleetview.domain.timing import Timing
from fleetview.domain.versions import VersionRules
from fleetview.providers.aws.provider import AwsProvider
from fleetview.providers.aws.scope import AwsScopeConfig
from fleetview.providers.gcp.provider import GcpProvider
from fleetview.providers.gcp.scope import GcpScopeConfig
from fleetview.sim.aws_fleet import GroupSpec, seed_aws_fleet
from tests.helpers.aws import moto_server_module  # noqa: F401
from tests.helpers.faults import SilentSocket
from tests.helpers.gce import PROJECT

DEADLINE_S = 3.0
SLACK_S = 2.0  # thread hand-over and the closing of connections, never another deadline
REGIONS = ("us-east-1", "eu-west-1", "ap-south-1")


@pytest.fixture(scope="module")
def fleet(moto_server_module):  # noqa: F811
    return seed_aws_fleet(moto_server_module.url, ("us-east-1",),
                          groups=[GroupSpec("web", size=2)], standalone=1, unlabelled=0)


@pytest.fixture
def silent():
    with SilentSocket() as socket:
        yield socket


def aws(url: str, endpoint_for=None) -> AwsProvider:
    config = AwsScopeConfig(name="prod", regions=REGIONS, endpoint_url=url)
    return AwsProvider(config, VersionRules(), endpoint_for=endpoint_for,
                       timing=Timing(poll_deadline_s=DEADLINE_S))


def timed(fn):
    started = time.monotonic()
    result = fn()
    return result, time.monotonic() - started


def test_hung_regions_fail_by_the_deadline_and_the_others_answer(fleet, silent,
                                                                 moto_server_module):  # noqa: F811
    # Two hung regions on one endpoint share a lane: together they still cost one deadline.
    hung = {"eu-west-1", "ap-south-1"}
    provider = aws(moto_server_module.url, lambda r: silent.url if r in hung else None)
    inventory, seconds = timed(provider.poll)
    provider.close()
    assert seconds < DEADLINE_S + SLACK_S
    assert inventory.regions_ok == ("us-east-1",)
    assert len(inventory.instances) == fleet.instance_count
    assert {e.region for e in inventory.errors} == hung
    for error in inventory.errors:
        assert f"no answer from {silent.url} in 3 s" in error.message, error.message
    assert silent.accepted >= 1


def test_a_hung_sts_endpoint_fails_every_region_by_the_deadline(silent):
    provider = aws(silent.url)
    inventory, seconds = timed(provider.poll)
    provider.close()
    assert seconds < DEADLINE_S + SLACK_S
    assert not inventory.regions_ok and len(inventory.errors) == len(REGIONS)
    assert f"no answer from {silent.url} in 3 s" in inventory.errors[0].message


def test_a_hung_compute_endpoint_fails_the_poll_by_the_deadline(silent):
    config = GcpScopeConfig(name="gcp", project=PROJECT, api_endpoint=silent.url,
                            credentials="anonymous", regions=("us-central1",))
    provider = GcpProvider(config, VersionRules(),
                           timing=Timing(attempts=6, backoff_s=0.2, poll_deadline_s=DEADLINE_S))
    inventory, seconds = timed(provider.poll)
    provider.close()
    assert seconds < DEADLINE_S + SLACK_S
    assert not inventory.regions_ok and [e.region for e in inventory.errors] == ["us-central1"]
    assert f"no answer from {silent.url} in" in inventory.errors[0].message


def test_the_collector_gives_each_poll_its_deadline(silent, tmp_path):
    scope = AwsScopeConfig(name="prod", regions=("us-east-1",), endpoint_url=silent.url)
    config = Config(store=StoreConfig(url=f"sqlite:///{tmp_path / 'h.db'}"),
                    poll=PollConfig(60.0, 0.0, deadline_s=DEADLINE_S), scopes=(scope,))
    out = io.StringIO()
    code, seconds = timed(lambda: collect.serve(config, [scope], True, out, None))
    assert code == collect.EXIT_PARTIAL and seconds < DEADLINE_S + SLACK_S + 2
    finished = next(e for e in map(json.loads, out.getvalue().splitlines())
                    if e["event"] == "poll_finished")
    assert not finished["ok"]
    assert "no answer from" in finished["region_errors"][0]["message"]


def test_the_deadline_is_the_interval_at_most_a_few_minutes_unless_set():
    assert parse_config("[poll]\ninterval_s = 30\n").poll.deadline == 30
    assert parse_config("[poll]\ninterval_s = 3600\n").poll.deadline == 300
    assert parse_config("[poll]\ninterval_s = 30\ndeadline_s = 90\n").poll.deadline == 90
    with pytest.raises(ConfigError, match="deadline_s.*at most 900"):
        parse_config("[poll]\ndeadline_s = 1e9\n")
