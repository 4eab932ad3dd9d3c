"""`fleetview --demo`: local AWS and GCP with a seeded story and 30 days of history, then the GUI.

`start_demo(size, workdir)` does everything but the window (tests use it); `run_demo(size)`
is start_demo + the main window + stop. A demo owns a temporary directory (config, store,
logs) and two child processes (moto's server, the Compute Engine emulator); `Demo.stop()`
ends both and removes the directory, and runs at exit too.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from fleetview.config import Config, load_config
from fleetview.domain.errors import FleetViewError
from fleetview.domain.model import Image, Inventory
from fleetview.sim import demo_history, demo_story

INSTALL_HINT = 'pip install "fleetview[demo]"'
# moto's server needs these besides moto itself (its `server` extra).
_DEMO_MODULES = ("moto", "flask", "flask_cors")
GCE_READY_TIMEOUT_S = 180.0
POLL_INTERVAL_S = {"small": 5.0, "large": 30.0}

# The demo talks to local clouds only: no real credentials, no profile, no instance metadata.
_DEMO_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_PROFILE": None,
    "AWS_DEFAULT_PROFILE": None,
    # moto loads thousands of public AMIs per region on first use; the story needs none.
    "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
}


class DemoError(FleetViewError):
    """The demo could not start; the message says what to do."""


def missing_module() -> str | None:
    """The first module of the demo extra that cannot be imported, if any."""
    for name in _DEMO_MODULES:
        if name in sys.modules and sys.modules[name] is None:
            return name  # blocked on purpose (tests) or failed to import before
        try:
            if importlib.util.find_spec(name) is None:
                return name
        except (ImportError, ValueError):
            return name
    return None


def check_installed() -> None:
    missing = missing_module()
    if missing:
        raise DemoError(f"the demo needs moto's server (module {missing!r} is missing); "
                        f"install it with: {INSTALL_HINT}")


@dataclass
class Demo:
    """A running demo: its directory, config, child processes and what seeding took."""

    size: str
    workdir: Path
    config_path: Path | None = None
    config: Config | None = None
    moto: object = None  # MotoServer
    gce: subprocess.Popen | None = None
    gce_endpoint: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    instances: dict[str, int] = field(default_factory=dict)
    history: demo_history.HistoryStats | None = None
    history_end: datetime | None = None  # the last poll of the history: live from here on
    rollouts: dict[str, list[str]] = field(default_factory=dict)  # scope -> groups rolling out
    _dead_port: socket.socket | None = None
    _env: dict[str, str | None] = field(default_factory=dict)
    _gce_lines: queue.Queue = field(default_factory=queue.Queue)
    _stopped: bool = False

    @property
    def pids(self) -> list[int]:
        """The child processes this demo started (for tests and for the curious)."""
        out = []
        if self.moto is not None:
            out.append(self.moto.process.pid)
        if self.gce is not None:
            out.append(self.gce.pid)
        return out

    def summary(self) -> str:
        total = sum(self.instances.values())
        return (f"{total} instances ({', '.join(f'{k} {v}' for k, v in self.instances.items())})"
                f", seeded in {self.timings.get('total_s', 0):.1f} s; files in {self.workdir}")

    def stop(self) -> None:
        """End the child processes, reap them, remove the directory. Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)
        if self.gce is not None:
            _end_process(self.gce, farewell="stop")
        if self.moto is not None:
            with contextlib.suppress(Exception):
                self.moto.stop()
        if self._dead_port is not None:
            self._dead_port.close()
        _restore_env(self._env)
        shutil.rmtree(self.workdir, ignore_errors=True)

    # -- the Compute Engine child ---------------------------------------------------------

    def _start_gce(self) -> None:
        log = open(self.workdir / "gce.log", "wb")  # noqa: SIM115 - the child keeps it
        try:
            self.gce = subprocess.Popen(
                [sys.executable, "-m", "fleetview.sim.demo_gce", "--size", self.size],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
                bufsize=1, env=dict(os.environ))
        finally:
            log.close()
        thread = threading.Thread(target=_read_lines, args=(self.gce.stdout, self._gce_lines),
                                  name="demo-gce-reader", daemon=True)
        thread.start()

    def _gce_reply(self, key: str, timeout_s: float) -> dict:
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise DemoError(f"the Compute Engine emulator did not answer within "
                                f"{timeout_s:.0f} s; see {self.workdir / 'gce.log'}")
            try:
                line = self._gce_lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                tail = _tail(self.workdir / "gce.log")
                raise DemoError(f"the Compute Engine emulator exited while starting: {tail}")
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                continue
            if key in message:
                return message

    def _gce_command(self, command: str, key: str, timeout_s: float = 30.0) -> dict:
        assert self.gce is not None and self.gce.stdin is not None
        self.gce.stdin.write(command + "\n")
        self.gce.stdin.flush()
        return self._gce_reply(key, timeout_s)


def _read_lines(stream, lines: queue.Queue) -> None:
    with contextlib.suppress(ValueError, OSError):
        for line in stream:
            lines.put(line)
    lines.put(None)


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return " | ".join(text[-lines:]) or "no output"


def _end_process(process: subprocess.Popen, timeout_s: float = 10.0,
                 farewell: str | None = None) -> None:
    """Say farewell on its stdin and close it (the emulator's cue to stop), then terminate,
    then kill; always reap."""
    if process.stdin is not None:
        with contextlib.suppress(OSError, ValueError):
            if farewell and process.poll() is None:
                process.stdin.write(farewell + "\n")
                process.stdin.flush()
        with contextlib.suppress(OSError, ValueError):
            process.stdin.close()
    try:
        process.wait(timeout=2.0)
    except subprocess.TimeoutExpired:
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout_s)
    if process.stdout is not None:
        with contextlib.suppress(OSError, ValueError):
            process.stdout.close()


def _set_env() -> dict[str, str | None]:
    saved = {key: os.environ.get(key) for key in _DEMO_ENV}
    for key, value in _DEMO_ENV.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    return saved


def _restore_env(saved: dict[str, str | None]) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    saved.clear()


def _dead_port() -> socket.socket:
    """A loopback port held but never listened on: connections to it are refused, and no
    other program can take it while the demo runs."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def _config_text(demo: Demo, moto_url: str, dead_url: str) -> str:
    store = (demo.workdir / "history.db").as_posix()
    aws_regions = ", ".join(f'"{r}"' for r in demo_story.AWS_REGIONS)
    interval = POLL_INTERVAL_S[demo.size]
    return f"""# Written by `fleetview --demo`; removed when the demo closes.
[store]
url = "sqlite:///{store}"

[poll]
interval_s = {interval}
jitter_s = 1

[[aws]]
name = "{demo_story.AWS_SCOPE}"
regions = [{aws_regions}]
endpoint_url = "{moto_url}"
actions = true
backfill_days = 0  # the demo wrote its 30 days of history itself

[[aws]]
# Its endpoint is down: this is what an outage looks like.
name = "{demo_story.FAILING_SCOPE}"
regions = ["{demo_story.FAILING.region}"]
endpoint_url = "{dead_url}"
actions = true

[[gcp]]
name = "{demo_story.GCP_SCOPE}"
project = "{demo_story.GCP_PROJECT}"
api_endpoint = "{demo.gce_endpoint}"
credentials = "anonymous"
actions = true
backfill_days = 0  # the demo wrote its 30 days of history itself

[[aws]]
# FleetView never watched it: its first poll rebuilds 30 days from the cloud's records.
name = "{demo_story.BACKFILLED_SCOPE}"
regions = ["{demo_story.BACKFILLED_REGION}"]
endpoint_url = "{moto_url}"
backfill_days = 30
actions = true
"""


def _timed_poll(scope_config, config: Config) -> tuple[Inventory, datetime, datetime]:
    from fleetview.providers import make_provider

    provider = make_provider(scope_config, config.versions)
    try:
        started = datetime.now(UTC)
        inventory = provider.poll()
        return inventory, started, datetime.now(UTC)
    finally:
        provider.close()


def _aws_images(config: Config, seeded: demo_story.AwsSeeded) -> dict[str, Image]:
    """Every AMI of the story, as the AWS provider describes it."""
    from fleetview.sim.aws_fleet import clients

    images = {}
    for region in demo_story.AWS_REGIONS:
        ids = [image_id for (r, _), image_id in seeded.images.items() if r == region]
        ec2, _ = clients(seeded.endpoint_url, region)
        for raw in ec2.describe_images(ImageIds=ids)["Images"]:
            created = raw.get("CreationDate")
            image = Image("aws", raw["ImageId"], raw.get("Name") or "",
                          created_at=datetime.fromisoformat(created.replace("Z", "+00:00"))
                          if created else None,
                          tags={t["Key"]: t.get("Value", "") for t in raw.get("Tags") or []})
            images[image.id] = image
    return {k: _labelled(config, v) for k, v in images.items()}


def _gcp_images(config: Config) -> dict[str, Image]:
    """Every image of the demo project, as the GCP provider describes it."""
    from fleetview.providers import make_provider
    from fleetview.providers.gcp.shapes import image_from_pb

    scope_config = config.scope(demo_story.GCP_SCOPE)
    provider = make_provider(scope_config, config.versions)
    images = {}
    try:
        for page in provider.compute.pages(
                "images", "list", "compute.images.list", "listing images",
                {"project": scope_config.project, "max_results": 500}):
            for pb in page.items:
                image, _ = image_from_pb(pb, scope_config.project)
                images[image.id] = _labelled(config, image)
    finally:
        provider.close()
    return images


def _live_history(config: Config, name: str, images: dict[str, Image], image_of,
                  provider: str) -> demo_history.ScopeHistory:
    inventory, started, finished = _timed_poll(config.scope(name), config)
    if inventory.errors:
        raise DemoError(f"the demo's own {name} did not answer: {inventory.errors[0].message}; "
                        "see the logs in the demo's directory")
    return demo_history.ScopeHistory(inventory, images, image_of,
                                     demo_story.groups_of(provider),
                                     demo_story.standalone_of(provider), started, finished)


def _gcp_live(config: Config) -> demo_history.ScopeHistory:
    """The GCP scope polled for real, with every image of the story."""
    def image_of(_region: str, version: str) -> str:
        return (f"projects/{demo_story.GCP_PROJECT}/global/images/"
                f"{demo_story.gce_image_name(version)}")

    return _live_history(config, demo_story.GCP_SCOPE, _gcp_images(config), image_of, "gcp")


def _aws_live(config: Config, endpoint_url: str, size: str) -> demo_history.ScopeHistory:
    """AWS seeded, then polled for real, with every AMI of the story."""
    seeded = demo_story.seed_aws(endpoint_url, size)

    def image_of(region: str, version: str) -> str:
        return seeded.images[(region, version)]

    return _live_history(config, demo_story.AWS_SCOPE, _aws_images(config, seeded), image_of,
                         "aws")


def _labelled(config: Config, image: Image) -> Image:
    from dataclasses import replace

    return replace(image, version=config.versions.version_of(image))


def start_demo(size: str = "small", workdir: Path | str | None = None) -> Demo:
    """Start the local clouds, seed the story, write 30 days of history and the config.

    The demo gets its own directory: a new temporary one, inside `workdir` if given.
    """
    demo_story.check_size(size)
    check_installed()
    from fleetview.sim.aws_past import play_past
    from fleetview.sim.moto_server import MotoServer

    parent = Path(workdir) if workdir is not None else None
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    demo = Demo(size, Path(tempfile.mkdtemp(prefix="fleetview-demo-", dir=parent)))
    atexit.register(demo.stop)
    t0 = time.monotonic()
    try:
        demo._env = _set_env()
        demo._start_gce()  # seeds in its own process while moto starts and is seeded here
        # moto behind FleetView's instance-refresh layer, one batch every
        # $FLEETVIEW_SIM_REFRESH_STEP_S seconds (2 s unless set): slow enough to stop.
        demo.moto = MotoServer.start(log_path=demo.workdir / "moto.log", refresh=True)
        demo.timings["moto_start_s"] = time.monotonic() - t0
        ready = demo._gce_reply("ready", GCE_READY_TIMEOUT_S)
        demo.gce_endpoint = ready["endpoint"]
        # Should this process die without stop() (killed, a crash), the emulator's process
        # sees its stdin end and cleans up after it.
        demo._gce_command(f"watch {demo.moto.process.pid}", "watching")
        demo._gce_command(f"remove {demo.workdir}", "removing")
        demo.timings["gce_ready_s"] = time.monotonic() - t0
        demo._dead_port = _dead_port()
        dead_url = f"http://127.0.0.1:{demo._dead_port.getsockname()[1]}"
        demo.config_path = demo.workdir / "config.toml"
        demo.config_path.write_text(_config_text(demo, demo.moto.url, dead_url),
                                    encoding="utf-8")
        demo.config = config = load_config(demo.config_path)

        from fleetview.store import Store

        # Pipelined: GCP's history is written while AWS is still seeded and polled, and the
        # failing scope is polled (its error message is the real one) meanwhile.
        store = Store.open(config.store.url)
        stats = demo.history = demo_history.HistoryStats()
        histories: dict[str, demo_history.ScopeHistory] = {}
        try:
            with ThreadPoolExecutor(max_workers=3) as pool:
                failing = pool.submit(_timed_poll, config.scope(demo_story.FAILING_SCOPE),
                                      config)
                gcp = pool.submit(_gcp_live, config)
                aws = pool.submit(_aws_live, config, demo.moto.url, size)
                # Its past lives only in the local cloud's records: nothing is written here.
                past = pool.submit(play_past, demo.moto.url, demo_story.BACKFILLED_REGION,
                                   groups=demo_story.BACKFILLED_GROUPS)
                ends = []
                for name, future in ((demo_story.GCP_SCOPE, gcp), (demo_story.AWS_SCOPE, aws)):
                    history = histories[name] = future.result()
                    demo.timings[f"{name}_live_s"] = time.monotonic() - t0
                    demo.instances[name] = len(history.live.instances)
                    demo_history.write_scope_history(store, history, size, stats)
                    demo.timings[f"{name}_history_s"] = time.monotonic() - t0
                    ends.append(history.live.polled_at)
                demo.history_end = max(ends)
                demo.instances[demo_story.BACKFILLED_SCOPE] = sum(
                    1 for i in past.result().instances if i.end is None)
                inventory, started, _ = failing.result()
                demo_history.write_failing_history(store, inventory, min(ends), stats,
                                                   live_started=started)
        finally:
            store.close()
        demo.timings["history_s"] = time.monotonic() - t0
        # The bad release goes out on both clouds as the window opens, started as a deploy
        # pipeline starts it.
        demo.rollouts[demo_story.GCP_SCOPE] = demo._gce_command("rollout", "rollout")["rollout"]
        demo.rollouts[demo_story.AWS_SCOPE] = demo_story.start_aws_rollouts(
            demo.moto.url, histories[demo_story.AWS_SCOPE].image_of)
        demo.timings["total_s"] = time.monotonic() - t0
    except BaseException:
        demo.stop()
        raise
    return demo


class _Signals:
    """SIGTERM, SIGHUP (the terminal closed) and SIGINT (Ctrl+C) end the demo in order: the
    window closes (and stops its collector), then the demo stops its clouds. Before the
    window is up they abort the start, which cleans up after itself."""

    NAMES = ("SIGTERM", "SIGHUP", "SIGINT")

    def __init__(self) -> None:
        self.quit = None
        self._saved: dict[int, object] = {}

    def _handle(self, signum, _frame) -> None:
        if self.quit is not None:
            self.quit()
        elif signum == getattr(signal, "SIGINT", None):
            raise KeyboardInterrupt
        else:
            raise SystemExit(128 + signum)

    def __enter__(self) -> _Signals:
        for name in self.NAMES:
            number = getattr(signal, name, None)
            if number is None:
                continue
            try:
                self._saved[number] = signal.signal(number, self._handle)
            except ValueError:  # not the main thread: the caller handles its own signals
                break
        return self

    def __exit__(self, *exc: object) -> None:
        for number, previous in self._saved.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(number, previous)
        self._saved.clear()


def run_demo(size: str = "small") -> int:
    """`fleetview --demo`: start the demo, open the main window on it, stop it on close."""
    try:
        check_installed()
    except DemoError as exc:
        print(f"fleetview: {exc}", file=sys.stderr)
        return 1
    print(f"fleetview: starting the {size} demo (local AWS and GCP, no account needed)...",
          file=sys.stderr)
    with _Signals() as signals:
        demo = start_demo(size)
        try:
            print(f"fleetview: demo ready: {demo.summary()}", file=sys.stderr)
            from fleetview.ui import app as ui_app

            signals.quit = lambda: ui_app.application().quit()
            return ui_app.run_gui(demo.config, collect=True,
                                  settings_path=str(demo.workdir / "window.ini"))
        finally:
            signals.quit = None
            demo.stop()
