"""The audit log's head goes to a witness outside the store, and `audit verify` holds the log
against it: the last entries deleted, all deleted, or the chain rewritten with recomputed
hashes are named (issue #19, "The audit log shows truncation and rewriting")."""

from __future__ import annotations

import json
import os
import stat

import pytest
import sqlalchemy as sa

from fleetview.actions import audit
from fleetview.cli import main
from fleetview.store import witness
from fleetview.store.action_tables import audit_log


@pytest.fixture
def witness_file(tmp_path, monkeypatch):
    path = tmp_path / "data" / "audit-witness.jsonl"
    monkeypatch.setenv(witness.WITNESS_ENV, str(path))
    return path


def fill(store, n=5):
    for i in range(n):
        audit.append(store, "step_done", "arn:aws:iam::123456789012:user/ops", action_id="a1",
                     scope="prod", region="us-east-1", group="web", reason="bad deploy",
                     detail={"step": f"batch-{i}"})


def rewrite(store, from_seq: int, **changes) -> None:
    """What someone who can write the database does: change an entry and recompute the
    hash of it and of every entry after it, so the chain holds again."""
    chain = list(audit.entries(store))
    prev = chain[from_seq - 2].hash if from_seq > 1 else audit.GENESIS
    with store.writing("tamper") as conn:
        for entry in chain[from_seq - 1:]:
            fields = {"at_us": entry.at_us, "event": entry.event, "actor": entry.actor,
                      "action_id": entry.action_id, "scope": entry.scope,
                      "region": entry.region, "group_name": entry.group_name,
                      "reason": entry.reason, "detail": entry.detail}
            if entry.seq == from_seq:
                fields.update(changes)
            digest = audit.entry_hash(prev, entry.seq, **fields)
            conn.execute(sa.update(audit_log).where(audit_log.c.seq == entry.seq)
                         .values(**fields, prev_hash=prev, hash=digest))
            prev = digest


def test_every_entry_writes_its_head_to_the_witness(store, witness_file):
    fill(store, 3)
    lines = [json.loads(line) for line in witness_file.read_text().splitlines()]
    chain = list(audit.entries(store))
    assert [(h["seq"], h["hash"]) for h in lines] == [(e.seq, e.hash) for e in chain]
    assert {h["store"] for h in lines} == {store.store_id}
    assert lines[0]["location"] == store.path_or_url
    report = audit.verify(store)
    assert report.ok and report.witnessed == 3 and not report.notes


@pytest.mark.skipif(os.name != "posix", reason="POSIX modes")
def test_the_witness_file_is_private_whatever_the_umask(store, witness_file):
    old = os.umask(0)
    try:
        fill(store, 1)
    finally:
        os.umask(old)
    assert stat.S_IMODE(witness_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(witness_file.parent.stat().st_mode) == 0o700


def test_the_last_entries_deleted_are_named(store, witness_file):
    fill(store)
    with store.writing("tamper") as conn:
        conn.execute(sa.delete(audit_log).where(audit_log.c.seq >= 4))
    assert audit.verify(store, witnesses=[]).ok  # the chain alone cannot see it
    report = audit.verify(store)
    assert not report.ok and report.broken_seq == 4 and report.checked == 3
    assert "last entries were deleted" in report.problem
    assert "ends at entry 3" in report.problem and "saw entry 5" in report.problem


def test_all_entries_deleted_are_named(store, witness_file):
    fill(store)
    with store.writing("tamper") as conn:
        conn.execute(sa.delete(audit_log))
    assert audit.verify(store, witnesses=[]).ok
    report = audit.verify(store)
    assert not report.ok and report.broken_seq == 1
    assert "all entries were deleted" in report.problem


def test_a_rewritten_chain_is_named(store, witness_file):
    fill(store)
    rewrite(store, 2, reason="routine maintenance")
    assert audit.verify(store, witnesses=[]).ok  # every hash recomputed: the chain holds
    report = audit.verify(store)
    assert not report.ok and report.broken_seq == 2
    assert "rewritten" in report.problem and "entries 2 to 2" in report.problem


def test_a_rewrite_then_new_entries_is_still_named(store, witness_file, tmp_path,
                                                   monkeypatch):
    fill(store, 3)
    # The rewriter also appends past the old head, on a machine whose witness is elsewhere.
    monkeypatch.setenv(witness.WITNESS_ENV, str(tmp_path / "other.jsonl"))
    rewrite(store, 1, actor="someone-else")
    fill(store, 2)
    report = audit.verify(store, witnesses=[witness_file])
    assert not report.ok and report.broken_seq == 1 and "rewritten" in report.problem


def test_heads_witnessed_daily_only_when_due(store, witness_file):
    assert not witness.record_if_due(store)  # an empty log has no head
    fill(store, 1)
    assert not witness.record_if_due(store)  # the append witnessed this head already
    assert witness.record_if_due(store, every_s=0)
    assert len(witness_file.read_text().splitlines()) == 2


def test_a_witness_that_cannot_be_written_never_stops_an_append(store, tmp_path, monkeypatch,
                                                                caplog):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv(witness.WITNESS_ENV, str(blocker / "witness.jsonl"))
    entry = audit.append(store, "refused", "ops", reason="x")
    assert entry.seq == 1
    assert any("could not write the audit head" in r.getMessage() for r in caplog.records)


def test_cli_verify_names_truncation_and_missing_witnesses(store, witness_file, tmp_path,
                                                           capsys):
    fill(store, 3)
    config = tmp_path / "config.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{store.path_or_url}"\n')
    assert main(["audit", "verify", "--config", str(config)]) == 0
    assert "matches 3 witnessed heads" in capsys.readouterr().out

    with store.writing("tamper") as conn:
        conn.execute(sa.delete(audit_log).where(audit_log.c.seq == 3))
    assert main(["audit", "verify", "--config", str(config)]) == 1
    assert "last entries were deleted" in capsys.readouterr().err
    assert main(["audit", "verify", "--config", str(config),
                 "--witness", str(witness_file)]) == 1
    capsys.readouterr()

    missing = tmp_path / "nowhere.jsonl"
    assert main(["audit", "verify", "--config", str(config), "--witness", str(missing)]) == 0
    captured = capsys.readouterr()
    assert f"no witness file at {missing}" in captured.err
    assert "no witness saw it" in captured.out


def test_a_replaced_database_is_noted(store, witness_file, tmp_path):
    fill(store, 2)
    with store.writing("tamper") as conn:
        conn.execute(sa.text("UPDATE fleetview_meta SET value = 'other' "
                             "WHERE key = 'store_id'"))
    store._store_id = None
    report = audit.verify(store)
    assert any("replaced" in note for note in report.notes)
