"""AWS failures in words an operator can act on: what happened and what to do."""

from __future__ import annotations

import traceback

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


class ForeignAnswer(Exception):  # noqa: N818 - it is an answer, not an error of ours
    """An HTTP 200 answer without what the API always sends (its result and a request id):
    a proxy's or captive portal's page, or a wrong endpoint_url. Never taken as an empty
    result: it would read as "every instance gone"."""

    def __init__(self, endpoint: str, operation: str, missing: str) -> None:
        super().__init__(f"{endpoint} answered {operation} with a page that is not AWS's "
                         f"(no {missing})")
        self.endpoint, self.operation, self.missing = endpoint, operation, missing


class NoAnswer(Exception):  # noqa: N818 - the endpoint's silence, not an error of ours
    """The endpoint did not answer before the poll's deadline."""

    def __init__(self, endpoint: str, seconds: float) -> None:
        super().__init__(f"no answer from {endpoint} in {seconds:.0f} s")
        self.endpoint, self.seconds = endpoint, seconds


def checked(response: dict, endpoint: str, operation: str, key: str | None = None) -> dict:
    """`response` if it carries a request id (and `key`), else ForeignAnswer."""
    missing = []
    if key is not None and key not in response:
        missing.append(key)
    if not (response.get("ResponseMetadata") or {}).get("RequestId"):
        missing.append("request id")
    if missing:
        raise ForeignAnswer(endpoint, operation, " and no ".join(missing))
    return response


def is_foreign(exc: BaseException) -> bool:
    """Whether botocore failed to read an answer: not XML at all (ResponseParserError), or
    XML of another shape, which some of its parsers meet with a KeyError or TypeError."""
    if isinstance(exc, ForeignAnswer | ResponseParserError):
        return True
    if isinstance(exc, KeyError | TypeError | AttributeError | IndexError):
        frames = traceback.extract_tb(exc.__traceback__)
        return any(f.filename.replace("\\", "/").endswith("botocore/parsers.py")
                   for f in frames)
    return False


def no_answer(where: str, endpoint: str, seconds: float) -> str:
    prefix = f"{where}: " if where else ""
    return (f"{prefix}no answer from {endpoint} in {seconds:.0f} s; the region keeps its last "
            "known state. Check the network, a proxy or endpoint_url, then poll again (a "
            "fleet that takes longer to list needs a longer poll.deadline_s)")


def foreign(where: str, endpoint: str, exc: BaseException) -> str:
    prefix = f"{where}: " if where else ""
    if isinstance(exc, ForeignAnswer):
        what = str(exc)
    else:
        if isinstance(exc, KeyError) and exc.args:
            detail = f"no {exc.args[0]}"
        elif "invalid XML" in str(exc):
            detail = "not XML"
        else:
            detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        what = f"{endpoint} answered with something that is not an AWS response ({detail})"
    return (f"{prefix}{what}: a proxy, a captive portal or a wrong endpoint_url; the region "
            "keeps its last known state. Check endpoint_url and any proxy between FleetView "
            "and AWS, then poll again")


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
    if isinstance(exc, NoAnswer):
        return no_answer(where, exc.endpoint, exc.seconds)
    if isinstance(exc, ForeignAnswer):
        return foreign(where, exc.endpoint, exc)
    if isinstance(exc, ReadTimeoutError):
        endpoint = exc.kwargs.get("endpoint_url", "the endpoint")
        return (f"{prefix}no answer from {endpoint} in time, after retries; check the "
                "network and try again later")
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
