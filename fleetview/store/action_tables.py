"""Tables of the action journal, the group locks and the hash-chained audit log."""

from __future__ import annotations

import sqlalchemy as sa

from fleetview.store.schema import _ID, _TEXT, _TIME, metadata

# One row per action, written before anything runs; `plan` is the journaled ActionPlan as JSON.
actions = sa.Table(
    "actions", metadata,
    sa.Column("action_id", sa.String(36), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("provider", sa.String(8), nullable=False),
    sa.Column("scope", _TEXT, nullable=False),
    sa.Column("region", _TEXT, nullable=False),
    sa.Column("group_name", _TEXT),
    sa.Column("to_version", _TEXT),
    sa.Column("plan", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("actor", _TEXT, nullable=False),
    sa.Column("owner", _TEXT, nullable=False),
    # running (steps) -> converging (steps done, fleet not there yet) -> recovered, or
    # not_converged (past its deadline, still tracked) -> recovered; or failed, stopped,
    # abandoned. "interrupted" is derived on read from an unfinished action whose owner
    # stopped beating. Databases from before version 3 may hold "finished".
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("message", sa.Text),
    sa.Column("created_us", _TIME, nullable=False),
    sa.Column("confirmed_us", _TIME),
    sa.Column("finished_us", _TIME),
    sa.Column("heartbeat_us", _TIME),
    # Confirmation -> every target instance on the target version and running.
    sa.Column("recovered_us", _TIME),
    # Instances on the target version, of those the group needs (surge excluded).
    sa.Column("on_target", sa.Integer),
    sa.Column("needed", sa.Integer),
    # Someone asked this action to stop (any process: the owner stops at its next check).
    sa.Column("stop_requested_us", _TIME),
    sa.Column("stop_reason", sa.Text),
    sa.Column("stop_actor", _TEXT),
    sa.Index("ix_actions_group", "scope", "region", "group_name", "created_us"),
)

action_steps = sa.Table(
    "action_steps", metadata,
    sa.Column("action_id", sa.String(36), sa.ForeignKey("actions.action_id"), primary_key=True),
    sa.Column("key", _TEXT, primary_key=True),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # pending, running, done, failed
    sa.Column("message", sa.Text),
    sa.Column("started_us", _TIME),
    sa.Column("finished_us", _TIME),
)

# At most one action per group: the primary key makes a second insert fail, across GUIs.
group_locks = sa.Table(
    "group_locks", metadata,
    sa.Column("scope", _TEXT, primary_key=True),
    sa.Column("region", _TEXT, primary_key=True),
    sa.Column("group_name", _TEXT, primary_key=True),
    sa.Column("action_id", sa.String(36), nullable=False),
    sa.Column("owner", _TEXT, nullable=False),
    sa.Column("acquired_us", _TIME, nullable=False),
    sa.Column("heartbeat_us", _TIME, nullable=False),
)

# Append-only; each entry holds the hash of the one before (seq is the chain order).
audit_log = sa.Table(
    "audit_log", metadata,
    sa.Column("seq", _ID, primary_key=True, autoincrement=False),
    sa.Column("at_us", _TIME, nullable=False),
    sa.Column("event", sa.String(32), nullable=False),
    sa.Column("actor", _TEXT, nullable=False),
    sa.Column("action_id", sa.String(36)),
    sa.Column("scope", _TEXT),
    sa.Column("region", _TEXT),
    sa.Column("group_name", _TEXT),
    sa.Column("reason", sa.Text),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Index("ix_audit_action", "action_id"),
)

# Versions that must not be the default rollback target again: marked by a rollback that moved
# a group away from them (scope, region and group set) or quarantined by hand (any of them
# empty: every scope, region or group). A lifted mark stays, with who lifted it and why.
bad_versions = sa.Table(
    "bad_versions", metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("version", _TEXT, nullable=False),
    sa.Column("scope", _TEXT),
    sa.Column("region", _TEXT),
    sa.Column("group_name", _TEXT),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("actor", _TEXT, nullable=False),
    sa.Column("source", sa.String(16), nullable=False),  # rollback, quarantine
    sa.Column("action_id", sa.String(36)),
    sa.Column("created_us", _TIME, nullable=False),
    sa.Column("lifted_us", _TIME),
    sa.Column("lifted_by", _TEXT),
    sa.Column("lift_reason", sa.Text),
    sa.Index("ix_bad_versions_version", "version"),
)
