"""A simulated fleet over days (groups, rollouts, drift), written to a real Store by polls.

Used by the UI tests, the GUI benchmarks and scripts/screenshots.py.
"""

from __future__ import annotations

import bisect
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from fleetview.domain.model import Group, Image, Instance, Inventory, RegionError, Scope, State


@dataclass(frozen=True)
class Rollout:
    start: datetime
    version: str
    step: timedelta  # one instance replaced per step


@dataclass
class GroupSim:
    scope: str
    region: str
    name: str
    size: int
    initial: str
    rollouts: list[Rollout] = field(default_factory=list)
    # (time, slot, version): an instance replaced by hand with another version: drift.
    manual: list[tuple[datetime, int, str]] = field(default_factory=list)


@dataclass
class StandaloneSim:
    scope: str
    region: str
    name: str
    # [(time, version)]: the instance is recreated with each version at that time.
    versions: list[tuple[datetime, str]]


@dataclass
class FleetSim:
    """Scopes (provider, account, regions), groups and standalone instances over time."""

    start: datetime
    now: datetime
    scopes: dict[str, Scope]
    groups: list[GroupSim]
    standalone: list[StandaloneSim] = field(default_factory=list)
    # scope -> (region, message): the last poll of that region failed.
    failing: dict[str, tuple[str, str]] = field(default_factory=dict)
    poll_every: timedelta = timedelta(hours=6)
    # Poll only every `poll_every` (not also at each change): for big fleets, where a poll
    # per change would mean tens of thousands of polls.
    regular_only: bool = False

    # -- what each slot ran when
    def _slot_history(self, g: GroupSim) -> list[list[tuple[datetime, str, str]]]:
        """Per slot: [(from, version, instance_id)], time-ordered."""
        slots = []
        for j in range(g.size):
            changes = [(self.start, g.initial)]
            for r in g.rollouts:
                t = r.start + r.step * j
                if t <= self.now:
                    changes.append((t, r.version))
            for t, slot, version in g.manual:
                if slot == j and t <= self.now:
                    changes.append((t, version))
            changes.sort()
            slots.append([(t, v, _instance_id(self.scopes[g.scope], g, j, n))
                          for n, (t, v) in enumerate(changes)])
        return slots

    def _desired(self, g: GroupSim, t: datetime) -> tuple[str, bool]:
        version, updating = g.initial, False
        for r in g.rollouts:
            if r.start <= t:
                version = r.version
                updating = t < r.start + r.step * g.size
        return version, updating

    def poll_times(self) -> list[datetime]:
        times = set()
        t = self.start
        while t < self.now:
            times.add(t)
            t += self.poll_every
        if not self.regular_only:
            for g in self.groups:
                for slot in self._slot_history(g):
                    times.update(c[0] for c in slot)
            for s in self.standalone:
                times.update(t for t, _ in s.versions if t <= self.now)
        times.add(self.now - timedelta(seconds=20))
        return sorted(t for t in times if self.start <= t <= self.now)

    def inventories(self) -> list[Inventory]:
        """One inventory per scope per poll time, oldest first."""
        histories = {id(g): self._slot_history(g) for g in self.groups}
        out = []
        for t in self.poll_times():
            for scope in self.scopes.values():
                out.append(self._inventory(scope, t, histories))
        return out

    def _inventory(self, scope: Scope, t: datetime, histories) -> Inventory:
        instances, groups, images = [], [], {}
        for g in self.groups:
            if g.scope != scope.name:
                continue
            desired, updating = self._desired(g, t)
            desired_image = _image(scope, g.name, desired)
            images[desired_image.id] = desired_image
            groups.append(Group(scope.provider, scope.name, scope.account, g.region, g.name,
                                "asg" if scope.provider == "aws" else "mig", desired_image.id,
                                g.size, desired_version=desired, updating=updating))
            for j, slot in enumerate(histories[id(g)]):
                launched, version, iid = slot[bisect.bisect_right(slot, (t, "\uffff")) - 1]
                img = _image(scope, g.name, version)
                images[img.id] = img
                instances.append(Instance(
                    scope.provider, iid, _instance_name(scope, g.name, iid, j), scope.name,
                    scope.account, g.region, _zone(scope, g.region, j), g.name, img.id,
                    State.RUNNING, launched_at=launched, version=version))
        for s in self.standalone:
            if s.scope != scope.name:
                continue
            seen = [(vt, v) for vt, v in s.versions if vt <= t]
            if not seen:
                continue
            launched, version = seen[-1]
            img = _image(scope, s.name, version)
            images[img.id] = img
            iid = _standalone_id(scope, s, len(seen))
            instances.append(Instance(scope.provider, iid, s.name, scope.name, scope.account,
                                      s.region, _zone(scope, s.region, 0), None, img.id,
                                      State.RUNNING, launched_at=launched, version=version))
        return Inventory(scope, t, tuple(instances), tuple(groups), images, (),
                         scope.regions, api_calls=3)

    def seed(self, store) -> int:
        """Record every poll into `store`; the failing regions' last polls fail. Returns polls."""
        inventories = self.inventories()
        for inv in inventories:
            store.record_poll(inv, inv.polled_at - timedelta(seconds=2), inv.polled_at)
        for scope_name, (region, message) in self.failing.items():
            scope = self.scopes[scope_name]
            last = [inv for inv in inventories if inv.scope.name == scope_name][-1]
            failed = Inventory(scope, self.now, last.instances, last.groups, last.images,
                               (RegionError(region, message),),
                               tuple(r for r in scope.regions if r != region), api_calls=2)
            store.record_poll(failed, self.now - timedelta(seconds=5), self.now)
        return len(inventories)


def _stable(*parts: str) -> int:
    # hash() of a str changes between runs; ids must not.
    return zlib.crc32("\x1f".join(parts).encode())


def _image(scope: Scope, family: str, version: str) -> Image:
    base = family.split("-")[0]
    if scope.provider == "aws":
        digits = "".join(ch for ch in version if ch.isdigit())
        image_id = f"ami-0{_stable(base, version) % 16**8:08x}{digits:0>8}"[:21]
        return Image("aws", image_id, f"{base}-{version}-2026", tags={"version": version},
                     version=version)
    name = f"{base}-{version.replace('.', '-')}"
    return Image("gcp", name, name, version=version)


def _instance_id(scope: Scope, g: GroupSim, slot: int, generation: int) -> str:
    n = (_stable(scope.name, g.region, g.name) % 4096) * 10**6 + slot * 1000 + generation
    if scope.provider == "aws":
        return f"i-0{n:016x}"
    return str(4_000_000_000_000_000 + n)


def _standalone_id(scope: Scope, s: StandaloneSim, generation: int) -> str:
    n = (_stable(scope.name, s.region, s.name) % 4096) * 10**6 + 999_000 + generation
    return f"i-0{n:016x}" if scope.provider == "aws" else str(5_000_000_000_000_000 + n)


def _instance_name(scope: Scope, group: str, iid: str, slot: int) -> str:
    return f"{group}-{iid[-5:]}" if scope.provider == "aws" else f"{group}-{iid[-4:]}"


def _zone(scope: Scope, region: str, slot: int) -> str:
    return f"{region}{'abc'[slot % 3]}" if scope.provider == "aws" else f"{region}-{'bcd'[slot % 3]}"


def demo_fleet(now: datetime | None = None, days: int = 7, scale: int = 1,
               poll_every: timedelta | None = None) -> FleetSim:
    """Two clouds, three scopes, five versions, a finished rollout, one under way, drift.

    `scale` multiplies every group's size (scale 1: about 90 instances).
    """
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    start = now - timedelta(days=days)
    h = timedelta(hours=1)
    m = timedelta(minutes=1)
    scopes = {
        "prod-aws": Scope("aws", "prod-aws", "123456789012", ("us-east-1", "eu-west-1")),
        "staging-aws": Scope("aws", "staging-aws", "210987654321", ("us-east-1",)),
        "prod-gcp": Scope("gcp", "prod-gcp", "acme-prod", ("europe-west1", "us-central1")),
    }

    def at(frac_days: float) -> datetime:
        return start + timedelta(days=frac_days * days / 7)

    groups = [
        GroupSim("prod-aws", "us-east-1", "web", 14 * scale, "1.2.0", [
            Rollout(at(1.0), "1.3.0", 20 * m / scale),
            Rollout(at(3.2), "1.3.1", 15 * m / scale),
            Rollout(at(5.0), "1.4.0", 25 * m / scale),
            Rollout(now - 3 * h, "1.4.2", 20 * m / scale)]),
        GroupSim("prod-aws", "us-east-1", "api", 8 * scale, "1.3.0", [
            Rollout(at(3.5), "1.3.1", 30 * m / scale),
            Rollout(at(5.4), "1.4.0", 30 * m / scale)],
            manual=[(now - 20 * h, 2, "1.3.1")]),
        GroupSim("prod-aws", "us-east-1", "worker", 6 * scale, "1.2.0", [
            Rollout(at(2.0), "1.3.0", 40 * m / scale),
            Rollout(at(6.0), "1.4.0", 40 * m / scale)]),
        GroupSim("prod-aws", "eu-west-1", "web", 8 * scale, "1.3.0", [
            Rollout(at(3.3), "1.3.1", 20 * m / scale),
            Rollout(at(5.2), "1.4.0", 20 * m / scale)]),
        GroupSim("staging-aws", "us-east-1", "web", 4 * scale, "1.3.1", [
            Rollout(at(4.0), "1.4.0", 10 * m / scale),
            Rollout(now - 26 * h, "1.4.2", 10 * m / scale)]),
        GroupSim("prod-gcp", "europe-west1", "web-mig", 10 * scale, "1.2.0", [
            Rollout(at(1.5), "1.3.0", 15 * m / scale),
            Rollout(at(4.5), "1.4.0", 15 * m / scale)],
            manual=[(now - 30 * h, 7, "1.3.0")]),
        GroupSim("prod-gcp", "europe-west1", "batch-mig", 6 * scale, "1.2.0", [
            Rollout(at(2.5), "1.3.1", 45 * m / scale)]),
        GroupSim("prod-gcp", "us-central1", "web-mig", 8 * scale, "1.3.0", [
            Rollout(at(4.7), "1.4.0", 20 * m / scale)]),
    ]
    standalone = [
        StandaloneSim("prod-aws", "us-east-1", "bastion", [(start, "1.2.0")]),
        StandaloneSim("prod-aws", "eu-west-1", "reports", [(start, "1.3.0"), (at(4.2), "1.4.0")]),
        StandaloneSim("prod-gcp", "us-central1", "vpn-gw", [(start, "1.2.0")]),
    ]
    failing = {"prod-gcp": ("us-central1", "403 Forbidden: compute.instances.list denied for "
                            "service account fleetview@acme-prod; grant roles/compute.viewer")}
    sim = FleetSim(start, now, scopes, groups, standalone, failing)
    if poll_every is not None:
        sim.poll_every, sim.regular_only = poll_every, True
    return sim
