"""AWS: EC2 instances, AMIs and Auto Scaling groups. This module declares the cloud and imports
no SDK; boto3 loads with `provider`, `doctor` and `selfcheck`."""

from fleetview.providers.aws import needs, scope
from fleetview.providers.base import Cloud

CLOUD = Cloud(
    name="aws",
    title="AWS",
    group_word="Auto Scaling group",
    keys=scope.KEYS,
    parse_scope=scope.parse,
    needs=needs.AWS_NEEDS,
    policy_files={"aws-readonly.json": ("watch", needs.render),
                  "aws-operator.json": ("operate", needs.render)},
    provider="fleetview.providers.aws.provider:AwsProvider",
    doctor="fleetview.providers.aws.doctor:check",
    sdk_check="fleetview.providers.aws.selfcheck:check",
    permission_of=needs.permission_of,
    example=scope.EXAMPLE,
)
