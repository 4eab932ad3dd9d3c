"""The provider registry: "module:Class" strings, imported only when a scope needs one."""

from __future__ import annotations

import importlib

from fleetview.domain.errors import ProviderError
from fleetview.domain.versions import VersionRules
from fleetview.providers.base import Provider

# A provider's SDK (boto3, google-cloud-compute) is imported by its module, so a config with
# only AWS scopes never loads the Google libraries and vice versa.
REGISTRY: dict[str, str] = {
    "aws": "fleetview.providers.aws:AwsProvider",
    "gcp": "fleetview.providers.gcp:GcpProvider",
}


def provider_class(name: str) -> type[Provider]:
    try:
        target = REGISTRY[name]
    except KeyError:
        raise ProviderError(f"unknown provider {name!r}; FleetView knows: "
                            f"{', '.join(sorted(REGISTRY))}") from None
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise ProviderError(f"the {name} provider is not part of this installation of "
                                "FleetView; reinstall it (pip install fleetview)") from None
        raise ProviderError(f"the {name} provider needs the Python package {exc.name!r}; "
                            "reinstall FleetView (pip install fleetview)") from None
    return getattr(module, class_name)


def make_provider(scope_config, rules: VersionRules | None = None) -> Provider:
    """The provider for one configured scope."""
    return provider_class(scope_config.provider)(scope_config, rules or VersionRules())
