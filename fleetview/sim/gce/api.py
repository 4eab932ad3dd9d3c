"""The Compute REST methods the emulator serves: routes, lists, pagination and operations."""

from __future__ import annotations

import base64
import bisect
import itertools
import json
import re
import time
from collections.abc import Callable, Container, Iterable, Mapping
from typing import Any

from fleetview.sim.gce import errors
from fleetview.sim.gce.filters import compile_filter
from fleetview.sim.gce.resources import LINK_BASE, Instance, Operation, fingerprint
from fleetview.sim.gce.state import GceState

MAX_PAGE = 500
# How long a wait call may block in real-time mode (the real API waits up to 2 minutes).
WAIT_LIMIT_SECONDS = 2.0

# A response: a dict, possibly holding RawJson pieces; or one RawJson body.
Json = Any
Handler = Callable[..., Json]

_P = r"/compute/v1/projects/(?P<project>[^/]+)"
_Z = _P + r"/zones/(?P<zone>[^/]+)"
_R = _P + r"/regions/(?P<region>[^/]+)"
_IGM = r"/instanceGroupManagers/(?P<name>[^/]+)"

# (HTTP method, path pattern, API method id, handler name)
ROUTES: list[tuple[str, str, str, str]] = [
    ("GET", _P + r"/aggregated/instances", "compute.instances.aggregatedList",
     "instances_aggregated"),
    ("GET", _Z + r"/instances", "compute.instances.list", "instances_list"),
    ("GET", _Z + r"/instances/(?P<name>[^/]+)", "compute.instances.get", "instances_get"),
    ("GET", _P + r"/aggregated/disks", "compute.disks.aggregatedList", "disks_aggregated"),
    ("GET", _Z + r"/disks", "compute.disks.list", "disks_list"),
    ("GET", _Z + r"/disks/(?P<name>[^/]+)", "compute.disks.get", "disks_get"),
    ("GET", _P + r"/global/images", "compute.images.list", "images_list"),
    ("GET", _P + r"/global/images/family/(?P<family>[^/]+)", "compute.images.getFromFamily",
     "images_from_family"),
    ("GET", _P + r"/global/images/(?P<name>[^/]+)", "compute.images.get", "images_get"),
    ("POST", _P + r"/global/images/(?P<name>[^/]+)/deprecate", "compute.images.deprecate",
     "images_deprecate"),
    ("DELETE", _P + r"/global/images/(?P<name>[^/]+)", "compute.images.delete",
     "images_delete"),
    ("GET", _P + r"/aggregated/instanceTemplates", "compute.instanceTemplates.aggregatedList",
     "templates_aggregated"),
    ("GET", _P + r"/global/instanceTemplates", "compute.instanceTemplates.list",
     "templates_list"),
    ("GET", _P + r"/global/instanceTemplates/(?P<name>[^/]+)", "compute.instanceTemplates.get",
     "templates_get"),
    ("POST", _P + r"/global/instanceTemplates", "compute.instanceTemplates.insert",
     "templates_insert"),
    ("POST", _R + r"/instanceTemplates", "compute.regionInstanceTemplates.insert",
     "templates_insert"),
    ("GET", _R + r"/instanceTemplates", "compute.regionInstanceTemplates.list",
     "templates_list"),
    ("GET", _R + r"/instanceTemplates/(?P<name>[^/]+)", "compute.regionInstanceTemplates.get",
     "templates_get"),
    ("GET", _P + r"/aggregated/instanceGroupManagers",
     "compute.instanceGroupManagers.aggregatedList", "groups_aggregated"),
    ("GET", _Z + r"/instanceGroupManagers", "compute.instanceGroupManagers.list",
     "groups_list"),
    ("GET", _R + r"/instanceGroupManagers", "compute.regionInstanceGroupManagers.list",
     "groups_list"),
    ("GET", _Z + _IGM, "compute.instanceGroupManagers.get", "groups_get"),
    ("GET", _R + _IGM, "compute.regionInstanceGroupManagers.get", "groups_get"),
    ("POST", _Z + _IGM + "/listManagedInstances",
     "compute.instanceGroupManagers.listManagedInstances", "groups_managed_instances"),
    ("POST", _R + _IGM + "/listManagedInstances",
     "compute.regionInstanceGroupManagers.listManagedInstances", "groups_managed_instances"),
    ("PATCH", _Z + _IGM, "compute.instanceGroupManagers.patch", "groups_patch"),
    ("PATCH", _R + _IGM, "compute.regionInstanceGroupManagers.patch", "groups_patch"),
    ("POST", _Z + _IGM + "/recreateInstances",
     "compute.instanceGroupManagers.recreateInstances", "groups_recreate"),
    ("POST", _R + _IGM + "/recreateInstances",
     "compute.regionInstanceGroupManagers.recreateInstances", "groups_recreate"),
    ("POST", _Z + _IGM + "/resize", "compute.instanceGroupManagers.resize", "groups_resize"),
    ("POST", _R + _IGM + "/resize", "compute.regionInstanceGroupManagers.resize",
     "groups_resize"),
    ("POST", _Z + _IGM + "/listPerInstanceConfigs",
     "compute.instanceGroupManagers.listPerInstanceConfigs", "groups_per_instance_configs"),
    ("POST", _R + _IGM + "/listPerInstanceConfigs",
     "compute.regionInstanceGroupManagers.listPerInstanceConfigs",
     "groups_per_instance_configs"),
    ("GET", _Z + r"/operations", "compute.zoneOperations.list", "operations_list"),
    ("GET", _Z + r"/operations/(?P<name>[^/]+)", "compute.zoneOperations.get",
     "operations_get"),
    ("POST", _Z + r"/operations/(?P<name>[^/]+)/wait", "compute.zoneOperations.wait",
     "operations_wait"),
    ("GET", _R + r"/operations/(?P<name>[^/]+)", "compute.regionOperations.get",
     "operations_get"),
    ("POST", _R + r"/operations/(?P<name>[^/]+)/wait", "compute.regionOperations.wait",
     "operations_wait"),
    ("GET", _P + r"/global/operations/(?P<name>[^/]+)", "compute.globalOperations.get",
     "operations_get"),
    ("POST", _P + r"/global/operations/(?P<name>[^/]+)/wait", "compute.globalOperations.wait",
     "operations_wait"),
]

_COMPILED = [(m, re.compile(p + r"/?$"), mid, h) for m, p, mid, h in ROUTES]


def match(http_method: str, path: str) -> tuple[str, str, dict[str, str]] | None:
    """(method id, handler name, path params) for a request path, or None."""
    for method, pattern, method_id, handler in _COMPILED:
        if method == http_method:
            m = pattern.match(path)
            if m:
                return method_id, handler, m.groupdict()
    return None


def _scope(params: dict[str, str]) -> str:
    if "zone" in params:
        return f"zones/{params['zone']}"
    if "region" in params:
        return f"regions/{params['region']}"
    return "global"


def _truthy(value: str | None) -> bool | None:
    if value is None:
        return None
    return value.lower() in ("true", "1")


def _encode_token(scope: str, name: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": [scope, name]}).encode()).decode()


def _decode_token(token: str | None) -> tuple[str, str] | None:
    if not token:
        return None
    try:
        scope, name = json.loads(base64.urlsafe_b64decode(token.encode()))["after"]
        if not isinstance(scope, str) or not isinstance(name, str):
            raise TypeError(token)
        return scope, name
    except (ValueError, KeyError, TypeError) as exc:
        raise errors.invalid(f"Invalid value for field 'pageToken': '{token}'.") from exc


def _page_size(query: dict[str, str]) -> int:
    try:
        size = int(query.get("maxResults", MAX_PAGE))
    except ValueError as exc:
        raise errors.invalid("Invalid value for field 'maxResults'.") from exc
    if size < 0 or size > MAX_PAGE:
        raise errors.invalid(
            f"Invalid value for field 'maxResults': {size}. Must be between 0 and 500.")
    return size or MAX_PAGE


def _page(scoped: list[tuple[str, Mapping[str, Any]]], query: dict[str, str],
          as_dict: Callable[[Any], dict] | None = None,
          skip: Container[str] = ()) -> tuple[dict[str, list[Any]], str | None]:
    """One page of items keyed by scope, and the token of the next page (None at the end).

    Items go by scope in the given order, then by name. The token names the last item
    returned and the next page starts after it, so items made or deleted between pages
    never shift the others: each one that exists throughout is listed exactly once (an
    offset would skip or repeat items whenever a rollout replaces instances mid-listing).
    """
    size = _page_size(query)
    cursor = _decode_token(query.get("pageToken"))
    predicate = compile_filter(query.get("filter"))
    as_dict = as_dict or (lambda item: item.to_json())
    scopes = [scope for scope, _ in scoped]
    first = 0
    if cursor is not None:
        if cursor[0] not in scopes:
            raise errors.invalid(
                f"Invalid value for field 'pageToken': '{query.get('pageToken')}'.")
        first = scopes.index(cursor[0])
    page: dict[str, list[Any]] = {}
    count, last = 0, None
    for scope, items in scoped[first:]:
        if scope in skip:
            continue
        names = sorted(items)
        lo = bisect.bisect_right(names, cursor[1]) if cursor and scope == cursor[0] else 0
        for name in itertools.islice(names, lo, None):
            item = items[name]
            if predicate is not None and not predicate(as_dict(item)):
                continue
            if count == size:
                return page, _encode_token(*last)
            page.setdefault(scope, []).append(item)
            count, last = count + 1, (scope, name)
    return page, None


def _by_name(items: Iterable[Any]) -> dict[str, Any]:
    return {item.name: item for item in items}


class ComputeApi:
    """Answers Compute REST calls against a GceState. Call `handle` under no lock."""

    def __init__(self, state: GceState) -> None:
        self.state = state

    def handle(self, handler: str, method_id: str, params: dict[str, str],
               query: dict[str, str], body: Json | None) -> Json:
        state = self.state
        project = params["project"]
        with state.lock:
            state.calls[method_id] += 1
        state.faults.check(method_id, project)
        state.check_project(project)
        zone = params.get("zone")
        if zone and zone in state.faults.unreachable_zones():
            raise errors.zone_unavailable(f"projects/{project}/zones/{zone}")
        if handler == "operations_wait":
            return self.operations_wait(params, query)
        with state.lock:
            state.tick()
            return getattr(self, handler)(params, query, body or {})

    # ---- generic lists --------------------------------------------------------------------

    def _list(self, kind: str, self_link: str, items: Mapping[str, Any],
              to_json: Callable[[Any], Json], query: dict[str, str],
              as_dict: Callable[[Any], dict] | None = None) -> Json:
        """A list page of `items` (name -> item), in name order."""
        scope = self_link.removeprefix(LINK_BASE)
        page, token = _page([(scope, items)], query, as_dict)
        out: Json = {"kind": kind, "id": scope,
                     "items": [to_json(i) for i in page.get(scope, [])], "selfLink": self_link}
        if token:
            out["nextPageToken"] = token
        return out

    def _aggregated(self, project: str, kind: str, key: str,
                    scoped: list[tuple[str, Mapping[str, Any]]],
                    to_json: Callable[[Any], Json], query: dict[str, str],
                    what: str, as_dict: Callable[[Any], dict] | None = None) -> Json:
        """An aggregatedList page: items keyed by scope, unreachable zones reported.

        `scoped` is (scope, name -> item) in the order the pages walk the scopes.
        """
        scopes = {scope for scope, _ in scoped}
        unreachable = sorted(f"zones/{z}" for z in self.state.faults.unreachable_zones()
                             if f"zones/{z}" in scopes)
        partial = _truthy(query.get("returnPartialSuccess"))
        if unreachable and partial is False:
            raise errors.zone_unavailable(f"projects/{project}/{unreachable[0]}")
        page, token = _page(scoped, query, as_dict, skip=set(unreachable))
        by_scope = {scope: [to_json(item) for item in items] for scope, items in page.items()}
        items: Json = {}
        for scope, _ in scoped:
            if scope in unreachable:
                items[scope] = {"warning": {
                    "code": "UNREACHABLE",
                    "message": f"The {what} in scope '{scope}' are unreachable at this time.",
                    "data": [{"key": "scope", "value": scope}]}}
            elif scope in by_scope:
                items[scope] = {key: by_scope[scope]}
            else:
                items[scope] = {"warning": {
                    "code": "NO_RESULTS_ON_PAGE",
                    "message": f"There are no results for scope '{scope}' on this page.",
                    "data": [{"key": "scope", "value": scope}]}}
        link = f"{LINK_BASE}projects/{project}/aggregated/{key}"
        out: Json = {"kind": kind, "id": f"projects/{project}/aggregated/{key}",
                     "items": items, "selfLink": link}
        if token:
            out["nextPageToken"] = token
        if unreachable:
            out["unreachables"] = unreachable
        return out

    def _zone_scopes(self, project: str) -> list[tuple[str, dict[str, Instance]]]:
        zones = self.state.instances.get(project, {})
        return [(f"zones/{z}", zones.get(z, {})) for z in self.state.zones]

    # ---- instances and disks --------------------------------------------------------------

    def instances_aggregated(self, params, query, body) -> Json:
        p = params["project"]
        return self._aggregated(p, "compute#instanceAggregatedList", "instances",
                                self._zone_scopes(p), Instance.raw_json, query, "instances")

    def instances_list(self, params, query, body) -> Json:
        p, z = params["project"], params["zone"]
        items = self.state.instances.get(p, {}).get(z, {})
        return self._list("compute#instanceList",
                          f"{LINK_BASE}projects/{p}/zones/{z}/instances", items,
                          Instance.raw_json, query)

    def instances_get(self, params, query, body) -> Json:
        return self.state.instance(params["project"], params["zone"],
                                   params["name"]).raw_json()

    def disks_aggregated(self, params, query, body) -> Json:
        p = params["project"]
        return self._aggregated(p, "compute#diskAggregatedList", "disks",
                                self._zone_scopes(p), Instance.disk_raw_json, query, "disks",
                                as_dict=Instance.disk_json)

    def disks_list(self, params, query, body) -> Json:
        p, z = params["project"], params["zone"]
        items = self.state.instances.get(p, {}).get(z, {})
        return self._list("compute#diskList", f"{LINK_BASE}projects/{p}/zones/{z}/disks",
                          items, Instance.disk_raw_json, query, as_dict=Instance.disk_json)

    def disks_get(self, params, query, body) -> Json:
        p, z, name = params["project"], params["zone"], params["name"]
        inst = self.state.instance_or_none(p, z, name)
        if inst is None:
            raise errors.not_found(f"projects/{p}/zones/{z}/disks/{name}")
        return inst.disk_raw_json()

    # ---- images and templates -------------------------------------------------------------

    def images_list(self, params, query, body) -> Json:
        p = params["project"]
        items = self.state.images.get(p, {})
        return self._list("compute#imageList", f"{LINK_BASE}projects/{p}/global/images", items,
                          lambda i: i.to_json(), query)

    def images_get(self, params, query, body) -> Json:
        return self.state.image(params["project"], params["name"]).to_json()

    def images_from_family(self, params, query, body) -> Json:
        return self.state.image_from_family(params["project"], params["family"]).to_json()

    def _global_op(self, params, query, verb: str, target_link: str, target_id: int,
                   act: Callable[[], None]) -> Json:
        state, project = self.state, params["project"]
        request_id = query.get("requestId")
        earlier = state.request_ops.get((project, request_id)) if request_id else None
        if earlier is not None:
            return earlier.to_json(state.clock.now())
        act()
        op = state.new_operation(project, f"compute.images.{verb}", target_link, target_id,
                                 request_id=request_id)
        return op.to_json(state.clock.now())

    def images_deprecate(self, params, query, body) -> Json:
        p, name = params["project"], params["name"]
        image = self.state.image(p, name)
        status = {k: v for k, v in body.items()
                  if k in ("state", "replacement", "deprecated", "obsolete", "deleted")}
        return self._global_op(params, query, "deprecate", image.link, image.id,
                               lambda: self.state.deprecate_image(name, status, project=p))

    def images_delete(self, params, query, body) -> Json:
        p, name = params["project"], params["name"]
        image = self.state.image(p, name)
        return self._global_op(params, query, "delete", image.link, image.id,
                               lambda: self.state.delete_image(name, project=p))

    def templates_aggregated(self, params, query, body) -> Json:
        p = params["project"]
        templates = self.state.templates.get(p, {})
        scoped = [("global", _by_name(t for (r, _), t in templates.items() if r is None))]
        for region in self.state.regions():
            scoped.append((f"regions/{region}",
                           _by_name(t for (r, _), t in templates.items() if r == region)))
        return self._aggregated(p, "compute#instanceTemplateAggregatedList",
                                "instanceTemplates", scoped, lambda t: t.to_json(), query,
                                "instance templates")

    def templates_list(self, params, query, body) -> Json:
        p, region = params["project"], params.get("region")
        items = _by_name(t for (r, _), t in self.state.templates.get(p, {}).items()
                         if r == region)
        return self._list("compute#instanceTemplateList",
                          f"{LINK_BASE}projects/{p}/{_scope(params)}/instanceTemplates", items,
                          lambda t: t.to_json(), query)

    def templates_insert(self, params, query, body) -> Json:
        state, project, region = self.state, params["project"], params.get("region")
        request_id = query.get("requestId")
        earlier = state.request_ops.get((project, request_id)) if request_id else None
        if earlier is not None:
            return earlier.to_json(state.clock.now())
        template = state.insert_instance_template(body, region=region, project=project)
        op = state.new_operation(project, "insert", template.link, template.id, region=region,
                                 request_id=request_id)
        return op.to_json(state.clock.now())

    def templates_get(self, params, query, body) -> Json:
        return self.state.template(params["project"], params["name"],
                                    params.get("region")).to_json()

    # ---- managed instance groups ----------------------------------------------------------

    def groups_aggregated(self, params, query, body) -> Json:
        p = params["project"]
        groups = self.state.groups.get(p, {})
        scopes = [f"zones/{z}" for z in self.state.zones] + [
            f"regions/{r}" for r in self.state.regions()]
        scoped = [(s, _by_name(g for (gs, _), g in groups.items() if gs == s)) for s in scopes]
        return self._aggregated(p, "compute#instanceGroupManagerAggregatedList",
                                "instanceGroupManagers", scoped, lambda g: g.to_json(), query,
                                "instance group managers")

    def groups_list(self, params, query, body) -> Json:
        p, scope = params["project"], _scope(params)
        items = _by_name(g for (s, _), g in self.state.groups.get(p, {}).items() if s == scope)
        kind = ("compute#instanceGroupManagerList" if "zone" in params
                else "compute#regionInstanceGroupManagerList")
        return self._list(kind, f"{LINK_BASE}projects/{p}/{scope}/instanceGroupManagers",
                          items, lambda g: g.to_json(), query)

    def groups_get(self, params, query, body) -> Json:
        return self.state.group(params["project"], _scope(params), params["name"]).to_json()

    def groups_managed_instances(self, params, query, body) -> Json:
        group = self.state.group(params["project"], _scope(params), params["name"])
        if group.list_results != "PAGINATED":
            members = sorted(group.members.values(), key=lambda m: m.name)
            return {"managedInstances": [group.managed_instance_json(m, self.state)
                                         for m in members]}
        page, token = _page([(group.scope, group.members)], query,
                            lambda m: group.managed_instance_json(m, self.state))
        out: Json = {"managedInstances": [group.managed_instance_json(m, self.state)
                                          for m in page.get(group.scope, [])]}
        if token:
            out["nextPageToken"] = token
        return out

    def _mutate(self, params, query, verb: str, act: Callable[[Any], None]) -> Json:
        state = self.state
        project = params["project"]
        request_id = query.get("requestId")
        if request_id:
            earlier = state.request_ops.get((project, request_id))
            if earlier is not None:
                return earlier.to_json(state.clock.now())
        group = state.group(project, _scope(params), params["name"])
        act(group)
        service = "instanceGroupManagers" if "zone" in params else "regionInstanceGroupManagers"
        op = state.new_operation(project, f"compute.{service}.{verb}", group.link, group.id,
                                 zone=params.get("zone"), region=params.get("region"),
                                 request_id=request_id)
        return op.to_json(state.clock.now())

    def groups_patch(self, params, query, body) -> Json:
        return self._mutate(params, query, "patch",
                            lambda g: self.state.patch_group(g, body))

    def groups_recreate(self, params, query, body) -> Json:
        refs = body.get("instances") or []
        if not refs:
            raise errors.invalid("Invalid value for field 'instances': must not be empty.")
        return self._mutate(params, query, "recreateInstances",
                            lambda g: self.state.recreate_in_group(g, refs))

    def groups_resize(self, params, query, body) -> Json:
        try:
            size = int(query["size"])
        except (KeyError, ValueError) as exc:
            raise errors.invalid("Required field 'size' not specified.") from exc
        return self._mutate(params, query, "resize",
                            lambda g: self.state.resize_group(g, size))

    def groups_per_instance_configs(self, params, query, body) -> Json:
        group = self.state.group(params["project"], _scope(params), params["name"])
        configs = {name: {"name": name, "preservedState": group.preserved_state_json(
                              group.members[name], config.get("disks", {})),
                          "status": "EFFECTIVE", "fingerprint": fingerprint(name, config)}
                   for name, config in group.per_instance_configs.items()
                   if name in group.members}
        page, token = _page([(group.scope, configs)], query, lambda c: c)
        out: Json = {"items": page.get(group.scope, [])}
        if token:
            out["nextPageToken"] = token
        return out

    # ---- operations -----------------------------------------------------------------------

    def operations_list(self, params, query, body) -> Json:
        """A zone's operations, system events (a preemption) included, by name."""
        p, z = params["project"], params["zone"]
        now = self.state.clock.now()
        items = {name: op for name, op in self.state.operations.get(p, {}).items()
                 if op.zone == z}
        return self._list("compute#operationList",
                          f"{LINK_BASE}projects/{p}/zones/{z}/operations", items,
                          lambda op: op.to_json(now), query, lambda op: op.to_json(now))

    def operations_get(self, params, query, body) -> Json:
        op = self.state.operation(params["project"], _scope(params), params["name"])
        return op.to_json(self.state.clock.now())

    def operations_wait(self, params, query) -> Json:
        """Block until the operation is DONE, within limits; a manual clock finishes it now."""
        state = self.state
        deadline = time.monotonic() + WAIT_LIMIT_SECONDS
        while True:
            with state.lock:
                state.tick()
                op: Operation = state.operation(params["project"], _scope(params),
                                                params["name"])
                now = state.clock.now()
                if now >= op.done_at:
                    return op.to_json(now)
                if not state.clock.realtime:
                    # Nobody advances a manual clock during a wait, so the wait itself
                    # lets the operation finish (rollouts it started still need time).
                    op.done_at = now
                    return op.to_json(now)
                remaining = (op.done_at - now) / max(state.clock.speed, 1e-6)
            if time.monotonic() >= deadline:
                with state.lock:
                    return op.to_json(state.clock.now())
            time.sleep(min(remaining, 0.05, max(deadline - time.monotonic(), 0)))
