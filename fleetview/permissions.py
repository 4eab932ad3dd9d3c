"""The permission files: each cloud declares what it needs (its `needs` module); this renders
the files in packaging/permissions/ from those declarations.

Two capabilities: "watch" (polling, read-only) and "operate" (watch plus replace and rollback).
`python -m fleetview.permissions packaging/permissions` writes the files, `fleetview doctor`
checks them, and tests/packaging/test_permissions.py records the calls the providers really
make against the local clouds and fails when one is not covered, so code and policies cannot
drift apart.
"""

from __future__ import annotations

import sys
from pathlib import Path

from fleetview import providers
from fleetview.providers.base import (  # noqa: F401 - re-exported for callers
    CAPABILITIES,
    Capability,
    Need,
)


def files() -> dict[str, tuple[str, Capability]]:
    """Every policy file of every registered cloud -> (cloud, capability)."""
    return {name: (cloud.name, capability)
            for cloud in providers.clouds()
            for name, (capability, _) in cloud.policy_files.items()}


def render(filename: str) -> str:
    cloud_name, capability = files()[filename]
    _, renderer = providers.cloud(cloud_name).policy_files[filename]
    return renderer(capability)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m fleetview.permissions DIR  (writes the policy files)",
              file=sys.stderr)
        return 2
    out = Path(args[0])
    out.mkdir(parents=True, exist_ok=True)
    for filename in files():
        (out / filename).write_text(render(filename), encoding="utf-8")
        print(out / filename)
    return 0


if __name__ == "__main__":
    sys.exit(main())
