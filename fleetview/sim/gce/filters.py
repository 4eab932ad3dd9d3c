"""The list `filter` parameter: the common subset of Compute Engine's filter expressions.

Supported: comparisons `field = value`, `field != value` (exact, `*` as a wildcard),
`field eq regex`, `field ne regex` (full-match regular expressions), `field:*` (has a value),
on dotted camelCase paths such as `labels.env` or `status`; several comparisons, optionally
in parentheses, separated by spaces or AND. Anything else (OR, NOT, <, >) is refused with 400,
so a filter is never silently ignored.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from typing import Any

from fleetview.sim.gce import errors

Predicate = Callable[[dict[str, Any]], bool]

_TERM = re.compile(
    r"""\(?\s*(?P<field>[A-Za-z][\w.]*)\s*
        (?:(?P<op>!=|=|\beq\b|\bne\b)\s*(?P<value>"[^"]*"|'[^']*'|[^\s()]+)|(?P<has>:\s*\*))
        \s*\)?\s*(?:\bAND\b\s*)?""", re.VERBOSE)


def compile_filter(expression: str | None) -> Predicate | None:
    """A predicate on a resource's JSON, or None for no filter; 400 for what is unsupported."""
    if not expression or not expression.strip():
        return None
    terms: list[Predicate] = []
    pos, text = 0, expression.strip()
    while pos < len(text):
        m = _TERM.match(text, pos)
        if m is None or m.end() == pos:
            raise errors.invalid(
                f"Invalid value for field 'filter': '{expression}'. The emulator supports "
                "=, !=, eq, ne and :* comparisons joined by AND.")
        terms.append(_term(m))
        pos = m.end()
    return lambda resource: all(t(resource) for t in terms)


def _term(m: re.Match[str]) -> Predicate:
    path = m["field"].split(".")
    if m["has"]:
        return lambda r: _lookup(r, path) not in (None, "", [], {})
    op, value = m["op"], m["value"]
    if value[:1] in "\"'" and value[-1:] == value[:1]:
        value = value[1:-1]
    if op in ("eq", "ne"):
        pattern = re.compile(value)
        matched = lambda r: any(pattern.fullmatch(v) for v in _strings(_lookup(r, path)))  # noqa: E731
    else:
        matched = lambda r: any(fnmatch.fnmatchcase(v, value)  # noqa: E731
                                for v in _strings(_lookup(r, path)))
    if op in ("!=", "ne"):
        return lambda r: not matched(r)
    return matched


def _lookup(resource: Any, path: list[str]) -> Any:
    value = resource
    for part in path:
        if isinstance(value, list):
            value = [v.get(part) for v in value if isinstance(v, dict)]
        elif isinstance(value, dict):
            value = value.get(part)
        else:
            return None
    return value


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, bool):
        return ["true" if value else "false"]
    return [str(value)]
