"""The arguments of the action commands (plan, rollback, replace, stop, actions, quarantine);
argparse only, so that building the parser loads no store and no cloud SDK."""

from __future__ import annotations

import argparse
import textwrap

COMMANDS = ("plan", "rollback", "replace", "stop", "actions", "quarantine")

# 0-3 as every fleetview command (fleetview/cli.py); 4 and 5 are the action commands' own.
EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_UNPOLLED, EXIT_NOT_CONVERGED, EXIT_REFUSED = range(6)

EXIT_CODES = """\
exit status:
  0  recovered (or, for the other commands, done)
  1  failed, or stopped before it recovered
  2  config error (a bad config file, an unknown --scope)
  3  some scope or region could not be polled, so GROUP may be there too
  4  the steps are done but the group has not converged within --wait-s; the action stays
     open: `fleetview actions resume ID --mode track` watches it on
  5  refused: nothing was changed; why is on stderr"""

FINDING = ("GROUP (or INSTANCE) is found in a poll of the configured scopes made now (only "
           "--scope's when given; --region narrows to one region or zone), not in the store's "
           "last poll: a name found in more than one scope or region is refused with the "
           "list, never guessed. The rollback target is, by default, the last version the "
           "group ran in full, read from the store's history (what `fleetview collect` "
           "writes), skipping versions marked bad; --to chooses another.")

_FORMATTER = argparse.RawDescriptionHelpFormatter


def _text(*paragraphs: str) -> str:
    """Paragraphs wrapped for --help (the raw formatter keeps the exit codes' layout)."""
    return "\n\n".join(textwrap.fill(p, 78) for p in paragraphs)


def _command(sub, name: str, parents: list, help: str, *paragraphs: str):  # noqa: A002
    return sub.add_parser(name, parents=parents, help=help,
                          description=_text(*paragraphs) if paragraphs else None,
                          epilog=EXIT_CODES, formatter_class=_FORMATTER)


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    """Add the action commands to the `fleetview` subparsers `sub`."""
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument("--scope", metavar="S", help="the scope (as named in the config)")
    where.add_argument("--region", metavar="R",
                       help="the region (or zone) of the group, where the name is in several")
    fmt = argparse.ArgumentParser(add_help=False)
    fmt.add_argument("--format", choices=("text", "json"), default="text",
                     help="text, or JSON (one object a line for progress)")
    target = argparse.ArgumentParser(add_help=False)
    target.add_argument("--to", metavar="VERSION",
                        help="the version to roll back to (default: from history)")
    run = argparse.ArgumentParser(add_help=False)
    run.add_argument("--reason", required=True, metavar="TEXT",
                     help="why: written to the audit log with the action (required)")
    run.add_argument("--yes", action="store_true",
                     help="run without asking (without it, the plan is shown and a terminal "
                          "is asked; with no terminal the action is refused)")
    run.add_argument("--wait-s", type=float, default=900.0, metavar="N",
                     help="seconds to wait, once the steps are done, for the group to "
                          "converge (default 900); exit 4 if it has not")
    run.add_argument("--confirm-name", metavar="GROUP", default="",
                     help="a protected group's name, typed to confirm acting on it")

    plan = _command(sub, "plan", [common], "show what an action would do",
                    "Show the plan of an action without running it: who acts, the "
                    "mechanism, the batches, the capacity kept, what cannot be undone.")
    plan_sub = plan.add_subparsers(dest="plan_kind", metavar="KIND", required=True)
    plan_rollback = _command(plan_sub, "rollback", [common, where, target, fmt],
                             "plan the rollback of a group", FINDING)
    plan_rollback.add_argument("group", metavar="GROUP")
    plan_replace = _command(plan_sub, "replace", [common, where, fmt],
                            "plan the replacement of an instance", FINDING)
    plan_replace.add_argument("instance", metavar="INSTANCE",
                              help="the instance's id (or its name)")

    rollback = _command(
        sub, "rollback", [common, where, target, run, fmt],
        "roll a group back to an earlier version, then track it until it converges",
        "Roll a group back through the same runner, journal, lock and audit log as the "
        "window, acting as the scope's own credentials. Without --yes the plan is shown and "
        "confirmed on the terminal; a protected group needs its name typed (--confirm-name), "
        "a version marked bad needs the version typed (--confirm-version).", FINDING)
    rollback.add_argument("group", metavar="GROUP")
    rollback.add_argument("--confirm-version", metavar="VERSION", default="",
                          help="the target version, typed to confirm going back to a version "
                               "marked bad")

    replace = _command(sub, "replace", [common, where, run, fmt],
                       "replace one instance from its group's image",
                       "Replace one instance: its group launches a new one from the image it "
                       "launches now, and the action is tracked until the group converges.",
                       FINDING)
    replace.add_argument("instance", metavar="INSTANCE", help="the instance's id (or its name)")

    stop = _command(sub, "stop", [common, fmt],
                    "stop a running action (by its id, or its group's name)",
                    "Stop a running action. A process still running it (a window, another "
                    "`fleetview rollback`) stops it at its next check; one nobody runs any "
                    "more is stopped here. What the cloud does for it (an instance refresh, a "
                    "MIG update) is stopped too, and the stop is journaled and audited.")
    stop.add_argument("target", metavar="GROUP|ACTION_ID")
    stop.add_argument("--reason", required=True, metavar="TEXT",
                      help="why: written to the audit log (required)")
    stop.add_argument("--scope", metavar="S", help="with a group name: its scope")
    stop.add_argument("--region", metavar="R", help="with a group name: its region")
    stop.add_argument("--wait-s", type=float, default=60.0, metavar="N",
                      help="seconds to wait for the process running it to stop it (default "
                           "60); exit 4 if it has not yet")

    actions = _command(sub, "actions", [common], "the journal of actions: list, show, resume")
    actions_sub = actions.add_subparsers(dest="actions_command", metavar="ACTION",
                                         required=True)
    listing = actions_sub.add_parser("list", parents=[common, fmt],
                                     help="recent actions, newest first")
    listing.add_argument("--limit", type=int, default=50, metavar="N")
    show = actions_sub.add_parser("show", parents=[common, fmt],
                                  help="one action: its plan, steps and state")
    show.add_argument("action_id", metavar="ID", help="the action's id (or a unique start)")
    resume = _command(actions_sub, "resume", [common, fmt],
                      "pick up an action nobody runs any more (interrupted, or not converged)")
    resume.add_argument("action_id", metavar="ID", help="the action's id (or a unique start)")
    resume.add_argument("--mode", choices=("next", "track", "abandon"), required=True,
                        help="next: run the steps not done, then track; track: only watch "
                             "until the group converges; abandon: close it and free the group")
    resume.add_argument("--wait-s", type=float, default=900.0, metavar="N",
                        help="seconds to wait for the group to converge (default 900)")

    quarantine = _command(
        sub, "quarantine", [common, fmt],
        "mark a version bad (never again a default rollback target), lift or list marks",
        "Mark VERSION bad: it is never the default rollback target again, and going back to "
        "it needs --confirm-version. Without --scope and --group the mark holds for every "
        "group. Marking and lifting are audited, as the scope's identity with --scope, else "
        "as the local user.")
    quarantine.add_argument("version", metavar="VERSION", nargs="?")
    quarantine.add_argument("--lift", metavar="VERSION", help="lift the mark on VERSION that "
                            "matches --scope and --group exactly")
    quarantine.add_argument("--list", action="store_true", help="list the marks in force")
    quarantine.add_argument("--scope", metavar="S", help="only for the groups of this scope")
    quarantine.add_argument("--group", metavar="G", help="only for groups of this name")
    quarantine.add_argument("--reason", metavar="TEXT", default=None,
                            help="why (required to mark or lift): shown wherever the version "
                                 "is offered again")
