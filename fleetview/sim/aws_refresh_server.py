"""moto's server with a layer in front that serves Auto Scaling's instance-refresh API.

`serve()` builds moto's WSGI application the way `moto.server.main` does and wraps it in
`RefreshLayer`, which answers StartInstanceRefresh, DescribeInstanceRefreshes,
CancelInstanceRefresh and RollbackInstanceRefresh in the Query protocol (form-encoded
requests, XML answers, shaped by botocore's service model) and hands every other request to
moto unchanged. A background thread moves the refreshes on, one batch per
FLEETVIEW_SIM_REFRESH_STEP_S seconds.
"""

from __future__ import annotations

import io
import math
import os
import re
import signal
import sys
import threading
import traceback
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from fleetview.sim.aws_refresh import Refresher, RefreshFault, validation_error
from fleetview.sim.aws_shapes import (
    WARM_ACTIONS,
    WarmPools,
    complete_lifecycle_action,
    interrupt_spot,
    patch_moto,
)
from fleetview.sim.aws_trail import HistoryDesk

STEP_ENV = "FLEETVIEW_SIM_REFRESH_STEP_S"
DEFAULT_STEP_S = 2.0

HANDLED = ("StartInstanceRefresh", "DescribeInstanceRefreshes", "CancelInstanceRefresh",
           "RollbackInstanceRefresh", "CompleteLifecycleAction", *WARM_ACTIONS)
# POST here with a form of account, region and instance: a spot interruption of that instance.
SPOT_INTERRUPTION_PATH = "/fleetview-sim/spot-interruption"
# Requests to these services touch the models the refresh thread changes, so they wait for it.
GUARDED_SERVICES = frozenset({"autoscaling", "ec2", "elasticloadbalancing"})

_SCOPE = re.compile(r"Credential=([^/,\s]+)/\d+/([^/]+)/([^/]+)/")

StartResponse = Callable[..., Any]


# -- the Query protocol, driven by botocore's model of Auto Scaling ---------------------------

class QueryProtocol:
    """Reads a form-encoded request into the operation's input shape, checks it against the
    model's constraints, and writes answers and errors as Auto Scaling's XML."""

    def __init__(self) -> None:
        import botocore.session

        self.model = botocore.session.get_session().get_service_model("autoscaling")
        self.namespace = self.model.metadata["xmlNamespace"]

    def parse(self, action: str, form: dict[str, str]) -> dict[str, Any]:
        shape = self.model.operation_model(action).input_shape
        params = _read(shape, form, "")
        params = params if isinstance(params, dict) else {}
        problems: list[str] = []
        _check(shape, params, "", problems)
        if problems:
            noun = "error" if len(problems) == 1 else "errors"
            raise validation_error(f"{len(problems)} validation {noun} detected: "
                                   + "; ".join(problems))
        return params

    def answer(self, action: str, result: dict[str, Any]) -> bytes:
        output = self.model.operation_model(action).output_shape
        wrapper = output.serialization.get("resultWrapper", f"{action}Result")
        return (f'<?xml version="1.0" encoding="UTF-8"?>\n'
                f'<{action}Response xmlns="{self.namespace}">'
                f"<{wrapper}>{_write(output, result)}</{wrapper}>"
                f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
                f"</{action}Response>").encode()

    def error(self, code: str, message: str, status: int) -> bytes:
        kind = "Sender" if status < 500 else "Receiver"
        return (f'<?xml version="1.0" encoding="UTF-8"?>\n'
                f'<ErrorResponse xmlns="{self.namespace}"><Error><Type>{kind}</Type>'
                f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
                f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>").encode()


_MISSING = object()


def _name(member_name: str, shape: Any) -> str:
    return shape.serialization.get("name", member_name)


def _read(shape: Any, form: dict[str, str], key: str) -> Any:
    kind = shape.type_name
    if kind == "structure":
        found = {}
        for member_name, member in shape.members.items():
            sub = _name(member_name, member)
            value = _read(member, form, f"{key}.{sub}" if key else sub)
            if value is not _MISSING:
                found[member_name] = value
        return found if found or not key or key in form else _MISSING
    if kind == "list":
        if form.get(key) == "":
            return []
        item = "" if shape.serialization.get("flattened") else \
            f".{shape.member.serialization.get('name', 'member')}"
        items = []
        while True:
            item_key = f"{key}{item}.{len(items) + 1}"
            if item_key not in form and not any(k.startswith(item_key + ".") for k in form):
                break
            items.append(_read(shape.member, form, item_key))
        return items if items else _MISSING
    if key not in form:
        return _MISSING
    raw = form[key]
    try:
        if kind in ("integer", "long"):
            return int(raw)
        if kind in ("double", "float"):
            return float(raw)
        if kind == "boolean":
            if raw.lower() not in ("true", "false"):
                raise ValueError(raw)
            return raw.lower() == "true"
    except ValueError:
        raise validation_error(f"Value '{raw}' at '{_path(key)}' failed to satisfy constraint: "
                               f"Member must be of type {kind}") from None
    return raw


def _path(key: str) -> str:
    return ".".join(p[:1].lower() + p[1:] for p in key.split(".") if p != "member")


def _check(shape: Any, value: Any, path: str, problems: list[str]) -> None:
    kind = shape.type_name
    meta = shape.metadata
    if kind == "structure":
        for required in meta.get("required", []):
            if required not in value:
                where = f"{path}.{required}" if path else required
                problems.append(f"Value null at '{_path(where)}' failed to satisfy constraint: "
                                "Member must not be null")
        for member_name, member_value in value.items():
            where = f"{path}.{member_name}" if path else member_name
            _check(shape.members[member_name], member_value, where, problems)
        return
    if kind == "list":
        if "max" in meta and len(value) > meta["max"]:
            problems.append(f"Value at '{_path(path)}' failed to satisfy constraint: Member "
                            f"must have length less than or equal to {meta['max']}")
        for index, item in enumerate(value, 1):
            _check(shape.member, item, f"{path}.{index}", problems)
        return
    if kind in ("integer", "long"):
        if "min" in meta and value < meta["min"]:
            problems.append(f"Value '{value}' at '{_path(path)}' failed to satisfy constraint: "
                            f"Member must have value greater than or equal to {meta['min']}")
        if "max" in meta and value > meta["max"]:
            problems.append(f"Value '{value}' at '{_path(path)}' failed to satisfy constraint: "
                            f"Member must have value less than or equal to {meta['max']}")
    elif kind == "string":
        if shape.enum and value not in shape.enum:
            problems.append(f"Value '{value}' at '{_path(path)}' failed to satisfy constraint: "
                            f"Member must satisfy enum value set: [{', '.join(shape.enum)}]")
        if "min" in meta and len(value) < meta["min"]:
            problems.append(f"Value '{value}' at '{_path(path)}' failed to satisfy constraint: "
                            f"Member must have length greater than or equal to {meta['min']}")
        if "max" in meta and len(value) > meta["max"]:
            problems.append(f"Value at '{_path(path)}' failed to satisfy constraint: Member "
                            f"must have length less than or equal to {meta['max']}")


def _write(shape: Any, value: Any) -> str:
    kind = shape.type_name
    if kind == "structure":
        parts = []
        for member_name, member in shape.members.items():
            if value.get(member_name) is None:
                continue
            tag = _name(member_name, member)
            parts.append(f"<{tag}>{_write(member, value[member_name])}</{tag}>")
        return "".join(parts)
    if kind == "list":
        tag = shape.member.serialization.get("name", "member")
        return "".join(f"<{tag}>{_write(shape.member, item)}</{tag}>" for item in value)
    if kind == "boolean":
        return "true" if value else "false"
    if kind == "timestamp" and isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    return escape(str(value))


# -- the WSGI layer ---------------------------------------------------------------------------

class RefreshLayer:
    """WSGI middleware in front of moto's application: serves instance refresh, passes the rest.

    One lock serialises the refresh thread with the requests that read or change the models it
    changes (Auto Scaling, EC2, load balancers, moto's reset), so no request sees a batch half
    made.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]], step_s: float) -> None:
        self.app = app
        self.refresher = Refresher(step_s)
        self.warm_pools = WarmPools()
        self.refresher.on_success = self._refreshed
        self.protocol = QueryProtocol()
        # CloudTrail and Auto Scaling activities: recorded here, served by the layer.
        self.history = HistoryDesk(self.protocol, _account, _form)
        self.lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    # the refresh thread

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="instance-refresh",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        clock = self.refresher.clock
        while not self._stopped.is_set():
            # Cleared before looking, so a refresh started meanwhile wakes the wait below.
            self._wake.clear()
            due = None
            try:
                with self.lock:
                    members = self.history.look() if self.refresher.refreshes else None
                    self.refresher.tick_due()
                    if members is not None:
                        self.history.changed(members)
                    due = self.refresher.next_due()
            except Exception:  # a bug: say so in the server's log, keep the others moving
                traceback.print_exc()
            self._wake.wait(timeout=1.0 if due is None else max(0.0, due - clock()))

    # requests

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path.startswith("/moto-api"):
            with self.lock:
                if path.rstrip("/") == "/moto-api/reset" and method == "POST":
                    self.refresher.forget()
                    self.warm_pools.forget()
                    self.history.forget()
                return list(self._through(environ, start_response))
        sim = self.history.sim_path(path, method, environ, start_response)
        if sim is not None:
            with self.lock:
                return sim
        if path == SPOT_INTERRUPTION_PATH and method == "POST":
            return self._interrupt(environ, start_response)
        scope = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        service = scope.group(3).lower() if scope else ""
        with self.lock:
            answered, pending = self.history.before(
                environ, service, scope.group(1) if scope else "",
                scope.group(2) if scope else "", start_response)
        if answered is not None:
            return answered
        if service == "autoscaling" and method == "POST":
            form = _form(environ)
            action = form.get("Action", "")
            if action in HANDLED:
                assert scope is not None
                return self._serve(action, form, environ, scope.group(1), scope.group(2),
                                   start_response)
        if service in GUARDED_SERVICES:
            status: list[str] = []

            def started(code: str, *args: Any) -> Any:
                status.append(code)
                return start_response(code, *args)

            with self.lock:
                answer = list(self._through(environ, started))
                self.history.after(pending, answer, status[0] if status else "")
                return answer
        return self._through(environ, start_response)

    def _through(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        answer = self.app(environ, start_response)
        try:
            return [b"".join(answer)]
        finally:
            close = getattr(answer, "close", None)
            if close is not None:
                close()

    def _serve(self, action: str, form: dict[str, str], environ: dict[str, Any],
               access_key: str, region: str, start_response: StartResponse) -> list[bytes]:
        try:
            params = self.protocol.parse(action, form)
            with self.lock:
                account = _account(environ, access_key)
                result = self._act(action, params, account, region)
                self.history.served(action, params, account, region)
            self._wake.set()
            status, body = 200, self.protocol.answer(action, result)
        except RefreshFault as fault:
            status, body = fault.status, self.protocol.error(fault.code, fault.message,
                                                             fault.status)
        reason = {200: "OK", 400: "Bad Request", 500: "Internal Server Error"}.get(status, "")
        start_response(f"{status} {reason}", [("Content-Type", "text/xml"),
                                              ("Content-Length", str(len(body))),
                                              ("x-amzn-RequestId", str(uuid.uuid4()))])
        return [body]

    def _interrupt(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        form = {k: v[0] for k, v in parse_qs(
            environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)).decode()
        ).items()}
        try:
            with self.lock:
                interrupt_spot(form["account"], form["region"], form["instance"])
            status, body = "200 OK", b"interrupted"
        except Exception as exc:  # noqa: BLE001 - a test's mistake: say it, keep serving
            status, body = "400 Bad Request", f"{type(exc).__name__}: {exc}".encode()
        start_response(status, [("Content-Type", "text/plain"),
                                ("Content-Length", str(len(body)))])
        return [body]

    def _refreshed(self, account: str, region: str, group: Any) -> None:
        # An instance refresh replaces the warm pool's instances too.
        self.warm_pools.replace_behind(account, region, group)

    def _act(self, action: str, params: dict[str, Any], account: str,
             region: str) -> dict[str, Any]:
        refresher = self.refresher
        name = params["AutoScalingGroupName"]
        if action == "CompleteLifecycleAction":
            return complete_lifecycle_action(account, region, params)
        if action == "PutWarmPool":
            return self.warm_pools.put(account, region, params)
        if action == "DescribeWarmPool":
            return self.warm_pools.describe(account, region, params)
        if action == "DeleteWarmPool":
            return self.warm_pools.delete(account, region, params)
        if action == "StartInstanceRefresh":
            return {"InstanceRefreshId": refresher.start(account, region, params)}
        if action == "CancelInstanceRefresh":
            wait = params.get("WaitForTransitioningInstances", True)
            return {"InstanceRefreshId": refresher.cancel(account, region, name, wait)}
        if action == "RollbackInstanceRefresh":
            return {"InstanceRefreshId": refresher.rollback(account, region, name)}
        return _page(refresher.describe(account, region, name, params.get("InstanceRefreshIds")),
                     params.get("MaxRecords"), params.get("NextToken"))


def _page(refreshes: list[dict[str, Any]], max_records: int | None,
          token: str | None) -> dict[str, Any]:
    """One page of DescribeInstanceRefreshes (50 by default, at most 100)."""
    size = 50 if max_records is None else max_records
    if not 1 <= size <= 100:
        raise validation_error(f"Value '{size}' at 'maxRecords' failed to satisfy constraint: "
                               "Member must have value between 1 and 100")
    start = 0
    if token:
        if not token.isdigit() or int(token) > len(refreshes):
            raise RefreshFault("InvalidNextToken", "The NextToken value is invalid.")
        start = int(token)
    page: dict[str, Any] = {"InstanceRefreshes": refreshes[start:start + size]}
    if start + size < len(refreshes):
        page["NextToken"] = str(start + size)
    return page


def _form(environ: dict[str, Any]) -> dict[str, str]:
    """The form fields of a urlencoded request; the body is put back for moto to read."""
    if not environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        return {}
    if environ.get("HTTP_CONTENT_ENCODING", "identity") not in ("", "identity"):
        return {}
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return {}
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8"), keep_blank_values=True).items()}


def _account(environ: dict[str, Any], access_key: str) -> str:
    """The account moto files this request's resources under (moto's own rules, in order)."""
    if "MOTO_ACCOUNT_ID" in os.environ:
        return os.environ["MOTO_ACCOUNT_ID"]
    if environ.get("HTTP_X_MOTO_ACCOUNT_ID"):
        return environ["HTTP_X_MOTO_ACCOUNT_ID"]
    from moto.iam.models import get_account_id_from

    return get_account_id_from(access_key)


def step_from_env() -> float:
    raw = os.environ.get(STEP_ENV, "")
    if not raw:
        return DEFAULT_STEP_S
    try:
        step = float(raw)
    except ValueError:
        step = -1.0
    if not 0 < step < math.inf:
        raise SystemExit(f"{STEP_ENV}={raw!r} is not a positive number of seconds")
    return step


def serve(host: str, port: int) -> None:
    """Run moto's server with the refresh layer on host:port until the process is stopped."""
    from moto.moto_server import werkzeug_app
    from werkzeug.serving import run_simple

    step = step_from_env()
    os.environ.setdefault("MOTO_PORT", str(port))

    def stop(signum: int, frame: object) -> None:
        sys.exit(0)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    patch_moto()
    moto_app = werkzeug_app.DomainDispatcherApplication(werkzeug_app.create_backend_app)
    layer = RefreshLayer(moto_app, step)
    layer.start()
    # Older moto 5 releases have no request handler of their own.
    handler = getattr(werkzeug_app, "MotoRequestHandler", None)
    run_simple(host, port, layer, threaded=True, request_handler=handler)
