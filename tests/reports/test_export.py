"""CSV, JSON and HTML carry the same rows; the HTML is one self-contained page that opens in
headless Chromium."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from fleetview.reports.export import SECTIONS, csv_cell, rows, to_csv, to_html, to_json
from fleetview.reports.params import ReportParams
from fleetview.reports.report import build_report
from fleetview.store import Store
from tests.helpers import report_history as known


@pytest.fixture(scope="module")
def seeded_url(tmp_path_factory):
    """SQLite only: the exports read the report, not the database (test_report.py runs on
    both)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('export') / 'history.db'}"
    with Store.open(url) as store:
        known.seed(store)
    return url


def _csv_sections(text: str) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = {}
    header: list[str] = []
    for line in csv.reader(io.StringIO(text)):
        if not line:
            continue
        if line[0] == "section":
            header = line[1:]
            continue
        out.setdefault(line[0], []).append(dict(zip(header, line[1:], strict=True)))
    return out


def test_csv_and_json_carry_the_same_rows(report):
    expected = rows(report)
    from_json = json.loads(to_json(report))
    assert from_json == expected
    from_csv = _csv_sections(to_csv(report))
    for section in SECTIONS:
        assert from_csv.get(section, []) == [
            {k: csv_cell(v) for k, v in row.items()} for row in expected[section]], section
    assert len(from_csv["rollouts"]) == 6 and len(from_csv["actions"]) == 2
    assert len(from_csv["versions"]) == 7


def test_rows_say_the_figures_in_plain_units(report):
    r = rows(report)
    first = r["rollouts"][0]
    assert (first["group"], first["start"], first["end"], first["duration_s"]) == \
        ("web", "2026-01-01T10:00:00Z", "2026-01-01T13:00:00Z", 10800.0)
    metrics = {m["metric"]: m["value"] for m in r["metrics"]}
    assert metrics["change_failure_rate"] == 0.5
    assert metrics["time_to_restore_median"] == 14400.0
    assert r["actions"][0]["reason"] == "1.2 returns 500s"


def test_a_formula_in_a_reason_is_text_in_the_csv(report):
    risky = report.actions[0].__class__(**{**report.actions[0].__dict__,
                                           "reason": "=HYPERLINK(\"x\")"})
    changed = report.__class__(**{**report.__dict__, "actions": [risky]})
    assert "'=HYPERLINK" in to_csv(changed)


def test_an_empty_range_still_has_every_section(seeded):
    report = build_report(seeded, ReportParams(known.h(-300), known.h(-200)))
    sections = _csv_sections(to_csv(report))
    assert "rollouts" not in sections  # no rows, but its header is there:
    assert "section,scope,region,group,from_version" in to_csv(report)
    assert "None in this range." in to_html(report)


class _Tables(HTMLParser):
    """The text of each table's body cells, and every attribute that could fetch something."""

    def __init__(self):
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.fetching: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href", "xlink:href") or (value and "url(" in value):
                self.fetching.append(f"{tag} {name}={value}")
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag == "td":
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def test_the_html_holds_the_same_rows_and_fetches_nothing(report):
    page = to_html(report)
    parser = _Tables()
    parser.feed(page)
    assert parser.fetching == []
    assert "<script" not in page
    assert "default-src 'none'" in page
    rollouts, actions, versions = ([r for r in t if r] for t in parser.tables)
    expected = rows(report)
    assert [(c[0], c[1], c[2]) for c in rollouts] == [
        (f"{r['scope']}/{r['region']}/{r['group']}",
         f"{r['from_version']} → {r['to_version']}", r["status"]) for r in expected["rollouts"]]
    assert [(c[0], c[4], c[5]) for c in actions] == [
        (a["kind"], a["actor"], a["reason"]) for a in expected["actions"]]
    assert [c[0] for c in versions] == [v["version"] for v in expected["versions"]]
    assert "8.4 / week" in page and "50%" in page
    # Three charts, inline.
    assert page.count("<svg") == 3


def _chromium() -> str | None:
    return next((found for name in ("chromium", "chromium-browser", "google-chrome",
                                    "google-chrome-stable")
                 if (found := shutil.which(name))), None)


def test_the_html_opens_in_headless_chromium(report, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("no Chromium binary found (apt-get install chromium); the HTML report's "
                    "rendering is not checked")
    page = tmp_path / "report.html"
    page.write_text(to_html(report), encoding="utf-8")
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*flags, "--dump-dom", page.as_uri()], capture_output=True,
                         text=True, timeout=120, check=True).stdout
    assert "Rollouts (6)" in dom and "1.2 returns 500s" in dom
    assert len(re.findall(r"<svg", dom)) == 3
    shot = tmp_path / "report.png"
    subprocess.run([*flags, "--window-size=1200,1600", f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=120, check=True)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_names_from_the_cloud_are_text_in_the_html(report):
    odd = "<img src=x onerror=alert(1)>"
    rollouts = [report.rollouts[0].__class__(**{**report.rollouts[0].__dict__, "group": odd,
                                                "to_version": odd})]
    lanes = {f"prod/us-east-1/{odd}": next(iter(report.lanes.values()))}
    page = to_html(report.__class__(**{**report.__dict__, "rollouts": rollouts,
                                       "lanes": lanes}))
    parser = _Tables()
    parser.feed(page)
    assert parser.fetching == []
    assert odd not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
