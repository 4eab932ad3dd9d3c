"""One action per group, also across GUIs: the second is refused with who holds the group."""

import pytest
import sqlalchemy as sa

from fleetview.actions import locks
from fleetview.domain.actions import ActionRefused
from fleetview.store.action_tables import group_locks


def test_second_action_on_a_group_is_refused(store):
    locks.acquire(store, "prod", "us-east-1", "web", "a1", owner="ana@ws1:100")
    with pytest.raises(ActionRefused, match="already running on web.*ana@ws1:100"):
        locks.acquire(store, "prod", "us-east-1", "web", "a2", owner="bo@ws2:200")
    locks.acquire(store, "prod", "us-east-1", "api", "a3", owner="bo@ws2:200")
    locks.release(store, "prod", "us-east-1", "web", "a1")
    locks.acquire(store, "prod", "us-east-1", "web", "a2", owner="bo@ws2:200")


def test_stale_lock_is_shown_not_taken(store):
    locks.acquire(store, "prod", "us-east-1", "web", "a1", owner="ana@ws1:100")
    with store.writing("age the lock") as conn:
        conn.execute(sa.update(group_locks).values(heartbeat_us=group_locks.c.heartbeat_us
                                                   - 600 * 1_000_000))
    lock = locks.current(store, "prod", "us-east-1", "web")
    assert lock.stale
    with pytest.raises(ActionRefused, match="stale.*not taken over automatically"):
        locks.acquire(store, "prod", "us-east-1", "web", "a2", owner="bo@ws2:200")
    assert locks.current(store, "prod", "us-east-1", "web").action_id == "a1"


def test_release_only_frees_its_own_action(store):
    locks.acquire(store, "prod", "us-east-1", "web", "a1")
    locks.release(store, "prod", "us-east-1", "web", "other")
    assert locks.current(store, "prod", "us-east-1", "web") is not None
