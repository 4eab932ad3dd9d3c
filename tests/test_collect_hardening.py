"""Issue #19 "No poll is lost in silence", collector side: a poll the store refuses, a far
keep_days, a failing prune, a clock behind the store, long values on PostgreSQL; and the
collector's daily audit witness."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

import fleetview.collect as collect
from fleetview.actions import audit
from fleetview.config import Config, PollConfig, StoreConfig
from fleetview.store import Store, witness
from tests.helpers.builders import instance, inventory, scope
from tests.helpers.pg import pg_server, pg_url  # noqa: F401


class ScriptedProvider:
    """Answers each poll with what the test put in `fleets[scope]` (a list of instances)."""

    def __init__(self, name: str, fleets: dict):
        self.name, self.fleets = name, fleets

    def poll(self):
        sc = scope(self.name, ("us-east-1",))
        return inventory(datetime.now(UTC), self.fleets[self.name], sc=sc)

    def close(self) -> None:
        pass


@pytest.fixture
def fleets(monkeypatch) -> dict:
    found: dict = {}
    monkeypatch.setattr(collect, "make_provider",
                        lambda scope_config, *a, **k: ScriptedProvider(scope_config.name, found))
    monkeypatch.setattr(collect, "RETRY_S", (0.2, 0.5))
    return found


def config_for(url: str, *names: str, keep_days: int | None = None) -> Config:
    scopes = tuple(SimpleNamespace(name=n, provider="aws", regions=("us-east-1",))
                   for n in names)
    return Config(store=StoreConfig(url=url, keep_days=keep_days), poll=PollConfig(60.0, 0.0),
                  scopes=scopes)


def events_of(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def finished(events: list[dict], scope_name: str) -> dict:
    found = [e for e in events if e["event"] == "poll_finished" and e["scope"] == scope_name]
    assert len(found) == 1, events
    return found[0]


def test_a_poll_the_store_refuses_fails_the_run_and_the_scope(fleets, tmp_path, capsys,
                                                              monkeypatch):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    fleets["a"] = [instance("i-1", scope_name="a")]
    fleets["b"] = [instance("i-2", scope_name="b")]
    real = Store.record_poll

    def refuse_b(self, inv, *args, **kwargs):
        if inv.scope.name == "b":
            raise RuntimeError("value too long for type character varying(128)")
        return real(self, inv, *args, **kwargs)

    monkeypatch.setattr(Store, "record_poll", refuse_b)
    code = collect.run(config_for(url, "a", "b"), once=True)
    captured = capsys.readouterr()
    assert code == collect.EXIT_ERROR, captured.err
    assert "1 poll(s) were dropped" in captured.err
    events = events_of(captured.out)
    assert finished(events, "a")["ok"]
    dropped = finished(events, "b")
    assert not dropped["ok"] and "could not be written" in dropped["error"]
    assert "value too long" in dropped["error"]
    with Store.open(url, readonly=True) as store:
        fresh = store.freshness().set_index("scope")
        assert fresh.loc["a", "ok"] and not fresh.loc["b", "ok"]
        assert "dropped" in fresh.loc["b", "error"]


def test_a_keep_days_past_the_calendar_drops_no_poll(fleets, tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    fleets["a"] = [instance("i-1", scope_name="a")]
    assert collect.run(config_for(url, "a", keep_days=1_000_000_000), once=True) == 0
    events = events_of(capsys.readouterr().out)
    assert finished(events, "a")["ok"]
    assert not [e for e in events if e["event"] == "store_error"], events


def test_a_failing_prune_is_a_pruning_error_not_a_dropped_poll(fleets, tmp_path, capsys,
                                                                monkeypatch, caplog):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    fleets["a"] = [instance("i-1", scope_name="a")]

    def broken_prune(self, keep_days):
        raise OverflowError("date value out of range")

    monkeypatch.setattr(Store, "prune", broken_prune)
    assert collect.run(config_for(url, "a", keep_days=30), once=True) == 0
    events = events_of(capsys.readouterr().out)
    assert finished(events, "a")["ok"]
    assert not [e for e in events if e["event"] == "store_error"], events
    assert any("pruning history older than 30 days failed" in r.getMessage()
               and "OverflowError" in r.getMessage() for r in caplog.records)
    with Store.open(url, readonly=True) as store:
        assert list(store.fleet_at()["instance_id"]) == ["i-1"]


def test_a_clock_behind_the_store_is_an_error_of_the_scope_and_keeps_changes(
        fleets, tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    ahead = datetime.now(UTC) + timedelta(hours=2)  # another collector's clock
    with Store.open(url) as other:
        sc = scope("a", ("us-east-1",))
        other.record_poll(inventory(ahead, [instance("i-1", scope_name="a")], sc=sc),
                          ahead, ahead)
    fleets["a"] = [instance("i-1", "2.0", scope_name="a"), instance("i-2", scope_name="a")]
    assert collect.run(config_for(url, "a"), once=True) == collect.EXIT_PARTIAL
    event = finished(events_of(capsys.readouterr().out), "a")
    assert not event["ok"] and "clock skew" in event["error"]
    assert f"{ahead:%Y-%m-%d %H:%M}" in event["error"]
    assert event["opened"] == 2
    with Store.open(url, readonly=True) as store:
        fleet = store.fleet_at().set_index("instance_id")
        assert fleet.loc["i-1", "version"] == "2.0" and "i-2" in fleet.index
        fresh = store.freshness().set_index("scope")
        assert not fresh.loc["a", "ok"] and "clock skew" in fresh.loc["a", "error"]


@pytest.mark.postgres
def test_long_values_on_postgresql_are_written(fleets, pg_url, capsys):  # noqa: F811
    name = "s" * 200
    version = "1." + "9" * 299
    fleets[name] = [instance("i-1", version, scope_name=name)]
    assert collect.run(config_for(pg_url, name), once=True) == 0
    assert finished(events_of(capsys.readouterr().out), name)["ok"]
    with Store.open(pg_url, readonly=True) as store:
        row = store.fleet_at().iloc[0]
        assert (row["scope"], row["version"]) == (name, version)


def test_the_collector_witnesses_the_audit_head(fleets, tmp_path, capsys, monkeypatch):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    monkeypatch.setenv(witness.WITNESS_ENV, str(tmp_path / "elsewhere.jsonl"))
    with Store.open(url) as store:
        entry = audit.append(store, "refused", "ops", scope="a", reason="test")
        store_id = store.store_id
    here = tmp_path / "witness.jsonl"  # a machine whose witness never saw that entry
    monkeypatch.setenv(witness.WITNESS_ENV, str(here))
    fleets["a"] = [instance("i-1", scope_name="a")]
    assert collect.run(config_for(url, "a"), once=True) == 0
    heads = list(witness.read(here, store_id))
    assert [(h.seq, h.hash) for h in heads] == [(1, entry.hash)]
    assert collect.run(config_for(url, "a"), once=True) == 0
    assert len(list(witness.read(here, store_id))) == 1  # the same head, within a day
