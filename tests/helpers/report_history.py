"""A store with a known history of rollouts, a stall, a pause, rollbacks and a replace, for
the report tests; every figure of its report is worked out by hand in KNOWN below.

Hours from T0 (2026-01-01 00:00 UTC, a Thursday), scope prod, region us-east-1:

- web (3 instances) on 1.0 from h0.
  R1 h10 desired 1.1; w1->w4 h11, w2->w5 h12, w3->w6 h13 (1.1): completed, 3 h.
  R3 h30 desired 1.2, w4->w7 (1.2); h31 alice confirms a rollback ("1.2 returns 500s");
     h31.5 desired 1.1; h32 w7->w8 (1.1): rolled back, restored h32; the action recovered h32.
  h35 bob confirms a replace of w6 ("disk errors"); h35.5 w6->w10 (1.1), recovered h35.5.
  R6 h50 desired 1.3, w5->w9 (1.3): in progress at the range's end (h60).
- api (2 instances) on 2.0 from h0.
  R2 h20 desired 2.1 (updating), a1->a3 (2.1); h22 updating off (paused), h24 on again;
     h26 a2->a4 (2.1), updating off: completed after a 6 h wait (stalled).
  R4 h40 desired 2.2, a3->a5; h41 a4->a6 (2.2): completed.
  R5 h45 desired 2.1, a5->a7; h46 a6->a8 (2.1): a rollback nobody journaled (observed);
     R4 counts as rolled back, restored h46.

Images are created: 1.0 and 2.0 at h-100, 1.1 h8, 2.1 h18, 1.2 h29, 2.2 h39, 1.3 h49.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fleetview.domain.actions import ActionPlan
from fleetview.domain.model import Group, Image, Instance, Inventory, Scope, State

T0 = datetime(2026, 1, 1, tzinfo=UTC)
END_H = 60
SCOPE = Scope("aws", "prod", "123456789012", ("us-east-1",))
REGION = "us-east-1"
CREATED_H = {"1.0": -100, "2.0": -100, "1.1": 8, "2.1": 18, "1.2": 29, "2.2": 39, "1.3": 49}
STALL_AFTER = timedelta(hours=3)
FAILURE_WINDOW = timedelta(hours=24)


def h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def us(hours: float) -> int:
    return int((h(hours) - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1))


def _polls() -> list[tuple[float, dict[str, str], dict[str, str], str, str, bool]]:
    """(hour, web instances, api instances, web desired, api desired, api updating)"""
    web = {"w1": "1.0", "w2": "1.0", "w3": "1.0"}
    api = {"a1": "2.0", "a2": "2.0"}
    out = []

    def poll(hour, web_desired, api_desired, updating=False, web_moves=(), api_moves=()):
        for old, new, version in web_moves:
            web.pop(old)
            web[new] = version
        for old, new, version in api_moves:
            api.pop(old)
            api[new] = version
        out.append((hour, dict(web), dict(api), web_desired, api_desired, updating))

    poll(0, "1.0", "2.0")
    poll(10, "1.1", "2.0")
    poll(11, "1.1", "2.0", web_moves=[("w1", "w4", "1.1")])
    poll(12, "1.1", "2.0", web_moves=[("w2", "w5", "1.1")])
    poll(13, "1.1", "2.0", web_moves=[("w3", "w6", "1.1")])
    poll(20, "1.1", "2.1", True, api_moves=[("a1", "a3", "2.1")])
    poll(22, "1.1", "2.1", False)
    poll(24, "1.1", "2.1", True)
    poll(26, "1.1", "2.1", False, api_moves=[("a2", "a4", "2.1")])
    poll(30, "1.2", "2.1", web_moves=[("w4", "w7", "1.2")])
    poll(31, "1.2", "2.1")
    poll(31.5, "1.1", "2.1")
    poll(32, "1.1", "2.1", web_moves=[("w7", "w8", "1.1")])
    poll(35.5, "1.1", "2.1", web_moves=[("w6", "w10", "1.1")])
    poll(40, "1.1", "2.2", api_moves=[("a3", "a5", "2.2")])
    poll(41, "1.1", "2.2", api_moves=[("a4", "a6", "2.2")])
    poll(45, "1.1", "2.1", api_moves=[("a5", "a7", "2.1")])
    poll(46, "1.1", "2.1", api_moves=[("a6", "a8", "2.1")])
    poll(50, "1.3", "2.1", web_moves=[("w5", "w9", "1.3")])
    poll(59, "1.3", "2.1")
    return out


def _image(version: str) -> Image:
    return Image("aws", f"ami-{version}", f"app-{version}", created_at=h(CREATED_H[version]),
                 version=version)


def _instance(iid: str, version: str, group: str) -> Instance:
    return Instance("aws", iid, f"{group}-{iid}", "prod", SCOPE.account, REGION, f"{REGION}a",
                    group, f"ami-{version}", State.RUNNING, version=version)


def _group(name: str, version: str, size: int, updating: bool = False) -> Group:
    return Group("aws", "prod", SCOPE.account, REGION, name, "asg", f"ami-{version}", size,
                 desired_version=version, updating=updating)


def inventories() -> list[Inventory]:
    out = []
    for hour, web, api, web_desired, api_desired, updating in _polls():
        instances = [_instance(i, v, "web") for i, v in web.items()] + \
                    [_instance(i, v, "api") for i, v in api.items()]
        groups = [_group("web", web_desired, 3), _group("api", api_desired, 2, updating)]
        versions = {i.version for i in instances} | {web_desired, api_desired}
        images = {f"ami-{v}": _image(v) for v in versions}
        out.append(Inventory(SCOPE, h(hour), tuple(instances), tuple(groups), images, (),
                             SCOPE.regions, 1))
    return out


def _plan(kind: str, group: str, instances: tuple[str, ...], from_versions: tuple[str, ...],
          to_version: str) -> ActionPlan:
    return ActionPlan(kind, "aws", "prod", REGION, group, instances, from_versions, to_version,
                      f"ami-{to_version}", (), "instance-refresh")


def seed(store) -> None:
    """Record every poll, then journal and audit the two actions at their own times (the
    journal and the audit log read the clock, set here for the while)."""
    import pytest

    from fleetview.actions import audit, journal
    from fleetview.actions.journal import Journal

    for inv in inventories():
        store.record_poll(inv, inv.polled_at - timedelta(seconds=1), inv.polled_at)
    with pytest.MonkeyPatch.context() as patch:
        _journal_actions(store, patch, audit, journal, Journal)


def _journal_actions(store, patch, audit, journal, Journal) -> None:
    clock = {"now": 0}
    patch.setattr(journal, "now_us", lambda: clock["now"])
    patch.setattr(audit, "now_us", lambda: clock["now"])
    book = Journal(store)
    for hour, done, plan, reason, actor in (
            (31, 32, _plan("rollback", "web", ("w4",), ("1.2",), "1.1"), "1.2 returns 500s",
             "alice"),
            (35, 35.5, _plan("replace", "web", ("w6",), ("1.1",), "1.1"), "disk errors",
             "bob")):
        clock["now"] = us(hour)
        action_id = book.create(plan, reason, actor)
        audit.append(store, "plan_confirmed", actor, action_id=action_id, scope="prod",
                     region=REGION, group="web", reason=reason, detail={"kind": plan.kind})
        clock["now"] = us(done)
        book.finish(action_id, "recovered", "converged", recovered_us=us(done), on_target=3,
                    needed=3)
        audit.append(store, "recovered", actor, action_id=action_id, scope="prod",
                     region=REGION, group="web", detail={"kind": plan.kind})
