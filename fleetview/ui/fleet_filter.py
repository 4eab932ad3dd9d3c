"""The fleet table's filter language: `key:value` terms and free text, as a pandas mask."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

# filter key -> fleet_at column; several names for what people type.
KEYS: dict[str, str] = {
    "version": "version", "v": "version",
    "desired": "desired_version",
    "region": "region",
    "zone": "zone",
    "scope": "scope",
    "provider": "provider", "cloud": "provider",
    "account": "account", "project": "account",
    "group": "group",
    "state": "state",
    "name": "name",
    "id": "instance_id", "instance": "instance_id",
    "image": "image_name",
    "drift": "drift",
    "bad": "marked_bad",
}
FREE_TEXT_COLUMNS = ("name", "instance_id", "group", "version", "image_name", "image_id",
                     "region", "zone", "scope", "state")
_YES = {"yes", "y", "true", "1", "on"}
_NO = {"no", "n", "false", "0", "off"}
_YES_NO = {"drift", "marked_bad"}  # terms that take yes or no
# What a filter reads: each term is a pass over the whole fleet on the GUI thread, and a
# megabyte pasted into the box must not hold the window (shlex alone took seconds).
MAX_CHARS = 500
MAX_TERMS = 16


@dataclass(frozen=True)
class Term:
    column: str
    value: str
    negate: bool = False


# What a node of the scope tree narrows to, exactly: (scope,), (scope, region) or
# (scope, region, group).
NODE_COLUMNS = ("scope", "region", "group")


@dataclass(frozen=True)
class FleetFilter:
    terms: tuple[Term, ...] = ()
    words: tuple[str, ...] = ()
    errors: tuple[str, ...] = field(default=())
    node: tuple[str, ...] = ()  # the scope tree's selection, matched exactly

    @property
    def empty(self) -> bool:
        return not self.terms and not self.words and not self.node

    @property
    def typed(self) -> bool:
        """Whether the typed text narrows anything (beyond the tree's node)."""
        return bool(self.terms or self.words)


_EXAMPLES = {"version": "1.4", "desired_version": "1.4", "region": "us-east-1",
             "zone": "us-east-1a", "state": "running", "provider": "aws", "account": "prod",
             "image_name": "app-1.4", "instance_id": "i-0abc"}


def parse_filter(text: str) -> FleetFilter:
    """`version:1.4 region:us-east-1 -state:stopped web` -> terms and free words.

    A term whose key is unknown is reported in `errors` and left out, so a typo narrows
    nothing instead of hiding the whole fleet. Only the first MAX_CHARS characters and
    MAX_TERMS terms are read; `errors` says so when there is more.
    """
    errors = []
    if len(text) > MAX_CHARS:
        errors.append(f"the filter is {len(text):,} characters long; only the first "
                      f"{MAX_CHARS} are used")
        text = text[:MAX_CHARS]
    try:
        tokens = shlex.split(text)
    except ValueError:  # an unclosed quote while the user is still typing
        tokens = text.split()
    tokens = list(dict.fromkeys(tokens))  # the same term twice narrows nothing more
    if len(tokens) > MAX_TERMS:
        errors.append(f"the filter has {len(tokens)} terms; only the first {MAX_TERMS} are "
                      "used")
        tokens = tokens[:MAX_TERMS]
    terms, words = [], []
    for token in tokens:
        negate = token.startswith("-") and len(token) > 1
        body = token[1:] if negate else token
        key, sep, value = body.partition(":")
        if not sep:
            words.append(token.lower())
            continue
        column = KEYS.get(key.lower())
        if column is None:
            errors.append(f"unknown filter key {key!r}; use one of: "
                          f"{', '.join(sorted(set(KEYS) - {'v', 'cloud', 'project', 'instance'}))}")
            continue
        if column in _YES_NO and value.lower() not in _YES | _NO:
            errors.append(f"{key.lower()} takes yes or no, e.g. {key.lower()}:yes")
            continue
        if value and not any(ch.isalnum() for ch in value):
            # `version:(((` would hide every row without a word why.
            errors.append(f"{key.lower()}:{value} has no letter or digit to match; "
                          f"e.g. {key.lower()}:{_EXAMPLES.get(column, 'web')}")
            continue
        if value:
            terms.append(Term(column, value, negate))
    return FleetFilter(tuple(terms), tuple(words), tuple(errors))


def _column(df: pd.DataFrame, name: str) -> pd.Series:
    if name in df.columns:
        return df[name].astype("string").fillna("").str.lower()
    return pd.Series("", index=df.index, dtype="string")


def _term_mask(df: pd.DataFrame, term: Term) -> np.ndarray:
    value = term.value.lower()
    if term.column == "drift":
        drift = df["drift"].fillna(False).astype(bool) if "drift" in df.columns else \
            pd.Series(False, index=df.index)
        return (drift == (value in _YES)).to_numpy()
    if term.column == "marked_bad":
        bad = df["marked_bad"].notna() if "marked_bad" in df.columns else \
            pd.Series(False, index=df.index)
        return (bad == (value in _YES)).to_numpy()
    col = _column(df, term.column)
    if term.column in ("version", "desired_version"):
        # version:1.4 means the 1.4 line: 1.4, 1.4.0, 1.4.2, 1.4-rc1; not 1.40.
        mask = (col == value) | col.str.startswith(value + ".") | col.str.startswith(value + "-")
    elif term.column in ("state", "provider"):
        mask = col == value
    else:
        mask = col.str.contains(value, regex=False)
    return mask.fillna(False).to_numpy(dtype=bool)


def filter_mask(df: pd.DataFrame, flt: FleetFilter) -> np.ndarray:
    mask = np.ones(len(df), dtype=bool)
    for column, value in zip(NODE_COLUMNS, flt.node, strict=False):
        col = df[column].astype("string").fillna("") if column in df.columns else \
            pd.Series("", index=df.index, dtype="string")
        mask &= (col == value).fillna(False).to_numpy(dtype=bool)
    for term in flt.terms:
        m = _term_mask(df, term)
        mask &= ~m if term.negate else m
    if flt.words:
        haystack = None
        for name in FREE_TEXT_COLUMNS:
            col = _column(df, name)
            haystack = col if haystack is None else haystack + "\x1f" + col
        for word in flt.words:
            negate = word.startswith("-") and len(word) > 1
            word = word[1:] if negate else word
            m = haystack.str.contains(word, regex=False).fillna(False).to_numpy(dtype=bool)
            mask &= ~m if negate else m
    return mask
