"""Which scope and region a group or instance named on the command line is in: a poll of the
configured scopes made now; a name in several places is refused with the list, never guessed."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from fleetview.config import Config, ConfigError, no_scopes_hint
from fleetview.domain.actions import ActionRefused
from fleetview.domain.errors import FleetViewError
from fleetview.domain.model import Inventory
from fleetview.providers import cloud, make_provider


class Unpolled(FleetViewError):
    """A scope or region could not be polled, so the name may be there too (exit 3)."""


@dataclass(frozen=True)
class Found:
    """Where a name was found, and the provider that polled it (kept for the plan)."""

    scope: str
    region: str
    name: str  # the group's name, or the instance's id
    provider: object
    label: str = ""  # how the place is named in a list: "aws-test us-east-1 (Auto Scaling group)"


@dataclass
class Polled:
    """Every selected scope's poll (or why it failed); close() releases the providers."""

    inventories: dict[str, Inventory] = field(default_factory=dict)
    providers: dict[str, object] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # scope -> why

    def close(self, keep: object = None) -> None:
        for provider in self.providers.values():
            if provider is not keep:
                provider.close()


def selected_scopes(config: Config, scope: str | None):
    """The scopes a command looks in: all, or the one named (a config error if unknown)."""
    where = config.path or "the config file"
    if not config.scopes:
        raise ConfigError(where, "", "no scopes configured; " + no_scopes_hint())
    if scope is None:
        return list(config.scopes)
    try:
        return [config.scope(scope)]
    except KeyError:
        raise ConfigError(where, "", f"no scope named {scope!r}; the configured scopes are: "
                          f"{', '.join(s.name for s in config.scopes)}") from None


def poll(config: Config, scope: str | None) -> Polled:
    """Poll the selected scopes at once, each with its own provider (the operator's own
    credentials)."""
    scopes = selected_scopes(config, scope)
    polled = Polled()

    def one(scope_config):
        provider = None
        try:
            provider = make_provider(scope_config, config.versions)
            return scope_config.name, provider, provider.poll()
        except FleetViewError as exc:
            return scope_config.name, provider, exc

    with ThreadPoolExecutor(max_workers=max(1, min(8, len(scopes)))) as pool:
        for name, provider, result in pool.map(one, scopes):
            if provider is not None:
                polled.providers[name] = provider
            if isinstance(result, Inventory):
                polled.inventories[name] = result
            else:
                polled.failed[name] = str(result)
    return polled


def _in_region(region: str | None, *places: str | None) -> bool:
    return region is None or region in places


def _overlaps(region: str | None, place: str) -> bool:
    """Whether a failed region (or zone) is where the name was looked for."""
    return region is None or place == region or place.startswith(f"{region}-") \
        or region.startswith(f"{place}-")


def _unpolled(polled: Polled, region: str | None) -> list[str]:
    """What could not be polled where the name was looked for: "scope: why" lines."""
    out = [f"{scope}: {why}" for scope, why in polled.failed.items()]
    for scope, inventory in polled.inventories.items():
        out += [f"{scope} {e.region}: {e.message}" for e in inventory.errors
                if _overlaps(region, e.region)]
    return out


def _decide(what: str, matches: list[Found], polled: Polled, region: str | None,
            looked: str) -> Found:
    if len(matches) > 1:
        places = "\n".join(f"  {m.label}: --scope {m.scope} --region {m.region}"
                           for m in matches)
        by_id = " (or give the instance's id)" if what.startswith("instance") else ""
        raise ActionRefused(f"{what} is in {len(matches)} places; name one with --scope and "
                            f"--region{by_id}:\n{places}")
    missing = _unpolled(polled, region)
    if missing:
        found = (f"{what} was found in {matches[0].label}, but it may also be where the poll "
                 f"failed; name --scope {matches[0].scope} --region {matches[0].region} to act "
                 "on that one" if matches else f"{what} was not found in {looked}, and")
        raise Unpolled(f"{found}; could not poll:\n" + "\n".join(f"  {m}" for m in missing))
    if not matches:
        raise ActionRefused(f"{what} is not in {looked} (polled now)")
    return matches[0]


def _looked(polled: Polled, region: str | None) -> str:
    scopes = ", ".join(sorted(polled.inventories)) or "no scope"
    return f"scope{'s' if len(polled.inventories) != 1 else ''} {scopes}" + (
        f" in {region}" if region else "")


def find_group(config: Config, name: str, scope: str | None = None,
               region: str | None = None) -> Found:
    """The one group of this name (in --scope, in --region or zone) in a poll made now."""
    return _find(config, f"group {name}", scope, region, lambda inventory: [
        (g.region, g.name, _group_word(g.provider, g.zone)) for g in inventory.groups
        if g.name == name and _in_region(region, g.region, g.zone)])


def _group_word(provider: str, zone: str | None) -> str:
    declared = cloud(provider)
    return f"{declared.title} {declared.group_word}" + (f" in {zone}" if zone else "")


def find_instance(config: Config, name: str, scope: str | None = None,
                  region: str | None = None) -> Found:
    """The one instance with this id (or this name) in a poll made now."""
    return _find(config, f"instance {name}", scope, region, lambda inventory: [
        (i.region, i.id, f"{i.name} {i.id} in {i.group or 'no group'}" if i.name != i.id
         else f"{i.id} in {i.group or 'no group'}")
        for i in inventory.instances
        if name in (i.id, i.name) and i.state.live and _in_region(region, i.region, i.zone)])


def _find(config: Config, what: str, scope: str | None, region: str | None,
          match: Callable[[Inventory], list[tuple[str, str, str]]]) -> Found:
    polled = poll(config, scope)
    found: Found | None = None
    try:
        matches = [Found(scope_name, place, name, polled.providers[scope_name],
                         f"{scope_name} {place} ({detail})")
                   for scope_name, inventory in polled.inventories.items()
                   for place, name, detail in match(inventory)]
        found = _decide(what, matches, polled, region, _looked(polled, region))
        return found
    finally:
        polled.close(keep=found.provider if found else None)
