"""Longest GUI event-loop stall while a collector ingests 20,000 instances into the store.

The window runs as usual, with its collector child process swapped (through the injectable
command) for a stand-in that writes real polls of a generated fleet to the same SQLite store
and prints the collector's JSON lines, so the window refreshes after every poll as it would.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from tests.benchmarks import Figure  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SIZES = {"tiny": 500, "full": 20_000}
SCOPES = 4
ROUNDS = 3  # all new; 10% replaced by a new version; unchanged


def _say(**event) -> None:
    print(json.dumps(event), flush=True)


def child(url: str, instances: int) -> int:
    """The stand-in collector: ROUNDS polls of every scope, written to the store."""
    from fleetview.domain.model import Group, Image, Instance, Inventory, Scope, State
    from fleetview.store import Store

    store = Store.open(url)
    per_scope = instances // SCOPES
    scopes = [Scope("aws", f"scope-{n}", f"1000000000{n:02d}", ("us-east-1", "eu-west-1"))
              for n in range(SCOPES)]
    _say(event="collector_started", scopes=[s.name for s in scopes], pid=os.getpid())
    for rnd in range(ROUNDS):
        for scope in scopes:
            _say(event="poll_started", scope=scope.name, provider="aws")
            started = datetime.now(UTC)
            insts, groups, images = [], [], {}
            for v in ("1.0", "1.1"):
                images[f"ami-{v}"] = Image("aws", f"ami-{v}", f"app-{v}", version=v)
            for i in range(per_scope):
                region = scope.regions[i % 2]
                group = f"group-{i // 50:03d}"
                replaced = rnd >= 1 and i % 10 == 0
                version = "1.1" if replaced else "1.0"
                iid = f"i-{scope.name[-1]}{i:07d}{'r' if replaced else ''}"
                insts.append(Instance("aws", iid, iid, scope.name, scope.account, region,
                                      region + "a", group, f"ami-{version}", State.RUNNING,
                                      version=version))
            for g in sorted({(i.region, i.group) for i in insts}):
                groups.append(Group("aws", scope.name, scope.account, g[0], g[1], "asg",
                                    "ami-1.1" if rnd >= 1 else "ami-1.0", 25,
                                    desired_version="1.1" if rnd >= 1 else "1.0"))
            inv = Inventory(scope, started, tuple(insts), tuple(groups), images, (),
                            scope.regions, api_calls=10)
            summary = store.record_poll(inv, started, datetime.now(UTC))
            _say(event="poll_finished", scope=scope.name, provider="aws", ok=True,
                 instances=len(insts), groups=len(groups), opened=summary.opened,
                 closed=summary.closed, unchanged=summary.unchanged, region_errors=[],
                 duration_s=(datetime.now(UTC) - started).total_seconds())
    _say(event="collector_stopped", reason="done", unwritten=0)
    store.close()
    return 0


def run(size: str) -> list[Figure]:
    from PySide6.QtCore import QSettings, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from fleetview.config import Config, PollConfig, StoreConfig
    from fleetview.ui import tasks
    from fleetview.ui.app import open_window
    from fleetview.ui.collector_process import CollectorProcess

    app = QApplication.instance() or QApplication([])
    instances = SIZES[size]
    tmp = Path(tempfile.mkdtemp(prefix="fleetview-bench-"))
    url = f"sqlite:///{tmp / 'history.db'}"
    collector = CollectorProcess(sys.executable, ["-m", "tests.benchmarks.bench_gui_collector",
                                                  "--child", url, str(instances)])
    os.chdir(ROOT)  # the stand-in is imported as tests.benchmarks...
    tasks.share_the_gil_finely()  # as launch() does
    # As `fleetview` starts: launch() (with the stand-in collector), but measured only once
    # the empty window is up; the collector starts with window.start() below.
    window = open_window(Config(store=StoreConfig(url=url), poll=PollConfig(60)),
                         collect=True, collector=collector,
                         settings=QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat))
    store = window.store
    gc.collect()
    gc.freeze()
    window.resize(1400, 860)
    window.show()
    # The first paint of an empty window is launch, not ingest: measured elsewhere.
    shown = time.perf_counter() + 0.3
    while time.perf_counter() < shown:
        app.processEvents()
        time.sleep(0.001)

    ticks: list[tuple[float, float]] = []  # wall, GUI-thread CPU
    timer = QTimer()
    timer.setInterval(10)
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.timeout.connect(lambda: ticks.append((time.perf_counter(), time.thread_time())))
    finished = {"polls": 0, "stopped": False, "exit": None}
    loads_after_last: set[str] = set()

    def on_event(event: dict) -> None:
        if event.get("event") == "poll_finished":
            finished["polls"] += 1
            loads_after_last.clear()
        elif event.get("event") == "collector_stopped":
            finished["stopped"] = True

    collector.event.connect(on_event)
    window.loaded.connect(loads_after_last.add)
    timer.start()
    started = time.perf_counter()
    window.start()
    expected = SCOPES * ROUNDS
    deadline = started + 600
    while time.perf_counter() < deadline:
        app.processEvents()
        time.sleep(0.001)
        if finished["stopped"] and finished["polls"] >= expected and \
                {"fleet", "history"} <= loads_after_last:
            break
    ingest_s = time.perf_counter() - started
    settle = time.perf_counter() + 0.5
    while time.perf_counter() < settle:
        app.processEvents()
        time.sleep(0.001)
    timer.stop()
    rows = window.table.model.total_count()
    window.close()
    store.close()
    gc.unfreeze()
    pairs = list(zip(ticks, ticks[1:], strict=False))
    gaps = sorted(((b[0] - a[0]) * 1000, (b[1] - a[1]) * 1000) for a, b in pairs)
    worst = gaps[-1] if gaps else (0.0, 0.0)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return [
        Figure(f"GUI longest event-loop stall while the collector ingests {instances:,} "
               f"instances ({ROUNDS} polls of {SCOPES} scopes)", worst[0], "ms",
               target="< 50 ms"),
        Figure("  GUI-thread CPU time within that stall (the rest: waiting for the CPU or "
               "the GIL)", worst[1], "ms"),
        Figure("GUI 99th percentile timer gap", gaps[int(len(gaps) * 0.99)][0] if gaps else 0.0,
               "ms"),
        Figure("machine load average (1 min) at the end", load, ""),
        Figure("ingest and refresh, wall time", ingest_s, "s"),
        Figure("instances shown in the table at the end", float(rows), "rows"),
    ]


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        sys.exit(child(sys.argv[2], int(sys.argv[3])))
    for figure in run(sys.argv[1] if len(sys.argv) > 1 else "tiny"):
        print(figure.line())
