"""The collector's event protocol: one JSON object a line on `fleetview collect`'s stdout.

The collector writes these lines and the window reads them (fleetview/ui/collector_process.py);
both ends use the classes here, so a field cannot mean one thing on one side and another on
the other. Each line is `{"event": NAME, "time": ISO-8601, ...fields}`.

A reader ignores fields it does not know (a newer collector may add some) and fills the ones a
line leaves out with their defaults; a line that is not an object, names no known event, lacks
a required field or has a field of the wrong type is refused with a `ProtocolError` that says
which and why.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any, ClassVar, TextIO


class ProtocolError(ValueError):
    """A line that is not a collector event; the message says what is wrong with it."""


# -- reading one field ------------------------------------------------------------------------
_MISSING = object()


def _typed(check: Callable[[Any], bool], what: str):
    def read(event: str, data: Mapping, key: str, default: Any) -> Any:
        value = data.get(key, _MISSING)
        if value is _MISSING or value is None:  # null: the field's default
            if default is _MISSING:
                raise ProtocolError(f"{event} event without {key!r}")
            return default
        if not check(value):
            raise ProtocolError(f"{event} event: {key!r} must be {what}, not {value!r}")
        return value
    return read


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


_str = _typed(lambda v: isinstance(v, str), "a string")
_int = _typed(_is_int, "an integer")
_float = _typed(lambda v: _is_int(v) or isinstance(v, float), "a number")
_bool = _typed(lambda v: isinstance(v, bool), "true or false")
_names = _typed(lambda v: isinstance(v, list) and all(isinstance(n, str) for n in v),
                "a list of strings")
_list = _typed(lambda v: isinstance(v, list), "a list")


@dataclass(frozen=True)
class RegionFailure:
    """One region a poll could not read; `region` None: the whole scope."""

    region: str | None
    message: str

    def to_dict(self) -> dict:
        return {"region": self.region, "message": self.message}

    @classmethod
    def from_dict(cls, event: str, data: Any) -> RegionFailure:
        if not isinstance(data, Mapping):
            raise ProtocolError(f"{event} event: each region error must be an object, "
                                f"not {data!r}")
        return cls(_str(event, data, "region", None), _str(event, data, "message", "failed"))


# -- the events -------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class CollectorEvent:
    """What every line carries: its event name (a class constant) and when it was written."""

    EVENT: ClassVar[str] = ""
    time: str | None = None  # ISO 8601, UTC; set by the writer

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"event": self.EVENT, "time": self.time}
        for f in fields(self):
            if f.name != "time":
                value = getattr(self, f.name)
                if isinstance(value, tuple):
                    value = [v.to_dict() if isinstance(v, RegionFailure) else v for v in value]
                out[f.name] = value
        return out

    def to_json(self) -> str:
        """The line, without its newline."""
        return json.dumps(self.to_dict(), default=str)

    @classmethod
    def _fields(cls, data: Mapping) -> dict:
        raise NotImplementedError

    @classmethod
    def from_dict(cls, data: Mapping) -> CollectorEvent:
        return cls(time=_str(cls.EVENT, data, "time", None), **cls._fields(data))


@dataclass(frozen=True, kw_only=True)
class CollectorStarted(CollectorEvent):
    EVENT: ClassVar[str] = "collector_started"
    scopes: tuple[str, ...] = ()
    pid: int | None = None
    store: str | None = None
    interval_s: float | None = None
    once: bool = False

    @classmethod
    def _fields(cls, d: Mapping) -> dict:
        e = cls.EVENT
        return {"scopes": tuple(_names(e, d, "scopes", [])), "pid": _int(e, d, "pid", None),
                "store": _str(e, d, "store", None),
                "interval_s": _float(e, d, "interval_s", None),
                "once": _bool(e, d, "once", False)}


@dataclass(frozen=True, kw_only=True)
class PollStarted(CollectorEvent):
    EVENT: ClassVar[str] = "poll_started"
    scope: str
    provider: str | None = None

    @classmethod
    def _fields(cls, d: Mapping) -> dict:
        return {"scope": _str(cls.EVENT, d, "scope", _MISSING),
                "provider": _str(cls.EVENT, d, "provider", None)}


@dataclass(frozen=True, kw_only=True)
class PollFinished(CollectorEvent):
    """A poll written to the store: `ok` False when the scope or a region failed."""

    EVENT: ClassVar[str] = "poll_finished"
    scope: str
    provider: str | None = None
    ok: bool = True
    error: str | None = None  # the whole scope failed
    instances: int | None = None
    groups: int | None = None
    api_calls: int | None = None
    duration_s: float | None = None
    opened: int | None = None
    closed: int | None = None
    unchanged: int | None = None
    gone: int | None = None
    region_errors: tuple[RegionFailure, ...] = ()

    @classmethod
    def _fields(cls, d: Mapping) -> dict:
        e = cls.EVENT
        counts = {k: _int(e, d, k, None) for k in ("instances", "groups", "api_calls",
                                                     "opened", "closed", "unchanged", "gone")}
        return {"scope": _str(e, d, "scope", _MISSING), "provider": _str(e, d, "provider", None),
                "ok": _bool(e, d, "ok", True), "error": _str(e, d, "error", None),
                "duration_s": _float(e, d, "duration_s", None), **counts,
                "region_errors": tuple(RegionFailure.from_dict(e, r)
                                       for r in _list(e, d, "region_errors", []))}

    @property
    def summary(self) -> str:
        """`120 instances in 3.2 s`, said of the poll in the status bar."""
        text = f"{self.instances} instances" if self.instances is not None else "polled"
        if self.duration_s is not None:
            text += f" in {float(self.duration_s):.1f} s"
        return text


def _message(event: str, d: Mapping, default: str) -> str:
    # The window has always read `error` where `message` is missing.
    message = _str(event, d, "message", None)
    return message if message is not None else _str(event, d, "error", default)


@dataclass(frozen=True, kw_only=True)
class ScopeError(CollectorEvent):
    """A scope (`region` None) or one of its regions failed to poll."""

    EVENT: ClassVar[str] = "scope_error"
    scope: str
    provider: str | None = None
    region: str | None = None
    message: str = "poll failed"

    @classmethod
    def _fields(cls, d: Mapping) -> dict:
        e = cls.EVENT
        return {"scope": _str(e, d, "scope", _MISSING), "provider": _str(e, d, "provider", None),
                "region": _str(e, d, "region", None), "message": _message(e, d, "poll failed")}


@dataclass(frozen=True, kw_only=True)
class StoreError(CollectorEvent):
    """The collector cannot write the store: it retries (`retry_in_s`) unless `fatal`."""

    EVENT: ClassVar[str] = "store_error"
    message: str = ""
    pending: int = 0
    retry_in_s: float | None = None
    fatal: bool = False

    @classmethod
    def _fields(cls, d: Mapping) -> dict:
        e = cls.EVENT
        return {"message": _message(e, d, ""), "pending": _int(e, d, "pending", 0),
                "retry_in_s": _float(e, d, "retry_in_s", None),
                "fatal": _bool(e, d, "fatal", False)}


@dataclass(frozen=True, kw_only=True)
class StoreOk(CollectorEvent):
    """The store is writable again."""

    EVENT: ClassVar[str] = "store_ok"
    pending: int = 0

    @classmethod
    def _fields(cls, d: Mapping) -> dict:
        return {"pending": _int(cls.EVENT, d, "pending", 0)}


@dataclass(frozen=True, kw_only=True)
class PollsDropped(CollectorEvent):
    """The store was down so long that buffered polls were dropped, oldest first."""

    EVENT: ClassVar[str] = "polls_dropped"
    scope: str | None = None
    dropped: int = 0
    message: str = "the collector dropped polls"

    @classmethod
    def _fields(cls, d: Mapping) -> dict:
        e = cls.EVENT
        return {"scope": _str(e, d, "scope", None), "dropped": _int(e, d, "dropped", 0),
                "message": _message(e, d, "the collector dropped polls")}


@dataclass(frozen=True, kw_only=True)
class BackfillFinished(CollectorEvent):
    """A scope's history rebuilt from its cloud's records and written (`ok`), or why not;
    `message` says what was written, the gaps left and what was skipped."""

    EVENT: ClassVar[str] = "backfill_finished"
    scope: str
    ok: bool = True
    spans: int = 0
    group_spans: int = 0
    api_calls: int = 0
    message: str = ""

    @classmethod
    def _fields(cls, d: Mapping) -> dict:
        e = cls.EVENT
        return {"scope": _str(e, d, "scope", _MISSING), "ok": _bool(e, d, "ok", True),
                "spans": _int(e, d, "spans", 0), "group_spans": _int(e, d, "group_spans", 0),
                "api_calls": _int(e, d, "api_calls", 0), "message": _str(e, d, "message", "")}


@dataclass(frozen=True, kw_only=True)
class CollectorStopped(CollectorEvent):
    EVENT: ClassVar[str] = "collector_stopped"
    reason: str = ""
    unwritten: int = 0

    @classmethod
    def _fields(cls, d: Mapping) -> dict:
        return {"reason": _str(cls.EVENT, d, "reason", ""),
                "unwritten": _int(cls.EVENT, d, "unwritten", 0)}


EVENT_TYPES: dict[str, type[CollectorEvent]] = {cls.EVENT: cls for cls in (
    CollectorStarted, PollStarted, PollFinished, ScopeError, StoreError, StoreOk,
    PollsDropped, BackfillFinished, CollectorStopped)}
EVENTS = tuple(EVENT_TYPES)


# -- both ends --------------------------------------------------------------------------------
def _shown(line: object) -> str:
    text = line if isinstance(line, str) else repr(line)
    return text if len(text) <= 200 else text[:200] + "…"


def from_dict(data: object) -> CollectorEvent:
    """The event a decoded line describes, or ProtocolError."""
    if not isinstance(data, Mapping):
        raise ProtocolError(f"a collector line must be a JSON object, not {_shown(data)}")
    name = data.get("event")
    if not isinstance(name, str):
        raise ProtocolError(f"a collector line without an \"event\" name: {_shown(dict(data))}")
    cls = EVENT_TYPES.get(name)
    if cls is None:
        raise ProtocolError(f"unknown collector event {name!r}; the events are: "
                            f"{', '.join(EVENTS)}")
    return cls.from_dict(data)


def parse_line(line: str | bytes) -> CollectorEvent:
    """One line of the collector's stdout as an event, or ProtocolError saying why not."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", "replace")
    try:
        data = json.loads(line)
    except ValueError:
        raise ProtocolError(f"not a JSON line: {_shown(line.strip())}") from None
    return from_dict(data)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class EventStream:
    """The writing end: one JSON line per event, stamped now; lines from several threads
    never interleave."""

    def __init__(self, out: TextIO, clock: Callable[[], str] = _now_iso):
        self._out = out
        self._clock = clock
        self._lock = threading.Lock()

    def emit(self, event: CollectorEvent) -> None:
        stamped = {**event.to_dict(), "time": self._clock()}
        line = json.dumps(stamped, default=str)
        with self._lock:
            try:
                self._out.write(line + "\n")
                self._out.flush()
            except (BrokenPipeError, ValueError):
                pass  # the reader (the GUI) is gone; keep collecting into the store
