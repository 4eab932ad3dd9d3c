"""Small builders for inventories in the store tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fleetview.domain.model import Group, Image, Instance, Inventory, RegionError, Scope, State

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def scope(name: str = "prod", regions: tuple[str, ...] = ("us-east-1", "eu-west-1"),
          provider: str = "aws") -> Scope:
    return Scope(provider, name, "123456789012", regions)


def image(image_id: str, version: str, provider: str = "aws") -> Image:
    return Image(provider, image_id, f"web-{version}", created_at=T0, version=version)


def instance(iid: str, version: str = "1.0", region: str = "us-east-1", group: str | None = "web",
             state: State = State.RUNNING, scope_name: str = "prod", provider: str = "aws"
             ) -> Instance:
    return Instance(provider, iid, f"name-{iid}", scope_name, "123456789012", region,
                    f"{region}a", group, f"ami-{version}", state, version=version)


def group(name: str = "web", version: str = "1.0", region: str = "us-east-1", size: int = 2,
          canary: str | None = None, scope_name: str = "prod") -> Group:
    return Group("aws", scope_name, "123456789012", region, name, "asg", f"ami-{version}", size,
                 desired_version=version, canary_image_id=f"ami-{canary}" if canary else None,
                 canary_version=canary)


def inventory(when: datetime, instances=(), groups=(), ok=None, errors=(), sc=None,
              api_calls: int = 1) -> Inventory:
    sc = sc or scope()
    versions = {i.version for i in instances} | {g.desired_version for g in groups}
    images = {f"ami-{v}": image(f"ami-{v}", v, sc.provider) for v in versions if v}
    errors = tuple(RegionError(r, m) for r, m in errors)
    failed = {e.region for e in errors}
    regions_ok = tuple(r for r in (sc.regions if ok is None else ok) if r not in failed)
    return Inventory(sc, when, tuple(instances), tuple(groups), images, errors, regions_ok,
                     api_calls)
