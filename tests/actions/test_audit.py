"""The audit log is append-only and hash-chained; verify names the first broken link."""

import json

import sqlalchemy as sa

from fleetview.actions import audit
from fleetview.cli import main
from fleetview.store.action_tables import audit_log


def fill(store, n=5):
    for i in range(n):
        audit.append(store, "step_done", "arn:aws:iam::123456789012:user/ops", action_id="a1",
                     scope="prod", region="us-east-1", group="web", reason="bad deploy",
                     detail={"step": f"batch-{i}"})


def test_clean_log_verifies(store):
    fill(store)
    report = audit.verify(store)
    assert report.ok and report.checked == 5
    chain = list(audit.entries(store))
    assert chain[0].prev_hash == audit.GENESIS
    assert all(b.prev_hash == a.hash for a, b in zip(chain, chain[1:], strict=False))


def test_modified_entry_is_named(store):
    fill(store)
    with store.writing("tamper") as conn:
        conn.execute(sa.update(audit_log).where(audit_log.c.seq == 3)
                     .values(reason="nothing to see"))
    report = audit.verify(store)
    assert not report.ok and report.broken_seq == 3 and report.checked == 2
    assert "entry 3" in report.problem and "modified" in report.problem


def test_rehashed_entry_breaks_the_next_link(store):
    fill(store)
    entry = list(audit.entries(store))[1]
    forged = audit.entry_hash(entry.prev_hash, entry.seq, entry.at_us, entry.event,
                              "someone-else", entry.action_id, entry.scope, entry.region,
                              entry.group_name, entry.reason, entry.detail)
    with store.writing("tamper") as conn:
        conn.execute(sa.update(audit_log).where(audit_log.c.seq == 2)
                     .values(actor="someone-else", hash=forged))
    report = audit.verify(store, witnesses=[])  # the chain alone
    assert not report.ok and report.broken_seq == 3
    assert "does not link" in report.problem
    report = audit.verify(store)  # this machine's witness saw entry 2 as it was
    assert not report.ok and report.broken_seq == 2
    assert "rewritten" in report.problem and "does not link" in report.problem


def test_deleted_entry_is_named(store):
    fill(store)
    with store.writing("tamper") as conn:
        conn.execute(sa.delete(audit_log).where(audit_log.c.seq == 4))
    report = audit.verify(store)
    assert not report.ok and report.broken_seq == 4 and "missing" in report.problem


def test_cli_verify_and_export(store, tmp_path, capsys):
    fill(store, 3)
    config = tmp_path / "config.toml"
    config.write_text(f'[store]\nurl = "{store.path_or_url}"\n'.replace(
        'url = "/', 'url = "sqlite:////'))
    assert main(["audit", "verify", "--config", str(config)]) == 0
    assert "3 entries" in capsys.readouterr().out

    assert main(["audit", "export", "--format", "json", "--config", str(config)]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert [e["detail"]["step"] for e in exported] == ["batch-0", "batch-1", "batch-2"]
    assert exported[0]["reason"] == "bad deploy" and exported[0]["group"] == "web"

    assert main(["audit", "export", "--format", "csv", "--config", str(config)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("seq,at,event,actor") and len(lines) == 4

    with store.writing("tamper") as conn:
        conn.execute(sa.update(audit_log).where(audit_log.c.seq == 2).values(event="x"))
    assert main(["audit", "verify", "--config", str(config)]) == 1
    assert "entry 2" in capsys.readouterr().err
