"""AWS history backfill through boto3, against moto behind FleetView's local AWS layer (which
keeps CloudTrail and Auto Scaling activities): the records, what is skipped without
CloudTrail, and a fresh store rebuilt by one poll matching a store that watched a month."""

import io
import json
from collections import Counter
from datetime import timedelta

import pandas as pd
import pytest
from botocore.stub import Stubber

from fleetview import collect
from fleetview.actions import history
from fleetview.config import load_config
from fleetview.domain.backfill import infer
from fleetview.domain.versions import VersionRules
from fleetview.providers.aws.provider import AwsProvider
from fleetview.providers.aws.scope import AwsScopeConfig
from fleetview.sim import aws_trail
from fleetview.sim.aws_past import play_past
from fleetview.store import Store
from tests.helpers.aws import moto_refresh_server  # noqa: F401

REGION = "us-east-1"


def _provider(url: str) -> AwsProvider:
    return AwsProvider(AwsScopeConfig(name="hist", regions=(REGION,), endpoint_url=url),
                       VersionRules())


def test_history_reads_each_kind_of_record_and_keeps_under_cloudtrail_s_rate(
        moto_refresh_server):  # noqa: F811
    past = play_past(moto_refresh_server.url, REGION)
    provider = _provider(moto_refresh_server.url)
    try:
        found = provider.history(past.since, past.now)
    finally:
        provider.close()
    assert not found.skipped
    kinds = Counter((r.kind, r.source) for r in found.records)
    live = [i for i in past.instances if i.end is None]
    assert kinds[("seen", "launch-time")] == len(live) == 6
    assert kinds[("launch", "cloudtrail")] == kinds[("launch", "asg-activity")] > len(live)
    assert kinds[("group_version", "cloudtrail")] == 2 * 4  # two groups, four rollouts
    assert set(found.images) == set(past.images.values())
    seen = {r.instance_id: r.at for r in found.records if r.kind == "seen"}
    assert seen == {i.instance_id: i.start for i in live}  # moto's LaunchTime, moved back
    inferred = infer(found.records, past.since, past.now)
    assert not inferred.gaps
    calls = aws_trail.calls(moto_refresh_server.url)
    lookups = [c for c in calls if c["action"] == "LookupEvents"]
    assert found.api_calls >= len(lookups) == 5  # one page of each event name
    assert aws_trail.peak_rate(calls, "LookupEvents") <= aws_trail.LOOKUP_RATE


def test_without_cloudtrail_backfill_uses_the_rest_and_leaves_gaps(
        moto_refresh_server):  # noqa: F811
    past = play_past(moto_refresh_server.url, REGION)
    provider = _provider(moto_refresh_server.url)
    trail = provider.clients.client("cloudtrail", REGION)
    try:
        with Stubber(trail) as stub:
            stub.add_client_error("lookup_events", "AccessDeniedException",
                                  "User is not authorized to perform: cloudtrail:LookupEvents",
                                  400)
            found = provider.history(past.since, past.now)
    finally:
        provider.close()
    [skipped] = found.skipped
    assert "cloudtrail:LookupEvents" in skipped and "gaps" in skipped
    sources = {r.source for r in found.records}
    assert sources == {"launch-time", "asg-activity"}
    inferred = infer(found.records, past.since, past.now)
    # Live instances still have their launch times; past ones had no image on record (their
    # groups are pinned to a version, changed only by updates CloudTrail would have named).
    assert {s.instance_id for s in inferred.spans} == {
        i.instance_id for i in past.instances if i.end is None}
    assert inferred.gaps and all("which image" in g for g in inferred.gaps)


def _per_day(frame: pd.DataFrame, column: str, days: pd.DatetimeIndex) -> dict:
    """(group, day) -> the versions that ran (or were wanted) at some time that day."""
    out = {}
    for start in days:
        end = start + pd.Timedelta(days=1)
        live = frame[(frame["start"] < end) & (frame["end"].isna() | (frame["end"] > start))]
        for name, rows in live.groupby("group"):
            out[(name, start.date())] = frozenset(rows[column].dropna())
    return out


def _history(store: Store, past) -> tuple[dict, dict, dict]:
    spans = store.spans(past.since - timedelta(days=1), past.now + timedelta(hours=1))
    groups = store.group_spans(past.since - timedelta(days=1), past.now + timedelta(hours=1))
    first = pd.Timestamp(past.since).ceil("D")
    days = pd.date_range(first, pd.Timestamp(past.now).floor("D") - pd.Timedelta(days=1),
                         freq="D")
    targets = {}
    for name, rows in spans.groupby("group"):
        current = groups[(groups["group"] == name) & groups["end"].isna()]["desired_version"]
        target = history.rollback_target(rows, current.iloc[-1])
        targets[name] = (target.version, target.image_id) if target else None
    return (targets, _per_day(spans, "version", days),
            _per_day(groups, "desired_version", days))


def test_one_poll_with_backfill_rebuilds_what_a_month_of_polls_saw(
        moto_refresh_server, tmp_path):  # noqa: F811
    past = play_past(moto_refresh_server.url, REGION)
    watched_url = f"sqlite:///{tmp_path / 'watched.db'}"
    with Store.open(watched_url) as watched:
        for polled in past.inventories("hist"):
            watched.record_poll(polled, polled.polled_at, polled.polled_at)
        expected = _history(watched, past)
    config_path = tmp_path / "config.toml"
    config_path.write_text(f"""
[store]
url = "sqlite:///{tmp_path / 'fresh.db'}"
[[aws]]
name = "hist"
regions = ["{REGION}"]
endpoint_url = "{moto_refresh_server.url}"
backfill_days = 30
""")
    out = io.StringIO()
    config = load_config(str(config_path))
    assert collect.serve(config, list(config.scopes), True, out, None) == collect.EXIT_OK
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    [done] = [e for e in events if e["event"] == "backfill_finished"]
    assert done["ok"] and done["spans"] > 0, done
    with Store.open(config.store.url, readonly=True) as fresh:
        rebuilt = _history(fresh, past)
        assert rebuilt[0] == expected[0] == {
            g: ("1.3.0", past.images["1.3.0"]) for g in ("web", "api")}
        assert rebuilt[1] == expected[1]  # instance versions per group per day
        assert rebuilt[2] == expected[2]  # desired versions per group per day
        ready = history.readiness(fresh, config.scope("hist"), "hist", REGION, "web")
        assert ready.target.version == "1.3.0" and "rebuilt from cloud records" in ready.note
        assert len(fresh.backfills(["hist"])) == 1


@pytest.mark.parametrize("days", [0])
def test_backfill_days_zero_turns_it_off(moto_refresh_server, tmp_path, days):  # noqa: F811
    play_past(moto_refresh_server.url, REGION, groups=("web",), size=1)
    config_path = tmp_path / "config.toml"
    config_path.write_text(f"""
[store]
url = "sqlite:///{tmp_path / 'off.db'}"
[[aws]]
name = "hist"
regions = ["{REGION}"]
endpoint_url = "{moto_refresh_server.url}"
backfill_days = {days}
""")
    out = io.StringIO()
    config = load_config(str(config_path))
    assert collect.serve(config, list(config.scopes), True, out, None) == collect.EXIT_OK
    assert "backfill_finished" not in out.getvalue()
    with Store.open(config.store.url, readonly=True) as store:
        assert store.backfills().empty


def test_doctor_checks_that_cloudtrail_can_be_read(moto_refresh_server):  # noqa: F811
    from fleetview import doctor

    report = doctor.check_scope(AwsScopeConfig(name="hist", regions=(REGION,),
                                               endpoint_url=moto_refresh_server.url))
    found = {c.need.permission: c.verdict for c in report.checks}
    assert found["cloudtrail:LookupEvents"] == "present"
    assert found["autoscaling:DescribeScalingActivities"] == "present"


def test_fleetview_backfill_rebuilds_again_on_demand(moto_refresh_server, tmp_path):  # noqa: F811
    from fleetview import cli

    play_past(moto_refresh_server.url, REGION, groups=("web",), size=2)
    config_path = tmp_path / "config.toml"
    config_path.write_text(f"""
[store]
url = "sqlite:///{tmp_path / 'cli.db'}"
[[aws]]
name = "hist"
regions = ["{REGION}"]
endpoint_url = "{moto_refresh_server.url}"
backfill_days = 0
""")
    args = ["backfill", "--config", str(config_path), "--scope", "hist", "--days", "20"]
    assert cli.main(args) == cli.EXIT_OK
    assert cli.main(args) == cli.EXIT_OK
    with Store.open(f"sqlite:///{tmp_path / 'cli.db'}", readonly=True) as store:
        runs = store.backfills(["hist"])
        assert len(runs) == 2
        assert ((runs["until"] - runs["since"]).dt.days == 19).all()  # 20 days, to the poll
        spans = store.spans(runs["since"].iloc[0], runs["until"].iloc[-1])
        inferred = spans[spans["source"] != "observed"]
        # The second run replaced the first one's spans instead of adding to them.
        assert not inferred.empty and not inferred.duplicated(["instance_id", "start"]).any()
    assert cli.main(["backfill", "--config", str(config_path), "--scope", "nope"]) == \
        cli.EXIT_CONFIG


@pytest.mark.parametrize("value", ["-1", "91", "true", '"30"', "2.5"])
def test_a_bad_backfill_days_is_refused_with_what_to_write(tmp_path, value):
    from fleetview.config import ConfigError

    path = tmp_path / "config.toml"
    path.write_text(f'[[aws]]\nname = "p"\nregions = ["{REGION}"]\nbackfill_days = {value}\n')
    with pytest.raises(ConfigError, match="backfill_days"):
        load_config(str(path))
