"""The TOML config: scopes to poll, the store, poll timing and version rules, validated."""

from __future__ import annotations

import ipaddress
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import platformdirs

from fleetview.domain.errors import FleetViewError
from fleetview.domain.versions import DEFAULT_RULES, VersionRule, VersionRules

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


@dataclass(frozen=True)
class AwsScopeConfig:
    name: str
    regions: tuple[str, ...]
    profile: str | None = None
    role_arn: str | None = None
    endpoint_url: str | None = None
    actions: bool = False
    protect: tuple[str, ...] = ()
    provider: str = "aws"


@dataclass(frozen=True)
class GcpScopeConfig:
    name: str
    project: str
    api_endpoint: str | None = None
    credentials: str | None = None  # None: application default credentials
    impersonate_service_account: str | None = None
    regions: tuple[str, ...] = ()  # empty: every region the project has
    actions: bool = False
    protect: tuple[str, ...] = ()
    provider: str = "gcp"


ScopeConfig = AwsScopeConfig | GcpScopeConfig


@dataclass(frozen=True)
class Config:
    path: Path | None = None
    store: StoreConfig = field(default_factory=StoreConfig)
    poll: PollConfig = field(default_factory=PollConfig)
    scopes: tuple[ScopeConfig, ...] = ()
    versions: VersionRules = field(default_factory=VersionRules)
    protect: tuple[str, ...] = ()

    def scope(self, name: str) -> ScopeConfig:
        for s in self.scopes:
            if s.name == name:
                return s
        raise KeyError(name)


# key -> (python type(s), hint shown when the value has the wrong type)
_STR = (str, 'a string in quotes, e.g. "prod"')
_BOOL = (bool, "true or false")
_STR_LIST = (list, 'a list of strings, e.g. ["us-east-1", "eu-west-1"]')

_AWS_KEYS: dict[str, tuple[type, str]] = {
    "name": _STR,
    "regions": _STR_LIST,
    "profile": _STR,
    "role_arn": (str, 'an IAM role ARN, e.g. "arn:aws:iam::123456789012:role/fleetview"'),
    "endpoint_url": (str, 'a URL, e.g. "http://127.0.0.1:5000"'),
    "actions": _BOOL,
    "protect": (list, 'a list of key=value selectors, e.g. ["env=prod"]'),
}
_GCP_KEYS: dict[str, tuple[type, str]] = {
    "name": _STR,
    "project": (str, 'a project id, e.g. "my-project"'),
    "api_endpoint": (str, 'a URL with its scheme, e.g. "http://127.0.0.1:8085"'),
    "credentials": (str, '"anonymous" (loopback endpoints only) or leave it out for ADC'),
    "impersonate_service_account": (str, 'a service account email'),
    "regions": _STR_LIST,
    "actions": _BOOL,
    "protect": (list, 'a list of key=value selectors, e.g. ["env=prod"]'),
}
_TOP_KEYS = {"store", "poll", "aws", "gcp", "versions", "protect"}
_STORE_KEYS = {"url": _STR, "keep_days": (int, "a whole number of days, e.g. 90")}
_POLL_KEYS = {
    "interval_s": ((int, float), "a number of seconds, e.g. 60"),
    "jitter_s": ((int, float), "a number of seconds, e.g. 5"),
}
_RULE_KEYS = {
    "tag": (str, 'a tag or label key, e.g. "version"'),
    "name_regex": (str, r'a regular expression, e.g. "\\d+(\\.\\d+)+"'),
    "provider": (str, '"aws" or "gcp"'),
    "dotted": _BOOL,
}
_SCOPE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


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


def is_loopback_url(url: str | None) -> bool:
    """Whether a URL points at this machine (where anonymous credentials are allowed)."""
    host = urlparse(url or "").hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
        return Config(path=None)
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

    for key in data:
        if key not in _TOP_KEYS:
            reader.fail(key, "unknown key; the top-level keys are: " + ", ".join(sorted(_TOP_KEYS)))

    store_data = reader.table(data.get("store", {}), _STORE_KEYS, "store", "store")
    keep_days = store_data.get("keep_days")
    if keep_days is not None and keep_days < 1:
        reader.fail("store.keep_days", "must be at least 1 (or leave it out to keep all)", "store")
    store = StoreConfig(url=store_data.get("url") or default_store_url(), keep_days=keep_days)

    poll_data = reader.table(data.get("poll", {}), _POLL_KEYS, "poll", "poll")
    interval = float(poll_data.get("interval_s", 60))
    if interval < 5:
        reader.fail("poll.interval_s", "must be at least 5 seconds, e.g. interval_s = 60", "poll")
    jitter = float(poll_data.get("jitter_s", min(5.0, interval / 10)))
    if jitter < 0:
        reader.fail("poll.jitter_s", "must be 0 or more seconds", "poll")

    protect = data.get("protect", [])
    if not isinstance(protect, list) or not all(isinstance(p, str) for p in protect):
        reader.fail("protect", 'must be a list of key=value selectors, e.g. ["env=prod"]')
    _check_selectors(reader, protect, "protect", None, 0)

    scopes: list[ScopeConfig] = []
    names: set[str] = set()
    for provider, schema in (("aws", _AWS_KEYS), ("gcp", _GCP_KEYS)):
        entries = data.get(provider, [])
        if not isinstance(entries, list):
            reader.fail(provider, f"must be an array of tables: write [[{provider}]] "
                        f"(double brackets) above each scope", provider)
        for nth, entry in enumerate(entries):
            where = f"{provider}[{nth}]"
            entry = reader.table(entry, schema, where, provider, nth)
            name = entry.get("name")
            if not name:
                reader.fail(f"{where}.name", f'is missing; every scope needs a name, e.g. '
                            f'name = "prod-{provider}"', provider, nth)
            if not _SCOPE_NAME.match(name):
                reader.fail(f"{where}.name", "may hold only letters, digits, '.', '_' and '-', "
                            f'e.g. name = "prod-{provider}"', provider, nth)
            if name in names:
                reader.fail(f"{where}.name", f"duplicate scope name {name!r}; give each "
                            "[[aws]] and [[gcp]] scope its own name", provider, nth)
            names.add(name)
            _check_selectors(reader, entry.get("protect", []), f"{where}.protect", provider, nth)
            if provider == "aws":
                scopes.append(_aws_scope(reader, entry, where, nth))
            else:
                scopes.append(_gcp_scope(reader, entry, where, nth))

    versions = VersionRules()
    if "versions" in data:
        vdata = reader.table(data["versions"], {"rules": (list, "a list of tables")},
                             "versions", "versions")
        if "rules" in vdata:
            versions = VersionRules(tuple(_rules(reader, vdata["rules"])) or DEFAULT_RULES)

    return Config(path=path, store=store, poll=PollConfig(interval, jitter),
                  scopes=tuple(scopes), versions=versions, protect=tuple(protect))


def _aws_scope(reader: _Reader, entry: dict, where: str, nth: int) -> AwsScopeConfig:
    regions = entry.get("regions")
    if not regions:
        reader.fail(f"{where}.regions", 'needs at least one region, e.g. regions = ["us-east-1"]',
                    "aws", nth)
    for region in regions:
        if not re.match(r"^[a-z]{2}(-[a-z]+)+-\d+$", region):
            reader.fail(f"{where}.regions", f"{region!r} is not an AWS region name, e.g. "
                        '"us-east-1"', "aws", nth)
    role_arn = entry.get("role_arn")
    if role_arn is not None and not re.match(r"^arn:aws[\w-]*:iam::\d{12}:role/.+$", role_arn):
        reader.fail(f"{where}.role_arn", "must be an IAM role ARN, e.g. "
                    '"arn:aws:iam::123456789012:role/fleetview"', "aws", nth)
    endpoint = entry.get("endpoint_url")
    if endpoint is not None and urlparse(endpoint).scheme not in ("http", "https"):
        reader.fail(f"{where}.endpoint_url", 'must be a URL with its scheme, e.g. '
                    '"http://127.0.0.1:5000"', "aws", nth)
    return AwsScopeConfig(
        name=entry["name"], regions=tuple(dict.fromkeys(regions)), profile=entry.get("profile"),
        role_arn=role_arn, endpoint_url=endpoint, actions=entry.get("actions", False),
        protect=tuple(entry.get("protect", [])),
    )


def _gcp_scope(reader: _Reader, entry: dict, where: str, nth: int) -> GcpScopeConfig:
    project = entry.get("project")
    if not project:
        reader.fail(f"{where}.project", 'is missing; name the GCP project, e.g. '
                    'project = "my-project"', "gcp", nth)
    endpoint = entry.get("api_endpoint")
    if endpoint is not None and urlparse(endpoint).scheme not in ("http", "https"):
        reader.fail(f"{where}.api_endpoint", "must include its scheme, e.g. "
                    '"http://127.0.0.1:8085"', "gcp", nth)
    credentials = entry.get("credentials")
    if credentials is not None:
        if credentials != "anonymous":
            reader.fail(f"{where}.credentials", 'the only value is "anonymous"; leave it out '
                        "to use application default credentials", "gcp", nth)
        if endpoint is None or not is_loopback_url(endpoint):
            reader.fail(f"{where}.credentials", 'anonymous is allowed only with a loopback '
                        'api_endpoint such as "http://127.0.0.1:8085"; remove credentials to '
                        "use application default credentials", "gcp", nth)
    return GcpScopeConfig(
        name=entry["name"], project=project, api_endpoint=endpoint, credentials=credentials,
        impersonate_service_account=entry.get("impersonate_service_account"),
        regions=tuple(entry.get("regions", [])), actions=entry.get("actions", False),
        protect=tuple(entry.get("protect", [])),
    )


def _rules(reader: _Reader, entries: list) -> list[VersionRule]:
    rules = []
    for nth, entry in enumerate(entries):
        where = f"versions.rules[{nth}]"
        entry = reader.table(entry, _RULE_KEYS, where, "versions")
        if ("tag" in entry) == ("name_regex" in entry):
            reader.fail(where, 'needs exactly one of tag or name_regex, e.g. { tag = "version" }',
                        "versions")
        provider = entry.get("provider")
        if provider not in (None, "aws", "gcp"):
            reader.fail(f"{where}.provider", 'must be "aws" or "gcp" (or left out for both)',
                        "versions")
        try:
            rules.append(VersionRule(tag=entry.get("tag"), name_regex=entry.get("name_regex"),
                                     provider=provider, dotted=entry.get("dotted", False)))
        except re.error as exc:
            reader.fail(f"{where}.name_regex", f"is not a valid regular expression ({exc})",
                        "versions")
    return rules
