"""CSV exports neutralise cells a spreadsheet would run as formulas (issue #19, "Smaller")."""

from __future__ import annotations

import csv
import io

import pandas as pd
import pytest

from fleetview.actions import audit
from fleetview.cli import main
from fleetview.domain.csv_cells import safe_cell, safe_frame, safe_rows
from fleetview.snapshot import FIELDS, render
from fleetview.store import Store

NASTY = ["=HYPERLINK(\"http://evil\",\"x\")", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)",
         "\t=1+1", "\r=1+1"]


@pytest.mark.parametrize("value", NASTY)
def test_a_formula_start_gets_a_quote(value):
    assert safe_cell(value) == "'" + value


@pytest.mark.parametrize("value", ["web-1.4.2", "i-0abc", "", "1.0", None, 7, -3, 2.5, "a=b"])
def test_other_values_are_unchanged(value):
    assert safe_cell(value) == value


def test_rows_and_frames():
    assert safe_rows([{"a": "=1", "b": 2}]) == [{"a": "'=1", "b": 2}]
    frame = pd.DataFrame({"s": ["=1", "ok", None], "n": [-1, 2, 3]})
    out = safe_frame(frame)
    assert list(out["s"][:2]) == ["'=1", "ok"] and pd.isna(out["s"][2])
    assert list(out["n"]) == [-1, 2, 3]
    assert list(frame["s"][:1]) == ["=1"]  # the caller's frame is left alone


def _read(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def test_snapshot_csv_neutralises_cloud_values():
    row = dict.fromkeys(FIELDS)
    row.update(provider="aws", scope="prod", instance_id="i-1", name=NASTY[0],
               group=NASTY[3], version="-1", image_name="web-2.0")
    text = render({"polled_at": None, "instances": [row], "errors": []}, "csv")
    out = _read(text)[0]
    assert out["name"] == "'" + NASTY[0] and out["group"] == "'@SUM(A1)"
    assert out["version"] == "'-1" and out["image_name"] == "web-2.0"


def test_audit_export_csv_neutralises_reasons_and_names(tmp_path, capsys):
    db = tmp_path / "history.db"
    with Store.open(f"sqlite:///{db}") as store:
        audit.append(store, "plan_confirmed", "=cmd|'/C calc'!A0", scope="prod",
                     group="+web", reason="=HYPERLINK(\"http://evil\")", detail={"n": 1})
    config = tmp_path / "config.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{db}"\n')
    assert main(["audit", "export", "--format", "csv", "--config", str(config)]) == 0
    out = _read(capsys.readouterr().out)[0]
    assert out["actor"] == "'=cmd|'/C calc'!A0"
    assert out["group"] == "'+web"
    assert out["reason"] == "'=HYPERLINK(\"http://evil\")"
    assert out["seq"] == "1"
    # JSON keeps the values as they are: it is not read by spreadsheets.
    assert main(["audit", "export", "--format", "json", "--config", str(config)]) == 0
    assert '"=HYPERLINK' in capsys.readouterr().out.replace('\\"', '"')
