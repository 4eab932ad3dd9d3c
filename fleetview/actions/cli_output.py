"""What the action commands print: plans, progress, actions and bad-version marks, as text for
a terminal or as JSON objects for a runbook."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from fleetview.actions.journal import ActionRecord
from fleetview.actions.plans import plan_to_json
from fleetview.actions.prepare import Prepared
from fleetview.actions.quarantine import BadMark
from fleetview.domain.actions import ActionRefused, ProgressEvent, kind_of
from fleetview.domain.durations import short_duration
from fleetview.domain.errors import ProviderError
from fleetview.providers import cloud
from fleetview.store.times import from_us


def iso(moment: datetime | int | None) -> str | None:
    if isinstance(moment, int):
        moment = from_us(moment)
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def duration(seconds: float | None) -> str:
    return short_duration(seconds, missing="-")


def describe(record: ActionRecord) -> str:
    """One line for an action, in its kind's words."""
    try:
        return kind_of(record.plan).describe(record.plan)
    except ActionRefused:  # journaled by a newer FleetView
        return f"{record.plan.kind} {record.plan.group or ''} (a kind this FleetView does not know)"


def _cloud_title(provider: str) -> str:
    try:
        return cloud(provider).title
    except ProviderError:
        return provider


# -- plans ------------------------------------------------------------------------------------

def plan_json(prepared: Prepared) -> dict:
    plan = prepared.plan
    return {
        "kind": prepared.kind, "scope": prepared.scope, "region": prepared.region,
        "group": prepared.group, "identity": prepared.identity or None,
        "current_version": prepared.current_version,
        "to_version": plan.to_version if plan else None,
        "protected": prepared.protected, "note": prepared.note or None,
        "bad": prepared.bad, "target_bad": prepared.target_bad or None,
        "versions": prepared.versions, "estimate_s": prepared.estimate_s,
        "refusal": prepared.refusal or None,
        "plan": json.loads(plan_to_json(plan)) if plan else None,
    }


def plan_text(prepared: Prepared, command: str = "") -> list[str]:
    """The plan as a terminal shows it; `command` is how to run it (for the confirm hints)."""
    plan = prepared.plan
    where = f"{prepared.scope} {prepared.region}".strip()
    if plan is None:
        title = kind_of(prepared.kind).title + (f" {prepared.group}" if prepared.group else "")
        return [f"{title} ({where}): no plan"]
    lines = [f"{kind_of(plan).describe(plan)} ({where})"]

    def row(label: str, value: object) -> None:
        lines.append(f"  {label + ':':<17}{value}")

    if prepared.current_version:
        row("runs now", prepared.current_version)
    row("target", f"{plan.to_version or '?'} ({plan.to_image_id or 'the group image'})")
    row("who acts", prepared.identity or "unknown")
    row("mechanism", f"{plan.mechanism} ({_cloud_title(plan.provider)})")
    if len(plan.instances) > 1:
        row("batches", f"{plan.batch_size} instance{'s' if plan.batch_size != 1 else ''} at a "
            f"time, at least {plan.min_healthy_percent}% healthy")
        row("estimate", duration(prepared.estimate_s) if prepared.estimate_s is not None
            else "unknown: no past rollout of this group to estimate from")
    if plan.capacity_kept:
        row("capacity", plan.capacity_kept)
    shown = ", ".join(plan.instances[:12])
    more = f" and {len(plan.instances) - 12} more" if len(plan.instances) > 12 else ""
    row("instances", f"{len(plan.instances)}: {shown}{more}" if plan.instances else "none")
    if plan.from_versions:
        row("moves away from", ", ".join(plan.from_versions))
    lines.append("  steps:")
    lines += [f"    {n}. {step.description}" for n, step in enumerate(plan.steps, 1)]
    lines.append("  cannot be undone:")
    cannot = list(plan.irreversible) or ["nothing beyond the replaced instances"]
    if len(cannot) > 6:
        cannot = cannot[:5] + [f"and {len(cannot) - 5} more like these"]
    lines += [f"    - {c}" for c in cannot]
    notes = ([prepared.note] if prepared.note else []) + list(plan.notes)
    if notes:
        lines.append("  notes:")
        lines += [f"    - {n}" for n in notes]
    if prepared.protected:
        row("protected", f"{prepared.group} ({prepared.protected}): confirm with "
            f"--confirm-name {prepared.group}")
    if prepared.target_bad:
        row("MARKED BAD", f"{prepared.target_bad}; going back to it needs --confirm-version "
            f"{plan.to_version}")
    others = [v for v in prepared.versions if v != plan.to_version]
    if others:
        flagged = [f"{v} (marked bad)" if v in prepared.bad else v for v in others]
        row("other versions", ", ".join(flagged) + (f" (choose with {command} --to VERSION)"
                                                     if command else ""))
    return lines


# -- progress and results ---------------------------------------------------------------------

def event_json(action_id: str, event: ProgressEvent) -> dict:
    return {"event": "progress", "action_id": action_id, "step": event.step,
            "status": event.status, "message": event.message, "done": event.done,
            "total": event.total, "at": iso(event.at or datetime.now(UTC))}


def event_text(event: ProgressEvent) -> str:
    at = (event.at or datetime.now(UTC)).astimezone(UTC).strftime("%H:%M:%S")
    what = event.step or ("tracking" if event.status == "progress" else "action")
    count = f" [{event.done}/{event.total}]" if event.total else ""
    status = "" if event.status == "progress" else f"{event.status}: "
    return f"{at} {what:<14} {status}{event.message}{count}"


def record_json(record: ActionRecord, full: bool = False) -> dict:
    plan = record.plan
    done, total = record.progress
    out = {
        "action_id": record.action_id, "kind": plan.kind, "describe": describe(record),
        "scope": plan.scope, "region": plan.region, "group": plan.group,
        "to_version": plan.to_version, "from_versions": list(plan.from_versions),
        "status": record.shown_status, "message": record.message, "reason": record.reason,
        "actor": record.actor, "owner": record.owner, "created": iso(record.created_us),
        "finished": iso(record.finished_us), "recovered": iso(record.recovered_us),
        "time_to_recover_s": record.time_to_recover_s, "elapsed_s": round(record.elapsed_s, 3),
        "on_target": done if record.needed else None, "needed": record.needed,
        "steps_done": len(record.done_steps), "steps_total": len(record.steps),
        "progress": [done, total],
        "stop": ({"actor": record.stop_actor, "reason": record.stop_reason,
                  "at": iso(record.stop_requested_us)} if record.stop_requested_us else None),
    }
    if full:
        out["steps"] = [{"key": s.key, "description": s.description, "status": s.status,
                         "message": s.message, "started": iso(s.started_us),
                         "finished": iso(s.finished_us)} for s in record.steps]
        out["plan"] = json.loads(plan_to_json(plan))
    return out


def result_text(record: ActionRecord) -> str:
    status = record.shown_status.replace("_", " ")
    text = record.message or describe(record)
    if not text.startswith(status):
        text = f"{status}: {text}"
    if record.time_to_recover_s is not None:
        text += f" (time to recover {duration(record.time_to_recover_s)})"
    return text


def record_text(record: ActionRecord) -> list[str]:
    """One action in full: what, where, who, why, its steps and where it stands."""
    plan = record.plan
    done, total = record.progress
    lines = [f"{describe(record)} ({plan.scope} {plan.region})",
             f"  {'action:':<17}{record.action_id}",
             f"  {'status:':<17}{record.shown_status}" + (
                 f" - {record.message}" if record.message else ""),
             f"  {'progress:':<17}{done} of {total} " + (
                 "instances on the target" if record.needed else "steps done"),
             f"  {'by:':<17}{record.actor} (run by {record.owner})",
             f"  {'reason:':<17}{record.reason}",
             f"  {'confirmed:':<17}{iso(record.confirmed_us or record.created_us)}"]
    if record.finished_us:
        lines.append(f"  {'ended:':<17}{iso(record.finished_us)}")
    if record.time_to_recover_s is not None:
        lines.append(f"  {'time to recover:':<17}{duration(record.time_to_recover_s)}")
    if record.stop_requested_us:
        lines.append(f"  {'stop asked:':<17}by {record.stop_actor} at "
                     f"{iso(record.stop_requested_us)}: {record.stop_reason}")
    lines.append(f"  {'mechanism:':<17}{plan.mechanism}; moves away from "
                 f"{', '.join(plan.from_versions) or '-'}")
    lines.append("  steps:")
    for n, step in enumerate(record.steps, 1):
        note = f" - {step.message}" if step.message and step.message != step.description else ""
        lines.append(f"    {n}. [{step.status}] {step.description}{note}")
    if record.interrupted:
        lines.append(f"  nobody runs it any more: `fleetview actions resume {record.action_id} "
                     "--mode track|next|abandon`")
    return lines


def records_text(records: list[ActionRecord]) -> list[str]:
    if not records:
        return ["no actions yet"]
    rows = [("ACTION", "STATUS", "PROGRESS", "WHAT", "WHERE", "CONFIRMED", "BY")]
    for r in records:
        done, total = r.progress
        rows.append((r.action_id, r.shown_status, f"{done}/{total}", describe(r),
                     f"{r.plan.scope} {r.plan.region}", iso(r.confirmed_us or r.created_us),
                     r.actor))
    widths = [max(len(str(row[n])) for row in rows) for n in range(len(rows[0]) - 1)]
    return ["  ".join(str(v).ljust(w) for v, w in zip(row[:-1], widths, strict=True))
            + "  " + str(row[-1]) for row in rows]


# -- bad versions -----------------------------------------------------------------------------

def mark_json(mark: BadMark) -> dict:
    return {"id": mark.id, "version": mark.version, "scope": mark.scope, "region": mark.region,
            "group": mark.group, "reason": mark.reason, "actor": mark.actor,
            "source": mark.source, "action_id": mark.action_id, "at": iso(mark.created_us),
            "describe": mark.describe()}


def marks_text(marks: list[BadMark]) -> list[str]:
    if not marks:
        return ["no version is marked bad"]
    return [mark.describe() for mark in marks]
