"""AWS failures in words an operator can act on: what happened and what to do."""

from __future__ import annotations

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    NoCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    SSOError,
    TokenRetrievalError,
)
from botocore.parsers import ResponseParserError

THROTTLING = {"RequestLimitExceeded", "Throttling", "ThrottlingException", "TooManyRequestsException",
              "RequestThrottled", "SlowDown"}
EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired"}
DENIED = {"UnauthorizedOperation", "AccessDenied", "AccessDeniedException",
          "UnauthorizedAccess"}
REJECTED = {"AuthFailure", "InvalidClientTokenId", "UnrecognizedClientException",
            "SignatureDoesNotMatch", "IncompleteSignature"}
NOT_ENABLED = {"OptInRequired", "InvalidRegion"}
UNSUPPORTED = {"NotImplemented", "InvalidAction", "UnknownOperationException",
               "UnsupportedOperation"}

# botocore event names (service ids) -> IAM action prefixes.
IAM_PREFIX = {"auto-scaling": "autoscaling", "autoscaling": "autoscaling", "ec2": "ec2", "sts": "sts"}


def is_unsupported(exc: BaseException) -> bool:
    """An endpoint without this API: moto answers an HTML 500 page botocore cannot parse."""
    if isinstance(exc, ResponseParserError):
        return True
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code") in UNSUPPORTED
    return False


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def explain(exc: BaseException, profile: str | None = None, where: str = "",
            service: str | None = None) -> str:
    """One line: where it failed, what happened, what to do."""
    prefix = f"{where}: " if where else ""
    login = f"aws sso login --profile {profile}" if profile else "aws sso login"
    if isinstance(exc, SSOError | TokenRetrievalError):
        return (f"{prefix}the AWS SSO session has expired or was never started ({exc}); "
                f"run `{login}` and poll again")
    if isinstance(exc, ProfileNotFound):
        return (f"{prefix}the AWS profile {profile!r} is not in your AWS config; fix `profile` "
                "in this scope or add the profile (aws configure --profile NAME)")
    if isinstance(exc, NoCredentialsError):
        return (f"{prefix}no AWS credentials were found; set `profile` in this scope or "
                "configure the default chain (aws configure, AWS_PROFILE, an instance role)")
    if isinstance(exc, CredentialRetrievalError):
        return (f"{prefix}the credentials could not be loaded ({exc}); check the profile's "
                f"credential_process or run `{login}`")
    if isinstance(exc, ConnectTimeoutError | EndpointConnectionError):
        return (f"{prefix}cannot reach the endpoint ({exc}); check the network, proxy and "
                "the region name, then poll again")
    if isinstance(exc, ReadTimeoutError):
        return f"{prefix}AWS did not answer in time after retries ({exc}); try again later"
    if isinstance(exc, ResponseParserError):
        return (f"{prefix}the endpoint answered something that is not an AWS response "
                f"({str(exc).splitlines()[0]}); check endpoint_url, or the endpoint does not "
                "support this API")
    if isinstance(exc, ClientError):
        return prefix + _client_error(exc, login, service)
    if isinstance(exc, BotoCoreError):
        return f"{prefix}{exc}"
    return (f"{prefix}unexpected {type(exc).__name__}: {exc}; this is a FleetView bug, "
            "please report it")


def _client_error(exc: ClientError, login: str, service: str | None) -> str:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    message = str(error.get("Message", "")).strip()
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    operation = exc.operation_name or "the call"
    attempts = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)
    retries = f"{attempts} retr{'y' if attempts == 1 else 'ies'}"
    if code in THROTTLING:
        return (f"{operation} was throttled by AWS ({code}) and still was after {retries}; "
                "poll less often (poll.interval_s), split regions across collectors "
                "or ask AWS for a higher API rate limit")
    if code in EXPIRED:
        return (f"the credentials have expired ({code}); refresh them: run `{login}`, or "
                "renew the session token, then poll again")
    if code in DENIED:
        return (f"access denied to {operation}: the identity needs the IAM permission "
                f"{_iam_action(exc, service)}; add it to its role or policy")
    if code in REJECTED:
        return (f"AWS rejected the credentials ({code}: {message}); check the access key, "
                f"or run `{login}` for an SSO profile")
    if code in NOT_ENABLED:
        return (f"this region is not enabled for the account ({code}); enable it in the "
                "account settings or remove it from the scope's regions")
    if isinstance(status, int) and status >= 500:
        return (f"AWS answered a server error to {operation} ({code or status}) even after "
                f"{retries}; try again later")
    return f"{operation} failed: {code}: {message}"


def _iam_action(exc: ClientError, service: str | None) -> str:
    message = str(exc.response.get("Error", {}).get("Message", ""))
    # AWS names the missing action itself in most access-denied messages.
    for word in message.replace(",", " ").split():
        if ":" in word and word.split(":")[0] in IAM_PREFIX.values() and word[0].isalpha():
            return word.strip(".")
    service = service or _service_of(exc)
    return f"{IAM_PREFIX.get(service, service)}:{exc.operation_name}"


def _service_of(exc: ClientError) -> str:
    operation = exc.operation_name or ""
    if "AutoScaling" in operation or "InstanceRefresh" in operation or "LaunchConfiguration" in operation:
        return "autoscaling"
    if operation in ("GetCallerIdentity", "AssumeRole"):
        return "sts"
    return "ec2"
