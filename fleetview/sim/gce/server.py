"""The emulator's HTTP side: a threaded server speaking the Compute REST paths on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fleetview.sim.gce import api, errors, logging_api
from fleetview.sim.gce.clock import EmulatedClock
from fleetview.sim.gce.faults import Faults
from fleetview.sim.gce.resources import encode
from fleetview.sim.gce.state import GceState


class _Handler(BaseHTTPRequestHandler):
    # Keep-alive: the google client reuses one connection for a whole pagination.
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: with Nagle's algorithm the body waits for the
    # client's delayed ACK, 40-50 ms a call.
    disable_nagle_algorithm = True
    server: _Server

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        if parts.path.startswith("/v2/"):  # the Logging API, on the same port
            self._reply(*self.server.logging.handle(self.command, parts.path, raw))
            return
        found = api.match(self.command, parts.path)
        try:
            if found is None:
                raise errors.GceError(404, "notFound",
                                      f"The requested URL {parts.path} was not found.")
            method_id, handler, params = found
            body = json.loads(raw) if raw.strip() else None
            status, out = 200, self.server.api.handle(handler, method_id, params, query, body)
        except errors.GceError as exc:
            status, out = exc.status, exc.body()
        except json.JSONDecodeError as exc:
            status, out = 400, errors.invalid(f"Invalid JSON payload received. {exc}").body()
        self._reply(status, out)

    def _reply(self, status: int, out: dict[str, Any]) -> None:
        data = encode(out).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _serve

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        if self.server.verbose:
            super().log_message(format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    api: api.ComputeApi
    logging: logging_api.LoggingApi
    verbose: bool = False


class GceEmulator:
    """A Compute Engine emulator on 127.0.0.1: start(), .endpoint, .state, .clock, stop()."""

    def __init__(self, state: GceState | None = None, *, port: int = 0,
                 clock: EmulatedClock | None = None, verbose: bool = False) -> None:
        self.state = state or GceState(clock)
        self._port = port
        self._verbose = verbose
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        # The Logging API (audit log entries.list) this emulator also serves.
        self.logging = logging_api.LoggingApi(self.state)

    @property
    def clock(self) -> EmulatedClock:
        return self.state.clock

    @property
    def faults(self) -> Faults:
        return self.state.faults

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        return self._server.server_address[1]

    @property
    def endpoint(self) -> str:
        """What google-cloud-compute takes as client_options api_endpoint (with the scheme)."""
        return f"http://127.0.0.1:{self.port}"

    def client_kwargs(self) -> dict[str, Any]:
        """credentials= and client_options= for any compute_v1 client, aimed at this emulator."""
        from google.auth.credentials import AnonymousCredentials

        return {"credentials": AnonymousCredentials(),
                "client_options": {"api_endpoint": self.endpoint}}

    def _bind(self) -> _Server:
        server = _Server(("127.0.0.1", self._port), _Handler)
        server.api = api.ComputeApi(self.state)
        server.logging = self.logging
        server.verbose = self._verbose
        self._server = server
        return server

    def start(self) -> GceEmulator:
        """Listen on 127.0.0.1 and serve on a daemon thread; returns self."""
        server = self._bind()
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,),
                                        name="gce-emulator", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self, on_ready: Callable[[GceEmulator], None] | None = None) -> None:
        """Serve on the calling thread (the command line); on_ready runs once listening."""
        server = self._bind()
        if on_ready is not None:
            on_ready(self)
        server.serve_forever()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> GceEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
