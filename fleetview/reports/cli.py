"""`fleetview report`: a report from the store to stdout or a file, as HTML, CSV or JSON."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from fleetview.config import Config
from fleetview.reports.export import render
from fleetview.reports.params import ReportArgumentError, ReportParams
from fleetview.reports.report import build_report, check_names
from fleetview.store import Store

EXIT_OK, EXIT_USAGE = 0, 2
_EXTENSIONS = {".html": "html", ".htm": "html", ".csv": "csv", ".json": "json"}


def _format(args: argparse.Namespace) -> str:
    if args.format:
        return args.format
    if args.output:
        found = _EXTENSIONS.get(Path(args.output).suffix.lower())
        if found:
            return found
    raise ReportArgumentError("say which format: --format html, csv or json (or give "
                              "--output a .html, .csv or .json file)")


def _write(text: str, output: str | None) -> None:
    if output is None or output == "-":
        sys.stdout.write(text)
        return
    path = Path(output).expanduser()
    if not path.parent.is_dir():
        raise ReportArgumentError(f"--output: the folder {path.parent} does not exist; "
                                  "create it or write elsewhere")
    # Written beside it and moved into place: an interrupted run leaves no half report.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def run(args: argparse.Namespace, config: Config) -> int:
    try:
        fmt = _format(args)
        params = ReportParams.from_words(
            since=args.since, start=args.start, end=args.end, scopes=args.scope,
            groups=args.group, stall_after=args.stall_after,
            failure_window=args.failure_window)
        with Store.open(config.store.url, readonly=True) as store:
            check_names(store, params)
            report = build_report(store, params)
        _write(render(report, fmt), args.output)
    except ReportArgumentError as exc:
        print(f"fleetview report: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.output and args.output != "-":
        m = report.metrics
        print(f"fleetview report: wrote {args.output} ({fmt}): {len(report.rollouts)} "
              f"rollouts, {len(report.actions)} rollbacks and replaces, {m.deployments} "
              "deployments", file=sys.stderr)
    return EXIT_OK
