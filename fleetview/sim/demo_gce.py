"""The demo's Compute Engine: a child process hosting the seeded emulator in real time.

`python -m fleetview.sim.demo_gce --size small` seeds the story, serves on a free loopback
port and prints one JSON line, {"ready": true, "endpoint": ..., ...}. It then reads commands
from stdin, one a line: "rollout" starts the story's live rollout. End of stdin (the demo
closed, or died) stops it, so it never outlives the demo that started it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

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


def _say(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fleetview.sim.demo_gce",
                                     description="The demo's seeded Compute Engine emulator.")
    parser.add_argument("--size", choices=demo_story.SIZES, default="small")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    args = parser.parse_args(argv)
    started = time.monotonic()
    state, instances = build(args.size)
    emulator = GceEmulator(state, port=args.port).start()
    _say({"ready": True, "endpoint": emulator.endpoint, "port": emulator.port,
          "project": state.project, "instances": instances,
          "seed_s": round(time.monotonic() - started, 3)})
    try:
        for line in sys.stdin:
            command = line.strip()
            if command == "rollout":
                _say({"rollout": demo_story.start_live_rollouts(state)})
            elif command == "stop":
                break
            elif command:
                _say({"error": f"unknown command {command!r}"})
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
