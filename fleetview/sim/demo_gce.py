"""The demo's Compute Engine: a child process hosting the seeded emulator in real time.

`python -m fleetview.sim.demo_gce --size small` seeds the story, serves on a free loopback
port and prints one JSON line, {"ready": true, "endpoint": ..., ...}. It then reads commands
from stdin, one a line, and answers each with a JSON line:

- "rollout" starts the story's live rollout;
- "speed X": emulated seconds per wall second from now on (tests hurry rollouts along);
- "watch PID" and "remove DIR": what to clean up should the demo die without stopping
  (killed, or crashed): the process is terminated and the directory removed;
- "stop" ends it, leaving the cleaning to the demo that stops normally.

End of stdin without "stop" means the demo died: it cleans up, then ends. So neither it nor
moto's server outlives the demo that started them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

from fleetview.sim import demo_story
from fleetview.sim.gce.clock import EmulatedClock
from fleetview.sim.gce.server import GceEmulator
from fleetview.sim.gce.state import GceState

# Emulated seconds one replacement takes; at real-time speed 1 a ten-wave rollout takes
# about a minute and a half, so it visibly advances between polls.
STEP_SECONDS = 8.0


def build(size: str) -> tuple[GceState, int]:
    """The seeded state on a real-time clock."""
    clock = EmulatedClock(realtime=True, speed=1.0)
    state = GceState(clock, project=demo_story.GCP_PROJECT, zones=demo_story.GCP_ZONES,
                     step_seconds=STEP_SECONDS)
    return state, demo_story.seed_gce(state, size)


def clean_up(pids: list[int], dirs: list[Path], grace_s: float = 5.0) -> None:
    """The demo died: end the processes it started and remove its directory."""
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for pid in pids:
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.05)
        if _alive(pid):
            with contextlib.suppress(OSError):
                os.kill(pid, getattr(signal, "SIGKILL", signal.SIGTERM))
    for path in dirs:
        shutil.rmtree(path, ignore_errors=True)


def _positive(text: str) -> bool:
    try:
        return float(text) > 0
    except ValueError:
        return False


def _alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would end the process there; it got its signal
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _say(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fleetview.sim.demo_gce",
                                     description="The demo's seeded Compute Engine emulator.")
    parser.add_argument("--size", choices=demo_story.SIZES, default="small")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    args = parser.parse_args(argv)
    # Ctrl+C in the terminal reaches the whole process group; the demo handles it and tells
    # this process to stop, in order.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    started = time.monotonic()
    state, instances = build(args.size)
    emulator = GceEmulator(state, port=args.port).start()
    _say({"ready": True, "endpoint": emulator.endpoint, "port": emulator.port,
          "project": state.project, "instances": instances,
          "seed_s": round(time.monotonic() - started, 3)})
    watched: list[int] = []
    doomed: list[Path] = []
    orphaned = True
    try:
        for line in sys.stdin:
            command, _, argument = line.strip().partition(" ")
            if command == "rollout":
                _say({"rollout": demo_story.start_live_rollouts(state)})
            elif command == "speed" and _positive(argument):
                state.clock.set_realtime(True, float(argument))
                _say({"speed": float(argument)})
            elif command == "watch" and argument.isdigit():
                watched.append(int(argument))
                _say({"watching": int(argument)})
            elif command == "remove" and argument:
                doomed.append(Path(argument))
                _say({"removing": argument})
            elif command == "stop":
                orphaned = False
                break
            elif command:
                _say({"error": f"unknown command {line.strip()!r}"})
    finally:
        emulator.stop()
        if orphaned:
            clean_up(watched, doomed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
