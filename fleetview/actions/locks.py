"""One action per group at a time, also across GUIs sharing a store: a lock row per group."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import sqlalchemy as sa

from fleetview.domain.actions import ActionRefused
from fleetview.store.action_tables import group_locks
from fleetview.store.times import from_us, now_us

# A lock whose owner has not beaten for this long is shown as stale, never taken silently.
STALE_AFTER_S = 120
OWNER = f"{os.environ.get('USER', 'user')}@{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Lock:
    scope: str
    region: str
    group: str
    action_id: str
    owner: str
    acquired_us: int
    heartbeat_us: int

    def age_s(self, now: int | None = None) -> float:
        return ((now or now_us()) - self.acquired_us) / 1e6

    def silent_s(self, now: int | None = None) -> float:
        return ((now or now_us()) - self.heartbeat_us) / 1e6

    @property
    def stale(self) -> bool:
        return self.silent_s() > STALE_AFTER_S

    @property
    def owner_gone(self) -> bool:
        """Whether the owner was a process on this machine that no longer runs (only a
        process here can be looked at; elsewhere only silence tells)."""
        host, pid = owner_process(self.owner)
        return host == socket.gethostname() and pid is not None and not _running(pid)

    def describe(self) -> str:
        text = (f"an action is already running on {self.group} ({self.scope} {self.region}): "
                f"held by {self.owner} for {_duration(self.age_s())}")
        if self.owner_gone:
            last = from_us(self.heartbeat_us).strftime("%Y-%m-%d %H:%M:%S UTC")  # type: ignore[union-attr]
            _, pid = owner_process(self.owner)
            text += (f"; owner gone since {last} (its last heartbeat, "
                     f"{_duration(self.silent_s())} ago): process {pid} no longer runs on "
                     "this machine. It is not taken over automatically: resume or abandon the "
                     "action from the Actions panel")
        elif self.stale:
            text += (f"; its owner has been silent for {_duration(self.silent_s())} (stale). "
                     "It is not taken over automatically: make sure that owner has stopped, "
                     "then resume or abandon the action from the Actions panel")
        return text


def owner_process(owner: str) -> tuple[str, int | None]:
    """(host, pid) of an owner written as user@host:pid; pid None when it is not one."""
    rest, _, pid = owner.rpartition(":")
    host = rest.rpartition("@")[2]
    return host, int(pid) if pid.isdigit() and int(pid) > 0 else None


def _running(pid: int) -> bool:
    if os.name == "nt":  # os.kill there terminates the process: no way to ask
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process (EPERM), or no way to tell: not gone
        return True
    return True


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 5400:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def current(store, scope: str, region: str, group: str) -> Lock | None:
    with store.reading() as conn:
        row = conn.execute(sa.select(group_locks).where(
            group_locks.c.scope == scope, group_locks.c.region == region,
            group_locks.c.group_name == group)).mappings().first()
    return _lock(row) if row else None


def held(store) -> list[Lock]:
    with store.reading() as conn:
        rows = conn.execute(sa.select(group_locks)).mappings().all()
    return [_lock(r) for r in rows]


def _lock(row) -> Lock:
    return Lock(row["scope"], row["region"], row["group_name"], row["action_id"], row["owner"],
                row["acquired_us"], row["heartbeat_us"])


def acquire(store, scope: str, region: str, group: str, action_id: str,
            owner: str = OWNER) -> None:
    """Take the group's lock or refuse with who holds it; the primary key decides races."""
    now = now_us()
    try:
        with store.writing("lock the group") as conn:
            conn.execute(sa.insert(group_locks), [dict(
                scope=scope, region=region, group_name=group, action_id=action_id,
                owner=owner, acquired_us=now, heartbeat_us=now)])
    except sa.exc.IntegrityError:
        lock = current(store, scope, region, group)
        if lock is None:  # released in between: try once more
            return acquire(store, scope, region, group, action_id, owner)
        raise ActionRefused(lock.describe()) from None


def take_over(store, scope: str, region: str, group: str, action_id: str,
              owner: str = OWNER) -> None:
    """Move a lock to a new owner for the same action (resume after a restart)."""
    now = now_us()
    with store.writing("take over the group lock") as conn:
        updated = conn.execute(sa.update(group_locks).where(
            group_locks.c.scope == scope, group_locks.c.region == region,
            group_locks.c.group_name == group, group_locks.c.action_id == action_id,
        ).values(owner=owner, heartbeat_us=now)).rowcount
    if not updated:
        acquire(store, scope, region, group, action_id, owner)


def heartbeat(store, scope: str, region: str, group: str, action_id: str) -> None:
    with store.writing("refresh the group lock") as conn:
        conn.execute(sa.update(group_locks).where(
            group_locks.c.scope == scope, group_locks.c.region == region,
            group_locks.c.group_name == group, group_locks.c.action_id == action_id,
        ).values(heartbeat_us=now_us()))


def release(store, scope: str, region: str, group: str, action_id: str) -> None:
    with store.writing("release the group lock") as conn:
        conn.execute(sa.delete(group_locks).where(
            group_locks.c.scope == scope, group_locks.c.region == region,
            group_locks.c.group_name == group, group_locks.c.action_id == action_id))
