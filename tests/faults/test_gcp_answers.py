"""Compute Engine through a fault-injecting proxy in front of FleetView's emulator, with real
google-cloud-compute: an answer that is not Compute's (no `kind`, no `items`, not JSON) fails
the poll naming the endpoint and erases nothing; 5xx is retried; slow answers still count."""

from __future__ import annotations

import pytest

from fleetview.domain.timing import Timing
from fleetview.domain.versions import VersionRules
from fleetview.providers.gcp.provider import GcpProvider
from fleetview.providers.gcp.scope import GcpScopeConfig
from fleetview.store import Store
from tests.helpers import gce as gce_fixtures
from tests.helpers.faults import PORTAL_JSON, PORTAL_XML, FaultyProxy

gce_emulator = gce_fixtures.gce_emulator
# An aggregated list as Compute would send it, but without its `kind`: as a wrong endpoint
# serving some other JSON API would.
NO_KIND = (b'{"id": "projects/demo-project/aggregated/instances", "items": {"zones/us-central1-a":'
           b' {"warning": {"code": "NO_RESULTS_ON_PAGE"}}}}')
NO_ITEMS = b'{"kind": "compute#instanceAggregatedList", "id": "x"}'


@pytest.fixture
def fleet(gce_emulator):
    gce_fixtures.seed_fleet(gce_emulator.state)
    return gce_emulator


@pytest.fixture
def proxy(fleet):
    with FaultyProxy(fleet.endpoint) as faulty:
        yield faulty


def through(proxy: FaultyProxy) -> GcpProvider:
    config = GcpScopeConfig(name="gcp-test", project=gce_fixtures.PROJECT,
                            api_endpoint=proxy.url, credentials="anonymous")
    return GcpProvider(config, VersionRules(),
                       timing=Timing(attempts=3, backoff_s=0.05, poll_deadline_s=20.0))


def aggregated_instances(request) -> bool:
    return request.path.split("?")[0].endswith("/aggregated/instances")


@pytest.mark.parametrize(("body", "content_type"), [
    (PORTAL_JSON, "application/json"), (PORTAL_XML, "text/html"), (NO_KIND, "application/json"),
    (NO_ITEMS, "application/json"),
], ids=["portal-json", "portal-html", "no-kind", "no-items"])
def test_an_answer_that_is_not_computes_fails_the_poll_and_erases_nothing(
        body, content_type, proxy, tmp_path):
    provider = through(proxy)
    with Store.open(f"sqlite:///{tmp_path / 'h.db'}") as store:
        first = provider.poll()
        assert first.ok and first.instances
        store.record_poll(first, first.polled_at, first.polled_at)
        proxy.foreign(body, content_type, when=aggregated_instances)
        second = provider.poll()
        provider.close()
        assert proxy.faulted == 1  # refused at once, not retried
        assert not second.regions_ok and not second.instances
        assert {e.region for e in second.errors} == set(first.regions_ok)
        message = second.errors[0].message
        assert proxy.url in message and "not the Compute API's" in message, message
        summary = store.record_poll(second, second.polled_at, second.polled_at)
        assert (summary.closed, summary.gone) == (0, 0)
        assert set(store.fleet_at()["instance_id"]) == {i.id for i in first.instances}


def test_a_server_error_from_a_proxy_is_retried(proxy):
    proxy.error(502, times=2)
    provider = through(proxy)
    inventory = provider.poll()
    provider.close()
    assert inventory.ok and inventory.instances and proxy.faulted == 2


def test_slow_answers_within_the_deadline_are_kept(proxy):
    proxy.delay(0.2)
    provider = through(proxy)
    inventory = provider.poll()
    provider.close()
    assert inventory.ok and len(inventory.instances) == 14
