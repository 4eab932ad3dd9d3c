"""GCP history from day one: the records a backfill reads from the emulator's audit log,
templates and live instances, and the spans the shared builder makes of them."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from fleetview.domain.backfill import Backfill, Inference, infer
from fleetview.domain.timing import Timing
from fleetview.domain.versions import VersionRules
from fleetview.providers.gcp import backfill
from fleetview.providers.gcp.provider import GcpProvider
from fleetview.providers.gcp.scope import GcpScopeConfig
from fleetview.sim.gce.seed import seed_past
from tests.helpers import gce as gce_fixtures
from tests.helpers.gce import CLOCK_START, ROLLOUT_SPREAD, ROLLOUTS, make, seed_history

gce_emulator = gce_fixtures.gce_emulator

DAY = timedelta(days=1)
SIZES = {"web": 4, "api": 6}
LIVE_ROLLOUT = "1-3-0"  # web, through the API at the clock's start


def version(image_id: str | None) -> str | None:
    return image_id.rsplit("/", 1)[-1].removeprefix("app-") if image_id else None


def roll_web_now(emulator) -> None:
    """A rollout the emulator's own engine runs (and logs): web to 1-3-0, then 15 minutes."""
    state = emulator.state
    state.patch_group(state.find_group("web"), {"versions": [
        {"instanceTemplate": "global/instanceTemplates/app-1-3-0-tmpl"}]})
    emulator.clock.advance(900)
    state.tick()


def schedule(group: str) -> list[tuple[datetime, str]]:
    """(when, version) of each rollout of `group`, as seeded, plus the live one."""
    start = datetime.fromtimestamp(CLOCK_START).astimezone()
    out = [(start - timedelta(days=d), v) for d, v in ROLLOUTS[group]]
    if group == "web":
        out.append((start, LIVE_ROLLOUT))
    return out


def expected_per_day(group: str, since: datetime, until: datetime
                     ) -> tuple[list[set[str]], list[str]]:
    """Per day from `since`: the versions the group's instances ran, and the version the group
    wanted at the day's end. A rollout's old instances are gone SIZE spreads after it."""
    steps = schedule(group)
    ran, wanted = [], []
    day = since
    while day < until:
        end = min(day + DAY, until)
        versions = set()
        for k, (at, v) in enumerate(steps):
            gone = steps[k + 1][0] + timedelta(seconds=SIZES[group] * ROLLOUT_SPREAD) \
                if k + 1 < len(steps) else until
            if at < end and gone > day:
                versions.add(v)
        ran.append(versions)
        wanted.append(next((v for at, v in reversed(steps) if at < end), None))
        day = end
    return ran, wanted


def inferred_per_day(inference: Inference, group: str, since: datetime, until: datetime
                     ) -> tuple[list[set[str]], list[str | None]]:
    ran, wanted = [], []
    day = since
    while day < until:
        end = min(day + DAY, until)
        ran.append({version(s.image_id) for s in inference.spans
                    if s.group == group and s.start < end and s.end > day})
        wanted.append(next((version(s.image_id) for s in inference.group_spans
                            if s.group == group and s.start < end <= s.end), None))
        day = end
    return ran, wanted


def backfill_month(emulator, **kw) -> tuple[Backfill, datetime, datetime]:
    provider = make(emulator, **kw)
    try:
        until = emulator.clock.now_datetime()
        since = until - 30 * DAY
        return provider.history(since, until), since, until
    finally:
        provider.close()


def test_a_month_of_records_gives_the_versions_each_group_ran_each_day(gce_emulator):
    seed_history(gce_emulator.state)
    roll_web_now(gce_emulator)
    gce_emulator.state.calls.clear()
    found, since, until = backfill_month(gce_emulator)
    assert found.skipped == []
    # Every API call the emulator served is counted, Compute and Logging alike.
    assert found.api_calls == sum(gce_emulator.state.calls.values())
    assert gce_emulator.state.calls["logging.entries.list"] >= 2

    inference = infer(found.records, since, until)
    assert inference.gaps == []
    for group in ("web", "api"):
        assert inferred_per_day(inference, group, since, until) == \
            expected_per_day(group, since, until), group
    # web's 1-0-0 instances launched before the month: their launches were looked up, so
    # the month starts on 1-0-0, and the day of the live rollout has 1-2-0 and 1-3-0.
    web, wanted = inferred_per_day(inference, "web", since, until)
    assert "1-0-0" in web[0] and web[-1] == {"1-2-0", "1-3-0"} and wanted[-1] == "1-3-0"
    bastion = [s for s in inference.spans if s.name == "bastion"]
    assert [(version(s.image_id), s.start, s.end) for s in bastion] == [("1-0-0", since, until)]
    # Records say where they came from; every image they name is described.
    assert {r.source for r in found.records} == {backfill.AUDIT, backfill.CREATED}
    assert {r.group_kind for r in found.records if r.kind == "group_version"} == {"mig"}
    assert set(found.images) == {r.image_id for r in found.records if r.image_id}
    assert found.images["projects/demo-project/global/images/app-1-1-0"].tags == {
        "version": "1-1-0"}


def test_without_the_logging_permission_only_live_instances_are_read(gce_emulator):
    seed_history(gce_emulator.state)
    gce_emulator.faults.deny("logging.entries.list", "logging.logEntries.list")
    found, since, until = backfill_month(gce_emulator)
    assert {r.kind for r in found.records} == {"seen"}
    assert len(found.records) == 4 + 6 + 1
    [why] = found.skipped
    assert "logging.logEntries.list" in why and "roles/logging.viewer" in why
    assert "were not read from Cloud Audit Logs" in why
    # What the live instances say still makes spans: from their creation until now.
    inference = infer(found.records, since, until)
    assert {version(s.image_id) for s in inference.spans if s.group == "web"} == {"1-2-0"}
    assert inference.group_spans == []


def test_throttled_reads_are_tried_again_and_counted(gce_emulator):
    seed_history(gce_emulator.state)
    sleeps: list[float] = []
    gce_emulator.faults.throttle(2, ["logging.entries.list"])
    gce_emulator.state.calls.clear()
    found, since, until = backfill_month(gce_emulator, sleeps=sleeps)
    assert found.skipped == [] and infer(found.records, since, until).gaps == []
    assert found.api_calls == sum(gce_emulator.state.calls.values())
    assert sleeps[:2] == [10.0, 20.0]  # backing off, on the emulator's clock


def test_many_pages_are_paced_under_the_read_quota(gce_emulator):
    seed_history(gce_emulator.state)
    sleeps: list[float] = []
    provider = make(gce_emulator, sleeps=sleeps)
    until = gce_emulator.clock.now_datetime()
    reading = backfill.History(provider.config, provider._poller, provider.poll,
                               provider.timing, page_size=1)
    try:
        found = reading.run(until - 30 * DAY, until)
    finally:
        reading.close()
        provider.close()
    assert found.skipped == []
    assert reading.logging_calls > backfill.READ_BUDGET  # so it had to wait
    assert sum(sleeps) >= 30
    assert reading.pacer.peak_per_minute() <= backfill.READ_BUDGET
    assert gce_emulator.logging.refused == 0  # the emulator's quota never had to refuse


def test_a_deleted_template_leaves_the_groups_image_unknown(gce_emulator):
    state = gce_emulator.state
    seed_history(state)
    state.delete_instance_template("app-1-0-0-tmpl")
    found, since, until = backfill_month(gce_emulator)
    [why] = found.skipped
    assert "template app-1-0-0-tmpl" in why and "no longer exists" in why
    inference = infer(found.records, since, until)
    web = [s for s in inference.group_spans if s.group == "web"]
    assert version(web[0].image_id) is None  # never guessed
    # The launches' own requests still name their image: the instances' spans stand.
    ran, _ = inferred_per_day(inference, "web", since, until)
    assert ran == expected_per_day("web", since, until)[0]


def test_a_change_logged_before_its_template_existed_is_left_as_a_gap(gce_emulator):
    state = gce_emulator.state
    seed_history(state)
    api = state.find_group("api")
    state.audit.group_called(api, "patch", {"versions": [
        {"instanceTemplate": "global/instanceTemplates/app-1-3-0-tmpl"}]},
        CLOCK_START - 3 * 86400)  # the template was made one day ago
    found, since, until = backfill_month(gce_emulator)
    assert any("before that template was created" in s for s in found.skipped)
    assert [version(r.image_id) for r in found.records
            if r.kind == "group_version" and r.group == "api"] == ["1-1-0", "1-2-0"]


def test_a_scope_of_some_regions_backfills_those_only(gce_emulator):
    state = gce_emulator.state
    seed_history(state)
    state.create_instance("tool", "europe-west1-b", "app-1-1-0", created=timedelta(days=3))
    found, _, _ = backfill_month(gce_emulator, regions=("europe-west1",))
    assert {(r.kind, r.name) for r in found.records} == {("launch", "tool"), ("seen", "tool")}


def test_a_project_never_watched_is_rebuilt_from_its_records(gce_emulator):
    """What the demo can show: seed.seed_past gives a project only a past in its records."""
    seed_past(gce_emulator.state, "new-project")
    provider = make(gce_emulator, project="new-project")
    try:
        until = gce_emulator.clock.now_datetime()
        found = provider.history(until - 30 * DAY, until)
    finally:
        provider.close()
    assert found.skipped == []
    inference = infer(found.records, until - 30 * DAY, until)
    assert inference.gaps == []
    for group in ("checkout", "search"):
        spans = sorted((s.start, version(s.image_id)) for s in inference.group_spans
                       if s.group == group)
        assert [v for _, v in spans] == ["2-0-0", "2-1-0", "2-2-0", "2-3-0"], group
        ran = {version(s.image_id) for s in inference.spans if s.group == group}
        assert ran == {"2-0-0", "2-1-0", "2-2-0", "2-3-0"}, group


def test_a_project_out_of_reach_is_skipped_with_what_to_do():
    config = GcpScopeConfig(name="gone", project="p", api_endpoint="http://127.0.0.1:9",
                            credentials="anonymous")
    provider = GcpProvider(config, VersionRules(),
                           timing=Timing(attempts=1, sleep=lambda _s: None))
    try:
        until = datetime.fromtimestamp(CLOCK_START).astimezone()
        found = provider.history(until - 30 * DAY, until)
    finally:
        provider.close()
    assert found.records == []
    assert len(found.skipped) == 2, found.skipped  # live instances, and the audit log
    assert "Cloud Audit Logs of project p could not be read" in found.skipped[1]
    assert "run the backfill again" in found.skipped[1]


def test_a_range_past_the_logs_retention_says_so(gce_emulator):
    gce_emulator.state.create_image("img")
    provider = make(gce_emulator)
    try:
        until = gce_emulator.clock.now_datetime()
        found = provider.history(until - timedelta(days=500), until)
    finally:
        provider.close()
    assert any("400 days" in s for s in found.skipped)


@pytest.mark.parametrize(("request_body", "template"), [
    ({"versions": [{"instanceTemplate": "t/canary", "targetSize": {"fixed": 1}},
                   {"instanceTemplate": "t/main"}]}, "t/main"),
    ({"instanceTemplate": "t/plain"}, "t/plain"),
    ({"versions": [{"instanceTemplate": "t/a", "targetSize": {"percent": 50}}]}, None),
    ({"targetSize": 5}, None),
])
def test_a_group_change_sets_the_version_without_a_target_size(request_body, template):
    assert backfill._main_template(request_body) == template


def test_the_filter_names_the_activity_log_the_methods_and_the_range():
    since = datetime.fromisoformat("2026-01-01T00:00:00+00:00")
    text = backfill.audit_filter("p", backfill.LAUNCH, since, since + DAY)
    assert text == (
        'logName="projects/p/logs/cloudaudit.googleapis.com%2Factivity" AND '
        'protoPayload.methodName=("v1.compute.instances.insert" OR '
        '"beta.compute.instances.insert") AND timestamp>="2026-01-01T00:00:00.000000Z" AND '
        'timestamp<"2026-01-02T00:00:00.000000Z"')
