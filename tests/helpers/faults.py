"""Faults between FleetView and a local cloud: a forwarding proxy that answers wrongly on
command, and a socket that accepts connections and never answers. Both on 127.0.0.1 only.

    with FaultyProxy(moto.url) as proxy:
        proxy.foreign()                  # 200 with a page that is not the API's
        proxy.error(502)                 # 502 from the proxy itself
        proxy.delay(1.5)                 # forward, after a pause
        proxy.passing()                  # forward as is
        proxy.foreign(when=lambda r: r.action == "DescribeInstances" and r.region == "eu-west-1")

A fault applies to the requests for which `when(request)` holds (default: every one), for
`times` requests (default: until changed). `seen` lists every request, faulty or not.
"""

from __future__ import annotations

import http.client
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

HOST = "127.0.0.1"

# What a captive portal or a misconfigured proxy answers: well-formed, HTTP 200, not the API.
PORTAL_XML = (b'<?xml version="1.0" encoding="UTF-8"?>\n<html><head><title>Sign in</title>'
              b"</head><body><p>Please sign in to use this network.</p></body></html>\n")
PORTAL_JSON = b'{"status": "ok", "message": "Please sign in to use this network."}\n'


@dataclass(frozen=True)
class Request:
    """What a fault may look at: the method and path, the AWS query action and the SigV4
    region (empty for other clients)."""

    method: str
    path: str
    action: str
    region: str


@dataclass
class _Fault:
    kind: str  # "pass", "foreign", "error", "delay"
    when: Callable[[Request], bool]
    times: int | None
    status: int = 200
    body: bytes = b""
    content_type: str = "text/xml"
    seconds: float = 0.0


def _always(_request: Request) -> bool:
    return True


class FaultyProxy:
    """A threaded HTTP server that forwards every request to `target` unless told otherwise."""

    def __init__(self, target: str, upstream_timeout_s: float = 30.0) -> None:
        self.target = urlparse(target)
        self.upstream_timeout_s = upstream_timeout_s
        self.seen: list[Request] = []
        self.faulted = 0
        self._fault = _Fault("pass", _always, None)
        self._lock = threading.Lock()
        self._closing = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                proxy._serve(self, body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle  # noqa: N815

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((HOST, 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                       name="fault-proxy")
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server.server_address[1]}"

    # -- commands --------------------------------------------------------------------------

    def _set(self, fault: _Fault) -> None:
        with self._lock:
            self._fault = fault

    def passing(self) -> None:
        self._set(_Fault("pass", _always, None))

    def foreign(self, body: bytes = PORTAL_XML, content_type: str = "text/xml", *,
                when: Callable[[Request], bool] = _always, times: int | None = None) -> None:
        """Answer 200 with `body`: well-formed, and not what the API sends."""
        self._set(_Fault("foreign", when, times, 200, body, content_type))

    def error(self, status: int = 502, body: bytes = b"<html><body>Bad Gateway</body></html>",
              *, when: Callable[[Request], bool] = _always, times: int | None = None) -> None:
        self._set(_Fault("error", when, times, status, body, "text/html"))

    def delay(self, seconds: float, *, when: Callable[[Request], bool] = _always,
              times: int | None = None) -> None:
        """Forward, after `seconds` (cut short when the proxy closes)."""
        self._set(_Fault("delay", when, times, seconds=seconds))

    # -- serving ---------------------------------------------------------------------------

    def _pick(self, request: Request) -> _Fault | None:
        with self._lock:
            self.seen.append(request)
            fault = self._fault
            if fault.kind == "pass" or not fault.when(request):
                return None
            if fault.times is not None:
                if fault.times <= 0:
                    return None
                fault.times -= 1
            self.faulted += 1
            return fault

    def _serve(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        action = ""
        if handler.command == "POST" and b"Action=" in body:
            action = (parse_qs(body.decode("utf-8", "replace")).get("Action") or [""])[0]
        match = re.search(r"Credential=[^/]+/\d+/([^/]+)/", handler.headers.get("Authorization", ""))
        request = Request(handler.command, handler.path, action, match.group(1) if match else "")
        fault = self._pick(request)
        if fault is not None and fault.kind in ("foreign", "error"):
            self._answer(handler, fault.status, fault.body, fault.content_type)
            return
        if fault is not None and fault.kind == "delay" and self._closing.wait(fault.seconds):
            return
        upstream = http.client.HTTPConnection(self.target.hostname, self.target.port,
                                              timeout=self.upstream_timeout_s)
        try:
            headers = {k: v for k, v in handler.headers.items()
                       if k.lower() not in ("host", "connection", "keep-alive")}
            upstream.request(handler.command, handler.path, body=body or None, headers=headers)
            response = upstream.getresponse()
            data = response.read()
            kept = [(k, v) for k, v in response.getheaders()
                    if k.lower() not in ("transfer-encoding", "connection", "content-length",
                                         "keep-alive")]
            self._answer(handler, response.status, data, None, kept)
        finally:
            upstream.close()

    @staticmethod
    def _answer(handler: BaseHTTPRequestHandler, status: int, body: bytes,
                content_type: str | None, headers: list[tuple[str, str]] = ()) -> None:
        handler.send_response(status)
        if content_type:
            handler.send_header("Content-Type", content_type)
        for key, value in headers:
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def close(self) -> None:
        self._closing.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def __enter__(self) -> FaultyProxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class SilentSocket:
    """Accepts connections and never answers: a hung endpoint. `accepted` counts them."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind((HOST, 0))
        self._sock.listen(64)
        self._sock.settimeout(0.2)
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self.accepted = 0
        self.thread = threading.Thread(target=self._accept, daemon=True, name="silent-socket")
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self._sock.getsockname()[1]}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted += 1
            self._held.append(conn)  # kept open, never read, never written

    def close(self) -> None:
        self._stop.set()
        self.thread.join(5)
        for conn in self._held:
            conn.close()
        self._sock.close()

    def __enter__(self) -> SilentSocket:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
