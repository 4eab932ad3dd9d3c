"""`fleetview snapshot`: poll every configured scope once and print the fleet as rows."""

from __future__ import annotations

import csv
import io
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from fleetview.config import Config
from fleetview.domain.csv_cells import safe_rows
from fleetview.domain.errors import FleetViewError
from fleetview.domain.model import Inventory
from fleetview.providers import make_provider

FIELDS = (
    "provider", "scope", "account", "region", "zone", "group", "instance_id", "name",
    "image_id", "image_name", "version", "desired_version", "state", "launched_at",
)


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def poll_scope(scope_config, config: Config) -> Inventory | FleetViewError:
    provider = None
    try:
        provider = make_provider(scope_config, config.versions)
        return provider.poll()
    except FleetViewError as exc:
        return exc
    finally:
        if provider is not None:
            provider.close()


def rows(inventory: Inventory) -> list[dict]:
    desired = {(g.region, g.name): g.desired_version for g in inventory.groups}
    out = []
    for inst in inventory.instances:
        image = inventory.images.get(inst.image_id or "")
        out.append({
            "provider": inst.provider, "scope": inst.scope, "account": inst.account,
            "region": inst.region, "zone": inst.zone, "group": inst.group,
            "instance_id": inst.id, "name": inst.name, "image_id": inst.image_id,
            "image_name": image.name if image else None, "version": inst.version,
            "desired_version": desired.get((inst.region, inst.group)) if inst.group else None,
            "state": str(inst.state), "launched_at": iso(inst.launched_at),
        })
    return out


def take_snapshot(config: Config) -> dict:
    """Poll all scopes in parallel; a scope that fails entirely becomes one error row."""
    polled_at = datetime.now(UTC)
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(config.scopes)))) as pool:
        results = list(pool.map(lambda s: (s, poll_scope(s, config)), config.scopes))
    instances, errors = [], []
    for scope_config, result in results:
        if isinstance(result, FleetViewError):
            errors.append({"scope": scope_config.name, "region": None, "message": str(result)})
            continue
        instances.extend(rows(result))
        errors.extend({"scope": scope_config.name, "region": e.region, "message": e.message}
                      for e in result.errors)
    instances.sort(key=lambda r: (r["scope"], r["region"], r["group"] or "", r["name"] or "",
                                  r["instance_id"]))
    return {"polled_at": iso(polled_at), "config": config.source, "instances": instances,
            "errors": errors}


def render(snapshot: dict, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(snapshot, indent=1) + "\n"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(safe_rows(snapshot["instances"]))
    return buffer.getvalue()
