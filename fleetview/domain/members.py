"""Members of an organisation scope: the accounts (AWS Organizations) or projects (a GCP folder
or organisation) it holds, each polled as its own scope, and how they are named and chosen."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

SEPARATOR = "/"  # a member scope is named "<organisation scope>/<account or project id>"


@dataclass(frozen=True)
class Member:
    """One account or project an organisation scope found. `config` is its scope config
    (named member_name(parent, id)); `failed` says why it cannot be polled (an account
    that is suspended, a project being deleted), and then it is shown as a failed scope."""

    id: str
    name: str
    config: object | None
    failed: str = ""


def member_name(parent: str, member_id: str) -> str:
    return f"{parent}{SEPARATOR}{member_id}"


def split_member(name: str) -> tuple[str, str] | None:
    """(organisation scope, member id) of a member scope's name, None for any other name."""
    parent, sep, member_id = name.rpartition(SEPARATOR)
    return (parent, member_id) if sep and parent and member_id else None


def wanted(include: tuple[str, ...], exclude: tuple[str, ...], *names: str) -> bool:
    """Whether a member whose id and name are `names` is polled: it matches an include pattern
    (none: every member) and no exclude pattern. Patterns are shell globs ("prod-*",
    "1234*"), matched case-insensitively against the id and the name."""
    def hit(patterns: tuple[str, ...]) -> bool:
        return any(fnmatch.fnmatchcase(n.lower(), p.lower()) for p in patterns for n in names
                   if n)
    return (not include or hit(include)) and not hit(exclude)
