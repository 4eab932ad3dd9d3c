"""The Cloud Logging API's entries.list as the emulator serves it (POST /v2/entries:list): the
audit log filtered by a subset of the Logging query language, paged, under the read quota."""

from __future__ import annotations

import base64
import bisect
import json
import re
import threading
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any

from fleetview.sim.gce import errors
from fleetview.sim.gce.audit import Stored
from fleetview.sim.gce.state import GceState

METHOD_ID = "logging.entries.list"
PERMISSION = "logging.logEntries.list"
DEFAULT_PAGE = 50
MAX_PAGE = 1000
# Cloud Logging's documented read quota: entries.list requests per minute per project.
READS_PER_MINUTE = 60

_STATUS = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
           429: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE"}


class LoggingError(Exception):
    """An error in the shape Cloud Logging answers with (code, message, status)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message,
                          "status": _STATUS.get(self.code, "UNKNOWN")}}


# ---- the query language (the subset FleetView and the tests write) -------------------------

_TOKEN = re.compile(r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<op>>=|<=|!=|=|>|<|:)|(?P<lp>\()'
                    r'|(?P<rp>\))|(?P<word>[^\s()=<>!:"]+))')
Predicate = Callable[[dict[str, Any]], bool]


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise LoggingError(400, f"Unparseable filter: unexpected text at {pos}: "
                                    f"{text[pos:pos + 20]!r}")
        kind = m.lastgroup or ""
        value = m.group(kind)
        if kind == "str":
            value = json.loads(value)
        out.append((kind, value))
        pos = m.end()
    return out


def _field(entry: dict[str, Any], path: str) -> Any:
    value: Any = entry
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _compare(field_value: Any, op: str, wanted: str, is_time: bool) -> bool:
    if field_value is None:
        return op == "!="
    if isinstance(field_value, bool):
        field_value = str(field_value).lower()
    value = str(field_value)
    if op == ":":
        return wanted.lower() in value.lower()
    if is_time:
        left, right = _time(value), _time(wanted)
        if left is None or right is None:
            return False
        return {"=": left == right, "!=": left != right, ">": left > right,
                ">=": left >= right, "<": left < right, "<=": left <= right}[op]
    return {"=": value == wanted, "!=": value != wanted, ">": value > wanted,
            ">=": value >= wanted, "<": value < wanted, "<=": value <= wanted}[op]


class Query:
    """A filter: comparisons joined by AND (or new lines), each `[NOT] field op value` where
    value is a string, a bare word, or `(v1 OR v2 ...)`; ops = != > >= < <= and `:` (has, a
    case-insensitive substring). Anything else is a 400, as an unparseable filter is."""

    def __init__(self, text: str | None) -> None:
        self.terms: list[tuple[bool, str, str, list[str]]] = []
        self.since: datetime | None = None  # bounds on `timestamp`, to skip to the range
        self.until: datetime | None = None
        if text and text.strip():
            self._parse(_tokens(text))

    def _parse(self, tokens: list[tuple[str, str]]) -> None:
        i = 0
        while i < len(tokens):
            negate = False
            if tokens[i] == ("word", "AND") and self.terms:
                i += 1
            if i < len(tokens) and tokens[i] in (("word", "NOT"), ("word", "-")):
                negate, i = True, i + 1
            try:
                (fkind, path), (okind, op) = tokens[i], tokens[i + 1]
            except IndexError:
                raise LoggingError(400, "Unparseable filter: a comparison is incomplete") \
                    from None
            if fkind != "word" or okind != "op":
                raise LoggingError(400, f"Unparseable filter near {path!r}: expected "
                                        "`field op value`")
            i += 2
            values, i = self._values(tokens, i)
            self.terms.append((negate, path, op, values))
            if path == "timestamp" and not negate and len(values) == 1:
                moment = _time(values[0])
                if moment is None:
                    raise LoggingError(400, f"Invalid timestamp in filter: {values[0]!r}")
                if op in (">", ">="):
                    self.since = max(self.since, moment) if self.since else moment
                elif op in ("<", "<="):
                    self.until = min(self.until, moment) if self.until else moment
            if i < len(tokens) and tokens[i] == ("word", "OR"):
                raise LoggingError(400, "Unparseable filter: OR between comparisons is not "
                                        "supported here; use field=(a OR b)")

    @staticmethod
    def _values(tokens: list[tuple[str, str]], i: int) -> tuple[list[str], int]:
        if i >= len(tokens):
            raise LoggingError(400, "Unparseable filter: a comparison has no value")
        kind, value = tokens[i]
        if kind in ("str", "word"):
            return [value], i + 1
        if kind != "lp":
            raise LoggingError(400, f"Unparseable filter: unexpected {value!r}")
        values, i = [], i + 1
        while i < len(tokens) and tokens[i][0] != "rp":
            kind, value = tokens[i]
            if kind == "word" and value == "OR" and values:
                i += 1
                continue
            if kind not in ("str", "word"):
                raise LoggingError(400, f"Unparseable filter: unexpected {value!r} in a list")
            values.append(value)
            i += 1
        if i >= len(tokens) or not values:
            raise LoggingError(400, "Unparseable filter: an unclosed or empty ( ... ) list")
        return values, i + 1

    def matches(self, entry: dict[str, Any]) -> bool:
        for negate, path, op, values in self.terms:
            found = _field(entry, path)
            hit = any(_compare(found, op, v, path in ("timestamp", "receiveTimestamp"))
                      for v in values)
            if hit == negate:
                return False
        return True


# ---- entries.list ----------------------------------------------------------------------------

def _token(stored: Stored) -> str:
    return base64.urlsafe_b64encode(json.dumps([stored.at, stored.seq]).encode()).decode()


def _untoken(token: str) -> tuple[float, int]:
    try:
        at, seq = json.loads(base64.urlsafe_b64decode(token.encode()))
        return float(at), int(seq)
    except (ValueError, TypeError) as exc:
        raise LoggingError(400, f"Invalid page token: {token!r}") from exc


class LoggingApi:
    """Answers POST /v2/entries:list from a GceState's audit log, on its clock and faults."""

    def __init__(self, state: GceState) -> None:
        self.state = state
        self._lock = threading.Lock()
        self._reads: dict[str, deque[float]] = {}
        # None: no quota (a test that wants to see the reads unpaced); else reads a minute.
        self.reads_per_minute: int | None = READS_PER_MINUTE
        self.refused = 0  # reads refused for the quota: a paced reader never gets one

    def handle(self, http_method: str, path: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        try:
            if (http_method, path.rstrip("/")) != ("POST", "/v2/entries:list"):
                raise LoggingError(404, f"The requested URL {path} was not found.")
            try:
                body = json.loads(raw) if raw.strip() else {}
            except json.JSONDecodeError as exc:
                raise LoggingError(400, f"Invalid JSON payload received. {exc}") from None
            if not isinstance(body, dict):
                raise LoggingError(400, "Invalid JSON payload received: an object")
            return 200, self.entries_list(body)
        except LoggingError as exc:
            return exc.code, exc.body()

    def _project(self, body: dict[str, Any]) -> str:
        names = body.get("resourceNames") or []
        if not isinstance(names, list) or len(names) != 1 or \
                not str(names[0]).startswith("projects/"):
            raise LoggingError(400, "resourceNames must name one project, "
                                    '["projects/PROJECT_ID"], in this emulator')
        return str(names[0]).split("/", 1)[1]

    def _admit(self, project: str) -> None:
        """The read quota: a sliding minute of emulated time per project."""
        with self.state.lock:
            self.state.calls[METHOD_ID] += 1
        try:
            self.state.faults.check(METHOD_ID, project)
        except errors.GceError as exc:
            if exc.reason == "forbidden":
                raise LoggingError(403, f"Permission '{PERMISSION}' denied on resource (or it "
                                        "may not exist).") from None
            raise LoggingError(429, "Quota exceeded for quota metric 'Read requests' and limit "
                                    "'Read requests per minute' of service "
                                    "'logging.googleapis.com'.") from None
        if self.reads_per_minute is None:
            return
        now = self.state.clock.now()
        with self._lock:
            reads = self._reads.setdefault(project, deque())
            while reads and reads[0] <= now - 60.0:
                reads.popleft()
            if len(reads) >= self.reads_per_minute:
                self.refused += 1
                raise LoggingError(429, "Quota exceeded for quota metric 'Read requests' and "
                                        "limit 'Read requests per minute' of service "
                                        "'logging.googleapis.com'.")
            reads.append(now)

    def entries_list(self, body: dict[str, Any]) -> dict[str, Any]:
        project = self._project(body)
        self._admit(project)
        if project not in self.state.projects:
            raise LoggingError(404, f"Project {project} was not found.")
        order = str(body.get("orderBy") or "timestamp asc").strip().lower()
        if order not in ("timestamp asc", "timestamp desc"):
            raise LoggingError(400, f"Invalid orderBy: {body.get('orderBy')!r}")
        try:
            size = int(body.get("pageSize") or DEFAULT_PAGE)
        except (TypeError, ValueError):
            raise LoggingError(400, "Invalid pageSize") from None
        if not 0 < size <= MAX_PAGE:
            raise LoggingError(400, f"pageSize must be between 1 and {MAX_PAGE}")
        query = Query(body.get("filter"))
        now = self.state.clock.now()
        stored = self.state.audit.entries(project)
        # Nothing from the emulator's future is listed (seeding may have written it).
        keys = [(s.at, s.seq) for s in stored]
        hi = bisect.bisect_right(keys, (now, float("inf")))
        lo = 0
        if query.since is not None:
            lo = bisect.bisect_left(keys, (query.since.timestamp() - 1e-6, -1))
        if query.until is not None:
            hi = min(hi, bisect.bisect_right(keys, (query.until.timestamp() + 1e-6,
                                                    float("inf"))))
        token = body.get("pageToken")
        descending = order.endswith("desc")
        if token:
            cursor = _untoken(str(token))
            if descending:
                hi = min(hi, bisect.bisect_left(keys, cursor))
            else:
                lo = max(lo, bisect.bisect_right(keys, cursor))
        window = range(hi - 1, lo - 1, -1) if descending else range(lo, hi)
        page: list[Stored] = []
        for i in window:
            if query.matches(stored[i].entry):
                if len(page) == size:
                    return {"entries": [s.raw for s in page], "nextPageToken": _token(page[-1])}
                page.append(stored[i])
        return {"entries": [s.raw for s in page]} if page else {}
