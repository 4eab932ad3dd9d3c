"""An example estate for the emulator: versioned images, templates, groups, a standalone VM."""

from __future__ import annotations

from datetime import timedelta

from fleetview.sim.gce.audit import seed_rollouts
from fleetview.sim.gce.state import GceState


def seed_example(state: GceState, instances_per_group: int = 4) -> None:
    """Three releases of an 'app' image family, groups on two of them, one canary."""
    for days, version in ((60, "1.8.0"), (20, "1.9.0"), (2, "1.10.0")):
        name = "app-" + version.replace(".", "-")
        state.create_image(name, family="app", labels={"version": name.removeprefix("app-")},
                           created=timedelta(days=days))
        state.create_instance_template(f"{name}-tmpl", name, created=timedelta(days=days))
    state.deprecate_image("app-1-8-0", "DEPRECATED", replacement="app-1-9-0")
    state.create_mig("web", "app-1-9-0-tmpl", zone="us-central1-a",
                     target_size=instances_per_group, created=timedelta(days=19))
    state.create_mig("api", "app-1-9-0-tmpl", region="us-central1",
                     target_size=instances_per_group * 3 // 2 * 2, created=timedelta(days=18))
    state.create_mig("worker", "app-1-9-0-tmpl", zone="europe-west1-b",
                     target_size=instances_per_group, created=timedelta(days=15),
                     versions=[{"instanceTemplate": "app-1-10-0-tmpl", "name": "canary",
                                "targetSize": {"fixed": 1}},
                               {"instanceTemplate": "app-1-9-0-tmpl", "name": "stable"}])
    state.create_instance("bastion", "us-central1-b", "app-1-8-0",
                          created=timedelta(days=59))


def seed_fleet(state: GceState, instances: int, *,
               zones: tuple[str, ...] = ("us-central1-a", "us-central1-b", "us-central1-c"),
               group_size: int = 100, versions: int = 3) -> None:
    """A large estate for benchmarks: `instances` MIG instances spread evenly over `zones`.

    Groups of `group_size` (the last one takes the remainder) cycle through `versions`
    images app-1-0-0, app-1-1-0, ... and their global templates.
    """
    for v in range(versions):
        name = f"app-1-{v}-0"
        state.create_image(name, family="app", labels={"version": f"1-{v}-0"},
                           created=timedelta(days=10 * (versions - v)))
        state.create_instance_template(f"{name}-tmpl", name)
    left, g = instances, 0
    while left > 0:
        size = min(group_size, left)
        state.create_mig(f"group-{g:04d}", f"app-1-{g % versions}-0-tmpl",
                         zone=zones[g % len(zones)], target_size=size,
                         created=timedelta(days=1))
        left -= size
        g += 1


def seed_past(state: GceState, project: str, groups: tuple[str, ...] = ("checkout", "search"),
              *, zone: str = "us-central1-c", size: int = 4,
              versions: tuple[str, ...] = ("2-0-0", "2-1-0", "2-2-0", "2-3-0"),
              days: float = 30.0) -> None:
    """A project FleetView never watched: its groups' last `days` exist only in the audit log
    (created on the first version, a rollout to each next one, staggered by group) and in the
    live instances of the last rollout, so a backfill has something to rebuild."""
    step = days / len(versions)
    for n, version in enumerate(versions):
        made = timedelta(days=days + 1 - n * step)
        state.create_image(f"app-{version}", family="app", labels={"version": version},
                           created=made, project=project)
        state.create_instance_template(f"app-{version}-tmpl", f"app-{version}", created=made,
                                       project=project)
    for g, name in enumerate(groups):
        state.create_mig(name, f"app-{versions[-1]}-tmpl", zone=zone, target_size=size,
                         project=project)
        seed_rollouts(state, name, [
            (timedelta(days=days - n * step - g * 0.3), f"app-{version}-tmpl")
            for n, version in enumerate(versions)], project=project)
