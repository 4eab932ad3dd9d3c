"""AWS credentials and clients: one session per scope (its profile, its assumed role), one cached
client per service and region, the count of API requests a poll sends, and its deadline."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import RefreshableCredentials

from fleetview.providers.aws.errors import NoAnswer

ROLE_SESSION_NAME = "fleetview"
CONNECT_TIMEOUT_S = 5.0  # the longest wait for a connection
READ_TIMEOUT_S = 30.0  # the longest wait for an answer to one try of a call

_local = threading.local()


class CallCounter:
    """API requests sent during one poll, counted by a botocore `before-send` hook."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def add(self) -> None:
        with self._lock:
            self.value += 1


def _count_request(request=None, **_: object) -> None:
    deadline = getattr(_local, "deadline", None)
    if deadline is not None and time.monotonic() >= deadline[0]:
        # No try starts past the poll's deadline: botocore would otherwise retry on.
        raise NoAnswer(_origin(getattr(request, "url", "") or ""), deadline[1])
    counter = getattr(_local, "counter", None)
    if counter is not None:
        counter.add()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else (url or "the endpoint")


def timeouts(deadline_s: float, attempts: int) -> tuple[float, float]:
    """(connect, read) timeouts of one try, sized so that every try of a call fits in the
    poll's deadline: a hung endpoint costs at most the deadline, not attempts x 30 s."""
    per_try = deadline_s / max(1, attempts)
    return (min(CONNECT_TIMEOUT_S, max(1.0, per_try / 2)), min(READ_TIMEOUT_S, max(1.0, per_try)))


def _note_operation(event_name: str = "", **_: object) -> None:
    # A connection error names no operation; the region error should.
    _local.operation = tuple(event_name.split(".")[1:3])


@contextmanager
def counting(counter: CallCounter, first: tuple[str, str] = ("", ""),
             deadline: tuple[float, float] | None = None) -> Iterator[None]:
    """Count the requests this thread sends into `counter`; `first` is the operation named
    by an error that comes before any call. `deadline` is (monotonic instant, seconds): no
    request of this thread starts past it (NoAnswer)."""
    _local.counter = counter
    _local.operation = first
    _local.deadline = deadline
    try:
        yield
    finally:
        _local.counter = None
        _local.deadline = None


def last_operation() -> tuple[str, str]:
    """(service, operation) of the last call this thread began."""
    service, operation = (tuple(getattr(_local, "operation", ())) + ("", ""))[:2]
    return service, operation


def home_region(config) -> str:
    """Where the scope's STS calls go: its first region."""
    return config.regions[0] if config.regions else "us-east-1"


def make_session(config, botocore_config: Config) -> boto3.Session:
    """The scope's session: its profile (or the default chain), then its role if it names one.

    An assumed role's credentials renew themselves before they expire.
    """
    base = boto3.Session(profile_name=config.profile) if config.profile else boto3.Session()
    if not config.role_arn:
        return base
    sts = base.client("sts", region_name=home_region(config), endpoint_url=config.endpoint_url,
                      config=botocore_config)
    role_arn = config.role_arn

    def assume() -> dict:
        creds = sts.assume_role(RoleArn=role_arn,
                                RoleSessionName=ROLE_SESSION_NAME)["Credentials"]
        return {"access_key": creds["AccessKeyId"], "secret_key": creds["SecretAccessKey"],
                "token": creds["SessionToken"], "expiry_time": creds["Expiration"].isoformat()}

    credentials = RefreshableCredentials.create_from_metadata(
        metadata=assume(), refresh_using=assume, method="assume-role")
    assumed = botocore.session.Session()
    # botocore has no public setter; this is how its own assume-role provider does it.
    assumed._credentials = credentials
    return boto3.Session(botocore_session=assumed)


class Clients:
    """One scope's session and its clients; polls, actions and `doctor` all go through it.

    `endpoint_for` gives one region its own endpoint (tests, the demo); `attempts` counts the
    first try of a call (botocore's standard retry mode, with its own backoff). The connect
    and read timeouts of one try follow from `deadline_s`, the longest a poll may take,
    unless given.
    """

    def __init__(self, config, *, attempts: int = 4,
                 endpoint_for: Callable[[str], str | None] | None = None,
                 connect_timeout_s: float | None = None, read_timeout_s: float | None = None,
                 deadline_s: float = 300.0) -> None:
        self.config = config
        self.endpoint_for = endpoint_for
        self.deadline_s = deadline_s
        connect, read = timeouts(deadline_s, attempts)
        self.botocore_config = Config(
            retries={"mode": "standard", "total_max_attempts": attempts},
            connect_timeout=connect if connect_timeout_s is None else connect_timeout_s,
            read_timeout=read if read_timeout_s is None else read_timeout_s,
            max_pool_connections=10,
        )
        self._lock = threading.Lock()
        self._session: boto3.Session | None = None
        self._clients: dict[tuple[str, str], object] = {}

    @property
    def home_region(self) -> str:
        return home_region(self.config)

    def endpoint(self, region: str) -> str | None:
        return (self.endpoint_for(region) if self.endpoint_for else None) or \
            self.config.endpoint_url

    def endpoint_url(self, service: str, region: str) -> str:
        """Where `service` in `region` is asked, for messages."""
        return self.endpoint(region) or self.client(service, region).meta.endpoint_url

    def session(self) -> boto3.Session:
        with self._lock:
            if self._session is None:
                self._session = make_session(self.config, self.botocore_config)
            return self._session

    def client(self, service: str, region: str | None = None):
        """The cached client of `service` in `region` (default: the home region); tests may
        stub it with botocore's Stubber."""
        region = region or self.home_region
        key = (service, region)
        with self._lock:
            found = self._clients.get(key)
        if found is not None:
            return found
        session = self.session()
        endpoint = self.endpoint(region)
        with self._lock:
            found = self._clients.get(key)
            if found is None:
                found = session.client(service, region_name=region, endpoint_url=endpoint,
                                       config=self.botocore_config)
                found.meta.events.register("before-send", _count_request)
                found.meta.events.register("before-call", _note_operation)
                self._clients[key] = found
            return found

    def caller(self) -> dict:
        """sts GetCallerIdentity: Arn, Account, UserId."""
        return self.client("sts").get_caller_identity()

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for c in clients:
            c.close()
