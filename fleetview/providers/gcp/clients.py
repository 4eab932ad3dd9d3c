"""Google credentials, Compute clients built on one set of client options, and one call wrapper
that keeps a poll within its deadline and refuses answers that are not Compute's."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import google.auth
import proto
import requests
from google.api_core import exceptions as gexc
from google.api_core.client_options import ClientOptions
from google.auth import exceptions as auth_exc
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1
from google.protobuf import json_format, message

from fleetview.domain.errors import ProviderError
from fleetview.domain.timing import Timing
from fleetview.providers.base import is_loopback_url
from fleetview.providers.gcp.errors import (
    LOGIN_HINT,
    UNREACHABLE,
    bad_credentials_file,
    foreign_answer,
    is_transient,
    no_answer,
    refresh_failed,
    translate,
    unreachable,
)

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
TIMEOUT_S = 60.0  # one HTTP request
MAX_BACKOFF_S = 30.0  # the longest pause between two tries of one call
# Within a poll's deadline one try may take a third of it: a hung try leaves time for two more.
TRIES_PER_DEADLINE = 3


def load_credentials(config) -> google.auth.credentials.Credentials:
    """Anonymous for a loopback emulator, else application default credentials (maybe
    impersonating a service account)."""
    if config.credentials == "anonymous":
        if not is_loopback_url(config.api_endpoint):
            raise ProviderError(
                f"scope {config.name}: anonymous credentials are allowed only with a loopback "
                "api_endpoint such as http://127.0.0.1:8085; remove `credentials` to use "
                "application default credentials")
        return AnonymousCredentials()
    if config.credentials is not None:
        raise ProviderError(f"scope {config.name}: credentials = {config.credentials!r} is not "
                            'understood; the only value is "anonymous"')
    try:
        creds, _project = google.auth.default(scopes=SCOPES)
    except auth_exc.DefaultCredentialsError as exc:
        path = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
        if path:
            raise bad_credentials_file(config, path, exc) from None
        reason = str(exc).strip()
        if not reason or "were not found" in reason:
            raise ProviderError(f"scope {config.name}: no Google application default "
                                f"credentials found; {LOGIN_HINT}") from None
        raise ProviderError(f"scope {config.name}: the Google application default credentials "
                            f"cannot be used ({reason}); {LOGIN_HINT}") from None
    if config.impersonate_service_account:
        from google.auth import impersonated_credentials

        creds = impersonated_credentials.Credentials(
            source_credentials=creds,
            target_principal=config.impersonate_service_account,
            target_scopes=list(SCOPES),
        )
    return creds


def account_of(creds, config) -> str:
    """The email these credentials act as; "anonymous" for anonymous credentials."""
    if isinstance(creds, AnonymousCredentials):
        return "anonymous"
    email = getattr(creds, "service_account_email", None)
    if isinstance(email, str) and "@" in email:
        return email
    account = getattr(creds, "account", None)
    if isinstance(account, str) and "@" in account:
        return account
    # User credentials from `gcloud auth application-default login` and metadata-server
    # credentials only learn their email from a token: ask Google's tokeninfo endpoint.
    from google.auth.transport.requests import Request

    try:
        creds.refresh(Request())
        email = getattr(creds, "service_account_email", None)
        if isinstance(email, str) and "@" in email:
            return email
        reply = requests.get("https://oauth2.googleapis.com/tokeninfo",
                             params={"access_token": creds.token}, timeout=15)
        reply.raise_for_status()
        email = reply.json().get("email")
    except (auth_exc.GoogleAuthError, requests.RequestException, ValueError) as exc:
        raise ProviderError(f"scope {config.name}: cannot tell which Google account the "
                            f"credentials belong to ({exc}); {LOGIN_HINT}") from None
    if not email:
        raise ProviderError(f"scope {config.name}: the credentials do not reveal their account "
                            "email (the token lacks the userinfo.email scope); "
                            f"{LOGIN_HINT}")
    return email


class Compute:
    """The Compute clients of one scope, made lazily with the same credentials and endpoint,
    and `call`, which counts API calls, retries throttling and turns failures into
    ProviderErrors that say what to do."""

    CLIENTS = {
        "instances": compute_v1.InstancesClient,
        "disks": compute_v1.DisksClient,
        "migs": compute_v1.InstanceGroupManagersClient,
        "region_migs": compute_v1.RegionInstanceGroupManagersClient,
        "templates": compute_v1.InstanceTemplatesClient,
        "region_templates": compute_v1.RegionInstanceTemplatesClient,
        "images": compute_v1.ImagesClient,
        "zone_ops": compute_v1.ZoneOperationsClient,
        "region_ops": compute_v1.RegionOperationsClient,
        "global_ops": compute_v1.GlobalOperationsClient,
    }

    def __init__(self, config, timing: Timing | None = None):
        self.config = config
        # `attempts`, `backoff_s` and `sleep` pace the retries of one call.
        self.timing = timing or Timing()
        self._lock = threading.Lock()
        # Counted per thread, so a poll's count is not mixed with an action running alongside.
        self._local = threading.local()
        self._creds = None
        self._clients: dict[str, Any] = {}

    def _counter(self) -> list[int]:
        counter = getattr(self._local, "counter", None)
        if counter is None:
            counter = self._local.counter = [0]
        return counter

    @property
    def calls(self) -> int:
        """API calls made so far by the calling thread (and the workers of its `map`s)."""
        return self._counter()[0]

    @property
    def endpoint(self) -> str:
        return self.config.api_endpoint or "https://compute.googleapis.com"

    @contextlib.contextmanager
    def deadline(self, seconds: float) -> Iterator[None]:
        """The calls of this thread (and of its `map`s) end within `seconds`: each try's
        timeout is cut to what is left, no try or pause starts past it."""
        self._local.deadline = (time.monotonic() + seconds, seconds)
        try:
            yield
        finally:
            self._local.deadline = None

    def map(self, fn: Callable[[Any], Any], items: list, workers: int = 8) -> list:
        """fn over items on a few threads (calls wait on the network, not on Python), the
        calls counted for the calling thread, within its deadline."""
        if len(items) <= 1:
            return [fn(item) for item in items]
        counter = self._counter()
        deadline = getattr(self._local, "deadline", None)

        def run(item):
            self._local.counter = counter
            self._local.deadline = deadline
            try:
                return fn(item)
            finally:
                self._local.counter = None
                self._local.deadline = None

        with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
            return list(pool.map(run, items))

    @property
    def credentials(self):
        with self._lock:
            if self._creds is None:
                self._creds = load_credentials(self.config)
            return self._creds

    def client(self, name: str):
        creds = self.credentials
        with self._lock:
            client = self._clients.get(name)
            if client is None:
                # The same options for every client, operations included: a client built
                # without them (as ExtendedOperation.result() does) would call Google itself.
                options = (ClientOptions(api_endpoint=self.config.api_endpoint)
                           if self.config.api_endpoint else None)
                client = self.CLIENTS[name](credentials=creds, client_options=options,
                                            transport="rest")
                self._clients[name] = client
            return client

    def call(self, client: str, method: str, permission: str, what: str, **kwargs):
        """One API call, tried up to `timing.attempts` times while it is throttled or fails
        transiently, pausing `timing.backoff_s` and doubling the pause after each try; within
        a deadline (see `deadline`), only the tries and pauses that fit in it."""
        fn = getattr(self.client(client), method)
        attempts = max(1, self.timing.attempts)
        pause = self.timing.backoff_s
        deadline = getattr(self._local, "deadline", None)
        started = time.monotonic()
        for attempt in range(1, attempts + 1):
            timeout = TIMEOUT_S
            if deadline is not None:
                left = deadline[0] - time.monotonic()
                if left <= 0:
                    raise no_answer(self.config, self.endpoint, what, deadline[1])
                timeout = min(TIMEOUT_S, max(1.0, deadline[1] / TRIES_PER_DEADLINE), left)
            counter = self._counter()
            with self._lock:
                counter[0] += 1
            try:
                reply = fn(**kwargs, retry=None, timeout=timeout)
            except gexc.GoogleAPICallError as exc:
                failure = translate(exc, self.config, permission, what, attempt - 1)
                if not is_transient(exc) or attempt == attempts:
                    raise failure from None
            except requests.Timeout as exc:
                failure = no_answer(self.config, self.endpoint, what,
                                    time.monotonic() - started)
                if attempt == attempts:
                    raise failure from exc
            except UNREACHABLE as exc:
                failure = unreachable(self.config, what, exc)
                if attempt == attempts:
                    raise failure from None
            except auth_exc.RefreshError as exc:
                raise refresh_failed(self.config, exc) from None
            except json_format.ParseError as exc:
                raise foreign_answer(self.config, self.endpoint, what, str(exc)) from None
            else:
                return check_answer(reply, self.config, self.endpoint, what)
            if deadline is not None and time.monotonic() + pause >= deadline[0]:
                raise failure from None  # no time left for another try
            self.timing.sleep(pause)
            pause = min(pause * 2, MAX_BACKOFF_S)
        raise AssertionError("unreachable")

    def pages(self, client: str, method: str, permission: str, what: str, request: dict):
        """Every page of a list call as raw protobuf messages, each page fetched by `call`."""
        token = ""
        while True:
            pager = self.call(client, method, permission, what,
                              request={**request, "page_token": token})
            page = next(iter(pager.pages))
            # Raw protobuf access: proto-plus wrapping per field costs more than the parse.
            pb = check_answer(type(page).pb(page), self.config, self.endpoint, what)
            yield pb
            token = pb.next_page_token
            if not token:
                return

    def translate(self, exc: gexc.GoogleAPICallError, permission: str, what: str
                  ) -> ProviderError:
        """A failed call as the error `call` raises once every try is spent."""
        return translate(exc, self.config, permission, what, max(0, self.timing.attempts - 1))

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, {}
        for client in clients.values():
            # Closing must not mask the caller's outcome.
            with contextlib.suppress(Exception):
                client.transport.close()


def check_answer(reply, config, endpoint: str, what: str):
    """`reply` if it is Compute's: every Compute resource and list names its `kind`
    ("compute#..."). An answer without one is a proxy's page or a wrong api_endpoint, which
    parses (unknown fields ignored) to an empty message: never taken for an empty list."""
    if isinstance(reply, proto.Message):
        pb = type(reply).pb(reply)
    elif isinstance(reply, message.Message):
        pb = reply
    else:
        return reply  # a pager (checked page by page) or an extended operation
    if "kind" not in pb.DESCRIPTOR.fields_by_name:
        return reply
    if not pb.HasField("kind"):
        raise foreign_answer(config, endpoint, what, "no kind")
    if not pb.kind.startswith("compute#"):
        raise foreign_answer(config, endpoint, what, f"kind {pb.kind!r}")
    return reply
