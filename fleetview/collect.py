"""`fleetview collect`: poll every scope on a schedule and write each poll to the store.

stdout carries one JSON object a line for the GUI (see EVENTS); logs go to stderr.
A GUI asks for a poll now by writing `poll` (or `poll a,b`) on stdin, or with SIGUSR1;
`stop` on stdin, SIGTERM or SIGINT end the collector cleanly with exit 0.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import logging
import os
import random
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TextIO

from fleetview import collect_protocol as protocol
from fleetview.collect_protocol import EventStream
from fleetview.config import Config, no_scopes_hint
from fleetview.domain.backfill import Backfill
from fleetview.domain.errors import FleetViewError
from fleetview.domain.model import Inventory, Scope
from fleetview.providers import make_provider, provider_class
from fleetview.providers.base import backfill_days
from fleetview.store import Store, StoreError, StoreUnavailable, witness
from fleetview.store.engine import display, parse_url

log = logging.getLogger(__name__)

EXIT_OK, EXIT_ERROR, EXIT_CONFIG, EXIT_PARTIAL = 0, 1, 2, 3

# The JSON lines on stdout, by "event": their fields are declared in fleetview.collect_protocol.
EVENTS = protocol.EVENTS

BUFFER_POLLS = 1000          # polls kept while the store is down; the oldest go first
RETRY_S = (1, 2, 5, 10, 30)  # waits between attempts to reach the store
ONCE_STORE_WAIT_S = 30.0     # with --once, how long to wait for a store that is down
STOP_GRACE_S = 5.0           # on stop, how long a poll in flight may take to finish
DRAIN_S = 10.0               # on stop, how long to keep writing what is buffered
PRUNE_EVERY_S = 3600.0
WITNESS_CHECK_S = 3600.0     # how often to see whether the audit head is due a witness line


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class PollResult:
    scope: str
    provider: str
    started: datetime
    finished: datetime
    inventory: Inventory | None = None
    error: str | None = None

    @property
    def duration_s(self) -> float:
        return round((self.finished - self.started).total_seconds(), 3)


@dataclass
class BackfillResult:
    """A scope's history read from its cloud's records, for the writer; `error` says why
    none could be read (nothing is written then, and the next start tries again)."""

    scope: str
    provider: str
    started: datetime
    finished: datetime
    where: Scope | None = None
    backfill: Backfill | None = None
    since: datetime | None = None
    until: datetime | None = None
    error: str | None = None
    # Asked for (`fleetview backfill`, the window): what it skipped makes the run partial.
    # A scope's automatic first backfill only says so in its event and the log.
    asked: bool = False

    @property
    def duration_s(self) -> float:
        return round((self.finished - self.started).total_seconds(), 3)


@dataclass
class Outcome:
    """What a run did, for its exit code."""

    partial: bool = False
    fatal: str | None = None
    unwritten: int = 0
    written: int = 0
    dropped: int = 0  # polls lost: never written to the store
    scopes_done: set[str] = field(default_factory=set)


class Writer(threading.Thread):
    """Owns the store: writes polls in order, one transaction each; while the store is
    down it keeps a bounded buffer and retries."""

    def __init__(self, config: Config, events: EventStream, outcome: Outcome,
                 stop: threading.Event):
        super().__init__(name="fleetview-writer", daemon=True)
        self.config = config
        self.events = events
        self.outcome = outcome
        self.stop_event = stop
        self.store: Store | None = None
        self._queue: collections.deque[PollResult | BackfillResult] = collections.deque()
        self._cond = threading.Condition()
        self._closing = False
        self._drain_until: float | None = None
        self._dropped = 0
        self._down = False
        self._last_prune: float | None = None
        self._last_witness: float | None = None

    def submit(self, result: PollResult | BackfillResult) -> None:
        with self._cond:
            self._queue.append(result)
            if len(self._queue) > BUFFER_POLLS:
                dropped = self._queue.popleft()
                self._dropped += 1
                self.outcome.dropped += 1
                message = (f"the store has been unavailable for a while; dropped the oldest "
                           f"buffered poll (of {dropped.scope} at {_iso(dropped.started)}); "
                           f"{self._dropped} dropped so far")
                log.warning(message)
                self.events.emit(protocol.PollsDropped(scope=dropped.scope,
                                                       dropped=self._dropped, message=message))
            self._cond.notify_all()

    def backfilled(self, scope: str, wait_s: float = 10.0) -> bool | None:
        """Whether the store records a backfill of `scope`; None while the store is not open
        (or is down): then nobody knows yet."""
        deadline = time.monotonic() + wait_s
        while self.store is None and not self._down and time.monotonic() < deadline \
                and not self.stop_event.is_set():
            time.sleep(0.05)
        store = self.store
        if store is None:
            return None
        try:
            return not store.backfills([scope]).empty
        except Exception as exc:  # the writer will say what is wrong with the store
            log.warning("could not read whether %s was backfilled (%s)", scope, exc)
            return None

    def pending(self) -> int:
        with self._cond:
            return len(self._queue)

    def finish(self, within_s: float) -> None:
        """Write what is buffered for at most `within_s`, then end."""
        with self._cond:
            self._closing = True
            self._drain_until = time.monotonic() + within_s
            self._cond.notify_all()
        self.join(within_s + 5)

    def run(self) -> None:
        attempt = 0
        try:
            try:  # open (create, migrate) first, so a store FleetView cannot use fails fast
                self._open()
                self._maybe_witness()
            except StoreUnavailable as exc:
                self._down = True
                log.warning("%s", exc)
                self.events.emit(protocol.StoreError(message=str(exc), pending=self.pending(),
                                                     retry_in_s=RETRY_S[0], fatal=False))
            while True:
                with self._cond:
                    if not self._queue and not self._closing:
                        self._cond.wait(1.0)
                    if not self._queue:
                        if self._closing:
                            return
                        idle = True
                    else:
                        if self._past_deadline():
                            return
                        idle = False
                        item = self._queue[0]
                if idle:
                    self._maybe_prune()
                    self._maybe_witness()
                    continue
                try:
                    self._write(item)
                except StoreUnavailable as exc:
                    wait = RETRY_S[min(attempt, len(RETRY_S) - 1)]
                    attempt += 1
                    self._down = True
                    log.warning("%s", exc)
                    self.events.emit(protocol.StoreError(
                        message=str(exc), pending=self.pending(), retry_in_s=wait, fatal=False))
                    with self._cond:
                        deadline = time.monotonic() + wait
                        while not self._past_deadline() and time.monotonic() < deadline:
                            self._cond.wait(min(0.2, max(0.0, deadline - time.monotonic())))
                    continue
                except StoreError:
                    raise
                except Exception as exc:
                    # A bug, or a database changed under us: drop this poll, never block the
                    # ones behind it, and start from a fresh connection and schema check.
                    log.exception("writing a poll of %s failed", item.scope)
                    self.events.emit(protocol.StoreError(
                        message=f"unexpected error writing a poll of {item.scope} "
                                f"({type(exc).__name__}); the poll was dropped, see the "
                                "collector log", pending=self.pending(), retry_in_s=None,
                        fatal=False))
                    self._reset()
                    self._report_dropped(item, exc)
                attempt = 0
                with self._cond:
                    if self._queue and self._queue[0] is item:
                        self._queue.popleft()
                if self._down:
                    self._down = False
                    self.events.emit(protocol.StoreOk(pending=self.pending()))
        except StoreError as exc:
            # Not something waiting fixes (a newer schema, a bad URL): stop collecting.
            self.outcome.fatal = str(exc)
            self.events.emit(protocol.StoreError(message=str(exc), pending=self.pending(),
                                                 retry_in_s=None, fatal=True))
            self.stop_event.set()
        finally:
            self.outcome.unwritten = self.pending()
            if self.store is not None:
                self.store.close()

    def _past_deadline(self) -> bool:
        return self._drain_until is not None and time.monotonic() > self._drain_until

    def _reset(self) -> None:
        if self.store is not None:
            with contextlib.suppress(Exception):
                self.store.close()
            self.store = None

    def _open(self) -> Store:
        if self.store is None:
            self.store = Store.open(self.config.store.url)
            log.info("store %s open", self.store.path_or_url)
        return self.store

    def _maybe_prune(self) -> None:
        keep = self.config.store.keep_days
        if not keep or self.store is None:
            return
        if self._last_prune is not None and time.monotonic() - self._last_prune < PRUNE_EVERY_S:
            return
        self._last_prune = time.monotonic()
        try:
            pruned = self.store.prune(keep)
            log.info("pruned %d spans older than %d days", pruned, keep)
        except Exception as exc:  # pruning is housekeeping: its failure is no poll's
            log.warning("pruning history older than %s days failed (%s: %s); the polls are "
                        "written, pruning is tried again in %d s", keep, type(exc).__name__,
                        exc, PRUNE_EVERY_S)

    def _maybe_witness(self) -> None:
        """Copy the audit log's head to this machine's witness at least daily."""
        if self.store is None:
            return
        if (self._last_witness is not None
                and time.monotonic() - self._last_witness < WITNESS_CHECK_S):
            return
        self._last_witness = time.monotonic()
        try:
            witness.record_if_due(self.store)
        except Exception as exc:  # the witness is a second copy; polling goes on without it
            log.warning("could not witness the audit log's head (%s: %s)",
                        type(exc).__name__, exc)

    def _report_dropped(self, item: PollResult | BackfillResult, exc: Exception) -> None:
        """A poll that could not be written is a failed poll: in the scope's status (its
        poll record and a poll_finished event) and in the exit status."""
        self.outcome.dropped += 1
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        if isinstance(item, BackfillResult):
            self.outcome.partial = True
            self.events.emit(protocol.BackfillFinished(
                scope=item.scope, ok=False, message=(
                    f"the rebuilt history could not be written ({type(exc).__name__}: "
                    f"{reason[0] if reason else 'no message'}); see the collector log")))
            return
        message = (f"the poll could not be written to the store and was dropped "
                   f"({type(exc).__name__}: {reason[0] if reason else 'no message'}); "
                   "see the collector log")
        try:
            self._open().record_failed_poll(item.scope, item.provider, None, item.started,
                                            item.finished, message)
        except Exception:
            log.exception("could not record the dropped poll of %s either", item.scope)
        self.events.emit(protocol.PollFinished(
            scope=item.scope, provider=item.provider, ok=False, error=message, instances=0,
            groups=0, api_calls=0, duration_s=item.duration_s, opened=0, closed=0,
            unchanged=0, gone=0, region_errors=()))

    def _write(self, item: PollResult | BackfillResult) -> None:
        store = self._open()
        if isinstance(item, BackfillResult):
            self._write_backfill(store, item)
            return
        if item.inventory is None:
            store.record_failed_poll(item.scope, item.provider, None, item.started,
                                     item.finished, item.error or "unknown error")
            self.outcome.written += 1
            self.events.emit(protocol.PollFinished(
                scope=item.scope, provider=item.provider, ok=False, error=item.error,
                instances=0, groups=0, api_calls=0, duration_s=item.duration_s, opened=0,
                closed=0, unchanged=0, gone=0, region_errors=()))
            self._maybe_prune()
            return
        inv = item.inventory
        summary = store.record_poll(inv, item.started, item.finished,
                                    suspect_share=self.config.poll.suspect_share)
        self.outcome.written += 1
        # Written (or held as suspect), but recorded as an error of the scope.
        flag = "; ".join(f for f in (summary.held, summary.clock_skew) if f) or None
        if flag:
            self.outcome.partial = True
        self.events.emit(protocol.PollFinished(
            scope=item.scope, provider=item.provider, ok=inv.ok and not flag,
            error=flag, instances=len(inv.instances), groups=len(inv.groups),
            api_calls=inv.api_calls, duration_s=item.duration_s, opened=summary.opened,
            closed=summary.closed, unchanged=summary.unchanged, gone=summary.gone,
            region_errors=tuple(protocol.RegionFailure(e.region or None, e.message)
                                for e in inv.errors),
        ))
        self._maybe_prune()


    def _write_backfill(self, store: Store, item: BackfillResult) -> None:
        if item.error is not None or item.backfill is None or item.where is None:
            self.outcome.partial = self.outcome.partial or item.asked
            self.events.emit(protocol.BackfillFinished(
                scope=item.scope, ok=False, message=item.error or "no history was read"))
            return
        assert item.since is not None and item.until is not None
        summary = store.record_backfill(item.where, item.backfill, item.since, item.until,
                                        self.config.versions.version_of)
        self.outcome.written += 1
        text = summary.describe()
        log.info("%s", text)
        if summary.skipped and item.asked:
            self.outcome.partial = True
        self.events.emit(protocol.BackfillFinished(
            scope=item.scope, ok=True, spans=summary.spans, group_spans=summary.group_spans,
            api_calls=summary.api_calls, message=text))


class ScopeWorker(threading.Thread):
    """Polls one scope: now, then every interval (with jitter), or at once when woken."""

    def __init__(self, scope_config, config: Config, writer: Writer, events: EventStream,
                 outcome: Outcome, stop: threading.Event, once: bool,
                 backfill_now: bool = False, days: int | None = None):
        super().__init__(name=f"fleetview-poll-{scope_config.name}", daemon=True)
        # A backfill after the next good poll: asked for (`backfill_now`, the `backfill`
        # command), or the scope's first (the store records none); `days` overrides the
        # scope's backfill_days.
        self.backfill_asked = backfill_now
        self.backfill_days = days
        self._backfill_checked = False
        self._asked = False
        self._backfill_thread: threading.Thread | None = None
        self.scope_config = scope_config
        self.config = config
        self.writer = writer
        self.events = events
        self.outcome = outcome
        self.stop_event = stop
        self.once = once
        self.wake = threading.Event()
        self._provider = None

    @property
    def scope(self) -> str:
        return self.scope_config.name

    def run(self) -> None:
        try:
            while not self.stop_event.is_set():
                self.wake.clear()
                self.poll_once()
                if self.once:
                    self._join_backfill(None)
                    return
                interval = self.config.poll.interval_s
                jitter = self.config.poll.jitter_s
                delay = max(1.0, interval + random.uniform(-jitter, jitter))
                deadline = time.monotonic() + delay
                while not self.stop_event.is_set() and not self.wake.is_set():
                    if time.monotonic() >= deadline:
                        break
                    self.wake.wait(min(0.5, max(0.0, deadline - time.monotonic())))
        finally:
            self._join_backfill(STOP_GRACE_S)
            if self._provider is not None:
                with contextlib.suppress(Exception):
                    self._provider.close()

    def _join_backfill(self, timeout_s: float | None) -> None:
        thread = self._backfill_thread
        if thread is not None:
            thread.join(timeout_s)

    def poll_once(self) -> None:
        provider_name = self.scope_config.provider
        self.events.emit(protocol.PollStarted(scope=self.scope, provider=provider_name))
        started = _now()
        inventory, error = None, None
        try:
            if self._provider is None:
                # The provider's own timing, with this collector's poll deadline.
                timing = dataclasses.replace(
                    provider_class(provider_name).default_timing,
                    poll_deadline_s=self.config.poll.deadline)
                self._provider = make_provider(self.scope_config, self.config.versions,
                                               timing=timing)
            inventory = self._provider.poll()
        except FleetViewError as exc:
            error = str(exc)
        except Exception as exc:  # a provider bug must not end the collector
            log.exception("polling %s failed", self.scope)
            error = f"unexpected error ({type(exc).__name__}: {exc}); see the collector log"
        finished = _now()
        if error is not None:
            self.outcome.partial = True
            log.warning("%s: %s", self.scope, error)
            self.events.emit(protocol.ScopeError(scope=self.scope, provider=provider_name,
                                                 region=None, message=error))
        else:
            for region_error in inventory.errors:
                self.outcome.partial = True
                self.events.emit(protocol.ScopeError(
                    scope=self.scope, provider=provider_name,
                    region=region_error.region or None,  # "": the whole scope
                    message=region_error.message))
        self.writer.submit(PollResult(self.scope, provider_name, started, finished,
                                      inventory, error))
        # A poll that failed somewhere waits: its regions' records may be out of reach too.
        # Reading records takes minutes at CloudTrail's pace: polls go on meanwhile.
        running = self._backfill_thread is not None and self._backfill_thread.is_alive()
        if inventory is not None and inventory.ok and not running and self._backfill_due():
            self._backfill_thread = threading.Thread(
                target=self.backfill, args=(inventory,), daemon=True,
                name=f"fleetview-backfill-{self.scope}")
            self._backfill_thread.start()

    def _backfill_due(self) -> bool:
        if self.backfill_asked:
            self.backfill_asked = False
            self._asked = True
            if self._days() <= 0:
                self.events.emit(protocol.BackfillFinished(
                    scope=self.scope, ok=False, message=(
                        f"backfill of {self.scope} is off (backfill_days = 0 in its table of "
                        "the config); give a number of days (fleetview backfill --days N)")))
                self.outcome.partial = True
                return False
            return True
        if self._backfill_checked or self._days() <= 0:
            return False
        done = self.writer.backfilled(self.scope)
        if done is None:  # the store is not open yet: ask again after the next poll
            return False
        self._backfill_checked = True
        return not done

    def _days(self) -> int:
        return backfill_days(self.scope_config) if self.backfill_days is None \
            else self.backfill_days

    def backfill(self, inventory: Inventory) -> None:
        """Read the cloud's records of the scope's last `backfill_days` and hand them to
        the writer, which rebuilds the history before what was observed."""
        until = _now()
        since = until - timedelta(days=self._days())
        found, error = None, None
        try:
            found = self._provider.history(since, until)
        except FleetViewError as exc:
            error = str(exc)
        except Exception as exc:  # a provider bug must not end the collector
            log.exception("reading the history of %s failed", self.scope)
            error = (f"unexpected error reading its history ({type(exc).__name__}: {exc}); "
                     "see the collector log")
        if error is not None:
            log.warning("%s: backfill: %s", self.scope, error)
        self.writer.submit(BackfillResult(
            self.scope, self.scope_config.provider, until, _now(), inventory.scope, found,
            since, until, error, asked=self._asked))
        self._asked = False


class CommandReader(threading.Thread):
    """Reads `poll [a,b]` and `stop` lines from a file descriptor (the GUI's pipe)."""

    def __init__(self, fd: int, workers: dict[str, ScopeWorker], stop: threading.Event,
                 stop_on_eof: bool = False):
        super().__init__(name="fleetview-commands", daemon=True)
        self.fd, self.stop_on_eof = fd, stop_on_eof
        self.workers = workers
        self.stop_event = stop

    def run(self) -> None:
        buffer = b""
        while not self.stop_event.is_set():
            try:
                chunk = os.read(self.fd, 4096)
            except OSError:
                return
            if not chunk:
                # EOF. Started by a window (stop_on_eof), it means the window is gone, even
                # killed: stop rather than poll on for nobody. Otherwise keep the schedule.
                if self.stop_on_eof:
                    log.info("stdin closed: the window that started this collector is gone")
                    self.stop_event.set()
                return
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                self.handle(line.decode("utf-8", "replace").strip())

    def handle(self, line: str) -> None:
        word, _, rest = line.partition(" ")
        if word == "poll":
            names = [n.strip() for n in rest.split(",") if n.strip()] or list(self.workers)
            for name in names:
                if name in self.workers:
                    self.workers[name].wake.set()
                else:
                    log.warning("poll: no scope %r in this collector", name)
        elif word == "backfill":
            # Poll now, then rebuild the scope's history from its cloud's records.
            names = [n.strip() for n in rest.split(",") if n.strip()] or list(self.workers)
            for name in names:
                if name in self.workers:
                    self.workers[name].backfill_asked = True
                    self.workers[name].wake.set()
                else:
                    log.warning("backfill: no scope %r in this collector", name)
        elif word in ("stop", "quit"):
            self.stop_event.set()
        elif word:
            log.warning("unknown command %r; the commands are: poll [scope,...], "
                        "backfill [scope,...], stop", line)


def _select(config: Config, scopes: list[str] | None):
    if not config.scopes:
        where = config.path or "the config file"
        raise FleetViewError(f"{where}: no scopes configured; {no_scopes_hint()}")
    if not scopes:
        return list(config.scopes)
    known = [s.name for s in config.scopes]
    unknown = [s for s in scopes if s not in known]
    if unknown:
        raise FleetViewError(f"unknown scope{'s' if len(unknown) > 1 else ''} "
                             f"{', '.join(unknown)}; the configured scopes are: "
                             f"{', '.join(known)}")
    return [config.scope(name) for name in dict.fromkeys(scopes)]


def run(config: Config, once: bool = False, scopes: list[str] | None = None,
        stop_on_eof: bool = False) -> int:
    """The `fleetview collect` command; `stop_on_eof` when a window owns it through a pipe."""
    try:
        selected = _select(config, scopes)
        parse_url(config.store.url)
    except FleetViewError as exc:
        print(f"fleetview: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    commands_fd = None if once else _stdin_fd()
    return serve(config, selected, once, sys.stdout, commands_fd, install_signals=True,
                 stop_on_eof=stop_on_eof)


def run_backfill(config: Config, scopes: list[str] | None = None, days: int | None = None
                 ) -> int:
    """`fleetview backfill`: poll each scope once and rebuild its history from its cloud's
    records over `days` (default: its backfill_days), even if that was done before."""
    try:
        selected = _select(config, scopes)
        parse_url(config.store.url)
    except FleetViewError as exc:
        print(f"fleetview: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if days is not None and days <= 0:
        print("fleetview: --days must be at least 1", file=sys.stderr)
        return EXIT_CONFIG
    return serve(config, selected, True, sys.stdout, None, install_signals=True,
                 backfill_now=True, backfill_days=days)


def _stdin_fd() -> int | None:
    try:
        return sys.stdin.fileno() if sys.stdin is not None else None
    except (OSError, ValueError, AttributeError):
        return None


def serve(config: Config, selected, once: bool, out: TextIO, commands_fd: int | None,
          install_signals: bool = False, stop: threading.Event | None = None,
          stop_on_eof: bool = False, backfill_now: bool = False,
          backfill_days: int | None = None) -> int:
    """Run the collector for `selected` scope configs until stopped (or one round, `once`).
    `backfill_now`: rebuild each scope's history after its first poll even if it was
    rebuilt before, over `backfill_days` (default: each scope's own)."""
    stop = stop or threading.Event()
    events = EventStream(out)
    outcome = Outcome()
    writer = Writer(config, events, outcome, stop)
    workers = {s.name: ScopeWorker(s, config, writer, events, outcome, stop, once,
                                   backfill_now, backfill_days)
               for s in selected}
    previous = _install_signals(stop, workers) if install_signals else {}
    reason = "done"
    try:
        events.emit(protocol.CollectorStarted(
            scopes=tuple(workers), pid=os.getpid(), store=_display_url(config.store.url),
            interval_s=config.poll.interval_s, once=once))
        writer.start()
        for worker in workers.values():
            worker.start()
        if commands_fd is not None:
            CommandReader(commands_fd, workers, stop, stop_on_eof).start()
        if once:
            for worker in workers.values():
                while worker.is_alive() and not stop.is_set():
                    worker.join(0.2)
            writer.finish(ONCE_STORE_WAIT_S if not stop.is_set() else DRAIN_S)
        else:
            while not stop.wait(0.5):
                pass
            reason = "fatal store error" if outcome.fatal else "stopped"
            deadline = time.monotonic() + STOP_GRACE_S
            for worker in workers.values():
                worker.join(max(0.0, deadline - time.monotonic()))
            writer.finish(DRAIN_S)
    finally:
        stop.set()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        events.emit(protocol.CollectorStopped(reason=reason, unwritten=outcome.unwritten))
    if outcome.fatal:
        print(f"fleetview: {outcome.fatal}", file=sys.stderr)
        return EXIT_ERROR
    # A service that ran for days reports drops as they happen (polls_dropped, failed polls in
    # the store); a single run says it in its exit status too.
    if once and outcome.dropped:
        print(f"fleetview: {outcome.dropped} poll(s) were dropped: they could not be written "
              f"to the store {_display_url(config.store.url)}; see the log above",
              file=sys.stderr)
        return EXIT_ERROR
    if once and outcome.unwritten:
        print(f"fleetview: {outcome.unwritten} poll(s) could not be written to the store "
              f"{_display_url(config.store.url)}; check that it is reachable", file=sys.stderr)
        return EXIT_ERROR
    if once and outcome.partial:
        return EXIT_PARTIAL
    return EXIT_OK


def _display_url(url: str) -> str:
    try:
        return display(parse_url(url))
    except StoreError:
        return url


def _install_signals(stop: threading.Event, workers: dict[str, ScopeWorker]) -> dict:
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {}

    def on_stop(signum, _frame):
        log.info("signal %s: stopping", signum)
        stop.set()

    def on_poll(_signum, _frame):
        for worker in workers.values():
            worker.wake.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        previous[signum] = signal.signal(signum, on_stop)
    if hasattr(signal, "SIGUSR1"):
        previous[signal.SIGUSR1] = signal.signal(signal.SIGUSR1, on_poll)
    return previous
