"""The `fleetview` command: the GUI by default, and the headless subcommands."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from fleetview import __version__, logs, platform_check
from fleetview.actions import cli_args
from fleetview.config import Config, ConfigError, load_config, no_scopes_hint
from fleetview.domain.errors import FleetViewError
from fleetview.reports import cli_args as report_args

EXIT_OK, EXIT_ERROR, EXIT_CONFIG, EXIT_PARTIAL = 0, 1, 2, 3
# The action commands add 4 (not converged) and 5 (refused): fleetview/actions/cli_args.py.


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS,
                        help="config file (default: fleetview/config.toml in the user config dir)")
    parser = argparse.ArgumentParser(
        prog="fleetview", parents=[common],
        description="Which machine image every instance runs, across AWS and GCP, "
                    "now and in the past. Without a command: open the main window.")
    parser.add_argument("--version", action="version", version=f"fleetview {__version__}")
    parser.add_argument("--demo", action="store_true",
                        help="open on a built-in demo fleet (local AWS and GCP, no account)")
    parser.add_argument("--size", choices=("small", "large"), default="small",
                        help="with --demo: the size of the demo fleet")
    parser.add_argument("--no-collect", action="store_true",
                        help="do not start a collector; open the store read-only")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log FleetView's own debug messages to stderr")
    parser.add_argument("--debug-sdk", action="store_true",
                        help="also log the cloud SDKs' requests and answers to stderr, "
                             "with credentials redacted (for bug reports)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    snap = sub.add_parser("snapshot", parents=[common],
                          help="poll every scope once and print the fleet")
    snap.add_argument("--format", choices=("json", "csv"), default="json")

    collect = sub.add_parser("collect", parents=[common],
                             help="poll every scope on a schedule into the store")
    collect.add_argument("--once", action="store_true", help="poll once and exit")
    collect.add_argument("--scopes", metavar="A,B", help="poll only these scopes")
    # The window starts its collector with this: when the window's pipe closes, stop.
    collect.add_argument("--stop-on-eof", action="store_true", help=argparse.SUPPRESS)

    backfill = sub.add_parser(
        "backfill", parents=[common],
        help="poll once and rebuild each scope's past from its cloud's records "
             "(CloudTrail, Auto Scaling activities, audit logs)")
    backfill.add_argument("--scope", metavar="A,B", help="only these scopes")
    backfill.add_argument("--days", type=int, metavar="N",
                          help="how far back (default: each scope's backfill_days)")

    audit = sub.add_parser("audit", parents=[common], help="check or export the audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    verify = audit_sub.add_parser("verify", parents=[common],
                                  help="check the chain and its witnesses; report what broke")
    verify.add_argument("--witness", metavar="PATH", action="append",
                        help="a witness file to check against (repeatable; default: "
                             "$FLEETVIEW_AUDIT_WITNESS or audit-witness.jsonl in the user "
                             "data dir)")
    export = audit_sub.add_parser("export", parents=[common], help="print the audit log")
    export.add_argument("--format", choices=("csv", "json"), default="json")

    sub.add_parser("doctor", parents=[common],
                   help="check credentials and permissions of every scope")
    cli_args.add_parsers(sub, common)
    report_args.add_parser(sub, common)
    sub.add_parser("selfcheck", parents=[common])  # hidden: the packaged app checks itself
    return parser


def _entry(module: str, function: str, what: str, hint: str = "") -> Callable[..., int] | None:
    """A command's implementation, or None (said on stderr) where this installation lacks it,
    as a PyInstaller bundle lacks the demo's local clouds."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            print(f"fleetview: {what} is not part of this installation of FleetView"
                  f"{'; ' + hint if hint else '.'}", file=sys.stderr)
            return None
        raise
    return getattr(mod, function)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logs.setup(verbose=args.verbose, debug_sdk=args.debug_sdk)
    try:
        # The window's commands: before anything else (the demo takes a while to seed), make
        # sure Qt can open a window here, instead of letting it abort the process.
        if args.command is None:
            problem = platform_check.check()
            if problem:
                print(f"fleetview: {problem}", file=sys.stderr)
                return EXIT_ERROR
        if args.demo:
            run = _entry("fleetview.sim.demo", "run_demo", "the demo (--demo)",
                         'install FleetView with pip install "fleetview[demo]" to run it')
            return EXIT_ERROR if run is None else run(size=args.size)
        if args.command == "selfcheck":
            run = _entry("fleetview.ui.selfcheck", "main", "the self-check")
            return EXIT_ERROR if run is None else run()
        config = load_config(getattr(args, "config", None))
        return _dispatch(args, config)
    except ConfigError as exc:
        print(f"fleetview: bad config: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except FleetViewError as exc:
        print(f"fleetview: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace, config: Config) -> int:
    if args.command == "snapshot":
        return _snapshot(config, args.format)
    if args.command == "collect":
        run = _entry("fleetview.collect", "run", "the collector (fleetview collect)")
        scopes = [s.strip() for s in args.scopes.split(",") if s.strip()] if args.scopes else None
        return EXIT_ERROR if run is None else run(config, once=args.once, scopes=scopes,
                                                  stop_on_eof=args.stop_on_eof)
    if args.command == "backfill":
        run = _entry("fleetview.collect", "run_backfill", "fleetview backfill")
        scopes = [s.strip() for s in args.scope.split(",") if s.strip()] if args.scope else None
        return EXIT_ERROR if run is None else run(config, scopes=scopes, days=args.days)
    if args.command == "audit":
        run = _entry("fleetview.actions.audit_cli", args.audit_command,
                     f"fleetview audit {args.audit_command}")
        if run is None:
            return EXIT_ERROR
        if args.audit_command == "export":
            return run(config, fmt=args.format)
        return run(config, witnesses=args.witness)
    if args.command == "doctor":
        run = _entry("fleetview.doctor", "run", "fleetview doctor")
        return EXIT_ERROR if run is None else run(config)
    if args.command == "report":
        run = _entry("fleetview.reports.cli", "run", "fleetview report")
        return EXIT_ERROR if run is None else run(args, config)
    if args.command in cli_args.COMMANDS:
        run = _entry("fleetview.actions.act_cli", "run", f"fleetview {args.command}")
        return EXIT_ERROR if run is None else run(args, config)
    run = _entry("fleetview.ui.app", "run_gui", "the main window")
    if run is None:
        return EXIT_ERROR
    # Without scopes the window opens on its welcome page, which offers the demo.
    start_demo = _demo_starter() if not config.scopes else None
    return run(config, collect=not args.no_collect, start_demo=start_demo)


def _demo_starter() -> Callable[..., object] | None:
    """The demo's `start_demo`, or None where this installation cannot run the demo."""
    try:
        demo = importlib.import_module("fleetview.sim.demo")
    except ModuleNotFoundError:
        return None
    return demo.start_demo if demo.missing_module() is None else None


def _snapshot(config: Config, fmt: str) -> int:
    from fleetview.snapshot import render, take_snapshot

    if not config.scopes:
        raise ConfigError(config.source, "", "no scopes configured; " + no_scopes_hint())
    count = len(config.scopes)
    print(f"fleetview: polling {count} scope{'s' if count != 1 else ''} of {config.source}",
          file=sys.stderr)
    snapshot = take_snapshot(config)
    sys.stdout.write(render(snapshot, fmt))
    for error in snapshot["errors"]:
        region = f" {error['region']}" if error["region"] else ""
        print(f"fleetview: {error['scope']}{region}: {error['message']}", file=sys.stderr)
    return EXIT_PARTIAL if snapshot["errors"] else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
