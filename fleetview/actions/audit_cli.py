"""`fleetview audit verify` and `fleetview audit export`: the audit log from the command line."""

from __future__ import annotations

import json
import sys

from fleetview.actions import audit
from fleetview.config import Config
from fleetview.store import Store


def verify(config: Config) -> int:
    """Exit 0 when the chain holds, 1 with the first broken link otherwise."""
    with Store.open(config.store.url, readonly=True) as store:
        report = audit.verify(store)
    if report.ok:
        print(f"audit log intact: {report.checked} entries, every link holds")
        return 0
    print(f"audit log BROKEN at entry {report.broken_seq}: {report.problem} "
          f"({report.checked} entries before it hold)", file=sys.stderr)
    return 1


def export(config: Config, fmt: str = "json") -> int:
    with Store.open(config.store.url, readonly=True) as store:
        frame = audit.frame(store)
    frame["at"] = frame["at"].map(lambda t: t.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    if fmt == "csv":
        frame.to_csv(sys.stdout, index=False)
    else:
        records = frame.to_dict(orient="records")
        for record in records:
            record["detail"] = json.loads(record["detail"])
        json.dump(records, sys.stdout, indent=1, default=str)
        sys.stdout.write("\n")
    return 0
