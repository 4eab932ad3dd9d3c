"""The facts a cloud kept about its past (launches, terminations, template versions), from
which a fresh install rebuilds the history it did not watch."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

# Where a span came from: a poll that saw it, or the record it was inferred from.
OBSERVED = "observed"


@dataclass(frozen=True)
class Record:
    """One fact, as a cloud kept it.

    `kind`: "launch" (an instance started, on `image_id` when the record says), "terminate"
    (it ended), "seen" (a live instance's own launch time: it has run since `at`), or
    "group_version" (a group's desired image changed to `image_id` at `at`). `source` names
    the record ("cloudtrail", "asg-activity", "launch-template", "launch-time", "audit-log",
    "instance-template", "creation-time"): it is shown with every span inferred from it.
    """

    at: datetime
    kind: str
    source: str
    region: str
    instance_id: str | None = None
    group: str | None = None
    zone: str | None = None
    image_id: str | None = None
    name: str | None = None


@dataclass
class Backfill:
    """What one scope's records say for a time range, and what could not be read (each entry
    a sentence: which record, why, what to grant), so the user knows what the gaps mean."""

    records: list[Record] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    api_calls: int = 0
