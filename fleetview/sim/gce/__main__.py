"""Run the Compute Engine emulator from a shell: python -m fleetview.sim.gce --port N."""

from __future__ import annotations

import argparse
import contextlib

from fleetview.sim.gce.clock import EmulatedClock
from fleetview.sim.gce.seed import seed_example
from fleetview.sim.gce.server import GceEmulator
from fleetview.sim.gce.state import GceState


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fleetview.sim.gce",
                                     description="A Compute Engine emulator on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--project", default="demo-project")
    parser.add_argument("--seed", action="store_true",
                        help="create example images, templates, groups and instances")
    parser.add_argument("--realtime", action="store_true",
                        help="emulated time follows the wall clock (rollouts progress alone)")
    parser.add_argument("--speed", type=float, default=10.0,
                        help="emulated seconds per wall second in --realtime mode")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    clock = EmulatedClock(realtime=args.realtime, speed=args.speed)
    state = GceState(clock, project=args.project)
    if args.seed:
        seed_example(state)
    emulator = GceEmulator(state, port=args.port, verbose=args.verbose)

    def ready(emu: GceEmulator) -> None:
        mode = f"real time x{args.speed:g}" if args.realtime else "manual clock"
        print(f"Compute Engine emulator on {emu.endpoint} (project {args.project}, {mode}); "
              "Ctrl-C to stop", flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        emulator.serve_forever(on_ready=ready)


if __name__ == "__main__":
    main()
