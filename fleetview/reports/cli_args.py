"""The `fleetview report` command's arguments, kept apart so the parser loads no pandas."""

from __future__ import annotations

import argparse

FORMATS = ("html", "csv", "json")


def add_parser(sub, common: argparse.ArgumentParser) -> None:
    report = sub.add_parser(
        "report", parents=[common],
        help="rollouts, rollbacks, delivery metrics and versions over a time range",
        description="A report for a time range from the store: every rollout (duration, "
                    "stalls, pauses, rollbacks), every rollback and replace with its reason, "
                    "delivery metrics after DORA, and where each version ran. HTML is one "
                    "self-contained file with its charts; CSV and JSON carry the same rows.")
    report.add_argument("--since", metavar="DURATION",
                        help="the last DURATION up to now, e.g. 30d, 12h, 2w (default: 30d)")
    report.add_argument("--from", dest="start", metavar="TIME",
                        help="start of the range: 2026-11-01 or 2026-11-01T08:00 (UTC unless "
                             "a zone is given)")
    report.add_argument("--to", dest="end", metavar="TIME",
                        help="end of the range (default: now)")
    report.add_argument("--scope", action="append", metavar="SCOPE",
                        help="only this scope (repeatable, or a,b)")
    report.add_argument("--group", action="append", metavar="GROUP",
                        help="only this group (repeatable, or a,b)")
    report.add_argument("--format", choices=FORMATS,
                        help="html, csv or json (default: from --output's extension)")
    report.add_argument("--output", "-o", metavar="FILE",
                        help="write to FILE instead of stdout")
    report.add_argument("--stall-after", metavar="DURATION",
                        help="a rollout with no new instance on its target this long "
                             "stalled (default: 1h)")
    report.add_argument("--failure-window", metavar="DURATION",
                        help="a rollback of the group this soon after a rollout started "
                             "makes the rollout a failure (default: 24h)")
