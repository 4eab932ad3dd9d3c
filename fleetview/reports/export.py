"""A report as rows (one set for CSV, JSON and HTML), and as CSV, JSON or one HTML file."""

from __future__ import annotations

import csv
import io
import json
from html import escape

from fleetview import __version__
from fleetview.domain.csv_cells import safe_cell
from fleetview.domain.durations import short_duration
from fleetview.reports import colors as palette
from fleetview.reports import svg
from fleetview.reports.cli_args import FORMATS
from fleetview.reports.report import Report
from fleetview.store.times import from_us

SECTIONS = ("report", "metrics", "rollouts", "actions", "versions", "weeks")


def iso(at: int | None) -> str | None:
    return None if at is None else from_us(at).strftime("%Y-%m-%dT%H:%M:%SZ")


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def rows(report: Report) -> dict[str, list[dict]]:
    """Every section's rows as plain values (text, numbers, booleans, None): what the CSV,
    the JSON and the HTML tables all show."""
    p, m = report.params, report.metrics
    info = [{
        "from": iso(report.t0), "to": iso(report.t1),
        "scopes": ",".join(p.scopes) or "all", "groups": ",".join(p.groups) or "all",
        "stall_after_s": p.stall_after.total_seconds(),
        "failure_window_s": p.failure_window.total_seconds(),
        "generated": iso(report.generated), "fleetview": __version__,
        "notes": " ".join(report.notes()) or None,
    }]
    metrics = [
        {"metric": "deployment_frequency", "value": round(m.deployments_per_week, 3),
         "unit": "per week", "measured_from": m.deployments,
         "definition": "rollouts (not rollbacks) started in the range that completed, per "
                       "week of the range"},
        {"metric": "lead_time_median", "value": _seconds(m.lead_time_median_s),
         "unit": "s", "measured_from": m.lead_time_measured,
         "definition": "median of image creation to the group running it in full, over "
                       "completed rollouts whose image creation time is known"},
        {"metric": "change_failure_rate",
         "value": None if m.change_failure_rate is None else round(m.change_failure_rate, 4),
         "unit": "share", "measured_from": m.changes,
         "definition": "rollouts rolled back within the failure window, of the rollouts "
                       "started in the range that completed or were rolled back"},
        {"metric": "time_to_restore_median", "value": _seconds(m.time_to_restore_median_s),
         "unit": "s", "measured_from": m.restores_measured,
         "definition": "median of a failed rollout's start to the group running another "
                       "version in full again"},
        {"metric": "rollback_recovery_median",
         "value": _seconds(m.rollback_recovery_median_s), "unit": "s",
         "measured_from": m.rollbacks_measured,
         "definition": "median of a rollback's confirmation to its group converged, as the "
                       "journal measured it"},
        {"metric": "rollouts", "value": m.rollouts, "unit": "count",
         "measured_from": m.rollouts, "definition": "rollouts (not rollbacks) started in "
                                                    "the range"},
        {"metric": "stalled", "value": m.stalled, "unit": "count", "measured_from": m.rollouts,
         "definition": "rollouts with no new instance on their target for the stall time"},
        {"metric": "paused", "value": m.paused, "unit": "count", "measured_from": m.rollouts,
         "definition": "rollouts whose cloud stopped reporting the update before it was "
                       "complete"},
    ]
    rollouts = [{
        "scope": r.scope, "region": r.region, "group": r.group,
        "from_version": r.from_version, "to_version": r.to_version, "kind": r.kind,
        "status": r.status, "start": iso(r.start), "end": iso(r.end),
        "duration_s": _seconds(r.duration_s), "instances": r.instances,
        "group_size": r.group_size, "longest_wait_s": _seconds(r.longest_wait_s),
        "stalled": r.stalled, "paused": r.paused, "rolled_back": r.rolled_back,
        "rollback_by": r.rollback_by, "restored": iso(r.restored),
        "time_to_restore_s": _seconds(r.time_to_restore_s), "image_id": r.image_id,
        "image_created": iso(r.image_created), "lead_time_s": _seconds(r.lead_time_s),
    } for r in report.rollouts]
    actions = [{
        "action_id": a.action_id, "kind": a.kind, "scope": a.scope, "region": a.region,
        "group": a.group, "from_versions": ",".join(a.from_versions) or None,
        "to_version": a.to_version, "instances": a.instances, "reason": a.reason,
        "actor": a.actor, "status": a.status, "confirmed": iso(a.confirmed),
        "finished": iso(a.finished), "recovered": iso(a.recovered),
        "time_to_recover_s": _seconds(a.time_to_recover_s), "stopped_by": a.stopped_by,
        "audit_seq": a.audit_seq,
    } for a in report.actions]
    versions = [{
        "version": v.version, "first_seen": iso(v.first_seen), "last_seen": iso(v.last_seen),
        "hours_seen": round(((v.last_seen or report.t1) - v.first_seen) / 3.6e9, 3),
        "instance_hours": round(v.instance_hours, 3), "instances": v.instances,
        "instances_now": v.instances_now, "groups": ",".join(v.groups),
        "running_in": ",".join(f"{place} ({n})" for place, n in v.running_in) or None,
    } for v in report.versions]
    weeks = [{"week": iso(w.start), "rollouts": w.rollouts, "rolled_back": w.rolled_back,
              "rollbacks": w.rollbacks} for w in report.weeks]
    return {"report": info, "metrics": metrics, "rollouts": rollouts, "actions": actions,
            "versions": versions, "weeks": weeks}


def to_json(report: Report) -> str:
    return json.dumps(rows(report), indent=1, ensure_ascii=False) + "\n"


def csv_cell(value) -> str:
    """How a row value is written to CSV: empty for None, true/false, numbers as Python
    prints them, text made safe for spreadsheets."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(safe_cell(value)) if isinstance(value, str) else str(value)


def to_csv(report: Report) -> str:
    """Each section under its own header, its name in the first column of every line, a
    blank line between sections: one file a spreadsheet opens, and a reader can split by
    the first column."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    sections = rows(report)
    for n, name in enumerate(SECTIONS):
        if n:
            writer.writerow([])
        records = sections[name]
        columns = list(records[0]) if records else _empty_columns(name)
        writer.writerow(["section", *columns])
        for record in records:
            writer.writerow([name, *(csv_cell(record[c]) for c in columns)])
    return out.getvalue()


def _empty_columns(name: str) -> list[str]:
    """A section's columns when it has no row (its header still says what it would hold)."""
    return {
        "rollouts": ["scope", "region", "group", "from_version", "to_version", "kind", "status",
                     "start", "end", "duration_s", "instances", "group_size", "longest_wait_s",
                     "stalled", "paused", "rolled_back", "rollback_by", "restored",
                     "time_to_restore_s", "image_id", "image_created", "lead_time_s"],
        "actions": ["action_id", "kind", "scope", "region", "group", "from_versions",
                    "to_version", "instances", "reason", "actor", "status", "confirmed",
                    "finished", "recovered", "time_to_recover_s", "stopped_by", "audit_seq"],
        "versions": ["version", "first_seen", "last_seen", "hours_seen", "instance_hours",
                     "instances", "instances_now", "groups", "running_in"],
        "weeks": ["week", "rollouts", "rolled_back", "rollbacks"],
    }.get(name, [])


# -- HTML ---------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;color:#222;margin:24px auto;
max-width:1100px;padding:0 16px;font-size:14px;line-height:1.4}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid
#ddd;padding-bottom:4px}.sub{color:#666;margin:0 0 12px}
.cards{display:grid;grid-template-columns:repeat(4,1fr);gap:10px;margin:14px 0}
.card{border:1px solid #ddd;border-radius:6px;padding:10px 12px;background:#fafafa}
.card .label{color:#555;font-size:12px}.card .value{font-size:22px;font-weight:600;margin:2px 0}
.card .from{color:#777;font-size:11px}
.charts{display:grid;grid-template-columns:1fr 1fr;gap:14px}
table{border-collapse:collapse;width:100%;font-size:12px;margin:6px 0 10px}
th,td{border-bottom:1px solid #e6e6e6;padding:4px 6px;text-align:left;vertical-align:top;
white-space:nowrap}td.wrap{white-space:normal}
th{background:#f3f3f3;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
.tag{display:inline-block;border-radius:3px;padding:0 5px;font-size:11px;margin-right:3px}
.bad{background:#fde2e1;color:#8a1c17}.warn{background:#fdf0d5;color:#7a4b00}
.ok{background:#e3f1df;color:#2d5a27}.note{background:#fff8e1;border:1px solid #f0d98c;
padding:8px 10px;border-radius:4px;margin:8px 0}dt{font-weight:600;margin-top:6px}
dd{margin:2px 0 0 14px;color:#444}.empty{color:#777;font-style:italic}
@media print{.charts{grid-template-columns:1fr}}
"""


def _when(at: int | None, missing: str = "—") -> str:
    return missing if at is None else from_us(at).strftime("%Y-%m-%d %H:%M")


def _dur(seconds: float | None, missing: str = "—") -> str:
    if seconds is None:
        return missing
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.1f} d"
    return short_duration(seconds)


def _table(headers: list[str], body: list[list[str]], numeric: set[int],
           wrap: frozenset[int] = frozenset()) -> str:
    if not body:
        return '<p class="empty">None in this range.</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    lines = []
    for cells in body:
        lines.append("<tr>" + "".join(
            f'<td class="num">{c}</td>' if i in numeric else
            f'<td class="wrap">{c}</td>' if i in wrap else f"<td>{c}</td>"
            for i, c in enumerate(cells)) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(lines)}</tbody></table>"


def _badge(version: str, colour: str) -> str:
    r, g, b = (int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
    ink = "#111" if 0.299 * r + 0.587 * g + 0.114 * b > 0.55 else "#fff"
    return (f'<span class="tag" style="background:{colour};color:{ink}">'
            f"{escape(version)}</span>")


def _flags(r) -> str:
    tags = []
    if r.rolled_back:
        by = "observed" if r.rollback_by in (None, "observed") else f"by {r.rollback_by}"
        tags.append(f'<span class="tag bad">rolled back ({escape(by)})</span>')
    if r.stalled:
        tags.append(f'<span class="tag warn">stalled {escape(_dur(r.longest_wait_s))}</span>')
    if r.paused:
        tags.append('<span class="tag warn">paused</span>')
    if r.kind == "rollback":
        by = "observed" if r.rollback_by in (None, "observed") else f"by {r.rollback_by}"
        tags.append(f'<span class="tag warn">a rollback ({escape(by)})</span>')
    return "".join(tags)


def to_html(report: Report) -> str:
    """One self-contained page: styles and charts inline, no script, nothing fetched (its
    content security policy forbids it), so it can be mailed and opened anywhere."""
    p, m = report.params, report.metrics
    selection = ", ".join([*(f"scope {s}" for s in p.scopes), *(f"group {g}" for g in p.groups)]
                          ) or "all scopes and groups"
    title = f"FleetView report {from_us(report.t0):%Y-%m-%d} to {from_us(report.t1):%Y-%m-%d}"
    cards = [
        ("Deployment frequency", f"{m.deployments_per_week:.1f} / week",
         f"{m.deployments} completed rollouts in {m.days:.1f} days"),
        ("Lead time (median)", _dur(m.lead_time_median_s),
         f"image created → group on it in full; {m.lead_time_measured} rollouts"),
        ("Change failure rate", "—" if m.change_failure_rate is None
         else f"{m.change_failure_rate:.0%}", f"{m.failed} of {m.changes} rollouts rolled back"),
        ("Time to restore (median)", _dur(m.time_to_restore_median_s),
         f"failing rollout's start → converged back; {m.restores_measured} measured; "
         f"rollback confirmation → converged {_dur(m.rollback_recovery_median_s)}"),
    ]
    card_html = "".join(
        f'<div class="card"><div class="label">{escape(label)}</div>'
        f'<div class="value">{escape(value)}</div><div class="from">{escape(sub)}</div></div>'
        for label, value, sub in cards)
    notes = "".join(f'<p class="note">{escape(n)}</p>' for n in report.notes())
    colours = palette.version_colors(
        [r.to_version for r in report.rollouts] + [r.from_version for r in report.rollouts]
        + [v.version for v in report.versions])
    lead = [(r.end, r.lead_time_s) for r in report.rollouts
            if r.lead_time_s is not None and r.end is not None]
    restore = [(r.restored, r.time_to_restore_s) for r in report.rollouts
               if r.time_to_restore_s is not None and r.restored is not None]
    charts = (
        f'<div class="charts"><div><h3>Rollouts per week</h3>{svg.weekly_bars(report.weeks)}'
        f'</div><div><h3>Lead time and time to restore</h3>'
        + svg.durations_over_time([("lead time", palette.BLUE, lead),
                                   ("time to restore", palette.ERROR, restore)],
                                  report.t0, report.t1)
        + "</div></div><h3>Versions over time, a lane per group</h3>"
        + (svg.version_lanes(report.lanes, report.t0, report.t1, colours) if report.lanes
           else '<p class="empty">No group ran in this range.</p>'))
    rollout_rows = [[
        escape(f"{r.scope}/{r.region}/{r.group}"),
        escape(r.from_version) + " → " + escape(r.to_version), escape(r.status),
        _when(r.start), _when(r.end), _dur(r.duration_s),
        f"{r.instances} of {r.group_size}", _dur(r.lead_time_s), _dur(r.time_to_restore_s),
        _flags(r)] for r in report.rollouts]
    action_rows = [[
        escape(a.kind), escape(f"{a.scope}/{a.region}/{a.group or '—'}"),
        escape(",".join(a.from_versions) or "—") + " → " + escape(a.to_version or "—"),
        _when(a.confirmed), escape(a.actor), escape(a.reason), escape(a.status),
        _dur(a.time_to_recover_s), "" if a.audit_seq is None else str(a.audit_seq)]
        for a in report.actions]
    version_rows = [[
        _badge(v.version, colours.get(v.version, palette.unknown())), _when(v.first_seen),
        _when(v.last_seen, "still running"), f"{v.instance_hours:,.1f}", str(v.instances),
        escape(", ".join(f"{place} ({n})" for place, n in v.running_in) or "—"),
        escape(", ".join(v.groups))] for v in report.versions]
    definitions = "".join(f"<dt>{escape(r['metric'].replace('_', ' '))}</dt>"
                          f"<dd>{escape(r['definition'])}</dd>" for r in rows(report)["metrics"])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title><style>{_CSS}</style></head><body>
<h1>{escape(title)}</h1>
<p class="sub">{escape(_when(report.t0))} to {escape(_when(report.t1))} UTC · {escape(selection)}
 · stalled after {escape(_dur(p.stall_after.total_seconds()))} without progress · failure
 window {escape(_dur(p.failure_window.total_seconds()))} · generated {escape(_when(report.generated))}
 UTC by FleetView {escape(__version__)}</p>
{notes}<div class="cards">{card_html}</div>
{charts}
<h2>Rollouts ({len(report.rollouts)})</h2>
{_table(["Group", "Versions", "Status", "Start (UTC)", "End (UTC)", "Duration", "Instances",
         "Lead time", "Time to restore", ""], rollout_rows, {5, 6, 7, 8}, frozenset({9}))}
<h2>Rollbacks and replaces ({len(report.actions)})</h2>
{_table(["Kind", "Group", "Versions", "Confirmed (UTC)", "Who", "Reason", "Status",
         "Time to recover", "Audit entry"], action_rows, {7, 8}, frozenset({5}))}
<h2>Versions ({len(report.versions)})</h2>
{_table(["Version", "First seen (UTC)", "Last seen (UTC)", "Instance-hours", "Instances",
         "Still running in", "Ran in"], version_rows, {3, 4}, frozenset({5, 6}))}
<h2>How these figures are measured</h2><dl>{definitions}</dl>
<p class="sub">From what FleetView observed: rollouts done while it was not watching are not
here unless their history was backfilled. See FleetView's README, "Reports".</p>
</body></html>
"""


def render(report: Report, fmt: str) -> str:
    if fmt == "html":
        return to_html(report)
    if fmt == "csv":
        return to_csv(report)
    if fmt == "json":
        return to_json(report)
    raise ValueError(f"unknown report format {fmt!r}; use one of {', '.join(FORMATS)}")
