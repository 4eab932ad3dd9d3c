"""The collector against a small fake provider: --once, JSON lines, signals, store outages."""

from __future__ import annotations

import dataclasses
import json
import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

import fleetview.collect as collect
import fleetview.providers as providers
from fleetview.config import Config, PollConfig, StoreConfig
from fleetview.domain.errors import ProviderError
from fleetview.domain.model import Image, Instance, Inventory, RegionError, Scope, State
from fleetview.providers import aws
from fleetview.providers.aws.scope import AwsScopeConfig
from fleetview.store import Store
from tests.helpers.fakes import StubProvider
from tests.helpers.pg import pg_cluster  # noqa: F401

FLEET_ENV = "FLEETVIEW_TEST_FAKE_FLEET"
FAKE = "tests.test_collect"  # the registry line: AWS's declaration, this module's provider


class FakeProvider(StubProvider):
    """A scope whose fleet is a JSON file the test rewrites between polls:
    {"<scope>": {"fail": msg|null, "delay_s": n,
                 "regions": {"<region>": {"error": msg|null, "instances": [[id, version]]}}}}"""

    actor = "arn:aws:iam::123456789012:user/test"

    name = "aws"

    def poll(self) -> Inventory:
        spec = json.loads(Path(os.environ[FLEET_ENV]).read_text())[self.config.name]
        time.sleep(spec.get("delay_s", 0))
        if spec.get("fail"):
            raise ProviderError(spec["fail"])
        scope = Scope("aws", self.config.name, "123456789012", tuple(spec["regions"]))
        instances, errors, ok = [], [], []
        for region, data in spec["regions"].items():
            if data.get("error"):
                errors.append(RegionError(region, data["error"]))
                continue
            ok.append(region)
            instances += [Instance("aws", iid, iid, scope.name, scope.account, region,
                                   f"{region}a", "web", f"ami-{v}", State.RUNNING, version=v)
                          for iid, v in data["instances"]]
        images = {i.image_id: Image("aws", i.image_id, f"web-{i.version}", version=i.version)
                  for i in instances}
        return Inventory(scope, datetime.now(UTC), tuple(instances), (), images, tuple(errors),
                         tuple(ok), api_calls=2)






CLOUD = dataclasses.replace(aws.CLOUD, provider="tests.test_collect:FakeProvider")


def write_fleet(path: Path, **scopes) -> None:
    path.write_text(json.dumps(scopes))


def fleet(*ids: str, version: str = "1.0", error: str | None = None) -> dict:
    return {"regions": {"us-east-1": {"error": error,
                                      "instances": [[i, version] for i in ids]}}}


@pytest.fixture
def fake(monkeypatch, tmp_path) -> Path:
    monkeypatch.setitem(providers.REGISTRY, "aws", FAKE)
    path = tmp_path / "fleet.json"
    monkeypatch.setenv(FLEET_ENV, str(path))
    monkeypatch.setattr(collect, "RETRY_S", (0.2, 0.5))
    return path


def config_for(url: str, *names: str, interval: float = 60.0) -> Config:
    return Config(store=StoreConfig(url=url), poll=PollConfig(interval, 0.0),
                  scopes=tuple(AwsScopeConfig(name=n, regions=("us-east-1",)) for n in names))


def events_of(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_once_writes_the_store_and_prints_json_lines(fake, tmp_path, capsys):
    write_fleet(fake, a=fleet("i-1", "i-2"), b=fleet("i-9", version="2.0"))
    url = f"sqlite:///{tmp_path / 'h.db'}"
    assert collect.run(config_for(url, "a", "b"), once=True) == 0
    events = events_of(capsys.readouterr().out)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "collector_started" and kinds[-1] == "collector_stopped"
    assert kinds.count("poll_started") == 2 and kinds.count("poll_finished") == 2
    finished = {e["scope"]: e for e in events if e["event"] == "poll_finished"}
    assert finished["a"]["ok"] and finished["a"]["instances"] == 2
    assert finished["a"]["opened"] == 2 and finished["a"]["api_calls"] == 2
    assert finished["a"]["duration_s"] >= 0
    with Store.open(url, readonly=True) as store:
        fleet_now = store.fleet_at()
        assert sorted(fleet_now["instance_id"]) == ["i-1", "i-2", "i-9"]
        assert len(store.polls()) == 2


def test_second_run_writes_only_changes(fake, tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    write_fleet(fake, a=fleet("i-1", "i-2"))
    assert collect.run(config_for(url, "a"), once=True) == 0
    write_fleet(fake, a=fleet("i-1"))
    assert collect.run(config_for(url, "a"), once=True) == 0
    last = [e for e in events_of(capsys.readouterr().out) if e["event"] == "poll_finished"][-1]
    assert (last["unchanged"], last["closed"], last["gone"], last["opened"]) == (1, 1, 1, 0)


def test_failed_scope_is_reported_recorded_and_partial(fake, tmp_path, capsys):
    write_fleet(fake, a=fleet("i-1"), b={"fail": "access denied; grant ec2:Describe*",
                                         "regions": {}})
    url = f"sqlite:///{tmp_path / 'h.db'}"
    assert collect.run(config_for(url, "a", "b"), once=True) == collect.EXIT_PARTIAL
    events = events_of(capsys.readouterr().out)
    errors = [e for e in events if e["event"] == "scope_error"]
    assert errors == [{**errors[0], "scope": "b", "region": None,
                       "message": "access denied; grant ec2:Describe*"}]
    with Store.open(url, readonly=True) as store:
        fresh = store.freshness().set_index("scope")
        assert fresh.loc["a", "ok"] and not fresh.loc["b", "ok"]
        assert len(store.fleet_at()) == 1


def test_region_error_keeps_the_region_and_says_so(fake, tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    write_fleet(fake, a=fleet("i-1"))
    assert collect.run(config_for(url, "a"), once=True) == 0
    write_fleet(fake, a=fleet(error="RequestLimitExceeded; retry later"))
    assert collect.run(config_for(url, "a"), once=True) == collect.EXIT_PARTIAL
    events = events_of(capsys.readouterr().out)
    assert any(e["event"] == "scope_error" and e["region"] == "us-east-1" for e in events)
    with Store.open(url, readonly=True) as store:
        assert list(store.fleet_at()["instance_id"]) == ["i-1"]


def test_scopes_option_limits_and_unknown_scope_is_exit_2(fake, tmp_path, capsys):
    write_fleet(fake, a=fleet("i-1"), b=fleet("i-2"))
    url = f"sqlite:///{tmp_path / 'h.db'}"
    assert collect.run(config_for(url, "a", "b"), once=True, scopes=["b"]) == 0
    out = capsys.readouterr().out
    assert {e["scope"] for e in events_of(out) if e["event"] == "poll_finished"} == {"b"}
    assert collect.run(config_for(url, "a", "b"), once=True, scopes=["b", "zz"]) == 2
    captured = capsys.readouterr()
    assert "unknown scope zz" in captured.err and "a, b" in captured.err
    assert captured.out == ""


def test_keep_days_prunes_old_closed_spans(fake, tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    with Store.open(url) as store:  # history from long ago: one instance came and went
        from tests.helpers.builders import at, instance, inventory, scope

        sc = scope("a", ("us-east-1",))
        store.record_poll(inventory(at(0), [instance("i-old", scope_name="a")], sc=sc),
                          at(0), at(0))
        store.record_poll(inventory(at(1), [], sc=sc), at(1), at(1))
    write_fleet(fake, a=fleet("i-1"))
    config = dataclasses.replace(config_for(url, "a"),
                                 store=StoreConfig(url=url, keep_days=30))
    assert collect.run(config, once=True) == 0
    with Store.open(url, readonly=True) as store:
        assert list(store.spans(at(-1), datetime.now(UTC))["instance_id"]) == ["i-1"]


def test_bad_store_url_is_exit_2_before_polling(fake, capsys):
    write_fleet(fake, a=fleet("i-1"))
    assert collect.run(config_for("mysql://x@localhost/db", "a"), once=True) == 2
    captured = capsys.readouterr()
    assert "SQLite or PostgreSQL" in captured.err and captured.out == ""


def test_store_newer_than_fleetview_is_exit_1(fake, tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    Store.open(url).close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE fleetview_meta SET value = '99'"))
    engine.dispose()
    write_fleet(fake, a=fleet("i-1"))
    assert collect.run(config_for(url, "a"), once=True) == 1
    captured = capsys.readouterr()
    assert "newer FleetView" in captured.err
    assert any(e["event"] == "store_error" and e["fatal"] for e in events_of(captured.out))


class Lines:
    """A stdout stand-in that hands each JSON line to a queue."""

    def __init__(self):
        self.events: queue.Queue[dict] = queue.Queue()
        self._partial = ""

    def write(self, text: str) -> None:
        self._partial += text
        while "\n" in self._partial:
            line, self._partial = self._partial.split("\n", 1)
            self.events.put(json.loads(line))

    def flush(self) -> None:
        pass

    def wait_for(self, kind: str, timeout: float = 30.0, **match) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {kind} event {match} within {timeout} s")
            try:
                event = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if event["event"] == kind and all(event.get(k) == v for k, v in match.items()):
                return event


def test_stdin_commands_poll_one_scope_and_stop(fake, tmp_path):
    write_fleet(fake, a=fleet("i-1"), b=fleet("i-2"))
    config = config_for(f"sqlite:///{tmp_path / 'h.db'}", "a", "b")
    out, result = Lines(), []
    read_fd, write_fd = os.pipe()
    runner = threading.Thread(target=lambda: result.append(collect.serve(
        config, list(config.scopes), False, out, read_fd)))
    runner.start()
    try:
        finished = {out.wait_for("poll_finished")["scope"] for _ in range(2)}
        assert finished == {"a", "b"}
        os.write(write_fd, b"poll b\n")
        assert out.wait_for("poll_started")["scope"] == "b"
        assert out.wait_for("poll_finished")["scope"] == "b"
        os.write(write_fd, b"stop\n")
        runner.join(20)
        assert result == [0]
        assert out.wait_for("collector_stopped")["reason"] == "stopped"
        assert out.events.empty()  # scope a was not polled again
    finally:
        os.close(write_fd)
        os.close(read_fd)


@pytest.mark.postgres
def test_store_down_then_back(fake, pg_cluster, monkeypatch):  # noqa: F811
    import psycopg

    with psycopg.connect(host="127.0.0.1", port=pg_cluster.port, user="fleetview",
                         dbname="postgres", autocommit=True) as conn:
        conn.execute("CREATE DATABASE fv_collect")
    url = pg_cluster.admin_url.replace("/postgres", "/fv_collect")
    monkeypatch.setattr(collect, "BUFFER_POLLS", 2)
    write_fleet(fake, a=fleet("i-1"))
    config = config_for(url, "a")
    out, stop = Lines(), threading.Event()
    read_fd, write_fd = os.pipe()
    result: list[int] = []
    runner = threading.Thread(target=lambda: result.append(collect.serve(
        config, list(config.scopes), False, out, read_fd, stop=stop)))
    runner.start()
    try:
        out.wait_for("poll_finished", scope="a")
        pg_cluster.stop()
        write_fleet(fake, a=fleet("i-1", "i-2"))
        os.write(write_fd, b"poll\n")
        down = out.wait_for("store_error")
        assert not down["fatal"] and "fleetview" in down["message"]
        for _ in range(3):  # more polls than the buffer holds while the store is down
            os.write(write_fd, b"poll a\n")
            out.wait_for("poll_started", scope="a")
        dropped = out.wait_for("polls_dropped", scope="a")
        assert dropped["dropped"] >= 1
        pg_cluster.start()
        out.wait_for("store_ok", timeout=60)
        finished = out.wait_for("poll_finished", scope="a")
        assert finished["instances"] == 2
    finally:
        stop.set()
        runner.join(30)
        os.close(write_fd)
        os.close(read_fd)
    assert result == [0]
    with Store.open(url, readonly=True) as store:
        assert sorted(store.fleet_at()["instance_id"]) == ["i-1", "i-2"]
        polls = store.polls()
        assert polls["ok"].all() and len(polls) >= 2


def _start_collector(tmp_path: Path, fleet_path: Path, *extra: str) -> subprocess.Popen:
    config = tmp_path / "config.toml"
    config.write_text(textwrap.dedent(f"""
        [store]
        url = "sqlite:///{tmp_path / 'h.db'}"
        [poll]
        interval_s = 60
        jitter_s = 0
        [[aws]]
        name = "a"
        regions = ["us-east-1"]
    """))
    launcher = (
        "import sys, fleetview.providers as p; "
        f"p.REGISTRY['aws'] = {FAKE!r}; "
        "from fleetview.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    env = {**os.environ, FLEET_ENV: str(fleet_path)}
    return subprocess.Popen(
        [sys.executable, "-c", launcher, "collect", "--config", str(config), *extra],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env, cwd=Path(__file__).resolve().parent.parent)


def _reap(proc: subprocess.Popen) -> None:
    """Kill the collector if a test left it running, and close its pipes."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    for stream in (proc.stdout, proc.stderr, proc.stdin):
        if stream is not None and not stream.closed:
            stream.close()


def _next_event(proc: subprocess.Popen, kind: str) -> dict:
    for line in proc.stdout:
        event = json.loads(line)
        if event["event"] == kind:
            return event
    raise AssertionError(f"collector ended before {kind}: {proc.stderr.read()}")


def test_poll_now_by_stdin_and_sigusr1_and_sigterm_exits_0(tmp_path):
    fleet_path = tmp_path / "fleet.json"
    write_fleet(fleet_path, a=fleet("i-1"))
    proc = _start_collector(tmp_path, fleet_path)
    try:
        assert _next_event(proc, "poll_finished")["opened"] == 1
        write_fleet(fleet_path, a=fleet("i-1", "i-2"))
        proc.stdin.write("poll\n")
        proc.stdin.flush()
        assert _next_event(proc, "poll_finished")["opened"] == 1
        write_fleet(fleet_path, a=fleet("i-2"))
        proc.send_signal(signal.SIGUSR1)
        assert _next_event(proc, "poll_finished")["closed"] == 1
        proc.send_signal(signal.SIGTERM)
        assert _next_event(proc, "collector_stopped")["reason"] == "stopped"
        assert proc.wait(20) == 0
    finally:
        _reap(proc)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_signal_during_a_poll_exits_0_without_half_writes(tmp_path, signum):
    fleet_path = tmp_path / "fleet.json"
    write_fleet(fleet_path, a={**fleet("i-1"), "delay_s": 1.0})
    proc = _start_collector(tmp_path, fleet_path)
    try:
        _next_event(proc, "poll_started")
        proc.send_signal(signum)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        rest = events_of(proc.stdout.read())
        _reap(proc)
    assert rest[-1]["event"] == "collector_stopped"
    with Store.open(f"sqlite:///{tmp_path / 'h.db'}", readonly=True) as store:
        # The poll in flight finished within the grace period and was written whole.
        assert len(store.polls()) == len(store.fleet_at()) == 1


def test_a_window_owned_collector_stops_when_its_pipe_closes(tmp_path):
    """The window starts it with --stop-on-eof: if the window dies, even killed, the closed
    pipe ends the collector instead of leaving it polling for nobody."""
    fleet_path = tmp_path / "fleet.json"
    write_fleet(fleet_path, a=fleet("i-1"))
    proc = _start_collector(tmp_path, fleet_path, "--stop-on-eof")
    try:
        assert _next_event(proc, "poll_finished")["opened"] == 1
        proc.stdin.close()
        assert _next_event(proc, "collector_stopped")["reason"] == "stopped"
        assert proc.wait(20) == 0
    finally:
        _reap(proc)


def test_a_collector_without_a_window_keeps_polling_after_stdin_closes(tmp_path):
    fleet_path = tmp_path / "fleet.json"
    write_fleet(fleet_path, a=fleet("i-1"))
    proc = _start_collector(tmp_path, fleet_path)
    try:
        assert _next_event(proc, "poll_finished")["opened"] == 1
        proc.stdin.close()
        proc.send_signal(signal.SIGUSR1)  # still alive and polling on request
        assert _next_event(proc, "poll_finished")["ok"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        _reap(proc)


def test_the_backfill_command_asks_the_named_scopes_to_poll_and_rebuild():
    import types

    workers = {name: types.SimpleNamespace(backfill_asked=False, wake=threading.Event())
               for name in ("a", "b")}
    reader = collect.CommandReader(0, workers, threading.Event())
    reader.handle("backfill b")
    assert workers["b"].backfill_asked and workers["b"].wake.is_set()
    assert not workers["a"].backfill_asked and not workers["a"].wake.is_set()
    reader.handle("backfill")
    assert workers["a"].backfill_asked
