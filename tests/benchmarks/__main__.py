"""`python -m tests.benchmarks [NAME ...] [--size tiny|full] [--json FILE]`: run and print."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import sys
import time
from pathlib import Path

import tests.benchmarks as package

# The benchmarks run against local clouds (moto, the GCE emulator) and Qt offscreen, as the
# tests do: dummy credentials, never the user's.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
for _key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
    os.environ[_key] = "testing"
os.environ.pop("AWS_PROFILE", None)
os.environ["AWS_CONFIG_FILE"] = os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull


def available() -> list[str]:
    return sorted(m.name[len("bench_"):] for m in pkgutil.iter_modules(package.__path__)
                  if m.name.startswith("bench_"))


def run(names: list[str], size: str) -> list[dict]:
    results = []
    for name in names:
        module = importlib.import_module(f"tests.benchmarks.bench_{name}")
        started = time.perf_counter()
        figures = module.run(size)
        for figure in figures:
            print(figure.line(), flush=True)
            results.append({"benchmark": name, **figure.as_dict()})
        print(f"# {name} took {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks")
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all): "
                        f"{', '.join(available())}")
    parser.add_argument("--size", choices=("tiny", "full"), default="full")
    parser.add_argument("--json", metavar="FILE", type=Path, help="also write figures as JSON")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(available()))
    if unknown:
        parser.error(f"no such benchmark: {', '.join(unknown)}; known: {', '.join(available())}")
    results = run(args.names or available(), args.size)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
