"""The window's state without Qt: the fleet it shows, its history, how fresh each scope's data
is, what the collector says of each scope, rollback readiness, the versions marked bad and
the selection.

Like napari's ViewerModel: the main window changes it (on the GUI thread, with what its loads
and the collector bring), and the widgets subscribe to its events and read it, instead of
reaching into each other or into the window. It imports no Qt (an import-linter contract
checks that), so it is tested as plain Python.
"""

from __future__ import annotations

import inspect
import math
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from fleetview.actions import quarantine
from fleetview.ui.timeline_data import TimelineData

GroupKey = tuple[str, str, str]  # (scope, region, group)


class Emitter:
    """The callbacks for one kind of change: `connect(fn)`, `disconnect(fn)`, `emit(*args)`.

    Callbacks run at once, in the order they connected, on the emitting thread. A bound method
    is held weakly, so a widget that is gone is not called and is not kept alive; a plain
    function or lambda is held as long as it is connected.
    """

    def __init__(self, name: str = ""):
        self.name = name
        self._callbacks: list[Callable[[], Callable | None]] = []

    def connect(self, callback: Callable) -> Callable:
        if inspect.ismethod(callback):
            self._callbacks.append(weakref.WeakMethod(callback))
        else:
            self._callbacks.append(lambda cb=callback: cb)
        return callback

    def disconnect(self, callback: Callable) -> None:
        self._callbacks = [ref for ref in self._callbacks if ref() not in (None, callback)]

    def emit(self, *args: Any) -> None:
        dead = False
        for ref in list(self._callbacks):
            callback = ref()
            if callback is None:
                dead = True
                continue
            callback(*args)
        if dead:
            self._callbacks = [ref for ref in self._callbacks if ref() is not None]

    def __len__(self) -> int:
        return sum(1 for ref in self._callbacks if ref() is not None)

    def __repr__(self) -> str:
        return f"<Emitter {self.name} ({len(self)} connected)>"


@dataclass
class Freshness:
    """How fresh one scope/region's data is: the last poll, the last good one, its error."""

    last_poll: float = math.nan
    last_ok: float = math.nan
    ok: bool = True
    error: str | None = None

    def status(self, now: float, interval_s: float) -> str:
        """"ok", "stale" (no good poll for 3 intervals) or "error" (the last poll failed)."""
        if not self.ok:
            return "error"
        if not math.isfinite(self.last_ok) or now - self.last_ok > 3 * interval_s:
            return "stale"
        return "ok"

    @staticmethod
    def worst(items: list[Freshness]) -> Freshness:
        if not items:
            return Freshness()
        failing = [f for f in items if not f.ok]
        if failing:
            return failing[0]
        return min(items, key=lambda f: f.last_ok if math.isfinite(f.last_ok) else -math.inf)


def format_age(seconds: float) -> str:
    """`12 s ago`, `4 min ago`, `3 h ago`, `2 d ago`."""
    if not math.isfinite(seconds):
        return "never"
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


def short_reason(error: str | None, limit: int = 40) -> str:
    """An error's first clause, short enough for a tree row: the whole is in its tooltip."""
    text = " ".join(str(error or "poll failed").split())
    # "what failed: why (the SDK's words); what to do": what failed and why.
    for stop in ("; ", " (", ". "):
        head = text.split(stop, 1)[0]
        if len(head) >= 8:
            text = head
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def age_look(f: Freshness, now: float, interval_s: float, *where: str
             ) -> tuple[str, str, str | None]:
    """(text, tooltip, status) of the age of one scope/region's data; status is None (ok),
    "stale" (no good poll for 3 intervals) or "error" (its last poll failed)."""
    if not math.isfinite(f.last_poll):
        return "", "", None
    name = " / ".join(w for w in where if w)
    text = format_age(now - f.last_ok) if math.isfinite(f.last_ok) else "never"
    status = f.status(now, interval_s)
    if status == "error":
        return (f"⚠ {text}", f"{name}: last poll failed ({f.error or 'unknown error'}); "
                f"data from the last successful poll, {text}", "error")
    if status == "stale":
        return (f"⚠ {text}", f"{name}: stale, no successful poll for more than 3 poll "
                f"intervals (last {text})", "stale")
    return text, f"{name}: last successful poll {text}", None


def freshness_by_region(df: pd.DataFrame | None) -> dict[tuple[str, str], Freshness]:
    """`store.freshness()` rows as {(scope, region): Freshness}."""
    out: dict[tuple[str, str], Freshness] = {}
    if df is None or not len(df):
        return out
    for row in df.itertuples(index=False):
        last_poll = pd.Timestamp(row.last_poll)
        last_ok = pd.Timestamp(row.last_ok)
        out[(str(row.scope), str(row.region or ""))] = Freshness(
            last_poll=last_poll.timestamp() if not pd.isna(last_poll) else math.nan,
            last_ok=last_ok.timestamp() if not pd.isna(last_ok) else math.nan,
            ok=bool(row.ok),
            error=None if row.error is None or pd.isna(row.error) else str(row.error),
        )
    return out


@dataclass
class ScopeHealth:
    """One scope as the collector (this session) and the store's last polls tell it."""

    name: str
    reported: bool = False  # the collector has said something of it since the window opened
    polling: bool = False
    summary: str = ""  # of its last poll: "120 instances in 3.2 s"
    errors: dict[str | None, str] = field(default_factory=dict)  # region (None: all) -> why


def _empty_frame() -> pd.DataFrame:
    return pd.DataFrame()


# The fleet column that says why an instance's version is marked bad (None: it is not).
BAD_COLUMN = "marked_bad"


def bad_versions_of(marks: Iterable[quarantine.BadMark], scope: str, region: str,
                    group: str | None) -> dict[str, str]:
    """The versions marked bad for one group (None: a standalone instance, which only a
    quarantine of every group reaches) -> why, as `quarantine.bad_for` matches them."""
    found = quarantine.bad_for(None, scope, region, group, every=list(marks))
    return {version: mark.describe() for version, mark in found.items()}


def bad_reasons(fleet: pd.DataFrame, marks: Iterable[quarantine.BadMark]) -> np.ndarray:
    """For each row of `fleet` (scope, region, group, version), why its version is marked
    bad, or None. Worked out once per (scope, region, group), not per row: run off the GUI
    thread at fleet loads."""
    marks = tuple(marks)
    out = np.full(len(fleet), None, dtype=object)
    if not marks or not len(fleet):
        return out
    bad = {m.version for m in marks}
    version = fleet["version"].astype(object).to_numpy()
    candidates = np.flatnonzero(pd.Series(version).isin(bad).to_numpy())
    if not len(candidates):
        return out
    rows = fleet.iloc[candidates]
    groups = rows["group"].astype(object).where(rows["group"].notna(), None).to_numpy()
    known: dict[tuple, dict[str, str]] = {}
    for n, scope, region, group, v in zip(candidates, rows["scope"].astype(str),
                                          rows["region"].astype(str), groups,
                                          version[candidates], strict=True):
        key = (scope, region, group)
        if key not in known:
            known[key] = bad_versions_of(marks, scope, region, group)
        out[n] = known[key].get(v)
    return out


@dataclass(frozen=True)
class FleetFrame:
    """The fleet as of a moment, with what its views show already worked out off the GUI
    thread: the scope tree's nodes (`scope_tree.build_nodes`) and the table's formatted rows
    (`fleet_table.prepare_rows`)."""

    fleet: pd.DataFrame = field(default_factory=_empty_frame)
    groups: pd.DataFrame = field(default_factory=_empty_frame)
    nodes: dict = field(default_factory=dict)
    rows: Any = None
    version_counts: dict = field(default_factory=dict)
    # The bad-version marks the fleet's BAD_COLUMN was worked out from; None: not read.
    bad_marks: tuple | None = None


class WindowState:
    """What the window shows. Change it with its methods; subscribe to its emitters:

    - `fleet_changed(frame)`: a new fleet frame (after a poll, or the scrubber moved)
    - `history_changed(history, first)`: the timeline's spans; `first` for the first ones
    - `freshness_changed(freshness)`: {(scope, region): Freshness} from the store's polls
    - `scope_added(name)`, `scope_changed(health)`: a scope's polls and errors
    - `readiness_changed(readiness)`: rollback readiness by group key
    - `markers_changed(frame)`: the actions to mark on the timeline (time, label)
    - `bad_changed(marks)`: the versions marked bad (`quarantine.BadMark`s) changed
    - `group_selected(key)`, `instance_selected(instance_id, source)`: the selection; the
      source ("tree", "table", "timeline", "palette", ...) is the widget it came from
    - `message(text, timeout_ms)`: a word for the status bar
    """

    def __init__(self) -> None:
        self.frame = FleetFrame()
        self.history = TimelineData()
        self.history_loads = 0
        self.freshness: dict[tuple[str, str], Freshness] = {}
        self.scopes: dict[str, ScopeHealth] = {}
        self.readiness: dict[GroupKey, Any] = {}
        self.markers: pd.DataFrame | None = None
        self.bad_marks: tuple[quarantine.BadMark, ...] = ()
        self.selected_group: GroupKey | None = None
        self.selected_instance: str | None = None

        self.fleet_changed = Emitter("fleet_changed")
        self.history_changed = Emitter("history_changed")
        self.freshness_changed = Emitter("freshness_changed")
        self.scope_added = Emitter("scope_added")
        self.scope_changed = Emitter("scope_changed")
        self.readiness_changed = Emitter("readiness_changed")
        self.markers_changed = Emitter("markers_changed")
        self.bad_changed = Emitter("bad_changed")
        self.group_selected = Emitter("group_selected")
        self.instance_selected = Emitter("instance_selected")
        self.message = Emitter("message")

    # -- the fleet and its history ------------------------------------------------------------
    @property
    def fleet(self) -> pd.DataFrame:
        return self.frame.fleet

    @property
    def groups(self) -> pd.DataFrame:
        return self.frame.groups

    def set_frame(self, frame: FleetFrame) -> None:
        self.frame = frame
        if frame.bad_marks is not None:
            self.set_bad_marks(frame.bad_marks)
        self.fleet_changed.emit(frame)

    def set_history(self, history: TimelineData) -> None:
        self.history = history
        self.history_loads += 1
        self.history_changed.emit(history, self.history_loads == 1)

    def instance_row(self, instance_id: str) -> pd.Series | None:
        """The instance's row in the fleet shown, or None if it is not in it."""
        fleet = self.fleet
        if not len(fleet):
            return None
        hit = fleet[fleet["instance_id"] == instance_id]
        return hit.iloc[0] if len(hit) else None

    def scope_of(self, instance_id: str) -> str | None:
        row = self.instance_row(instance_id)
        return None if row is None else str(row["scope"])

    def grouped_instances(self) -> pd.DataFrame:
        """The instances shown that belong to a group (those a replacement can act on)."""
        fleet = self.fleet
        return fleet[fleet["group"].notna()] if len(fleet) else fleet

    def desired_version(self, scope: str, region: str, group: str) -> str | None:
        groups = self.groups
        if not len(groups):
            return None
        hit = groups[(groups["scope"] == scope) & (groups["region"] == region)
                     & (groups["group"] == group)]
        if not len(hit) or pd.isna(hit["desired_version"].iat[0]):
            return None
        return str(hit["desired_version"].iat[0])

    def group_keys(self) -> list[GroupKey]:
        groups = self.groups
        if not len(groups):
            return []
        return [(str(s), str(r), str(g)) for s, r, g in
                zip(groups["scope"], groups["region"], groups["group"], strict=True)]

    # -- freshness and the collector's word ---------------------------------------------------
    def set_freshness(self, df: pd.DataFrame | None) -> None:
        """The store's last polls: how fresh each region is, and (for every scope, until the
        collector says otherwise) whether its last poll failed."""
        self.freshness = freshness_by_region(df)
        self.freshness_changed.emit(self.freshness)
        if df is None or not len(df):
            return
        for scope, rows in df.groupby("scope"):
            health = self.scope(str(scope))
            for row in rows.itertuples(index=False):
                region = str(row.region) if row.region is not None else None
                self._set_error(health, region, None if row.ok else str(row.error or
                                                                          "poll failed"))
            self.scope_changed.emit(health)

    def scope(self, name: str) -> ScopeHealth:
        """The scope's health, made (and announced) the first time it is named."""
        health = self.scopes.get(name)
        if health is None:
            health = self.scopes[name] = ScopeHealth(name)
            self.scope_added.emit(name)
        return health

    def add_scopes(self, names: Iterable[str]) -> None:
        for name in names:
            self.scope(str(name))

    def poll_started(self, scope: str) -> None:
        health = self.scope(scope)
        health.reported = health.polling = True
        self.scope_changed.emit(health)

    def poll_finished(self, scope: str, summary: str,
                      errors: Mapping[str | None, str] | None = None) -> None:
        """A poll written: its summary, and its errors replace the scope's earlier ones."""
        health = self.scope(scope)
        health.reported, health.polling = True, False
        health.summary = summary
        health.errors = {region: message for region, message in (errors or {}).items()
                         if message}
        self.scope_changed.emit(health)

    def scope_failed(self, scope: str, region: str | None, message: str | None) -> None:
        """A region's (region None: the whole scope's) error, or None when it cleared."""
        health = self.scope(scope)
        self._set_error(health, region, message)
        self.scope_changed.emit(health)

    @staticmethod
    def _set_error(health: ScopeHealth, region: str | None, message: str | None) -> None:
        if message:
            health.errors[region] = message
        else:
            health.errors.pop(region, None)

    def polling(self) -> bool:
        return any(h.polling for h in self.scopes.values())

    # -- what actions know --------------------------------------------------------------------
    def set_readiness(self, readiness: Mapping[GroupKey, Any]) -> None:
        self.readiness = dict(readiness)
        self.readiness_changed.emit(self.readiness)

    def set_markers(self, markers: pd.DataFrame | None) -> None:
        self.markers = markers
        self.markers_changed.emit(markers)

    def set_bad_marks(self, marks: Iterable[quarantine.BadMark]) -> None:
        marks = tuple(marks)
        if marks == self.bad_marks:
            return
        self.bad_marks = marks
        self.bad_changed.emit(marks)

    def bad_versions(self, scope: str, region: str, group: str | None) -> dict[str, str]:
        """The versions marked bad for a group (None: standalone) -> why."""
        return bad_versions_of(self.bad_marks, scope, region, group)

    def bad_reason(self, scope: str, region: str, group: str | None,
                   version: str | None) -> str | None:
        """Why `version` is marked bad for the group, or None."""
        if version is None or not any(m.version == version for m in self.bad_marks):
            return None
        return self.bad_versions(scope, region, group).get(version)

    def quarantined(self) -> dict[str, quarantine.BadMark]:
        """The versions quarantined for every group (what "Lift quarantine" lifts)."""
        return {m.version: m for m in self.bad_marks
                if m.scope is None and m.group is None and m.source == "quarantine"}

    def say(self, text: str, timeout_ms: int = 0) -> None:
        self.message.emit(text, timeout_ms)

    # -- selection ----------------------------------------------------------------------------
    def select_group(self, key: GroupKey | None) -> None:
        self.selected_group = tuple(key) if key is not None else None  # type: ignore[assignment]
        self.group_selected.emit(self.selected_group)

    def select_instance(self, instance_id: str | None, source: str = "") -> None:
        self.selected_instance = instance_id
        self.instance_selected.emit(instance_id, source)
