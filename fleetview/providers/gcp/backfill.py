"""A GCP project's past as records: Cloud Audit Logs (instance inserts and deletes, MIG inserts
and patches), the templates they name, and each live instance's creation time."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exc
from google.auth.transport.requests import AuthorizedSession
from google.cloud import logging as cloud_logging

from fleetview.domain.backfill import Backfill, Record
from fleetview.domain.errors import ProviderError
from fleetview.domain.model import Inventory
from fleetview.domain.timing import Timing
from fleetview.providers.gcp.inventory import Poller
from fleetview.providers.gcp.shapes import last, region_of_zone, resource_path, template_path

AUDIT = "audit-log"
CREATED = "creation-time"
PERMISSION = "logging.logEntries.list"
GRANT = ("grant the account roles/logging.viewer (or add logging.logEntries.list to FleetView's "
         "read-only role, packaging/permissions/gcp-readonly.yaml) and run the backfill again")
# Cloud Logging's documented read quota is 60 entries.list requests a minute per project;
# FleetView takes at most READ_BUDGET of them, leaving room for people in the console.
READS_PER_MINUTE = 60
READ_BUDGET = 50
PAGE_SIZE = 1000  # the most entries.list returns a page
RETENTION = timedelta(days=400)  # Admin Activity audit logs
ID_BATCH = 100  # instance ids per query for the launches before the range
MAX_TRIES = 5  # of one throttled or unavailable Logging request
QUOTA_PAUSE_S = 10.0  # the first pause after "quota exceeded", doubled each time (to 60 s)

_API = ("v1", "beta")
LAUNCH = tuple(f"{a}.compute.instances.insert" for a in _API)
TERMINATE = tuple(f"{a}.compute.instances.delete" for a in _API)
GROUP = tuple(f"{a}.compute.{s}.{v}" for a in _API
              for s in ("instanceGroupManagers", "regionInstanceGroupManagers")
              for v in ("insert", "patch"))


# -- pacing ------------------------------------------------------------------------------------

class ReadPacer:
    """At most `per_minute` requests in any sliding minute of `clock`; `times` keeps when
    each went out (the benchmark reads its peak rate from them)."""

    def __init__(self, per_minute: int, timing: Timing) -> None:
        self.per_minute = per_minute
        self.timing = timing
        self.times: list[float] = []
        self._window: deque[float] = deque()
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            while True:
                now = self.timing.clock()
                while self._window and self._window[0] <= now - 60.0:
                    self._window.popleft()
                if len(self._window) < self.per_minute:
                    self._window.append(now)
                    self.times.append(now)
                    return
                self.timing.sleep(self._window[0] + 60.0 - now)

    def peak_per_minute(self) -> int:
        """The most requests that went out within any 60 s."""
        peak, start = 0, 0
        for end, at in enumerate(self.times):
            while at - self.times[start] >= 60.0:
                start += 1
            peak = max(peak, end - start + 1)
        return peak


class PacedSession(AuthorizedSession):
    """The Logging client's HTTP session: each request waits its turn under the read budget
    and is counted; a throttled (429) or unavailable (503) one is tried again after a pause,
    as the client's own paging does not retry."""

    def __init__(self, credentials, pacer: ReadPacer, timing: Timing) -> None:
        super().__init__(credentials)
        self.pacer = pacer
        self.timing = timing
        self.calls = 0

    def request(self, method, url, *args, **kwargs):  # type: ignore[override]
        pause = None
        for attempt in range(1, MAX_TRIES + 1):
            self.pacer.wait()
            self.calls += 1
            response = super().request(method, url, *args, **kwargs)
            if response.status_code not in (429, 503) or attempt == MAX_TRIES:
                return response
            if pause is None:
                # Others reading the project's logs share its quota a minute: wait long
                # enough, over the tries, for that minute to pass.
                pause = QUOTA_PAUSE_S if response.status_code == 429 else max(
                    self.timing.backoff_s, 1.0)
            self.timing.sleep(pause)
            pause = min(pause * 2, 60.0)
        raise AssertionError("unreachable")


# -- reading the audit log ---------------------------------------------------------------------

def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _quoted(values: Iterable[str]) -> str:
    return "(" + " OR ".join(f'"{v}"' for v in values) + ")"


def audit_filter(project: str, methods: Iterable[str], since: datetime, until: datetime,
                 extra: str = "") -> str:
    """An entries.list filter: the project's Admin Activity log, these methods, [since, until)."""
    terms = [f'logName="projects/{project}/logs/cloudaudit.googleapis.com%2Factivity"',
             f"protoPayload.methodName={_quoted(methods)}",
             f'timestamp>="{_stamp(since)}"', f'timestamp<"{_stamp(until)}"']
    if extra:
        terms.append(extra)
    return " AND ".join(terms)


@dataclass
class Operation:
    """The entries of one audit-logged operation: the first (with the request) and the last."""

    method: str
    first: Any = None
    last: Any = None
    failed: bool = False

    @property
    def entry(self):
        return self.first if self.first is not None else self.last

    def started(self) -> datetime:
        return self.entry.timestamp

    def ended(self) -> datetime:
        return (self.last if self.last is not None else self.first).timestamp

    @property
    def request(self) -> dict:
        payload = self.first.payload_json if self.first is not None else None
        return (payload or {}).get("request") or {}


def operations(entries: Iterable) -> list[Operation]:
    """Entries grouped by operation id (an entry without one stands alone), in time order."""
    found: dict[str, Operation] = {}
    for n, entry in enumerate(entries):
        payload = entry.payload_json or {}
        op = entry.operation or {}
        key = op.get("id") or f"#{n}"
        item = found.setdefault(key, Operation(payload.get("methodName", "")))
        if op.get("last") and not op.get("first"):
            item.last = entry
        elif item.first is None:
            item.first = entry
        if (payload.get("status") or {}).get("code"):
            item.failed = True  # the call was refused or the change failed: it happened not
    return sorted(found.values(), key=lambda o: o.started())


def _metadata(request: dict) -> dict[str, str]:
    items = (request.get("metadata") or {}).get("items") or []
    return {i.get("key"): i.get("value") for i in items if isinstance(i, dict)}


def _boot_image(request: dict) -> str | None:
    disks = request.get("disks") or []
    for disk in disks:
        if isinstance(disk, dict) and (disk.get("boot") or len(disks) == 1):
            return (disk.get("initializeParams") or {}).get("sourceImage") or None
    return None


def _main_template(request: dict) -> str | None:
    """The template a MIG insert or patch makes its desired one: the version without a
    targetSize (the others are canaries), or the plain instanceTemplate."""
    versions = [v for v in request.get("versions") or [] if isinstance(v, dict)]
    main = [v for v in versions if not v.get("targetSize")]
    if main and main[0].get("instanceTemplate"):
        return main[0]["instanceTemplate"]
    if versions:
        return None  # every version sized: which one takes the rest is not said
    return request.get("instanceTemplate") or None


# -- the backfill ------------------------------------------------------------------------------

@dataclass
class _Reading:
    records: list[Record] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


class History:
    """One backfill of one scope: what the audit log, the templates and a poll say."""

    def __init__(self, config, poller: Poller, poll: Callable[[], Inventory],
                 timing: Timing, *, page_size: int = PAGE_SIZE,
                 read_budget: int = READ_BUDGET) -> None:
        self.config = config
        self.poller = poller
        self.compute = poller.compute
        self.poll = poll
        self.timing = timing
        self.page_size = page_size
        self.pacer = ReadPacer(read_budget, timing)
        self._session: PacedSession | None = None
        self._client = None

    @property
    def project(self) -> str:
        return self.config.project

    @property
    def logging_calls(self) -> int:
        return self._session.calls if self._session is not None else 0

    def client(self):
        if self._client is None:
            self._session = PacedSession(self.compute.credentials, self.pacer, self.timing)
            # The emulator serves the Logging API beside Compute; Google's is its own host.
            options = ({"api_endpoint": self.config.api_endpoint}
                       if self.config.api_endpoint else None)
            # REST, not gRPC: one transport for every Google call FleetView makes.
            self._client = cloud_logging.Client(project=self.project,
                                                credentials=self.compute.credentials,
                                                _http=self._session, _use_grpc=False,
                                                client_options=options)
        return self._client

    def close(self) -> None:
        if self._session is not None:
            self._session.close()

    def read(self, filter_: str) -> Iterator:
        """Every entry the filter matches, oldest first, page by page as they are used."""
        return self.client().list_entries(
            resource_names=[f"projects/{self.project}"], filter_=filter_,
            order_by=cloud_logging.ASCENDING, page_size=self.page_size)

    # -- the whole ---------------------------------------------------------------------------

    def run(self, since: datetime, until: datetime) -> Backfill:
        since, until = _aware(since), _aware(until)
        started = self.compute.calls
        result = Backfill()
        inventory = self._seen(until, result)
        audit = self._audit(since, until)
        wanted = set(self.config.regions)
        # A scope limited to some regions backfills those only, as it polls those only.
        result.records.extend(r for r in audit.records if not wanted or r.region in wanted)
        result.skipped.extend(audit.skipped)
        result.records.sort(key=lambda r: r.at)
        self._images(result, inventory)
        result.api_calls = self.compute.calls - started + self.logging_calls
        return result

    def _seen(self, until: datetime, result: Backfill) -> Inventory | None:
        """Each live instance's creation time, from a poll now."""
        try:
            inventory = self.poll()
        except ProviderError as exc:
            result.skipped.append(f"live instances of project {self.project} (their creation "
                                  f"times) were not read: {exc}")
            return None
        for error in inventory.errors:
            result.skipped.append(f"live instances in {error.region or 'the project'} (their "
                                  f"creation times) were not read: {error.message}")
        for inst in inventory.instances:
            if inst.launched_at is None or inst.launched_at > until or not inst.state.live:
                continue
            result.records.append(Record(
                at=inst.launched_at, kind="seen", source=CREATED, region=inst.region,
                instance_id=inst.id, group=inst.group, zone=inst.zone, image_id=inst.image_id,
                name=inst.name))
        return inventory

    def _audit(self, since: datetime, until: datetime) -> _Reading:
        out = _Reading()
        floor = until - RETENTION
        if since < floor:
            out.skipped.append(
                f"before {floor:%Y-%m-%d} nothing of project {self.project} can be read: Cloud "
                "Audit Logs keep Admin Activity entries 400 days")
            since = floor
        try:
            instances = operations(self.read(audit_filter(
                self.project, LAUNCH + TERMINATE, since, until)))
            # Every group change the log keeps, earlier ones too: the version a group had
            # when the range starts is the last one set before it.
            groups = operations(self.read(audit_filter(self.project, GROUP, floor, until)))
            instances = self._earlier_launches(instances, floor, since) + instances
        except gexc.Forbidden as exc:
            out.skipped.append(
                f"launches, terminations and group changes in project {self.project} were not "
                f"read from Cloud Audit Logs: permission {PERMISSION} was refused "
                f"({exc.message}); spans before FleetView's first poll come only from the "
                f"creation times of live instances; {GRANT}")
            return out
        except gexc.TooManyRequests:
            out.skipped.append(
                f"Cloud Audit Logs of project {self.project} kept answering 'quota exceeded' "
                f"(its read quota is {READS_PER_MINUTE} requests a minute, shared by everyone "
                "reading the project's logs): launches, terminations and group changes were "
                "not read; run the backfill again later")
            return out
        except ProviderError as exc:  # the credentials: it says what to do
            out.skipped.append(f"Cloud Audit Logs of project {self.project} were not read: "
                               f"{exc}")
            return out
        except (gexc.GoogleAPICallError, requests.RequestException,
                auth_exc.GoogleAuthError) as exc:
            out.skipped.append(
                f"Cloud Audit Logs of project {self.project} could not be read ({exc}): "
                "launches, terminations and group changes were not read; check the network "
                "and the credentials (`fleetview doctor`) and run the backfill again")
            return out
        for op in instances:
            record = self._instance_record(op)
            if record is not None:
                out.records.append(record)
        for op in groups:
            record = self._group_record(op, out.skipped)
            if record is not None:
                out.records.append(record)
        return out

    def _earlier_launches(self, ops: list[Operation], floor: datetime,
                          since: datetime) -> list[Operation]:
        """The launches, before the range, of instances the range sees deleted (without
        them an instance's end has no start)."""
        launched = {_instance_id(o) for o in ops if o.method in LAUNCH}
        wanted = sorted({_instance_id(o) for o in ops if o.method in TERMINATE} - launched
                        - {""})
        found: list[Operation] = []
        for n in range(0, len(wanted), ID_BATCH):
            ids = wanted[n:n + ID_BATCH]
            found += operations(self.read(audit_filter(
                self.project, LAUNCH, floor, since,
                extra=f"resource.labels.instance_id={_quoted(ids)}")))
        return found

    # -- one record an operation -------------------------------------------------------------

    def _instance_record(self, op: Operation) -> Record | None:
        if op.failed:
            return None
        entry = op.entry
        labels = entry.resource.labels if entry.resource is not None else {}
        instance_id = labels.get("instance_id")
        zone = labels.get("zone")
        if not instance_id or not zone:
            return None  # not an instance's entry: nothing to say about one
        payload = entry.payload_json or {}
        name = last(payload.get("resourceName", "")) or None
        region = region_of_zone(zone)
        if op.method in TERMINATE:
            return Record(at=op.ended(), kind="terminate", source=AUDIT, region=region,
                          instance_id=instance_id, zone=zone, name=name)
        meta = _metadata(op.request)
        creator = meta.get("created-by") or ""
        group = last(creator) if "/instanceGroupManagers/" in creator else None
        image = self._image_of(_boot_image(op.request), meta.get("instance-template"))
        # The instance exists (its creationTimestamp) from the call, not from when it runs.
        return Record(at=op.started(), kind="launch", source=AUDIT, region=region,
                      instance_id=instance_id, group=group, zone=zone, image_id=image,
                      name=name)

    def _image_of(self, source: str | None, template: str | None) -> str | None:
        """The image a launch's request names; else its template's (a family names none)."""
        if source:
            path = resource_path(source, self.project)
            if "/images/family/" not in path:
                return path
        if template:
            found = self.poller.template(template_path(template, self.project))
            if found is not None:
                return found.image_id
        return None

    def _group_record(self, op: Operation, skipped: list[str]) -> Record | None:
        if op.failed or op.first is None:
            return None  # without its request a change does not say what it set
        entry = op.first
        payload = entry.payload_json or {}
        labels = entry.resource.labels if entry.resource is not None else {}
        path = resource_path(payload.get("resourceName", ""), self.project).split("/")
        name = labels.get("instance_group_manager_name") or path[-1]
        if len(path) < 6 or path[2] not in ("zones", "regions"):
            return None
        zone = path[3] if path[2] == "zones" else None
        region = region_of_zone(path[3]) if zone else path[3]
        reference = _main_template(op.request)
        if reference is None:
            return None  # a change of size or policy: the desired version stays
        tpl_path = template_path(reference, self.project)
        template = self.poller.template(tpl_path)
        at = op.started()
        image = None
        if template is None:
            skipped.append(f"group {name} ({region}) was set to template {last(tpl_path)} at "
                           f"{at:%Y-%m-%d %H:%M} UTC, which no longer exists: which image it "
                           "launched is not known (nothing can recover a deleted template)")
        elif template.created_at is not None and template.created_at > at + timedelta(
                seconds=1):
            skipped.append(f"group {name} ({region}): the audit log sets it to template "
                           f"{template.name} at {at:%Y-%m-%d %H:%M} UTC, before that template "
                           "was created: the records disagree, so that change is left as a "
                           "gap")
            return None
        else:
            image = template.image_id
        return Record(at=at, kind="group_version", source=AUDIT, region=region, group=name,
                      zone=zone, image_id=image, name=last(tpl_path), group_kind="mig")

    def _images(self, result: Backfill, inventory: Inventory | None) -> None:
        """The images the records name, as the cloud describes them (their labels give their
        versions); a poll's images first, the rest read (and cached) by the poller."""
        known = dict(inventory.images) if inventory is not None else {}
        wanted = sorted({r.image_id for r in result.records if r.image_id})
        missing = [i for i in wanted if i not in known]
        for image_id, (image, _state) in zip(missing, self.compute.map(self.poller.image,
                                                                        missing), strict=True):
            known[image_id] = image
        result.images = {i: known[i] for i in wanted if i in known}


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _instance_id(op: Operation) -> str:
    resource = op.entry.resource
    return (resource.labels.get("instance_id") or "") if resource is not None else ""


def history(config, poller: Poller, poll: Callable[[], Inventory], timing: Timing,
            since: datetime, until: datetime, **options) -> Backfill:
    """What project `config.project` kept of [since, until): records for the shared span
    builder, what could not be read, and the API calls made. `options`: page_size,
    read_budget (the benchmark varies them)."""
    reading = History(config, poller, poll, timing, **options)
    try:
        return reading.run(since, until)
    finally:
        reading.close()

