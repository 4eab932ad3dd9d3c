"""`fleetview plan|rollback|replace|stop|actions|quarantine`: every action from the command line,
through the same prepare, runner, journal, locks and audit log as the window."""

from __future__ import annotations

import argparse
import getpass
import json
import socket
import sys
from collections.abc import Callable

from fleetview.actions import cli_output as out
from fleetview.actions import quarantine, runner, targets
from fleetview.actions.cli_args import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_NOT_CONVERGED,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_UNPOLLED,
)
from fleetview.actions.journal import ActionRecord, Journal
from fleetview.actions.prepare import Prepared, prepare_replace, prepare_rollback
from fleetview.config import Config, ConfigError
from fleetview.domain.actions import ActionRefused, ProgressEvent, kind_of
from fleetview.domain.errors import FleetViewError
from fleetview.domain.timing import Timing
from fleetview.providers import make_provider
from fleetview.store import Store


def run(args: argparse.Namespace, config: Config) -> int:
    """Run one action command; ConfigError and unexpected FleetViewErrors go to the caller."""
    command = {"plan": _plan, "rollback": _act, "replace": _act, "stop": _stop,
               "actions": _actions, "quarantine": _quarantine}[args.command]
    try:
        return command(args, config)
    except ActionRefused as exc:
        _err(f"refused: {exc}")
        return EXIT_REFUSED
    except targets.Unpolled as exc:
        _err(str(exc))
        return EXIT_UNPOLLED


def _err(text: str) -> None:
    print(f"fleetview: {text}", file=sys.stderr, flush=True)


def _say(text: str = "") -> None:
    print(text, flush=True)


def _json(obj: object) -> None:
    print(json.dumps(obj, default=str), flush=True)


def _open_store(config: Config, readonly: bool = False) -> Store:
    return Store.open(config.store.url, readonly=readonly)


def _selectors(config: Config, scope_config) -> tuple[str, ...]:
    return tuple(config.protect) + tuple(getattr(scope_config, "protect", ()))


def _timing(wait_s: float) -> Timing:
    """Check the group at least ten times within the deadline, and at most every 10 s."""
    interval = max(1.0, min(runner.CONVERGE.interval_s, wait_s / 10))
    return Timing(interval_s=interval, timeout_s=max(0.0, wait_s))


# -- plan, rollback, replace ------------------------------------------------------------------

def _prepare(args: argparse.Namespace, config: Config, store: Store, kind: str) -> Prepared:
    """The plan, made as the window makes it, with the provider that found the target."""
    if kind == "rollback":
        found = targets.find_group(config, args.group, args.scope, args.region)
        prepared = prepare_rollback(config, store, found.scope, found.region, found.name,
                                    version=args.to, provider=found.provider)
    else:
        found = targets.find_instance(config, args.instance, args.scope, args.region)
        prepared = prepare_replace(config, store, found.scope, found.name,
                                   provider=found.provider)
    if prepared.provider is None:  # refused before it was used
        found.provider.close()
    return prepared


def _command_of(args: argparse.Namespace, kind: str) -> str:
    return f"fleetview {kind} {args.group if kind == 'rollback' else args.instance}"


def _show(prepared: Prepared, args: argparse.Namespace, kind: str, event: bool = True) -> None:
    if args.format == "json":
        _json({"event": "plan", **out.plan_json(prepared)} if event else out.plan_json(prepared))
    else:
        for line in out.plan_text(prepared, _command_of(args, kind)):
            _say(line)


def _plan(args: argparse.Namespace, config: Config) -> int:
    kind = args.plan_kind
    with _open_store(config) as store:
        prepared = _prepare(args, config, store, kind)
        try:
            _show(prepared, args, kind, event=False)
        finally:
            _close(prepared)
    if prepared.refusal:
        _err(f"refused: {_refusal(prepared, args)}")
        return EXIT_REFUSED
    return EXIT_OK


def _refusal(prepared: Prepared, args: argparse.Namespace) -> str:
    """Prepare's refusal, with the way on where history offers no rollback target."""
    if prepared.plan is None and prepared.kind == "rollback" and not getattr(args, "to", None):
        choices = f" (seen: {', '.join(prepared.versions)})" if prepared.versions else ""
        return f"{prepared.refusal}; name a version with --to VERSION{choices}"
    return prepared.refusal or "no plan"


def _close(prepared: Prepared) -> None:
    if prepared.provider is not None:
        prepared.provider.close()


def _ask(question: str) -> str:
    """A line typed on the terminal; the question goes to stderr, so stdout stays the plan's."""
    print(question, end="", file=sys.stderr, flush=True)
    line = sys.stdin.readline()
    if not line:
        raise ActionRefused("no answer (end of input); nothing was changed")
    return line.strip()


def _confirm_on_terminal(prepared: Prepared, typed: dict[str, str]) -> None:
    """Ask y/N (and the typing a protected group or a bad version needs) on the terminal;
    refuse where there is none."""
    if not sys.stdin or not sys.stdin.isatty():
        raise ActionRefused("there is no terminal to confirm on: read the plan, then run the "
                            "command again with --yes")
    plan = prepared.plan
    if prepared.protected and not typed["name"]:
        typed["name"] = _ask(f"{plan.group} is protected ({prepared.protected}): type its "
                             "name to confirm: ")
    if prepared.target_bad and not typed["version"]:
        typed["version"] = _ask(f"{prepared.target_bad}.\nType the version {plan.to_version} "
                                "to go back to it anyway: ")
    answer = _ask(f"{kind_of(plan).describe(plan)}, acting as {prepared.identity}? [y/N] ")
    if answer.lower() not in ("y", "yes"):
        raise ActionRefused("not confirmed; nothing was changed")


def _act(args: argparse.Namespace, config: Config) -> int:
    """`fleetview rollback` and `fleetview replace`: plan, confirm, run, track."""
    kind = args.command
    with _open_store(config) as store:
        prepared = _prepare(args, config, store, kind)
        try:
            if prepared.plan is not None:
                _show(prepared, args, kind)
            if not prepared.ok:
                raise ActionRefused(_refusal(prepared, args))
            typed = {"name": args.confirm_name,
                     "version": getattr(args, "confirm_version", "")}
            if not args.yes:
                _confirm_on_terminal(prepared, typed)
            scope_config = config.scope(prepared.scope)
            action_id = runner.confirm(
                store, scope_config, prepared.plan,
                runner.Confirmation(args.reason, typed["name"], typed["version"]),
                prepared.identity or "unknown", selectors=_selectors(config, scope_config),
                group=prepared.group_info)
            record = _run(store, action_id, args, lambda on_event: runner.execute(
                store, prepared.provider, action_id, on_event=on_event,
                timing=_timing(args.wait_s)))
        finally:
            _close(prepared)
    return _exit_of(record)


def _exit_of(record: ActionRecord | None) -> int:
    """0 recovered (or abandoned on purpose), 4 still open, 1 failed or stopped."""
    if record is None:
        return 130
    if record.open:
        _err(f"action {record.action_id} is still open ({record.status}): `fleetview actions "
             f"resume {record.action_id} --mode track` watches it on, `--mode abandon` closes "
             "it")
        return EXIT_NOT_CONVERGED
    return EXIT_OK if record.status in ("recovered", "abandoned") else EXIT_FAILED


def _run(store: Store, action_id: str, args: argparse.Namespace,
         work: Callable[[Callable[[ProgressEvent], None]], ActionRecord]) -> ActionRecord | None:
    """Run `work` (execute, resume or stop), printing its progress; None if interrupted."""
    record = Journal(store).get(action_id)
    if args.format == "json":
        _json({"event": "action", **out.record_json(record)})

        def on_event(event: ProgressEvent) -> None:
            _json(out.event_json(action_id, event))
    else:
        _say(f"action {action_id}: {out.describe(record)}, confirmed by {record.actor}")

        def on_event(event: ProgressEvent) -> None:
            _say(out.event_text(event))
    try:
        record = work(on_event)
    except KeyboardInterrupt:
        _err(f"interrupted: action {action_id} is left as it is, its steps so far journaled; "
             f"`fleetview actions resume {action_id} --mode track|next|abandon` picks it up, "
             f"`fleetview stop {action_id} --reason ...` stops it")
        return None
    if args.format == "json":
        _json({"event": "result", **out.record_json(record, full=True)})
    else:
        _say(out.result_text(record))
    return record


# -- stop -------------------------------------------------------------------------------------

def _provider_for(config: Config, record: ActionRecord):
    try:
        scope_config = config.scope(record.plan.scope)
    except KeyError:
        raise ConfigError(config.path or "the config file", "",
                          f"action {record.action_id} is on scope {record.plan.scope}, which "
                          "is no longer in the config") from None
    return make_provider(scope_config, config.versions)


def _find_action(store: Store, ident: str) -> ActionRecord:
    """An action by its id or a unique start of it (at least 6 characters)."""
    journal = Journal(store)
    try:
        return journal.get(ident)
    except KeyError:
        pass
    if len(ident) >= 6:
        hits = [r for r in journal.recent(limit=10_000) if r.action_id.startswith(ident)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise ActionRefused(f"{ident} starts {len(hits)} action ids; give more of it")
    raise FleetViewError(f"no action {ident} in the journal of {store.path_or_url}; "
                         "`fleetview actions list` shows them")


def _open_action(store: Store, args: argparse.Namespace) -> ActionRecord:
    """The open action named by id, or by its group's name (one, or refused with the list)."""
    on_group = [r for r in Journal(store).unfinished() if r.plan.group == args.target
                and args.scope in (None, r.plan.scope)
                and args.region in (None, r.plan.region)]
    if len(on_group) > 1:
        listed = "\n".join(f"  {r.action_id}: {out.describe(r)} ({r.plan.scope} "
                           f"{r.plan.region}, {r.shown_status})" for r in on_group)
        raise ActionRefused(f"group {args.target} has {len(on_group)} open actions; stop one "
                            f"by its id:\n{listed}")
    if on_group:
        return on_group[0]
    try:
        return _find_action(store, args.target)
    except FleetViewError:
        raise ActionRefused(f"no open action on a group named {args.target}, and no action "
                            "with that id; `fleetview actions list` shows them") from None


def _stop(args: argparse.Namespace, config: Config) -> int:
    with _open_store(config) as store:
        record = _open_action(store, args)
        if not record.open:
            raise ActionRefused(f"action {record.action_id} is {record.status}; there is "
                                "nothing to stop")
        provider = _provider_for(config, record)
        try:
            actor = provider.identity()
            if args.format == "text":
                _say(f"stopping action {record.action_id} as {actor}")
            final = _run(store, record.action_id, args, lambda on_event: runner.stop(
                store, provider, record.action_id, actor, args.reason, on_event=on_event,
                wait_s=args.wait_s))
        finally:
            provider.close()
    if final is None:
        return 130
    if final.status == "stopped":
        return EXIT_OK
    if final.open:
        _err(f"the stop is asked and journaled, but {final.owner} has not stopped the action "
             f"within {args.wait_s:.0f} s; it stops at its next check")
        return EXIT_NOT_CONVERGED
    _err(f"action {final.action_id} ended {final.status}, not stopped")
    return EXIT_FAILED


# -- actions list / show / resume -------------------------------------------------------------

def _actions(args: argparse.Namespace, config: Config) -> int:
    if args.actions_command == "resume":
        return _resume(args, config)
    with _open_store(config, readonly=True) as store:
        if args.actions_command == "list":
            records = Journal(store).recent(limit=args.limit)
            if args.format == "json":
                _json([out.record_json(r) for r in records])
            else:
                for line in out.records_text(records):
                    _say(line)
            return EXIT_OK
        record = _find_action(store, args.action_id)
    if args.format == "json":
        _json(out.record_json(record, full=True))
    else:
        for line in out.record_text(record):
            _say(line)
    return EXIT_OK


def _resume(args: argparse.Namespace, config: Config) -> int:
    with _open_store(config) as store:
        record = _find_action(store, args.action_id)
        if not record.open:
            raise ActionRefused(f"action {record.action_id} is {record.status}; only an open "
                                "action can be resumed or abandoned")
        provider = _provider_for(config, record)
        try:
            try:
                actor = provider.identity()
            except FleetViewError:
                if args.mode != "abandon":
                    raise
                actor = record.actor  # abandoning changes nothing in the cloud
            if args.format == "text":
                _say(f"resuming action {record.action_id} ({args.mode}) as {actor}")
            final = _run(store, record.action_id, args, lambda on_event: runner.resume(
                store, provider, record.action_id, args.mode, actor, on_event=on_event,
                timing=_timing(args.wait_s)))
        finally:
            provider.close()
    return _exit_of(final)


# -- quarantine -------------------------------------------------------------------------------

def _local_user() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def _quarantine(args: argparse.Namespace, config: Config) -> int:
    if [bool(args.version), bool(args.lift), args.list].count(True) != 1:
        _err("quarantine: give one of VERSION (to mark it bad), --lift VERSION or --list")
        return EXIT_CONFIG
    if args.list:
        with _open_store(config, readonly=True) as store:
            marks = quarantine.marks(store)
        if args.format == "json":
            _json([out.mark_json(m) for m in marks])
        else:
            for line in out.marks_text(marks):
                _say(line)
        return EXIT_OK
    actor = _local_user()
    if args.scope is not None:
        [scope_config] = targets.selected_scopes(config, args.scope)
        provider = make_provider(scope_config, config.versions)
        try:
            actor = provider.identity()
        finally:
            provider.close()
    reason = args.reason or ""
    with _open_store(config) as store:
        if args.lift:
            lifted = quarantine.lift(store, args.lift, reason, actor, scope=args.scope,
                                     group=args.group)
            result = {"event": "lifted", "version": args.lift, "scope": args.scope,
                      "group": args.group, "lifted": lifted, "actor": actor}
            text = (f"lifted {lifted} mark{'s' if lifted != 1 else ''} on {args.lift} for "
                    f"{args.group or 'every group'}"
                    f"{f' of {args.scope}' if args.scope else ''}")
        else:
            mark = quarantine.mark(store, args.version, reason, actor, scope=args.scope,
                                   group=args.group)
            result = {"event": "marked", **out.mark_json(mark)}
            text = f"marked bad: {mark.describe()}"
    if args.format == "json":
        _json(result)
    else:
        _say(text)
    return EXIT_OK
