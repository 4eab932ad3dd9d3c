"""`fleetview report`: the same rows as the report, to stdout or a file; bad arguments get a
message that says what to write, and exit status 2."""

from __future__ import annotations

import json

import pytest

from fleetview.cli import main
from fleetview.reports.export import rows
from fleetview.reports.params import ReportParams
from fleetview.reports.report import build_report
from fleetview.store import Store
from tests.helpers import report_history as known

RANGE = ["--from", "2026-01-01", "--to", "2026-01-03T12:00Z"]


@pytest.fixture(scope="module")
def seeded_url(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('cli') / 'history.db'}"
    with Store.open(url) as store:
        known.seed(store)
    return url


@pytest.fixture
def config(tmp_path, seeded_url) -> str:
    path = tmp_path / "config.toml"
    path.write_text(f'[store]\nurl = "{seeded_url}"\n', encoding="utf-8")
    return str(path)


def test_json_on_stdout_is_the_reports_rows(config, seeded_url, capsys):
    code = main(["report", "--config", config, *RANGE, "--stall-after", "3h",
                 "--format", "json"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    with Store.open(seeded_url, readonly=True) as store:
        expected = rows(build_report(store, ReportParams(
            known.h(0), known.h(known.END_H), stall_after=known.STALL_AFTER)))
    for section in ("report", ):
        for row in (printed[section][0], expected[section][0]):
            row.pop("generated")
    assert printed == expected
    assert [r["status"] for r in printed["rollouts"]] == [
        "completed", "completed", "rolled back", "completed", "completed", "in progress"]


def test_output_file_format_from_its_extension(config, tmp_path, capsys):
    out = tmp_path / "rollouts.html"
    assert main(["report", "--config", config, *RANGE, "--group", "web",
                 "--output", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "group web" in page
    assert "prod/us-east-1/api" not in page
    assert f"wrote {out} (html): 3 rollouts" in capsys.readouterr().err


def test_csv_for_a_scope(config, tmp_path):
    out = tmp_path / "report.txt"
    assert main(["report", "--config", config, *RANGE, "--scope", "prod", "--format", "csv",
                 "-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8").startswith("section,from,to,scopes")


@pytest.mark.parametrize(("argv", "says"), [
    (["--since", "30x", "--format", "json"], "write a number and a unit, e.g. 30d"),
    (["--since", "0d", "--format", "json"], "must be longer than zero"),
    (["--since", "7d", "--from", "2026-01-01", "--format", "json"], "not both"),
    (["--to", "2026-01-01", "--format", "json"], "--to needs --from"),
    (["--from", "2026-02-01", "--to", "2026-01-01", "--format", "json"], "give --from before"),
    (["--from", "yesterday", "--format", "json"], "write it as 2026-11-01"),
    ([*RANGE, "--scope", "staging", "--format", "json"],
     "no history of scope staging in the store; known scopes: prod"),
    ([*RANGE, "--group", "wbe", "--format", "json"], "known groups: api, web"),
    ([*RANGE], "say which format: --format html, csv or json"),
    ([*RANGE, "--output", "/no/such/folder/r.html"], "the folder /no/such/folder does not"),
    ([*RANGE, "--format", "json", "--stall-after", "soon"], "--stall-after: 'soon'"),
])
def test_bad_arguments_say_what_to_write(config, capsys, argv, says):
    assert main(["report", "--config", config, *argv]) == 2
    captured = capsys.readouterr()
    assert says in captured.err
    assert captured.out == ""


def test_an_unknown_format_is_refused_by_the_parser(config, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["report", "--config", config, "--format", "xml"])
    assert exit_.value.code == 2
    assert "invalid choice: 'xml'" in capsys.readouterr().err
