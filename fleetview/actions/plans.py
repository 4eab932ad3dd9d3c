"""ActionPlan to JSON and back, so the journal holds exactly the plan that was confirmed."""

from __future__ import annotations

import dataclasses
import json

from fleetview.domain.actions import ActionPlan, PlanStep


def plan_to_json(plan: ActionPlan) -> str:
    return json.dumps(dataclasses.asdict(plan), sort_keys=True, default=str)


def plan_from_json(text: str) -> ActionPlan:
    data = json.loads(text)
    data["steps"] = tuple(PlanStep(s["key"], s["description"], tuple(s.get("instances", ())))
                          for s in data["steps"])
    for key in ("instances", "from_versions", "irreversible", "notes"):
        data[key] = tuple(data.get(key, ()))
    return ActionPlan(**data)
