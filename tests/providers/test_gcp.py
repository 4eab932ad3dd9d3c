"""The GCP provider's poll, credentials and errors, through google-cloud-compute and the emulator."""

from __future__ import annotations

from datetime import timedelta

import google.auth
import pytest
from google.api_core import exceptions as gexc
from google.auth import credentials as ga_credentials
from google.auth import exceptions as auth_exc

from fleetview.domain.errors import ProviderError
from fleetview.domain.model import State
from fleetview.domain.timing import Timing
from fleetview.domain.versions import VersionRules
from fleetview.providers import make_provider
from fleetview.providers.gcp.clients import Compute
from fleetview.providers.gcp.provider import GcpProvider
from fleetview.providers.gcp.scope import GcpScopeConfig
from tests.helpers import gce as gce_fixtures

gce_emulator = gce_fixtures.gce_emulator
PROJECT, IMG = gce_fixtures.PROJECT, gce_fixtures.IMG
scope_config, emulated_timing = gce_fixtures.scope_config, gce_fixtures.emulated_timing
make, seed_fleet = gce_fixtures.make, gce_fixtures.seed_fleet


@pytest.fixture
def fleet(gce_emulator):
    seed_fleet(gce_emulator.state)
    return gce_emulator


@pytest.fixture
def provider(fleet):
    p = make(fleet)
    yield p
    p.close()


def test_registry_builds_the_gcp_provider(gce_emulator):
    p = make_provider(scope_config(gce_emulator))
    assert isinstance(p, GcpProvider)
    p.close()


def test_poll_gives_every_instance_its_zone_group_image_and_version(fleet, provider):
    inv = provider.poll()
    assert inv.ok and inv.errors == ()
    assert inv.scope.provider == "gcp" and inv.scope.name == "gcp-test"
    assert inv.scope.account == PROJECT
    assert inv.scope.regions == ("europe-west1", "us-central1")
    assert inv.regions_ok == ("europe-west1", "us-central1")
    assert inv.api_calls == sum(fleet.state.calls.values())  # worker threads' calls too
    by_group: dict[str | None, list] = {}
    for inst in inv.instances:
        by_group.setdefault(inst.group, []).append(inst)
        assert inst.region == inst.zone.rsplit("-", 1)[0]
        assert inst.state is State.RUNNING
        assert inst.id.isdigit() and inst.launched_at is not None
    assert {g: len(v) for g, v in by_group.items()} == {"web": 3, "api": 6, "worker": 4, None: 1}
    assert {i.zone for i in by_group["web"]} == {"us-central1-a"}
    assert len({i.zone for i in by_group["api"]}) == 3
    assert all(i.image_id == f"{IMG}/app-1-9-0" and i.version == "1.9.0"
               for i in by_group["web"] + by_group["api"])
    assert sorted(i.version for i in by_group["worker"]) == ["1.10.0", "1.9.0", "1.9.0", "1.9.0"]
    (bastion,) = by_group[None]
    assert bastion.name == "bastion" and bastion.zone == "us-central1-b"
    assert bastion.image_id == f"{IMG}/app-1-8-0" and bastion.version == "1.8.0"
    assert bastion.tags == {"role": "bastion"}

    web, api, worker = (inv.group(n) for n in ("web", "api", "worker"))
    assert (web.kind, web.region, web.zone, web.target_size) == ("mig", "us-central1",
                                                                  "us-central1-a", 3)
    assert (api.region, api.zone, api.target_size) == ("us-central1", None, 6)
    assert web.desired_image_id == api.desired_image_id == f"{IMG}/app-1-9-0"
    assert web.desired_version == "1.9.0" and web.canary_image_id is None
    assert not web.updating and not api.updating
    assert web.tags == {"team": "web"}
    assert (worker.desired_version, worker.canary_version) == ("1.9.0", "1.10.0")
    assert worker.canary_image_id == f"{IMG}/app-1-10-0"
    assert set(inv.images) == {f"{IMG}/app-{v}" for v in ("1-8-0", "1-9-0", "1-10-0")}
    image = inv.images[f"{IMG}/app-1-10-0"]
    assert image.name == "app-1-10-0" and image.tags == {"version": "1-10-0"}
    assert image.version == "1.10.0" and image.created_at is not None


def test_a_second_poll_asks_only_the_two_aggregated_lists(fleet, provider):
    provider.poll()
    before = dict(fleet.state.calls)
    inv = provider.poll()
    asked = {k: v - before.get(k, 0) for k, v in fleet.state.calls.items()
             if v != before.get(k, 0)}
    assert asked == {"compute.instances.aggregatedList": 1,
                     "compute.instanceGroupManagers.aggregatedList": 1}
    assert inv.api_calls == 2 and len(inv.instances) == 14


def test_a_deleted_image_still_names_its_instances_version(fleet, provider):
    fleet.state.delete_image("app-1-8-0")
    inv = provider.poll()
    image = inv.images[f"{IMG}/app-1-8-0"]
    assert image.gone and image.name == "app-1-8-0"
    assert inv.instance(next(i.id for i in inv.instances if i.name == "bastion")).version == \
        "1.8.0"


def test_stopped_instances_are_stopped_not_terminated(gce_emulator):
    state = gce_emulator.state
    state.create_image("app-2-0-0")
    state.create_instance("old", "us-central1-a", "app-2-0-0", status="TERMINATED")
    state.create_instance("new", "us-central1-a", "app-2-0-0", status="PROVISIONING")
    inv = make(gce_emulator).poll()
    states = {i.name: i.state for i in inv.instances}
    assert states == {"old": State.STOPPED, "new": State.PENDING}


def test_pagination_past_500_instances_and_disks(gce_emulator):
    state = gce_emulator.state
    state.create_image("app-3-0-0", labels={"version": "3-0-0"})
    state.create_image("tool-7-1", labels={"version": "7-1"})
    state.create_instance_template("app-3-tmpl", "app-3-0-0")
    state.create_mig("big", "app-3-tmpl", zone="us-central1-a", target_size=520)
    for n in range(30):  # more unknown boot disks than one-by-one reads are worth
        state.create_instance(f"tool-{n}", "europe-west1-b", "tool-7-1")
    p = make(gce_emulator)
    inv = p.poll()
    assert inv.ok and len(inv.instances) == 550
    assert len({i.id for i in inv.instances}) == 550
    assert state.calls["compute.instances.aggregatedList"] == 2
    assert state.calls["compute.disks.aggregatedList"] == 2
    assert state.calls["compute.disks.get"] == 0
    versions = {(i.group, i.version) for i in inv.instances}
    assert versions == {("big", "3.0.0"), (None, "7.1")}


def test_a_template_on_an_image_family_wants_the_familys_newest_image(gce_emulator):
    state = gce_emulator.state
    state.create_image("app-4-0-0", family="app", labels={"version": "4-0-0"},
                       created=timedelta(days=3))
    state.create_instance_template("app-latest", "family/app")
    state.create_mig("fam", "app-latest", zone="us-central1-a", target_size=2)
    state.create_image("app-4-1-0", family="app", labels={"version": "4-1-0"})
    inv = make(gce_emulator).poll()
    # The instances were made while 4.0.0 led the family: their disks tell, not the template.
    assert {i.version for i in inv.instances} == {"4.0.0"}
    assert state.calls["compute.disks.get"] == 2
    # A recreated instance would get 4.1.0: that is what the group wants, so both drift.
    fam = inv.group("fam")
    assert fam.desired_image_id == f"{IMG}/app-4-1-0" and fam.desired_version == "4.1.0"
    assert any("image family app" in n and "app-4-1-0" in n for n in fam.notes)
    assert state.calls["compute.images.getFromFamily"] == 1


def test_configured_regions_limit_the_inventory(fleet):
    inv = make(fleet, regions=("europe-west1",)).poll()
    assert inv.scope.regions == ("europe-west1",) and inv.regions_ok == ("europe-west1",)
    assert {i.region for i in inv.instances} == {"europe-west1"}
    assert [g.name for g in inv.groups] == ["worker"]


def test_a_group_mid_rollout_is_updating_and_mixed(fleet, provider):
    group = fleet.state.find_group("web")
    fleet.state.patch_group(group, {"versions": [{"instanceTemplate": "app-1-10-0-tmpl"}]})
    fleet.clock.advance(fleet.state.step_seconds + 1)
    inv = provider.poll()
    web = inv.group("web")
    assert web.updating and web.desired_version == "1.10.0"
    assert {i.version for i in inv.instances if i.group == "web"} == {"1.9.0", "1.10.0"}


# -- faults ---------------------------------------------------------------------------------

def test_an_unreachable_zone_is_an_error_for_its_region_only(fleet, provider):
    fleet.faults.zone_unreachable("us-central1-b")
    inv = provider.poll()
    assert [e.region for e in inv.errors] == ["us-central1"]
    assert "us-central1-b" in inv.errors[0].message
    assert inv.regions_ok == ("europe-west1",)
    assert inv.scope.regions == ("europe-west1", "us-central1")
    zones = {i.zone for i in inv.instances}
    assert "us-central1-b" not in zones and {"us-central1-a", "europe-west1-b"} <= zones


def test_throttling_is_retried_with_backoff(fleet):
    sleeps: list[float] = []
    p = make(fleet, sleeps)
    fleet.faults.throttle(3, methods=["compute.instances.aggregatedList"])
    inv = p.poll()
    assert inv.ok and len(inv.instances) == 14
    assert sleeps == [1.0, 2.0, 4.0]
    assert inv.api_calls >= 3 + 2


def test_throttling_that_lasts_fails_the_poll_not_the_caller(fleet):
    p = make(fleet, attempts=3)
    p.poll()
    fleet.faults.throttle(100)
    inv = p.poll()
    assert inv.instances == () and inv.regions_ok == ()
    assert {e.region for e in inv.errors} == {"europe-west1", "us-central1"}
    assert all("throttl" in e.message for e in inv.errors)


def test_a_missing_permission_is_named(fleet, provider):
    fleet.faults.deny("compute.instances.aggregatedList", "compute.instances.list")
    inv = provider.poll()
    assert not inv.ok and inv.regions_ok == ()
    message = inv.errors[0].message
    assert "403" in message and "compute.instances.list" in message and PROJECT in message


def test_an_unreachable_endpoint_is_an_error(gce_emulator):
    config = GcpScopeConfig(name="gcp-test", project=PROJECT, credentials="anonymous",
                            api_endpoint="http://127.0.0.1:9", regions=("us-east1",))
    inv = GcpProvider(config, VersionRules(),
                      timing=Timing(sleep=lambda s: None, attempts=2)).poll()
    assert [e.region for e in inv.errors] == ["us-east1"]
    assert "cannot reach" in inv.errors[0].message


# -- credentials ----------------------------------------------------------------------------

def test_anonymous_credentials_act_as_anonymous(gce_emulator):
    assert make(gce_emulator).identity() == "anonymous"


def test_anonymous_credentials_need_a_loopback_endpoint():
    config = GcpScopeConfig(name="gcp-test", project=PROJECT, credentials="anonymous",
                            api_endpoint="https://compute.example.com")
    p = GcpProvider(config, VersionRules())
    inv = p.poll()
    assert inv.errors and "loopback" in inv.errors[0].message
    with pytest.raises(ProviderError, match="loopback"):
        p.identity()


def test_without_application_default_credentials_the_error_says_what_to_do(monkeypatch):
    def no_adc(**_kw):
        raise auth_exc.DefaultCredentialsError("none found")

    monkeypatch.setattr(google.auth, "default", no_adc)
    p = GcpProvider(GcpScopeConfig(name="gcp-test", project=PROJECT), VersionRules())
    inv = p.poll()
    assert inv.errors and "gcloud auth application-default login" in inv.errors[0].message
    with pytest.raises(ProviderError, match="gcloud auth application-default login"):
        p.identity()


class _ServiceAccountCredentials(ga_credentials.Credentials):
    """What google.auth.default returns for a service account: it knows its email."""

    service_account_email = "collector@prod.iam.gserviceaccount.com"

    def refresh(self, request):  # pragma: no cover - identity must not need a token
        raise AssertionError("no token needed")


def test_identity_is_the_service_account_or_the_impersonated_one(monkeypatch):
    monkeypatch.setattr(google.auth, "default",
                        lambda **_kw: (_ServiceAccountCredentials(), PROJECT))
    plain = GcpProvider(GcpScopeConfig(name="g", project=PROJECT), VersionRules())
    assert plain.identity() == "collector@prod.iam.gserviceaccount.com"
    target = "fleetview@prod.iam.gserviceaccount.com"
    impersonating = GcpProvider(GcpScopeConfig(name="g", project=PROJECT,
                                               impersonate_service_account=target),
                                VersionRules())
    assert impersonating.identity() == target


def test_401_and_403_say_what_to_do():
    compute = Compute(GcpScopeConfig(name="g", project=PROJECT))
    unauthorized = compute.translate(gexc.Unauthorized("GET http://x: Invalid Credentials"),
                                     "compute.instances.list", "listing instances")
    assert "gcloud auth application-default login" in str(unauthorized)
    assert "http://x" not in str(unauthorized)
    denied = compute.translate(
        gexc.Forbidden("Required 'compute.instances.list' permission",
                       errors=[{"reason": "forbidden"}]),
        "compute.instances.list", "listing instances")
    assert "grant" in str(denied) and "compute.instances.list" in str(denied)
    throttled = compute.translate(
        gexc.Forbidden("Rate Limit Exceeded", errors=[{"reason": "rateLimitExceeded"}]),
        "compute.instances.list", "listing instances")
    assert "throttl" in str(throttled)


class _ExpiredCredentials(ga_credentials.Credentials):
    """Application default credentials whose refresh token Google no longer accepts."""

    def refresh(self, request):
        raise auth_exc.RefreshError("invalid_grant: Token has been expired or revoked.")


def test_credentials_that_cannot_refresh_say_what_to_do(gce_emulator, monkeypatch):
    monkeypatch.setattr(google.auth, "default", lambda **_kw: (_ExpiredCredentials(), None))
    config = GcpScopeConfig(name="gcp-test", project=PROJECT, api_endpoint=gce_emulator.endpoint,
                            impersonate_service_account=None, regions=("us-central1",))
    inv = GcpProvider(config, VersionRules()).poll()
    assert [e.region for e in inv.errors] == ["us-central1"] and inv.regions_ok == ()
    assert "gcloud auth application-default login" in inv.errors[0].message
    assert "expired" in inv.errors[0].message
