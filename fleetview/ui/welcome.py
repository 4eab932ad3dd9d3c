"""The first run's window: where the config was looked for, a sample to copy, the demo, `doctor`."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QFont, QFontDatabase, QGuiApplication, QIcon
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from fleetview import resources
from fleetview.config import Config, default_config_path, default_store_url
from fleetview.ui import gc_guard
from fleetview.ui.tasks import TaskRunner

log = logging.getLogger(__name__)

DEMO_SIZE = "small"
DOCTOR_COMMAND = "fleetview doctor"
DEMO_INSTALL_HINT = 'pip install "fleetview[demo]"'


def sample_config() -> str:
    """A config to start from: one scope per cloud, read-only, the store where it goes by
    default. It parses as it is (tests/ui/test_welcome.py loads it)."""
    return f"""\
# FleetView's config: one [[aws]] or [[gcp]] table per account or project.

[[aws]]
name = "prod-aws"             # its name everywhere in FleetView
regions = ["us-east-1", "eu-west-1"]
# profile = "prod"            # from ~/.aws/config (default: the usual chain)
# role_arn = "arn:aws:iam::123456789012:role/fleetview"
actions = false               # true allows rollback and replace

[[gcp]]
name = "prod-gcp"
project = "my-project"        # application default credentials
actions = false

[poll]
interval_s = 60

# [store]                     # where the history goes; the default:
# url = "{default_store_url()}"
"""


def _heading(text: str) -> QLabel:
    label = QLabel(text)
    font = label.font()
    font.setPointSizeF(font.pointSizeF() * 1.15)
    font.setBold(True)
    label.setFont(font)
    return label


def _wrapped(text: str) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.PlainText)
    return label


def _mono(text: str) -> QLabel:
    label = QLabel(text)
    label.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setWordWrap(True)
    return label


def _card() -> tuple[QFrame, QVBoxLayout]:
    frame = QFrame()
    frame.setFrameShape(QFrame.Shape.StyledPanel)
    layout = QVBoxLayout(frame)
    layout.setContentsMargins(16, 14, 16, 14)
    layout.setSpacing(8)
    return frame, layout


class CopyButton(QPushButton):
    """Copies a text to the clipboard and says so for a moment."""

    def __init__(self, label: str, text: Callable[[], str], parent: QWidget | None = None):
        super().__init__(label, parent)
        self._label, self._text = label, text
        self._reset = QTimer(self)
        self._reset.setSingleShot(True)
        self._reset.setInterval(1500)
        self._reset.timeout.connect(lambda: self.setText(self._label))
        self.clicked.connect(self.copy)

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(self._text())
        self.setText("Copied")
        self._reset.start()


class WelcomeWindow(QMainWindow):
    """Shown by `fleetview` while no scope is configured; opens no store (so creates no file).

    `start_demo(size)` is the demo's start (fleetview.sim.demo.start_demo, handed in by the
    command line, which may load the demo); None where this installation has no demo. It runs
    on a worker; `demo_started(demo)` then hands the running demo to whoever opens its window
    (app.run_gui). The window keeps the demo and stops it in `shutdown()`.
    """

    demo_started = Signal(object)

    def __init__(self, config: Config, start_demo: Callable[[str], object] | None = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.config = config
        self.start_demo = start_demo
        self.demo: object | None = None
        self.tasks = TaskRunner(self)
        self._closing = False
        self._demo_since: float | None = None
        gc_guard.acquire()  # the demo seeds on a worker: collect on this thread only
        self.setWindowTitle("FleetView — welcome")
        self.setWindowIcon(QIcon(str(resources.icon_svg())))

        self.config_path = config.path or config.looked_for or default_config_path()
        page = QWidget()
        outer = QVBoxLayout(page)
        outer.setContentsMargins(28, 22, 28, 22)
        outer.setSpacing(14)

        title = QLabel("Welcome to FleetView")
        font = title.font()
        font.setPointSizeF(font.pointSizeF() * 1.8)
        font.setBold(True)
        title.setFont(font)
        outer.addWidget(title)
        outer.addWidget(_wrapped(
            "Which machine image every instance runs, across AWS and GCP, now and in the past. "
            "Tell FleetView which accounts and projects to watch, or look around the demo "
            "fleet first."))

        columns = QHBoxLayout()
        columns.setSpacing(18)
        columns.addWidget(self._config_card(), 3, Qt.AlignmentFlag.AlignTop)
        right = QVBoxLayout()
        right.setSpacing(14)
        right.addWidget(self._demo_card())
        right.addWidget(self._doctor_card())
        right.addStretch(1)
        columns.addLayout(right, 2)
        outer.addLayout(columns)
        self.store_note = _wrapped(
            "FleetView keeps no history and creates no database until a scope is configured.")
        self.store_note.setEnabled(False)
        outer.addWidget(self.store_note)
        outer.addStretch(1)

        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(page)
        self.setCentralWidget(scroll)

        self._elapsed = QTimer(self)
        self._elapsed.setInterval(1000)
        self._elapsed.timeout.connect(self._show_elapsed)
        self.resize(1180, 720)

    # -- the cards ----------------------------------------------------------------------------
    def _config_card(self) -> QFrame:
        frame, layout = _card()
        layout.addWidget(_heading("1. Write your config"))
        found = self.config.path is not None
        layout.addWidget(_wrapped(
            "FleetView read its config from:" if found else
            "FleetView looked for its config here and found no file:"))
        path_row = QHBoxLayout()
        self.path_label = _mono(str(self.config_path))
        self.path_label.setObjectName("configPath")
        path_row.addWidget(self.path_label, 1)
        self.copy_path = CopyButton("Copy path", lambda: str(self.config_path))
        path_row.addWidget(self.copy_path, 0, Qt.AlignmentFlag.AlignTop)
        layout.addLayout(path_row)
        if found:
            layout.addWidget(_wrapped("It names no account or project to watch yet. Add a "
                                      "scope like those below."))
        layout.addWidget(_wrapped(
            "Save this sample there, put in your own account's regions or your project, and "
            "start FleetView again (or give another file with --config PATH):"))
        self.sample = QPlainTextEdit(sample_config())
        self.sample.setObjectName("sampleConfig")
        self.sample.setReadOnly(True)
        self.sample.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.sample.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        # Big enough for the whole sample: nothing to scroll in what is to be copied.
        metrics, text = self.sample.fontMetrics(), self.sample.toPlainText()
        widest = max(metrics.horizontalAdvance(line) for line in text.splitlines())
        self.sample.setMinimumWidth(widest + 24)
        self.sample.setFixedHeight(metrics.lineSpacing() * (text.count("\n") + 1) + 16)
        layout.addWidget(self.sample)
        buttons = QHBoxLayout()
        self.copy_sample = CopyButton("Copy sample config", self.sample.toPlainText)
        buttons.addWidget(self.copy_sample)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        return frame

    def _demo_card(self) -> QFrame:
        frame, layout = _card()
        layout.addWidget(_heading("Or try the demo"))
        layout.addWidget(_wrapped(
            "A local AWS and Compute Engine on this machine, no account needed: three groups "
            "per cloud, 30 days of history, and a bad release going out to stop and roll "
            "back. Nothing is sent anywhere; it all goes when you close it."))
        self.demo_button = QPushButton("Try the demo")
        self.demo_button.setObjectName("tryDemo")
        self.demo_button.setDefault(True)
        font = self.demo_button.font()
        font.setBold(True)
        self.demo_button.setFont(font)
        self.demo_button.setMinimumHeight(36)
        self.demo_button.clicked.connect(self.try_demo)
        layout.addWidget(self.demo_button)
        self.demo_progress = QProgressBar()
        self.demo_progress.setRange(0, 0)  # no steps to count: it is busy, not n% done
        self.demo_progress.setTextVisible(False)
        self.demo_progress.setMaximumHeight(8)
        self.demo_progress.hide()
        layout.addWidget(self.demo_progress)
        self.demo_status = _wrapped("")
        self.demo_status.setObjectName("demoStatus")
        self.demo_status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.demo_status)
        if self.start_demo is None:
            self.demo_button.setEnabled(False)
            self.demo_status.setText("The demo is not part of this installation; install it "
                                     f"with {DEMO_INSTALL_HINT}.")
        else:
            self.demo_status.hide()
        return frame

    def _doctor_card(self) -> QFrame:
        frame, layout = _card()
        layout.addWidget(_heading("2. Check your setup"))
        layout.addWidget(_wrapped(
            "Once the config is saved, this checks each scope's credentials and the "
            "permissions FleetView needs, and says which policy grants what is missing:"))
        row = QHBoxLayout()
        command = _mono(DOCTOR_COMMAND)
        command.setObjectName("doctorCommand")
        bold = QFont(command.font())
        bold.setBold(True)
        command.setFont(bold)
        row.addWidget(command, 1)
        self.copy_doctor = CopyButton("Copy", lambda: DOCTOR_COMMAND)
        row.addWidget(self.copy_doctor)
        layout.addLayout(row)
        return frame

    # -- the demo -----------------------------------------------------------------------------
    def try_demo(self) -> None:
        """Start the demo on a worker; the button waits, the status says how long so far."""
        if self.start_demo is None or self.tasks.is_running("demo") or self.demo is not None:
            return
        self.demo_button.setEnabled(False)
        self.demo_button.setText("Starting the demo…")
        self.demo_progress.show()
        self.demo_status.show()
        self._demo_since = time.monotonic()
        self._show_elapsed()
        self._elapsed.start()
        start = self.start_demo
        self.tasks.start_long("demo", lambda _state: start(DEMO_SIZE),
                              on_done=self._on_demo_ready, on_error=self._on_demo_failed)

    def _show_elapsed(self) -> None:
        if self._demo_since is None:
            return
        seconds = int(time.monotonic() - self._demo_since)
        self.demo_status.setText(f"Starting the local clouds and writing 30 days of "
                                 f"history… {seconds} s (usually under a minute)")

    def _on_demo_ready(self, demo: object) -> None:
        self._elapsed.stop()
        self.demo = demo
        if self._closing:
            self._stop_demo()
            return
        self.demo_progress.hide()
        self.demo_status.setText("The demo is running in its own window.")
        self.demo_started.emit(demo)

    def _on_demo_failed(self, exc: BaseException) -> None:
        self._elapsed.stop()
        self._demo_since = None
        log.warning("the demo did not start: %s", exc)
        self.demo_progress.hide()
        self.demo_button.setEnabled(True)
        self.demo_button.setText("Try the demo again")
        self.demo_status.setText(f"The demo could not start: {exc}")

    def _stop_demo(self) -> None:
        demo, self.demo = self.demo, None
        stop = getattr(demo, "stop", None)
        if stop is not None:
            stop()

    # -- closing ------------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Stop the demo this window started (if any); safe to call twice. A demo still
        starting is left to its own clean-up at exit (start_demo registers one)."""
        if self._closing:
            return
        self._closing = True
        self._elapsed.stop()
        self.tasks.shutdown()
        self._stop_demo()
        gc_guard.release()
