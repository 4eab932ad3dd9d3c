"""A moto server as a child process on a free loopback port, for the demo and the tests."""

from __future__ import annotations

import contextlib
import math
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from fleetview.domain.errors import FleetViewError

HOST = "127.0.0.1"
_PROJECT_ROOT = Path(__file__).resolve().parents[2]


class MotoServerError(FleetViewError):
    """The moto server could not be started or stopped answering."""


def free_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


# The child watches its parent and exits when it is gone, so a killed demo or test run never
# leaves a server behind (PR_SET_PDEATHSIG would fire when the starting *thread* ends).
# argv: host, port, "refresh" (moto behind FleetView's instance-refresh layer) or "plain".
_CHILD = """
import os, sys, threading, time
parent = os.getppid()
def watch():
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)
threading.Thread(target=watch, daemon=True).start()
if sys.argv[3] == "refresh":
    from fleetview.sim.aws_refresh_server import serve
    serve(sys.argv[1], int(sys.argv[2]))
else:
    from moto.server import main
    main(["-H", sys.argv[1], "-p", sys.argv[2]])
"""

# Read by the child: seconds between two batches of an instance refresh.
REFRESH_STEP_ENV = "FLEETVIEW_SIM_REFRESH_STEP_S"


def _check_step_env() -> None:
    raw = os.environ.get(REFRESH_STEP_ENV, "")
    try:
        if not raw or 0 < float(raw) < math.inf:
            return
    except ValueError:
        pass
    raise MotoServerError(f"{REFRESH_STEP_ENV}={raw!r} is not a positive number of seconds; "
                          "set it to one (e.g. 2) or unset it")


class MotoServer:
    """One moto server child process. Use `MotoServer.start()` or `with MotoServer.start()`.

    The child runs in its own interpreter so moto's heavy request handling never competes
    with the caller's threads (the GUI, a poll in progress) for one GIL.
    """

    def __init__(self, process: subprocess.Popen, port: int, host: str = HOST,
                 log_path: Path | None = None, refresh: bool = False) -> None:
        self.process = process
        self.host = host
        self.port = port
        self.log_path = log_path
        self.refresh = refresh

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @classmethod
    def start(cls, port: int | None = None, timeout_s: float = 30.0,
              log_path: Path | str | None = None, attempts: int = 3, refresh: bool = True,
              refresh_step_s: float | None = None) -> MotoServer:
        """Start a server and return once it answers HTTP.

        With `refresh`, moto sits behind FleetView's layer that serves Auto Scaling's instance
        refresh (fleetview/sim/aws_refresh_server.py), one batch every `refresh_step_s`
        seconds (default: $FLEETVIEW_SIM_REFRESH_STEP_S, else 2 s); without it, it is plain
        moto, where StartInstanceRefresh is not implemented.

        A free port is picked by binding port 0; another process can take it before moto
        binds it, so a server that dies at start is retried on a new port.
        """
        if refresh_step_s is not None and not 0 < refresh_step_s < math.inf:
            raise ValueError(f"refresh_step_s must be a positive number, not {refresh_step_s}")
        if refresh and refresh_step_s is None:
            _check_step_env()
        last = ""
        for _ in range(attempts if port is None else 1):
            chosen = port or free_port()
            log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
            env = dict(os.environ)
            # Dummy credentials: the server needs none, and must never see real ones.
            env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                       AWS_SESSION_TOKEN="testing")
            if refresh_step_s is not None:
                env[REFRESH_STEP_ENV] = str(refresh_step_s)
            if refresh:  # the layer is FleetView's code: the child must find this checkout
                env["PYTHONPATH"] = os.pathsep.join(
                    p for p in (str(_PROJECT_ROOT), env.get("PYTHONPATH", "")) if p)
            try:
                process = subprocess.Popen(
                    [sys.executable, "-c", _CHILD, HOST, str(chosen),
                     "refresh" if refresh else "plain"],
                    stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env,
                )
            finally:
                if log is not subprocess.DEVNULL:
                    log.close()
            server = cls(process, chosen, log_path=Path(log_path) if log_path else None,
                         refresh=refresh)
            try:
                server._wait_ready(timeout_s)
                return server
            except MotoServerError as exc:
                last = str(exc)
                server.stop()
        raise MotoServerError(f"the moto server did not start: {last}; check that "
                              "moto[server] is installed (pip install 'moto[server]')")

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise MotoServerError(f"moto exited with code {self.process.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}/moto-api/data.json", timeout=2):
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                time.sleep(0.05)
        raise MotoServerError(f"moto did not answer on {self.url} within {timeout_s:.0f} s")

    def alive(self) -> bool:
        return self.process.poll() is None

    def reset(self) -> None:
        """Forget every resource in every region (moto's `/moto-api/reset`)."""
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST", data=b"")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                response.read()
        except (urllib.error.URLError, OSError) as exc:
            raise MotoServerError(f"resetting the moto server at {self.url} failed: {exc}; "
                                  "it may have crashed, start a new one") from None

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout_s)

    def __enter__(self) -> MotoServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.stop(timeout_s=2)
