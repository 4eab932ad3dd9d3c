"""`fleetview doctor`: per scope, do the credentials work and which needed permissions are missing."""

from __future__ import annotations

import sys
from typing import TextIO

from fleetview import providers
from fleetview.config import Config, ConfigError, no_scopes_hint
from fleetview.domain.errors import FleetViewError
from fleetview.providers.base import (  # noqa: F401 - the report types, re-exported
    Capability,
    Check,
    ScopeReport,
    Verdict,
    probe_name,
    verdicts,
)


def run(config: Config, out: TextIO | None = None) -> int:
    """Check every configured scope; exit 0 when every needed permission is present."""
    out = out or sys.stdout
    if not config.scopes:
        raise ConfigError(config.source, "",
                          "no scopes configured, nothing to check; " + no_scopes_hint())
    out.write(f"Config: {config.source}\n\n")
    reports = [check_scope(scope) for scope in config.scopes]
    for report in reports:
        out.write(render(report))
    bad = [r.scope for r in reports if not r.ok]
    if bad:
        out.write(f"\n{len(bad)} of {len(reports)} scopes need attention: {', '.join(bad)}. "
                  "Grant what is missing from the policies in packaging/permissions/ (see "
                  "README, 'Permissions'); `??` marks what could not be checked.\n")
        return 1
    out.write(f"\nAll {len(reports)} scopes have what FleetView needs.\n")
    return 0


def check_scope(scope) -> ScopeReport:
    capability: Capability = "operate" if scope.actions else "watch"
    report = ScopeReport(scope.name, scope.provider, capability)
    try:
        check = providers.load(scope.provider, "doctor")
    except FleetViewError as exc:
        report.error = str(exc)
        return report
    check(scope, report)
    return report


def render(report: ScopeReport) -> str:
    role = {"watch": "read-only watching", "operate": "watching and actions (actions = true)"}
    lines = [f"{report.scope} ({report.provider}, {role[report.capability]})"]
    if report.identity:
        lines.append(f"  identity: {report.identity}")
    if report.error:
        lines.append(f"  FAIL: {report.error}")
        return "\n".join(lines) + "\n"
    if report.method:
        lines.append(f"  checked with: {report.method}")
    for check in report.checks:
        mark = {"present": "ok  ", "missing": "MISSING", "unknown": "??  "}[check.verdict]
        detail = f" ({check.detail})" if check.detail and check.verdict != "present" else ""
        lines.append(f"  {mark} {check.need.permission}: {check.need.why}{detail}")
    for note in report.notes:
        lines.append(f"  note: {note}")
    missing, unknown = report.missing(), report.unknown()
    if missing:
        policy = policy_file(report)
        lines.append(f"  => {len(missing)} missing; grant {policy} "
                     f"(packaging/permissions/) to {report.identity or 'this identity'}")
    elif unknown:
        lines.append(f"  => {len(unknown)} could not be checked (reasons above)")
    else:
        lines.append("  => everything needed is present")
    return "\n".join(lines) + "\n"


def policy_file(report: ScopeReport) -> str:
    for name, (capability, _) in providers.cloud(report.provider).policy_files.items():
        if capability == report.capability:
            return name
    raise KeyError(report.provider)  # pragma: no cover
