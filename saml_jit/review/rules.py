"""Pure review rules: which events need a reviewer, and which access a campaign covers.

An event needs review when it changed who can do something privileged, or
whom an identity speaks for:

* staff or superuser granted (``diff`` ``is_staff``/``is_superuser`` → true);
* a privileged group (``PRIVILEGED_GROUPS`` of its IdP) added;
* an identity linked to an existing account (``linked``), an account
  approved or reactivated (``approved``, ``reactivated``).

Review debt is how many such events nobody reviewed yet, and how old the oldest is.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

#: Event kinds that always need review.
ALWAYS = frozenset({"linked", "approved", "reactivated"})
FLAGS = ("is_staff", "is_superuser")


def needs_review(kind: str, diff: Mapping[str, Any], privileged_groups: Collection[str]) -> bool:
    """Whether an event of ``kind`` with ``diff`` needs a reviewer."""
    if kind in ALWAYS:
        return True
    for flag in FLAGS:
        change = diff.get(flag)
        if isinstance(change, (list, tuple)) and len(change) == 2 and change[1] is True:
            return True
    groups = diff.get("groups")
    added = groups.get("added", ()) if isinstance(groups, Mapping) else ()
    return any(name in privileged_groups for name in added)


@dataclass(frozen=True)
class Scope:
    """What a campaign reviews."""

    #: Only accounts with an identity from this IdP ("" = every account).
    idp_entity_id: str = ""
    #: Only these groups ("" = every group); staff and superuser are always in scope.
    groups: frozenset[str] = frozenset()
    #: Only privileged access: staff, superuser and privileged groups.
    privileged_only: bool = False


@dataclass(frozen=True)
class Access:
    """One piece of an account's access, as plain data."""

    kind: str  # "group", "staff", "superuser"
    group: str = ""
    privileged: bool = False


def in_scope(access: Access, scope: Scope) -> bool:
    """Whether a campaign with ``scope`` reviews ``access``."""
    if scope.privileged_only and not access.privileged:
        return False
    if access.kind != "group":
        return True
    return not scope.groups or access.group in scope.groups


def may_decide(reviewer_id: Any, subject_user_id: Any, *, is_open: bool, is_reviewer: bool) -> str:
    """Why ``reviewer`` may not decide on an item of ``subject_user`` ("" when they may)."""
    if not is_open:
        return "campaign_closed"
    if not is_reviewer:
        return "not_a_reviewer"
    if reviewer_id == subject_user_id:
        return "own_access"
    return ""
