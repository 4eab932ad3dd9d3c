"""The collector as a child process: start, read its JSON lines, stop it cleanly."""

from __future__ import annotations

import json
import logging
import sys
from collections import deque

from PySide6.QtCore import QObject, QProcess, Signal

from fleetview import collect_protocol as protocol
from fleetview.config import Config

log = logging.getLogger(__name__)


def collector_command(config: Config) -> tuple[str, list[str]]:
    """`python -m fleetview collect --stop-on-eof --config PATH` with this interpreter; the
    window holds the collector's stdin, so if the window dies the collector stops too."""
    args = ["-m", "fleetview", "collect", "--stop-on-eof"]
    if config.path is not None:
        args += ["--config", str(config.path)]
    return sys.executable, args


class CollectorProcess(QObject):
    """Runs the collector command and reads its stdout lines (fleetview.collect_protocol).

    Each line that is a collector event comes out twice: as the typed event (`received`, what
    the window reads) and as its JSON object (`event`). A line that is not JSON is logged as
    the collector's own words; one that is JSON but not an event is logged as refused, with
    why. The command is injectable so tests and benchmarks can run a tiny stand-in that prints
    the same lines.
    """

    event = Signal(dict)
    received = Signal(object)  # a collect_protocol.CollectorEvent
    started = Signal()
    exited = Signal(int, str)  # exit code, the last lines of stderr

    def __init__(self, program: str, arguments: list[str], parent: QObject | None = None):
        super().__init__(parent)
        self.program, self.arguments = program, list(arguments)
        self._process: QProcess | None = None
        self._buffer = b""
        self._stderr: deque[str] = deque(maxlen=20)
        self._stopping = False

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.state() != QProcess.ProcessState.NotRunning

    @property
    def pid(self) -> int | None:
        return int(self._process.processId()) if self.running else None

    def start(self) -> None:
        if self.running:
            return
        self._stopping = False
        process = QProcess(self)
        process.setProgram(self.program)
        process.setArguments(self.arguments)
        process.readyReadStandardOutput.connect(self._on_stdout)
        process.readyReadStandardError.connect(self._on_stderr)
        process.started.connect(self.started)
        process.finished.connect(self._on_finished)
        process.errorOccurred.connect(self._on_error)
        self._process = process
        process.start()

    def send(self, line: str) -> bool:
        """Write a command line (`poll`, `poll a,b`, `stop`) to the collector's stdin."""
        if not self.running or self._process is None:
            return False
        self._process.write((line.rstrip("\n") + "\n").encode())
        return True

    def poll_now(self, scopes: list[str] | None = None) -> bool:
        """Ask every scope (or `scopes`) to poll at once; starts the collector if it is not
        running (a starting collector polls first thing)."""
        if not self.running:
            self.start()
            return True
        return self.send("poll " + ",".join(scopes) if scopes else "poll")

    def stop(self, timeout_ms: int = 5000) -> None:
        """Ask the collector to finish (`stop` on stdin and SIGTERM), wait, then kill it.

        Killing is safe for the store: a poll being written is one transaction.
        """
        process = self._process
        if process is None:
            return
        self._stopping = True
        if process.state() != QProcess.ProcessState.NotRunning:
            self.send("stop")
            process.closeWriteChannel()
            process.terminate()
            if not process.waitForFinished(timeout_ms):
                log.warning("the collector did not stop within %d ms; killing it", timeout_ms)
                process.kill()
                process.waitForFinished(timeout_ms)
        self._process = None
        process.deleteLater()

    def _on_stdout(self) -> None:
        process = self.sender()
        if not isinstance(process, QProcess):
            return
        self._buffer += bytes(process.readAllStandardOutput().data())
        *lines, self._buffer = self._buffer.split(b"\n")
        for raw in lines:
            line = raw.strip()
            if not line:
                continue
            try:
                data = json.loads(line)
            except ValueError:
                log.info("collector: %s", line.decode(errors="replace"))
                continue
            try:
                event = protocol.from_dict(data)
            except protocol.ProtocolError as exc:
                log.warning("collector line refused: %s", exc)
                continue
            self.event.emit(data)
            self.received.emit(event)

    def _on_stderr(self) -> None:
        process = self.sender()
        if not isinstance(process, QProcess):
            return
        text = bytes(process.readAllStandardError().data()).decode(errors="replace")
        for line in text.splitlines():
            if line.strip():
                self._stderr.append(line)
                log.debug("collector stderr: %s", line)

    def _on_finished(self, code: int, status: QProcess.ExitStatus) -> None:
        if self._stopping:
            return
        self.exited.emit(int(code), "\n".join(self._stderr))

    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart and not self._stopping:
            self.exited.emit(-1, f"could not start {self.program}: "
                             f"{self._process.errorString() if self._process else error}")
