"""Every action from the command line: `fleetview plan|rollback|replace|stop|actions|quarantine`
run as a subprocess against moto (AWS) and the Compute Engine emulator (GCP), each exit code.

The AWS fleet is seeded once for the module; each test acts on its own groups and keeps its
own store. Groups that cannot converge are the deterministic "not converged" case: a group
that launches 1.4.0 while its instances run 1.3.0 still has one on 1.3.0 after a replace.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from dataclasses import dataclass

import pytest

from fleetview.actions import audit
from fleetview.actions.journal import Journal
from fleetview.cli import main
from fleetview.domain.versions import VersionRules
from fleetview.providers.aws.provider import AwsProvider
from fleetview.providers.aws.scope import AwsScopeConfig
from fleetview.sim.aws_fleet import GroupSpec, seed_aws_fleet
from fleetview.sim.gce import EmulatedClock, GceEmulator, GceState
from fleetview.store import Store
from tests.helpers.aws import closed_port_url, moto_server_module  # noqa: F401
from tests.helpers.gce import PROJECT, make, seed_fleet

REGION = "us-east-1"
MOTO_ARN = "arn:aws:sts::123456789012:user/moto"
DRIFTED = ("api", "jobs", "worker")  # launch 1.4.0, run 1.3.0


# -- the clouds and the command ----------------------------------------------------------------

@dataclass(frozen=True)
class Moto:
    url: str
    groups: dict[str, list[str]]  # group -> its instance ids as seeded


@pytest.fixture(scope="module")
def aws(moto_server_module) -> Moto:  # noqa: F811
    """One seeded moto fleet for the module: web (3 on 1.4.0), pay (2 on 1.4.0, env=prod),
    and the drifted groups."""
    fleet = seed_aws_fleet(moto_server_module.url, regions=(REGION,), groups=(
        GroupSpec("web", size=3, version="1.4.0"),
        GroupSpec("pay", size=2, version="1.4.0", tags={"env": "prod"}),
        *(GroupSpec(name, size=2, version="1.4.0", running="1.3.0") for name in DRIFTED),
    ), standalone=0, unlabelled=0)
    return Moto(moto_server_module.url, fleet.regions[REGION].groups)


def gce(step_seconds: float = 0.0) -> GceEmulator:
    """An emulator on a standing clock; with no step time a rollout finishes at the next
    call, so an action on it converges at once."""
    state = GceState(EmulatedClock(), project=PROJECT, step_seconds=step_seconds,
                     delete_seconds=step_seconds, op_seconds=0.0)
    seed_fleet(state)
    return GceEmulator(state).start()


@pytest.fixture
def gcp():
    emulator = gce()
    yield emulator
    emulator.stop()


def aws_table(url: str, name: str = "aws-test", actions: bool = True) -> str:
    return (f'[[aws]]\nname = "{name}"\nregions = ["{REGION}"]\nendpoint_url = "{url}"\n'
            f"actions = {'true' if actions else 'false'}\n")


def gcp_table(emulator: GceEmulator, name: str = "gcp-test") -> str:
    return (f'[[gcp]]\nname = "{name}"\nproject = "{PROJECT}"\n'
            f'api_endpoint = "{emulator.endpoint}"\ncredentials = "anonymous"\nactions = true\n')


def write_config(tmp_path, *tables: str, protect: tuple[str, ...] = ()) -> str:
    path = tmp_path / "config.toml"
    head = f"protect = {json.dumps(list(protect))}\n" if protect else ""
    path.write_text(head + f'[store]\nurl = "sqlite:///{tmp_path / "history.db"}"\n'
                    + "".join(tables))
    return str(path)


def store_url(config: str) -> str:
    return f"sqlite:///{os.path.join(os.path.dirname(config), 'history.db')}"


def fleetview(config: str, *args: str, stdin=subprocess.DEVNULL) -> subprocess.CompletedProcess:
    """The real command in its own process, stdin not a terminal unless given one."""
    return subprocess.run([sys.executable, "-m", "fleetview", *args, "--config", config],
                          capture_output=True, text=True, stdin=stdin, timeout=240)


def lines(result: subprocess.CompletedProcess) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines()]


def journal(config: str):
    with Store.open(store_url(config), readonly=True) as store:
        return Journal(store).recent(), list(audit.entries(store))


def audit_ok(config: str) -> bool:
    with Store.open(store_url(config), readonly=True) as store:
        return audit.verify(store).ok


def record_poll(config: str, url: str) -> None:
    """What a collector would write: one poll of the moto scope."""
    provider = AwsProvider(AwsScopeConfig("aws-test", (REGION,), endpoint_url=url, actions=True),
                           VersionRules())
    try:
        inventory = provider.poll()
    finally:
        provider.close()
    with Store.open(store_url(config)) as store:
        store.record_poll(inventory, inventory.polled_at, inventory.polled_at)


# -- help ----------------------------------------------------------------------------------------

def test_help_names_the_commands_the_exit_codes_and_where_names_are_found(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    top = capsys.readouterr().out
    for command in ("plan", "rollback", "replace", "stop", "actions", "quarantine"):
        assert command in top
    with pytest.raises(SystemExit):
        main(["rollback", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "a poll of the configured scopes made now" in text
    assert "4 the steps are done but the group has not converged within --wait-s" in text
    assert "5 refused" in text and "3 some scope or region could not be polled" in text


# -- AWS -----------------------------------------------------------------------------------------

def test_rollback_converges_then_is_never_the_default_target_again(aws, tmp_path):
    config = write_config(tmp_path, aws_table(aws.url))
    record_poll(config, aws.url)  # history: web ran 1.4.0 in full

    plan = fleetview(config, "plan", "rollback", "web", "--to", "1.3.0")
    assert plan.returncode == 0, plan.stderr
    for words in ("Roll back web to 1.3.0 (aws-test us-east-1)", f"who acts:        {MOTO_ARN}",
                  "mechanism:", "batches:", "capacity:", "cannot be undone:",
                  "is terminated: its local disks are lost"):
        assert words in plan.stdout

    ran = fleetview(config, "rollback", "web", "--to", "1.3.0", "--reason", "1.4.0 returns 500s",
                    "--yes", "--format", "json")
    assert ran.returncode == 0, ran.stderr
    out = lines(ran)
    assert [o["event"] for o in (out[0], out[1], out[-1])] == ["plan", "action", "result"]
    assert out[0]["identity"] == MOTO_ARN and out[0]["plan"]["to_version"] == "1.3.0"
    progress = [o for o in out if o["event"] == "progress"]
    assert {"started", "done", "finished"} <= {o["status"] for o in progress}
    result = out[-1]
    assert result["status"] == "recovered" and result["time_to_recover_s"] is not None
    assert result["actor"] == MOTO_ARN and result["reason"] == "1.4.0 returns 500s"
    assert "all 3 instances of web run 1.3.0" in result["message"]
    records, entries = journal(config)
    assert records[0].status == "recovered"
    assert [e.event for e in entries if e.action_id == result["action_id"]][-1] == "recovered"
    assert {e.actor for e in entries if e.event == "plan_confirmed"} == {MOTO_ARN}

    record_poll(config, aws.url)  # history: then 1.3.0 in full
    bad = fleetview(config, "plan", "rollback", "web", "--to", "1.4.0")
    assert bad.returncode == 0, bad.stderr
    assert "MARKED BAD" in bad.stdout and "1.4.0 was rolled back from on web" in bad.stdout
    assert "1.4.0 returns 500s" in bad.stdout and "--confirm-version 1.4.0" in bad.stdout
    skipped = fleetview(config, "plan", "rollback", "web")  # 1.4.0, marked bad, is skipped
    assert skipped.returncode == 5
    assert "no earlier version" in skipped.stderr and "--to VERSION" in skipped.stderr
    refused = fleetview(config, "rollback", "web", "--to", "1.4.0", "--reason", "fixed", "--yes")
    assert refused.returncode == 5
    assert "type the version 1.4.0 to confirm" in refused.stderr

    marks = fleetview(config, "quarantine", "--list", "--format", "json")
    assert marks.returncode == 0
    [mark] = json.loads(marks.stdout)
    assert (mark["version"], mark["group"], mark["source"]) == ("1.4.0", "web", "rollback")
    lift = fleetview(config, "quarantine", "--lift", "1.4.0", "--scope", "aws-test", "--group",
                     "web", "--reason", "the fix is in the 1.4.0 AMI")
    assert lift.returncode == 0, lift.stderr
    assert "lifted 1 mark on 1.4.0 for web of aws-test" in lift.stdout
    default = fleetview(config, "plan", "rollback", "web", "--format", "json")
    assert default.returncode == 0, default.stderr
    assert json.loads(default.stdout)["to_version"] == "1.4.0"  # the default target again

    quarantined = fleetview(config, "quarantine", "1.4.0", "--reason", "corrupts uploads")
    assert quarantined.returncode == 0, quarantined.stderr
    assert "1.4.0 was quarantined on every group" in quarantined.stdout
    back = fleetview(config, "rollback", "web", "--reason", "back", "--yes", "--to", "1.4.0",
                     "--confirm-version", "1.4.0", "--format", "json")
    assert back.returncode == 0, back.stderr
    assert "corrupts uploads" in lines(back)[0]["target_bad"]
    assert lines(back)[-1]["status"] == "recovered"
    _, entries = journal(config)
    events = [e.event for e in entries]
    assert {"quarantined", "quarantine_lifted", "version_marked_bad", "refused"} <= set(events)
    assert audit_ok(config)


def test_not_converged_exits_4_then_tracked_abandoned_or_stopped(aws, tmp_path):
    config = write_config(tmp_path, aws_table(aws.url))
    plan = fleetview(config, "plan", "replace", aws.groups["api"][0], "--format", "json")
    assert plan.returncode == 0, plan.stderr
    shown = json.loads(plan.stdout)
    assert (shown["group"], shown["current_version"], shown["to_version"]) == (
        "api", "1.3.0", "1.4.0")
    assert shown["plan"]["mechanism"] == "terminate-in-asg" and shown["identity"] == MOTO_ARN

    first = fleetview(config, "replace", aws.groups["api"][0], "--reason", "stuck", "--yes",
                      "--wait-s", "1")
    assert first.returncode == 4, first.stderr
    assert "not converged within 1 s: 1 of 2 on 1.4.0; still 1 on 1.3.0" in first.stdout
    assert "--mode track" in first.stderr
    [record], _ = journal(config)
    assert record.status == "not_converged" and record.interrupted  # its process is gone

    listed = fleetview(config, "actions", "list", "--format", "json")
    assert listed.returncode == 0
    [row] = json.loads(listed.stdout)
    assert (row["action_id"], row["status"], row["group"]) == (
        record.action_id, "interrupted", "api")
    shown = fleetview(config, "actions", "show", record.action_id[:8])
    assert shown.returncode == 0, shown.stderr
    assert "Replace" in shown.stdout and "[done]" in shown.stdout
    assert f"actions resume {record.action_id}" in shown.stdout

    tracked = fleetview(config, "actions", "resume", record.action_id, "--mode", "track",
                        "--wait-s", "1")
    assert tracked.returncode == 4, tracked.stderr
    stopped = fleetview(config, "stop", record.action_id, "--reason", "wrong instance")
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped by" in stopped.stdout and "wrong instance" in stopped.stdout
    again = fleetview(config, "stop", "api", "--reason", "again")
    assert again.returncode == 5 and "no open action" in again.stderr
    [record], _ = journal(config)
    assert record.status == "stopped" and record.stop_reason == "wrong instance"
    assert record.stop_actor == MOTO_ARN

    second = fleetview(config, "replace", aws.groups["jobs"][0], "--reason", "stuck", "--yes",
                       "--wait-s", "1", "--format", "json")
    assert second.returncode == 4
    action_id = lines(second)[-1]["action_id"]
    abandoned = fleetview(config, "actions", "resume", action_id, "--mode", "abandon")
    assert abandoned.returncode == 0, abandoned.stderr
    again = fleetview(config, "actions", "resume", action_id, "--mode", "track")
    assert again.returncode == 5 and "abandoned" in again.stderr
    records, entries = journal(config)
    assert [r.status for r in records] == ["abandoned", "stopped"]
    assert {"not_converged", "resumed", "stop_requested", "stopped", "abandoned"} <= {
        e.event for e in entries}


def test_stop_by_group_name_stops_the_action_another_process_runs(aws, tmp_path):
    config = write_config(tmp_path, aws_table(aws.url))
    running = subprocess.Popen(
        [sys.executable, "-m", "fleetview", "replace", aws.groups["worker"][0], "--reason",
         "stuck", "--yes", "--wait-s", "30", "--format", "json", "--config", config],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in running.stdout:  # ends by itself after --wait-s at the latest
            event = json.loads(line)
            if event["event"] == "progress" and event["step"] is None \
                    and event["message"].startswith("converging"):
                break
        stop = fleetview(config, "stop", "worker", "--reason", "not this one")
        rest = running.stdout.read()
        assert running.wait(timeout=60) == 1  # stopped before it recovered
    finally:
        if running.poll() is None:
            running.kill()
        running.stdout.close()
        running.stderr.close()
    assert stop.returncode == 0, stop.stderr
    result = json.loads(rest.splitlines()[-1])
    assert result["event"] == "result" and result["status"] == "stopped"
    assert f"stopped by {MOTO_ARN}: not this one" in result["message"]


def test_a_protected_group_needs_its_name_typed(aws, tmp_path):
    config = write_config(tmp_path, aws_table(aws.url), protect=("env=prod",))
    plan = fleetview(config, "plan", "rollback", "pay", "--to", "1.3.0")
    assert plan.returncode == 0 and "--confirm-name pay" in plan.stdout
    refused = fleetview(config, "rollback", "pay", "--to", "1.3.0", "--reason", "r", "--yes")
    assert refused.returncode == 5
    assert "pay is protected (env=prod): type its name to confirm" in refused.stderr

    # On a terminal: the name is asked, then y/N; "n" changes nothing.
    controller, terminal = pty.openpty()
    try:
        os.write(controller, b"pay\nn\n")
        declined = fleetview(config, "rollback", "pay", "--to", "1.3.0", "--reason", "r",
                             stdin=terminal)
    finally:
        os.close(terminal)
        os.close(controller)
    assert declined.returncode == 5, declined.stderr
    assert "type its name to confirm" in declined.stderr and "[y/N]" in declined.stderr
    assert "not confirmed; nothing was changed" in declined.stderr

    ran = fleetview(config, "rollback", "pay", "--to", "1.3.0", "--reason", "r", "--yes",
                    "--confirm-name", "pay")
    assert ran.returncode == 0, ran.stderr
    assert "recovered: all 2 instances of pay run 1.3.0" in ran.stdout
    records, entries = journal(config)
    assert [r.status for r in records] == ["recovered"]
    assert [json.loads(e.detail)["why"] for e in entries if e.event == "refused"] == [
        "pay is protected (env=prod): type its name to confirm"]


def test_refusals_and_config_errors(aws, tmp_path):
    url = aws.url
    args = ("rollback", "web", "--to", "1.3.0", "--reason", "r")
    no_terminal = fleetview(write_config(tmp_path, aws_table(url)), *args)
    assert no_terminal.returncode == 5
    assert "no terminal to confirm on" in no_terminal.stderr
    assert "Roll back web to 1.3.0" in no_terminal.stdout  # the plan was shown

    read_only = fleetview(write_config(tmp_path, aws_table(url, actions=False)), *args, "--yes")
    assert read_only.returncode == 5 and "scope aws-test is read-only" in read_only.stderr

    twice = write_config(tmp_path, aws_table(url, "aws-a"), aws_table(url, "aws-b"))
    ambiguous = fleetview(twice, *args, "--yes")
    assert ambiguous.returncode == 5
    assert "group web is in 2 places" in ambiguous.stderr
    assert "--scope aws-a --region us-east-1" in ambiguous.stderr
    assert "--scope aws-b --region us-east-1" in ambiguous.stderr
    assert fleetview(twice, "plan", "rollback", "web", "--to", "1.3.0", "--scope",
                     "aws-b").returncode == 0

    down = write_config(tmp_path, aws_table(url), aws_table(closed_port_url(), "aws-down"))
    unpolled = fleetview(down, "plan", "rollback", "web", "--to", "1.3.0")
    assert unpolled.returncode == 3, unpolled.stderr
    assert "aws-down us-east-1" in unpolled.stderr and "--scope aws-test" in unpolled.stderr
    missing = fleetview(down, "plan", "replace", "i-00000000000000000", "--scope", "aws-test")
    assert missing.returncode == 5 and "instance i-00000000000000000 is not in" in missing.stderr

    unknown = fleetview(twice, *args, "--yes", "--scope", "nope")
    assert unknown.returncode == 2 and "no scope named 'nope'" in unknown.stderr
    broken = tmp_path / "broken.toml"
    broken.write_text("[[aws]]\nname = \n")
    assert fleetview(str(broken), *args, "--yes").returncode == 2
    no_reason = fleetview(twice, "quarantine", "1.4.0")
    assert no_reason.returncode == 5 and "give a reason" in no_reason.stderr


# -- GCP -----------------------------------------------------------------------------------------

def test_gcp_plan_rollback_and_a_failed_step(gcp, tmp_path):
    config = write_config(tmp_path, gcp_table(gcp))
    plan = fleetview(config, "plan", "rollback", "web", "--to", "1.8.0", "--format", "json")
    assert plan.returncode == 0, plan.stderr
    shown = json.loads(plan.stdout)
    assert (shown["identity"], shown["scope"], shown["region"]) == (
        "anonymous", "gcp-test", "us-central1")
    assert shown["plan"]["mechanism"] == "mig-update" and shown["refusal"] is None

    ran = fleetview(config, "rollback", "web", "--to", "1.8.0", "--reason", "1.9.0 leaks",
                    "--yes")
    assert ran.returncode == 0, ran.stderr
    assert "recovered: all 3 instances of web run 1.8.0" in ran.stdout
    gcp.faults.deny("compute.regionInstanceGroupManagers.patch",
                    "compute.instanceGroupManagers.update")
    failed = fleetview(config, "rollback", "api", "--to", "1.8.0", "--reason", "1.9.0 leaks",
                       "--yes", "--format", "json")
    assert failed.returncode == 1, failed.stderr
    result = lines(failed)[-1]
    assert result["status"] == "failed"
    assert "compute.instanceGroupManagers.update" in result["message"]
    records, _ = journal(config)
    assert [(r.plan.group, r.status) for r in records] == [("api", "failed"),
                                                           ("web", "recovered")]


def test_gcp_plan_of_a_rollout_in_flight_says_it_stops_it(tmp_path):
    emulator = gce(step_seconds=600.0)  # the clock stands still: the rollout stays in flight
    try:
        state = emulator.state
        state.patch_group(state.find_group("web"),
                          {"versions": [{"instanceTemplate": "app-1-10-0-tmpl"}]})
        config = write_config(tmp_path, gcp_table(emulator))
        provider = make(emulator, actions=True)
        try:
            inventory = provider.poll()
        finally:
            provider.close()
        assert inventory.group("web").updating
        with Store.open(store_url(config)) as store:
            store.record_poll(inventory, inventory.polled_at, inventory.polled_at)
        plan = fleetview(config, "plan", "rollback", "web", "--to", "1.9.0")
    finally:
        emulator.stop()
    assert plan.returncode == 0, plan.stderr
    assert "- will stop the update under way" in plan.stdout
    assert "stops the update under way, then rolls back" in plan.stdout


def test_a_name_in_both_clouds_is_refused_with_both(aws, gcp, tmp_path):
    config = write_config(tmp_path, aws_table(aws.url), gcp_table(gcp))
    result = fleetview(config, "plan", "rollback", "web", "--to", "1.3.0")
    assert result.returncode == 5
    assert "aws-test us-east-1 (AWS Auto Scaling group)" in result.stderr
    assert "gcp-test us-central1 (GCP managed instance group" in result.stderr
