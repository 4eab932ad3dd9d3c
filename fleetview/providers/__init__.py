"""The provider registry: one line per cloud, naming the package that declares it."""

from __future__ import annotations

import importlib

from fleetview.domain.errors import ProviderError
from fleetview.domain.versions import VersionRules
from fleetview.providers.base import Cloud, Provider

# Each package's `__init__` declares CLOUD and imports no SDK; the SDK (boto3,
# google-cloud-compute) loads with its provider module, only when a scope of that cloud polls.
REGISTRY: dict[str, str] = {
    "aws": "fleetview.providers.aws",
    "gcp": "fleetview.providers.gcp",
}


def _load(target: str, what: str):
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise ProviderError(f"the {what} is not part of this installation of FleetView; "
                                "reinstall it (pip install fleetview)") from None
        raise ProviderError(f"the {what} needs the Python package {exc.name!r}; reinstall "
                            "FleetView (pip install fleetview)") from None
    return getattr(module, attribute) if attribute else module


def cloud(name: str) -> Cloud:
    """The declaration of one registered cloud."""
    try:
        target = REGISTRY[name]
    except KeyError:
        raise ProviderError(f"unknown provider {name!r}; FleetView knows: "
                            f"{', '.join(sorted(REGISTRY))}") from None
    return _load(target, f"{name} provider").CLOUD


def clouds() -> list[Cloud]:
    """Every registered cloud, in registry order."""
    return [cloud(name) for name in REGISTRY]


def provider_class(name: str) -> type[Provider]:
    return _load(cloud(name).provider, f"{name} provider")


def load(name: str, attribute: str):
    """One of a cloud's lazily named parts ("doctor", "sdk_check"), imported now."""
    return _load(getattr(cloud(name), attribute), f"{name} provider's {attribute}")


def make_provider(scope_config, rules: VersionRules | None = None, **kwargs) -> Provider:
    """The provider for one configured scope."""
    return provider_class(scope_config.provider)(scope_config, rules or VersionRules(), **kwargs)
