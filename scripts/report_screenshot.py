"""Render an HTML report of a made-up six-week history in headless Chromium, to
docs/screenshots/report.png (for the README).

    python scripts/report_screenshot.py [--out docs/screenshots/report.png] [--html FILE]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pytest  # noqa: E402

from fleetview.actions import audit, journal  # noqa: E402
from fleetview.actions.journal import Journal  # noqa: E402
from fleetview.domain.actions import ActionPlan  # noqa: E402
from fleetview.reports.export import to_html  # noqa: E402
from fleetview.reports.params import ReportParams  # noqa: E402
from fleetview.reports.report import build_report  # noqa: E402
from fleetview.store import Store  # noqa: E402
from fleetview.store.times import to_us  # noqa: E402
from tests.benchmarks import bench_report  # noqa: E402

GROUPS, PER_GROUP, DAYS = 10, 12, 42
REASONS = ("5xx rate above 2% after the deploy", "p99 latency doubled",
           "checkout fails on the new image")


def _journal_rollbacks(store: Store, report) -> None:
    """A rollback action for each rollout the history undid, two hours in, as an on-call
    engineer would have confirmed it."""
    clock = {"now": 0}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(journal, "now_us", lambda: clock["now"])
        patch.setattr(audit, "now_us", lambda: clock["now"])
        book = Journal(store)
        failed = [r for r in report.rollouts if r.status == "rolled back"]
        for n, r in enumerate(failed):
            plan = ActionPlan("rollback", "aws", r.scope, r.region, r.group, (),
                              (r.to_version,), r.from_version, f"ami-{r.from_version}", (),
                              "instance-refresh")
            clock["now"] = r.start + 2 * bench_report.HOUR
            reason, actor = REASONS[n % len(REASONS)], ("dana", "lee", "sam")[n % 3]
            action_id = book.create(plan, reason, actor)
            audit.append(store, "plan_confirmed", actor, action_id=action_id, scope=r.scope,
                         region=r.region, group=r.group, reason=reason,
                         detail={"kind": "rollback"})
            clock["now"] = r.restored
            book.finish(action_id, "recovered", "converged", recovered_us=r.restored)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots" / "report.png")
    parser.add_argument("--html", type=Path, help="also keep the HTML report here")
    args = parser.parse_args(argv)
    browser = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")
                    if shutil.which(b)), None)
    if browser is None:
        print("no Chromium found: apt-get install chromium", file=sys.stderr)
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="fleetview-report-shot-"))
    spans, groups, images = bench_report._history(GROUPS * PER_GROUP, DAYS, PER_GROUP, seed=5)
    end = bench_report.T0 + timedelta(days=DAYS)
    url = f"sqlite:///{tmp / 'history.db'}"
    params = ReportParams(bench_report.T0, end, stall_after=timedelta(minutes=90))
    with Store.open(url) as store:
        bench_report._fill(store, spans, groups, images, to_us(end))
        _journal_rollbacks(store, build_report(store, params, now=end))
        report = build_report(store, params, now=end)
    page = tmp / "report.html"
    page.write_text(to_html(report), encoding="utf-8")
    if args.html:
        shutil.copy(page, args.html)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--no-first-run", f"--user-data-dir={tmp / 'profile'}",
                    "--window-size=1200,1700", f"--screenshot={args.out}", page.as_uri()],
                   check=True, capture_output=True, timeout=120)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
