"""`fleetview audit verify` and `fleetview audit export`: the audit log from the command line."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from fleetview.actions import audit
from fleetview.config import Config
from fleetview.domain.csv_cells import safe_frame
from fleetview.store import Store


def verify(config: Config, witnesses: Sequence[str] | None = None) -> int:
    """Exit 0 when the chain holds and matches every witness, 1 with what broke otherwise.
    `witnesses`: witness files to check (default: this machine's, see store/witness.py)."""
    paths = None if not witnesses else [Path(w).expanduser() for w in witnesses]
    with Store.open(config.store.url, readonly=True) as store:
        report = audit.verify(store, paths)
    for note in report.notes:
        print(f"fleetview: audit: {note}", file=sys.stderr)
    if report.ok:
        seen = (f"; it matches {report.witnessed} witnessed head"
                f"{'s' if report.witnessed != 1 else ''}" if report.witnessed else
                "; no witness saw it, so deleted last entries or a rewritten chain would "
                "not show")
        print(f"audit log intact: {report.checked} entries, every link holds{seen}")
        return 0
    print(f"audit log BROKEN at entry {report.broken_seq}: {report.problem} "
          f"({report.checked} entries before it hold)", file=sys.stderr)
    return 1


def export(config: Config, fmt: str = "json") -> int:
    with Store.open(config.store.url, readonly=True) as store:
        frame = audit.frame(store)
    frame["at"] = frame["at"].map(lambda t: t.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    if fmt == "csv":
        safe_frame(frame).to_csv(sys.stdout, index=False)
    else:
        records = frame.to_dict(orient="records")
        for record in records:
            record["detail"] = json.loads(record["detail"])
        json.dump(records, sys.stdout, indent=1, default=str)
        sys.stdout.write("\n")
    return 0
