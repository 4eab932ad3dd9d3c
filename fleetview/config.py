"""The TOML config: scopes to poll, the store, poll timing and version rules, validated."""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from fleetview import providers
from fleetview.domain.errors import FleetViewError
from fleetview.domain.versions import DEFAULT_RULES, VersionRule, VersionRules
from fleetview.providers.base import BOOL, SHARED_KEYS, STR, ScopeConfig
from fleetview.providers.base import is_loopback_url as is_loopback_url  # re-exported

APP = "fleetview"


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP)) / "config.toml"


def default_store_url() -> str:
    return f"sqlite:///{Path(platformdirs.user_data_dir(APP)) / 'history.db'}"


class ConfigError(FleetViewError):
    """A config the user must fix: one line naming the file, the key, the line, the fix."""

    def __init__(self, path: Path | str, key: str, message: str, line: int | None = None):
        self.path, self.key, self.line, self.reason = str(path), key, line, message
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {key}: {message}" if key else f"{where}: {message}")


@dataclass(frozen=True)
class StoreConfig:
    url: str = field(default_factory=default_store_url)
    keep_days: int | None = None


@dataclass(frozen=True)
class PollConfig:
    interval_s: float = 60.0
    jitter_s: float = 5.0
    # The longest one poll of a scope may take (None: the interval, at most DEADLINE_S_DEFAULT).
    deadline_s: float | None = None
    # A poll that would close more than this share of a scope's open spans is held as suspect.
    suspect_share: float = 0.5

    @property
    def deadline(self) -> float:
        """Seconds one poll of a scope may take, retries included."""
        if self.deadline_s is not None:
            return self.deadline_s
        return min(self.interval_s, DEADLINE_S_DEFAULT)




@dataclass(frozen=True)
class Config:
    path: Path | None = None
    store: StoreConfig = field(default_factory=StoreConfig)
    poll: PollConfig = field(default_factory=PollConfig)
    scopes: tuple[ScopeConfig, ...] = ()
    versions: VersionRules = field(default_factory=VersionRules)
    protect: tuple[str, ...] = ()
    # Where load_config looked for a file it did not find (then `path` is None).
    looked_for: Path | None = None

    @property
    def source(self) -> str:
        """Where this config comes from, for messages: its file, or the file looked for."""
        if self.path is not None:
            return str(self.path)
        if self.looked_for is not None:
            return f"{self.looked_for} (not found)"
        return "no config file"

    def scope(self, name: str) -> ScopeConfig:
        for s in self.scopes:
            if s.name == name:
                return s
        raise KeyError(name)


# key -> (python type(s), hint shown when the value has the wrong type)
_STR, _BOOL = STR, BOOL

_OWN_KEYS = {"store", "poll", "versions", "protect"}
_STORE_KEYS = {"url": _STR, "keep_days": (int, "a whole number of days, e.g. 90")}
_POLL_KEYS = {
    "interval_s": ((int, float), "a number of seconds, e.g. 60"),
    "jitter_s": ((int, float), "a number of seconds, e.g. 5"),
    "deadline_s": ((int, float), "a number of seconds, e.g. 60"),
    "suspect_share": ((int, float), "a share of the open instances, e.g. 0.5"),
}
_RULE_KEYS = {
    "tag": (str, 'a tag or label key, e.g. "version"'),
    "name_regex": (str, r'a regular expression, e.g. "\\d+(\\.\\d+)+"'),
    "provider": (str, 'the name of a cloud, e.g. "aws"'),
    "dotted": _BOOL,
}
_SCOPE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# Bounds: every number finite, none so large that it overflows a date or never polls again.
SCOPE_NAME_MAX = 64
KEEP_DAYS_MAX = 36_500          # 100 years
INTERVAL_S_MIN, INTERVAL_S_MAX = 5.0, 86_400.0
DEADLINE_S_MIN, DEADLINE_S_MAX = 5.0, 900.0
DEADLINE_S_DEFAULT = 300.0  # without deadline_s: the interval, but never more than this


class _Reader:
    """Validates a parsed TOML document against the schema, naming lines from the text."""

    def __init__(self, path: Path, text: str):
        self.path, self.lines = path, text.splitlines()

    def fail(self, key: str, message: str, table: str | None = None, nth: int = 0) -> None:
        raise ConfigError(self.path, key, message, self.line_of(key.split(".")[-1], table, nth))

    def line_of(self, key: str, table: str | None, nth: int) -> int | None:
        """Best effort: the line of `key = ...` inside the nth `[table]`/`[[table]]`."""
        start = 0
        if table:
            header = re.compile(rf"^\s*\[\[?\s*{re.escape(table)}\s*\]\]?\s*(#.*)?$")
            seen = -1
            for number, line in enumerate(self.lines):
                if header.match(line):
                    seen += 1
                    if seen == nth:
                        start = number
                        break
            else:
                return None
        pattern = re.compile(rf"^\s*\"?{re.escape(key)}\"?\s*=")
        for number in range(start, len(self.lines)):
            line = self.lines[number]
            if number > start and table and re.match(r"^\s*\[", line):
                break
            if not table and re.match(r"^\s*\[", line):
                break
            if pattern.match(line):
                return number + 1
        if table and start is not None:
            return start + 1
        return None

    def table(
        self, data: Any, schema: dict, where: str, table: str | None, nth: int = 0
    ) -> dict[str, Any]:
        if not isinstance(data, dict):
            self.fail(where, f"must be a table, e.g. [{where}]", table, nth)
        for key, value in data.items():
            if key not in schema:
                known = ", ".join(sorted(schema))
                self.fail(f"{where}.{key}", f"unknown key; the keys here are: {known}", table, nth)
            types, hint = schema[key]
            if isinstance(value, bool) and types is not bool and bool not in _as_tuple(types):
                self.fail(f"{where}.{key}", f"must be {hint}", table, nth)
            if not isinstance(value, types):
                self.fail(f"{where}.{key}", f"must be {hint}", table, nth)
            # Every list in the schema holds strings, but for the version rules (tables).
            if types is list and key != "rules" and not all(isinstance(v, str) for v in value):
                self.fail(f"{where}.{key}", f"must be {hint}", table, nth)
        return data


def _as_tuple(types: type | tuple[type, ...]) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


def no_scopes_hint() -> str:
    """What to add to a config without scopes, naming every cloud's table."""
    tables = " or ".join(cloud.table for cloud in providers.clouds())
    return f"add an {tables} table (see README, 'Configure')"


def _check_selectors(reader: _Reader, values: list[str], where: str, table: str | None, nth: int):
    for value in values:
        if "=" not in value or value.startswith("="):
            reader.fail(where, f'selector {value!r} must look like "key=value", e.g. "env=prod"',
                        table, nth)


def load_config(path: Path | str | None = None) -> Config:
    """Read and validate the config; a missing default file means an empty config.

    Raises ConfigError with a one-line message for anything the user has to fix.
    """
    explicit = path is not None
    path = Path(path) if path is not None else default_config_path()
    if not path.exists():
        if explicit:
            raise ConfigError(path, "", "no such file; give the path of a FleetView config "
                              "(see README, 'Configure')")
        return Config(path=None, looked_for=path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, "", f"cannot be read ({exc}); check the path and its "
                          "permissions") from None
    return parse_config(text, path)


def parse_config(text: str, path: Path | str = "<config>") -> Config:
    path = Path(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = re.search(r"\(at line (\d+), column (\d+)\)", message)
        line = int(match.group(1)) if match else None
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", message)
        raise ConfigError(path, "", f"TOML syntax error: {message}; fix the syntax at that "
                          "line (strings need quotes, lists need [ ])", line) from None
    reader = _Reader(path, text)

    clouds = providers.clouds()
    top_keys = _OWN_KEYS | {cloud.name for cloud in clouds}
    for key in data:
        if key not in top_keys:
            reader.fail(key, "unknown key; the top-level keys are: " + ", ".join(sorted(top_keys)))

    store_data = reader.table(data.get("store", {}), _STORE_KEYS, "store", "store")
    keep_days = store_data.get("keep_days")
    if keep_days is not None and not 1 <= keep_days <= KEEP_DAYS_MAX:
        reader.fail("store.keep_days", f"must be from 1 to {KEEP_DAYS_MAX} days (100 years), "
                    "e.g. keep_days = 90; leave it out to keep all history", "store")
    store = StoreConfig(url=store_data.get("url") or default_store_url(), keep_days=keep_days)

    poll_data = reader.table(data.get("poll", {}), _POLL_KEYS, "poll", "poll")
    interval = float(poll_data.get("interval_s", 60))
    if not (math.isfinite(interval) and INTERVAL_S_MIN <= interval <= INTERVAL_S_MAX):
        reader.fail("poll.interval_s", f"must be at least {INTERVAL_S_MIN:g} and at most "
                    f"{INTERVAL_S_MAX:g} seconds (a day), e.g. interval_s = 60; not {interval}",
                    "poll")
    jitter = float(poll_data.get("jitter_s", min(5.0, interval / 10)))
    if not (math.isfinite(jitter) and 0 <= jitter <= interval / 2):
        reader.fail("poll.jitter_s", f"must be a number of seconds from 0 to half of "
                    f"poll.interval_s ({interval / 2:g}), e.g. jitter_s = 5; not {jitter}", "poll")
    deadline = poll_data.get("deadline_s")
    if deadline is not None and not (math.isfinite(deadline)
                                     and DEADLINE_S_MIN <= deadline <= DEADLINE_S_MAX):
        reader.fail("poll.deadline_s", f"must be at least {DEADLINE_S_MIN:g} and at most "
                    f"{DEADLINE_S_MAX:g} seconds, e.g. deadline_s = 60; leave it out for the "
                    f"poll interval (at most {DEADLINE_S_DEFAULT:g} s); not {deadline}", "poll")
    share = float(poll_data.get("suspect_share", 0.5))
    if not (math.isfinite(share) and 0 < share <= 1):
        reader.fail("poll.suspect_share", f"must be a share above 0 and at most 1, e.g. "
                    f"suspect_share = 0.5 (1 never holds a poll); not {share}", "poll")

    protect = data.get("protect", [])
    if not isinstance(protect, list) or not all(isinstance(p, str) for p in protect):
        reader.fail("protect", 'must be a list of key=value selectors, e.g. ["env=prod"]')
    _check_selectors(reader, protect, "protect", None, 0)

    scopes: list[ScopeConfig] = []
    names: set[str] = set()
    for cloud in clouds:
        entries = data.get(cloud.name, [])
        if not isinstance(entries, list):
            reader.fail(cloud.name, f"must be an array of tables: write {cloud.table} "
                        f"(double brackets) above each scope", cloud.name)
        schema = {**SHARED_KEYS, **cloud.keys}
        for nth, entry in enumerate(entries):
            where = f"{cloud.name}[{nth}]"
            entry = reader.table(entry, schema, where, cloud.name, nth)
            name = entry.get("name")
            if not name:
                reader.fail(f"{where}.name", f'is missing; every scope needs a name, e.g. '
                            f'name = "prod-{cloud.name}"', cloud.name, nth)
            if isinstance(name, str) and len(name) > SCOPE_NAME_MAX:
                reader.fail(f"{where}.name", f"is {len(name)} characters long; a scope name "
                            f"has at most {SCOPE_NAME_MAX}, e.g. name = \"prod-{cloud.name}\"",
                            cloud.name, nth)
            if not _SCOPE_NAME.match(name):
                reader.fail(f"{where}.name", "may hold only letters, digits, '.', '_' and '-', "
                            f'e.g. name = "prod-{cloud.name}"', cloud.name, nth)
            if name in names:
                reader.fail(f"{where}.name", f"duplicate scope name {name!r}; give each "
                            "scope its own name", cloud.name, nth)
            names.add(name)
            _check_selectors(reader, entry.get("protect", []), f"{where}.protect", cloud.name,
                             nth)

            def fail(key: str, message: str, where=where, table=cloud.name, nth=nth) -> None:
                reader.fail(f"{where}.{key}", message, table, nth)

            scopes.append(cloud.parse_scope(entry, fail))

    versions = VersionRules()
    if "versions" in data:
        vdata = reader.table(data["versions"], {"rules": (list, "a list of tables")},
                             "versions", "versions")
        if "rules" in vdata:
            versions = VersionRules(tuple(_rules(reader, vdata["rules"])) or DEFAULT_RULES)

    poll = PollConfig(interval, jitter, None if deadline is None else float(deadline), share)
    return Config(path=path, store=store, poll=poll,
                  scopes=tuple(scopes), versions=versions, protect=tuple(protect))


def _rules(reader: _Reader, entries: list) -> list[VersionRule]:
    rules = []
    for nth, entry in enumerate(entries):
        where = f"versions.rules[{nth}]"
        entry = reader.table(entry, _RULE_KEYS, where, "versions")
        if ("tag" in entry) == ("name_regex" in entry):
            reader.fail(where, 'needs exactly one of tag or name_regex, e.g. { tag = "version" }',
                        "versions")
        provider = entry.get("provider")
        known = list(providers.REGISTRY)
        if provider is not None and provider not in known:
            reader.fail(f"{where}.provider", "must be one of " + ", ".join(
                f'"{k}"' for k in known) + " (or left out for every cloud)", "versions")
        try:
            rules.append(VersionRule(tag=entry.get("tag"), name_regex=entry.get("name_regex"),
                                     provider=provider, dotted=entry.get("dotted", False)))
        except re.error as exc:
            reader.fail(f"{where}.name_regex", f"is not a valid regular expression ({exc})",
                        "versions")
    return rules
