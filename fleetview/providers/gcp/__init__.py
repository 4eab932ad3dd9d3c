"""GCP: Compute Engine instances, images and managed instance groups. This module declares the
cloud and imports no SDK; google-cloud-compute loads with `provider`, `doctor` and `selfcheck`."""

from fleetview.providers.base import Cloud
from fleetview.providers.gcp import needs, scope

CLOUD = Cloud(
    name="gcp",
    title="GCP",
    group_word="managed instance group",
    keys=scope.KEYS,
    parse_scope=scope.parse,
    needs=needs.GCP_NEEDS,
    policy_files={"gcp-readonly.yaml": ("watch", needs.render),
                  "gcp-operator.yaml": ("operate", needs.render)},
    provider="fleetview.providers.gcp.provider:GcpProvider",
    doctor="fleetview.providers.gcp.doctor:check",
    sdk_check="fleetview.providers.gcp.selfcheck:check",
    permission_of=needs.permission_of,
    example=scope.EXAMPLE,
)
