"""The bundle's self-check of the AWS SDK: botocore's service models are data files, and a
bundle without them fails here rather than at the first poll."""

from __future__ import annotations

import boto3


def check() -> str:
    session = boto3.Session(aws_access_key_id="selfcheck", aws_secret_access_key="selfcheck",
                            region_name="us-east-1")
    for service in ("ec2", "autoscaling", "sts", "iam"):
        session.client(service, endpoint_url="http://127.0.0.1:9")
    import fleetview.providers.aws.provider  # noqa: F401 - the provider imports in a bundle

    return "boto3 clients for ec2, autoscaling, sts, iam"
