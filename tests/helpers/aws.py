"""AWS test fixtures: one moto server per test session, reset before each test; a fault proxy."""

from __future__ import annotations

import http.client
import re
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from fleetview.sim.moto_server import MotoServer

_server: MotoServer | None = None
_refresh_server: MotoServer | None = None

# Seconds between two batches of an instance refresh on `moto_refresh_server`.
REFRESH_STEP_S = 0.4


def _shared(config) -> MotoServer:
    """One server for the whole test session, stopped when pytest ends."""
    global _server
    if _server is None or not _server.alive():
        _server = MotoServer.start(refresh=False)
        config.add_cleanup(_server.stop)
        return _server
    _server.reset()
    return _server


@pytest.fixture
def moto_server(request) -> Iterator[MotoServer]:
    """The session's moto server, with every resource of the previous test forgotten.

    Plain moto: it has no instance refresh, so FleetView falls back to replacing in batches."""
    yield _shared(request.config)


@pytest.fixture(scope="module")
def moto_server_module(request) -> Iterator[MotoServer]:
    """The session's server, reset once for a module whose tests only read what it seeds
    (seeding costs a second or two; read-only tests need not pay it each)."""
    yield _shared(request.config)


@pytest.fixture
def moto_refresh_server(request) -> Iterator[MotoServer]:
    """A session-wide moto server behind FleetView's instance-refresh layer (one batch every
    REFRESH_STEP_S seconds), with every resource and refresh of the previous test forgotten."""
    global _refresh_server
    if _refresh_server is None or not _refresh_server.alive():
        _refresh_server = MotoServer.start(refresh=True, refresh_step_s=REFRESH_STEP_S)
        request.config.add_cleanup(_refresh_server.stop)
    else:
        _refresh_server.reset()
    yield _refresh_server


def closed_port_url() -> str:
    """A loopback URL where nothing listens: connections are refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# fault(action, region) -> (HTTP status, error code, message), or None to pass the request on
Fault = Callable[[str, str], "tuple[int, str, str] | None"]


class FaultProxy:
    """A loopback HTTP proxy in front of moto that answers chosen requests with AWS errors.

    It reads the query-protocol Action (EC2, Auto Scaling, STS) from the body and the region
    from the SigV4 credential scope, so a test can throttle one call in one region.
    """

    def __init__(self, target: str, fault: Fault) -> None:
        self.target = urlparse(target)
        self.fault = fault
        self.seen: list[tuple[str, str]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                action = (parse_qs(body.decode()).get("Action") or [""])[0]
                match = re.search(r"Credential=[^/]+/\d+/([^/]+)/",
                                  self.headers.get("Authorization", ""))
                region = match.group(1) if match else ""
                proxy.seen.append((action, region))
                answer = proxy.fault(action, region)
                if answer is not None:
                    status, code, message = answer
                    payload = (f'<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error>'
                               f"<Code>{code}</Code><Message>{message}</Message></Error></Errors>"
                               f"<RequestID>fault</RequestID></Response>").encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "text/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                upstream = http.client.HTTPConnection(proxy.target.hostname,
                                                      proxy.target.port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                upstream.request("POST", self.path, body=body, headers=headers)
                response = upstream.getresponse()
                data = response.read()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                upstream.close()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
