"""The action journal: every action and step is written before it runs, updated as it ends."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from fleetview.actions.locks import OWNER, STALE_AFTER_S
from fleetview.actions.plans import plan_from_json, plan_to_json
from fleetview.domain.actions import ActionPlan
from fleetview.store.action_tables import action_steps, actions
from fleetview.store.times import from_us, now_us

# An action's life: running (steps) -> converging (steps done, the fleet not there yet) ->
# recovered; past its deadline it is not_converged and still tracked until it converges or is
# abandoned; or it ends failed, stopped or abandoned. "finished" is how databases from before
# convergence tracking ended an action.
FINAL = ("recovered", "failed", "stopped", "abandoned", "finished")
OPEN = ("running", "converging", "not_converged")


@dataclass(frozen=True)
class StepRecord:
    key: str
    seq: int
    description: str
    status: str
    message: str | None
    started_us: int | None
    finished_us: int | None


@dataclass(frozen=True)
class ActionRecord:
    action_id: str
    plan: ActionPlan
    reason: str
    actor: str
    owner: str
    status: str
    message: str | None
    created_us: int
    confirmed_us: int | None
    finished_us: int | None
    heartbeat_us: int | None
    recovered_us: int | None
    steps: tuple[StepRecord, ...] = field(default=())
    on_target: int | None = None
    needed: int | None = None
    stop_requested_us: int | None = None
    stop_reason: str | None = None
    stop_actor: str | None = None

    @property
    def open(self) -> bool:
        """Not ended: its steps run, or its group is still converging."""
        return self.status in OPEN

    @property
    def interrupted(self) -> bool:
        """Open by the journal, but its owner stopped beating (a crash or a restart)."""
        if self.status not in OPEN:
            return False
        if self.owner == OWNER:
            return False
        beat = next(t for t in (self.heartbeat_us, self.confirmed_us, self.created_us)
                    if t is not None)
        return (now_us() - beat) / 1e6 > STALE_AFTER_S or _same_host_dead(self.owner)

    @property
    def shown_status(self) -> str:
        return "interrupted" if self.interrupted else self.status

    @property
    def done_steps(self) -> frozenset[str]:
        return frozenset(s.key for s in self.steps if s.status == "done")

    @property
    def progress(self) -> tuple[int, int]:
        """Instances on the target of those the group needs, once convergence is measured;
        until then the steps done of all steps."""
        if self.needed:
            return min(self.on_target or 0, self.needed), self.needed
        return len(self.done_steps), len(self.steps)

    @property
    def step_progress(self) -> tuple[int, int]:
        return len(self.done_steps), len(self.steps)

    @property
    def elapsed_s(self) -> float:
        start = self.confirmed_us or self.created_us
        end = self.finished_us or now_us()
        return (end - start) / 1e6

    @property
    def time_to_recover_s(self) -> float | None:
        if self.recovered_us is None or self.confirmed_us is None:
            return None
        return (self.recovered_us - self.confirmed_us) / 1e6

    @property
    def created(self) -> datetime:
        return from_us(self.created_us)  # type: ignore[return-value]


def _same_host_dead(owner: str) -> bool:
    """An owner on this machine whose process is gone is interrupted without waiting."""
    import os
    import socket

    try:
        who_host, pid = owner.rsplit(":", 1)
        host = who_host.split("@", 1)[1]
        if host != socket.gethostname():
            return False
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (ValueError, IndexError, PermissionError, OSError):
        return False
    return False


class Journal:
    def __init__(self, store, owner: str = OWNER):
        self.store, self.owner = store, owner

    def create(self, plan: ActionPlan, reason: str, actor: str,
               action_id: str | None = None) -> str:
        """Journal a confirmed plan and its steps as pending; nothing has run yet."""
        action_id = action_id or str(uuid.uuid4())
        now = now_us()
        with self.store.writing("journal the action") as conn:
            conn.execute(sa.insert(actions), [dict(
                action_id=action_id, kind=plan.kind, provider=plan.provider, scope=plan.scope,
                region=plan.region, group_name=plan.group, to_version=plan.to_version,
                plan=plan_to_json(plan), reason=reason, actor=actor, owner=self.owner,
                status="running", created_us=now, confirmed_us=now, heartbeat_us=now)])
            if plan.steps:
                conn.execute(sa.insert(action_steps), [dict(
                    action_id=action_id, key=step.key, seq=n, description=step.description,
                    status="pending") for n, step in enumerate(plan.steps)])
        return action_id

    def step(self, action_id: str, key: str, status: str, message: str = "") -> None:
        now = now_us()
        values: dict = {"status": status, "message": message or None}
        if status == "running":
            values["started_us"] = now
        else:
            values["finished_us"] = now
        with self.store.writing("journal a step") as conn:
            updated = conn.execute(sa.update(action_steps).where(
                action_steps.c.action_id == action_id, action_steps.c.key == key,
                action_steps.c.status != "done").values(**values))
            if not updated.rowcount:
                # A step the provider handed back instead of the plan's own (AWS batches where
                # the endpoint has no instance refresh): journal it too, so a resume skips it.
                known = conn.execute(sa.select(sa.func.max(action_steps.c.seq), sa.func.count())
                                     .where(action_steps.c.action_id == action_id)).one()
                exists = conn.execute(sa.select(action_steps.c.key).where(
                    action_steps.c.action_id == action_id, action_steps.c.key == key)).first()
                if exists is None:
                    conn.execute(sa.insert(action_steps), [dict(
                        action_id=action_id, key=key, seq=(known[0] or 0) + 1,
                        description=message or key, **values)])
            conn.execute(sa.update(actions).where(actions.c.action_id == action_id)
                         .values(heartbeat_us=now))

    def heartbeat(self, action_id: str) -> None:
        with self.store.writing("journal a heartbeat") as conn:
            conn.execute(sa.update(actions).where(actions.c.action_id == action_id)
                         .values(heartbeat_us=now_us()))

    def adopt(self, action_id: str, status: str | None = None) -> None:
        """This process takes over an interrupted action (resume); `status` None keeps it."""
        values: dict = {"owner": self.owner, "heartbeat_us": now_us(), "finished_us": None}
        if status is not None:
            values["status"] = status
        with self.store.writing("resume the action") as conn:
            conn.execute(sa.update(actions).where(actions.c.action_id == action_id)
                         .values(**values))

    def converging(self, action_id: str, on_target: int, needed: int, message: str = "",
                   status: str = "converging") -> None:
        """The steps are done (or past the deadline: not_converged); where the group stands."""
        assert status in ("converging", "not_converged"), status
        with self.store.writing("journal convergence") as conn:
            conn.execute(sa.update(actions).where(actions.c.action_id == action_id).values(
                status=status, on_target=on_target, needed=needed, message=message or None,
                heartbeat_us=now_us()))

    def request_stop(self, action_id: str, actor: str, reason: str) -> None:
        """Ask the action to stop; its owner (any process) stops at its next check."""
        with self.store.writing("journal a stop request") as conn:
            conn.execute(sa.update(actions).where(
                actions.c.action_id == action_id, actions.c.stop_requested_us.is_(None))
                .values(stop_requested_us=now_us(), stop_reason=reason, stop_actor=actor))

    def stop_requested(self, action_id: str) -> str | None:
        """The reason of a stop asked for, or None."""
        with self.store.reading() as conn:
            row = conn.execute(sa.select(actions.c.stop_requested_us, actions.c.stop_reason,
                                         actions.c.stop_actor)
                               .where(actions.c.action_id == action_id)).first()
        if row is None or row[0] is None:
            return None
        return f"stopped by {row[2]}: {row[1]}"

    def finish(self, action_id: str, status: str, message: str = "",
               recovered_us: int | None = None, on_target: int | None = None,
               needed: int | None = None) -> None:
        assert status in FINAL, status
        now = now_us()
        values = dict(status=status, message=message or None, finished_us=now,
                      heartbeat_us=now, recovered_us=recovered_us)
        if needed is not None:
            values.update(on_target=on_target, needed=needed)
        elif status == "recovered":
            # Recovered means every member the group needs is on the target.
            values["on_target"] = actions.c.needed
        with self.store.writing("journal the end of the action") as conn:
            conn.execute(sa.update(actions).where(actions.c.action_id == action_id)
                         .values(**values))
            if status in ("abandoned", "stopped"):
                conn.execute(sa.update(action_steps).where(
                    action_steps.c.action_id == action_id,
                    action_steps.c.status.in_(("pending", "running"))).values(
                    status="skipped", finished_us=now))

    def get(self, action_id: str) -> ActionRecord:
        records = self._load(actions.c.action_id == action_id)
        if not records:
            raise KeyError(action_id)
        return records[0]

    def recent(self, limit: int = 50) -> list[ActionRecord]:
        return self._load(None, limit)

    def unfinished(self) -> list[ActionRecord]:
        return self._load(actions.c.status.in_(OPEN))

    def _load(self, where, limit: int | None = None) -> list[ActionRecord]:
        query = sa.select(actions).order_by(actions.c.created_us.desc())
        if where is not None:
            query = query.where(where)
        if limit:
            query = query.limit(limit)
        with self.store.reading() as conn:
            rows = conn.execute(query).mappings().all()
            ids = [r["action_id"] for r in rows]
            steps: dict[str, list[StepRecord]] = {i: [] for i in ids}
            if ids:
                for s in conn.execute(sa.select(action_steps).where(
                        action_steps.c.action_id.in_(ids)).order_by(action_steps.c.seq)
                        ).mappings():
                    steps[s["action_id"]].append(StepRecord(
                        s["key"], s["seq"], s["description"], s["status"], s["message"],
                        s["started_us"], s["finished_us"]))
        return [ActionRecord(
            action_id=r["action_id"], plan=plan_from_json(r["plan"]), reason=r["reason"],
            actor=r["actor"], owner=r["owner"], status=r["status"], message=r["message"],
            created_us=r["created_us"], confirmed_us=r["confirmed_us"],
            finished_us=r["finished_us"], heartbeat_us=r["heartbeat_us"],
            recovered_us=r["recovered_us"], steps=tuple(steps[r["action_id"]]),
            on_target=r["on_target"], needed=r["needed"],
            stop_requested_us=r["stop_requested_us"], stop_reason=r["stop_reason"],
            stop_actor=r["stop_actor"])
            for r in rows]
