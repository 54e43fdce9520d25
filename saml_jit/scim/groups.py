"""Django groups an IdP manages over SCIM, as SCIM Group resources.

Only groups created over SCIM are managed: a SCIM client can never take over
a group that already existed (an administrator's group with permissions,
say), and members an administrator added by hand are never shown or removed.

A group's members are read only when the response needs them (Entra ID asks
with ``excludedAttributes=members``), and a PATCH on members changes the
members it names, in SQL (:mod:`.members`): its cost grows with the members
it changes, not with the group's size. The version (ETag) is the group's
SCIM revision, so it needs no member either.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import Any

from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.db.models import F, Prefetch, Q, QuerySet
from django.utils import timezone
from scim2_models import (
    InvalidFilterException,
    NotFoundException,
    PatchOp,
    PreconditionFailedException,
    Resource,
    UniquenessException,
)

from ..exceptions import Denied
from ..mapping import check_identifier
from ..models import SUBJECT_MAX_LENGTH, EventKind, ScimGroup
from . import members as member_ops
from .common import InputResource, Scope, finish, invalid, max_length, parse_pk
from .filters import NOTHING, Column, Target
from .resources import group_model
from .users import Users

#: Members whose events are written from one query.
EVENT_BATCH = 500
#: Checks the request's preconditions (If-Match) against the current resource.
Precondition = Callable[[Resource[Any]], Any]


def version(group: Group) -> str:
    """A weak ETag that changes with every change made over SCIM (its revision)."""
    scim = group.saml_jit_scim  # type: ignore[attr-defined]  # the reverse one-to-one
    digest = hashlib.sha256(f"{group.pk}:{scim.revision}".encode()).hexdigest()[:20]
    return f'W/"{digest}"'


class Groups:
    """Groups the client's IdP manages over SCIM."""

    def __init__(self, scope: Scope, users: Users) -> None:
        self.scope = scope
        self.users = users

    def queryset(self, members: bool = True) -> QuerySet:
        groups = (
            Group.objects.filter(saml_jit_scim__idp_entity_id=self.scope.idp)
            .select_related("saml_jit_scim")
            .order_by("pk")
        )
        if not members:
            return groups
        scoped = self.users.model._default_manager.filter(saml_identities__idp_entity_id=self.scope.idp)
        return groups.prefetch_related(
            Prefetch("user_set", queryset=scoped.only("pk").order_by("pk"), to_attr="scim_members")
        )

    def columns(self) -> dict[tuple[str, str | None], Target]:
        return {
            ("id", None): self._id_filter,
            ("displayname", None): Column("name"),
            ("externalid", None): Column("saml_jit_scim__external_id", case_exact=True),
            ("members", "value"): self._member_filter,
            ("members", None): self._member_filter,
        }

    def _id_filter(self, op: Any, value: Any) -> Q:
        pk = parse_pk(Group, value)
        q = NOTHING if pk is None else Q(pk=pk)
        return ~q if op == "ne" else q

    def _member_filter(self, op: Any, value: Any) -> Q:
        if op not in ("eq", "ne"):
            raise InvalidFilterException(detail="members.value compares with eq or ne only.")
        pk = parse_pk(self.users.model, value)
        q = NOTHING if pk is None else Q(pk__in=self.users.scoped().filter(pk=pk).values("groups"))
        return ~q if op == "ne" else q

    def get_group(self, resource_id: str, lock: bool = False, members: bool = True) -> Group:
        pk = parse_pk(Group, resource_id)
        queryset = self.queryset(members)
        if lock:
            queryset = queryset.select_for_update(of=("self",))
        group = queryset.filter(pk=pk).first() if pk is not None else None
        if group is None:
            raise NotFoundException(detail=f"Group {resource_id} not found")
        return group

    def to_resource(self, group: Group) -> Resource[Any]:
        """The Group resource; with its members if they were read (``get_group(members=True)``)."""
        scim = group.saml_jit_scim  # type: ignore[attr-defined]  # the reverse one-to-one
        data: dict[str, Any] = {"id": str(group.pk), "displayName": group.name}
        if scim.external_id:
            data["externalId"] = scim.external_id
        members = [
            {"value": str(u.pk), "$ref": f"Users/{u.pk}", "type": "User"} for u in getattr(group, "scim_members", [])
        ]
        if members:
            data["members"] = members
        resource = group_model().model_validate(data)
        return finish(resource, "Group", scim.created_at, version(group), scim.modified_at)

    # -- input ---------------------------------------------------------------

    def _name(self, resource: InputResource) -> str:
        try:
            return check_identifier(resource.display_name or "", "displayName", max_length(Group, "name"))
        except Denied as denial:
            raise invalid(denial, "displayName") from None

    def _external_id(self, resource: Resource[Any]) -> str:
        if not resource.external_id:
            return ""
        try:
            return check_identifier(resource.external_id, "externalId", SUBJECT_MAX_LENGTH)
        except Denied as denial:
            raise invalid(denial, "externalId") from None

    def _members(self, resource: InputResource) -> set[Any]:
        """The pks of the members a Group resource lists, every one a user of the client's IdP."""
        return member_ops.wanted(self.users, [{"value": m.value, "type": m.type} for m in resource.members or []])

    def _check_name(self, name: str, group: Group | None = None) -> None:
        others = Group.objects.exclude(pk=group.pk) if group is not None else Group.objects.all()
        # Any existing group counts: a SCIM client never takes over a group
        # it did not create (an administrator's group with permissions, say).
        if others.filter(name__iexact=name).exists():
            raise UniquenessException(detail="A group with this displayName already exists.")

    # -- writing -------------------------------------------------------------

    def create(self, resource: Resource[Any]) -> Resource[Any]:
        name, external_id = self._name(resource), self._external_id(resource)
        self._check_name(name)
        members = self._members(resource)
        try:
            with transaction.atomic():
                group = Group.objects.create(name=name)
                ScimGroup.objects.create(
                    group=group, idp_entity_id=self.scope.idp, external_id=external_id, client=self.scope.client
                )
        except IntegrityError:
            raise UniquenessException(detail="A group with this displayName already exists.") from None
        self.scope.record(EventKind.GROUPS_CHANGED, diff={"group": [None, name]}, message="group created over SCIM")
        self.change_members(group, members, ())
        return self.to_resource(self.get_group(str(group.pk)))

    def update(self, resource: Resource[Any], expected_version: str | None) -> Resource[Any]:
        group = self.get_group(str(resource.id), lock=True)
        if expected_version is not None and version(group) != expected_version:
            raise PreconditionFailedException(detail="The group changed meanwhile.")
        changed = self.apply_fields(group, resource)
        wanted = self._members(resource)
        current = {user.pk for user in group.scim_members}  # type: ignore[attr-defined]  # Prefetch to_attr
        changed |= self.change_members(group, wanted - current, current - wanted)
        if changed:
            self.bump(group)
        return self.to_resource(self.get_group(str(group.pk)))

    def apply_fields(self, group: Group, resource: Resource[Any]) -> bool:
        """Write ``displayName`` and ``externalId`` (one event); whether anything changed."""
        scim = group.saml_jit_scim  # type: ignore[attr-defined]  # the reverse one-to-one
        name, external_id = self._name(resource), self._external_id(resource)
        diff: dict[str, Any] = {}
        if name != group.name:
            self._check_name(name, group)
            diff["group"] = [group.name, name]
            group.name = name
            group.save(update_fields=["name"])
        if external_id != scim.external_id:
            diff["externalId"] = [scim.external_id, external_id]
            ScimGroup.objects.filter(pk=scim.pk).update(external_id=external_id)
            scim.external_id = external_id
        if diff:
            self.scope.record(EventKind.GROUPS_CHANGED, diff=diff, message="group updated over SCIM")
        return bool(diff)

    def patch(self, resource_id: str, patch_op: PatchOp[Any], precondition: Precondition, *, members: bool) -> Any:
        """Apply a PATCH: member operations in SQL, the others to the group without its members.

        ``members``: whether the response shows them (read once, at the end).
        A form :mod:`.members` does not handle (a filter that selects members
        to modify rather than remove, say) is applied to the whole resource,
        as scim2-server would.
        """
        group = self.get_group(resource_id, lock=True, members=False)
        precondition(self.to_resource(group))
        plan = member_ops.plan(patch_op)
        if plan is None:
            changed = self._patch_whole(resource_id, patch_op)
        else:
            changed = self._patch_fields(group, plan.others) | member_ops.apply(self, group, plan.operations)
        if changed:
            self.bump(group)
        return self.to_resource(self.get_group(resource_id, members=members))

    def _patch_fields(self, group: Group, operations: list[Any]) -> bool:
        if not operations:
            return False
        resource = self.to_resource(group)
        patch_op = PatchOp.__class_getitem__(type(resource))(operations=operations)  # type: ignore[misc]
        return bool(patch_op.patch(resource)) and self.apply_fields(group, resource)

    def _patch_whole(self, resource_id: str, patch_op: PatchOp[Any]) -> bool:
        group = self.get_group(resource_id)
        resource = self.to_resource(group)
        if not patch_op.patch(resource):
            return False
        changed = self.apply_fields(group, resource)
        wanted = self._members(resource)
        current = {user.pk for user in group.scim_members}  # type: ignore[attr-defined]  # Prefetch to_attr
        return self.change_members(group, wanted - current, current - wanted) or changed

    def bump(self, group: Group) -> None:
        """Count a change: the group's version (ETag) and ``meta.lastModified`` move on."""
        scim = group.saml_jit_scim  # type: ignore[attr-defined]  # the reverse one-to-one
        ScimGroup.objects.filter(pk=scim.pk).update(revision=F("revision") + 1, modified_at=timezone.now())

    def delete(self, resource_id: str) -> None:
        group = self.get_group(resource_id, lock=True)
        self.change_members(group, (), {user.pk for user in group.scim_members})  # type: ignore[attr-defined]
        self.scope.record(
            EventKind.GROUPS_CHANGED, diff={"group": [group.name, None]}, message="group deleted over SCIM"
        )
        group.delete()

    def change_members(self, group: Group, added: Iterable[Any], removed: Iterable[Any]) -> bool:
        """Add and remove members (pks of users of the client's IdP), one event per person; whether any changed."""
        changes = {"added": list(added), "removed": list(removed)}
        if not changes["added"] and not changes["removed"]:
            return False
        if changes["added"]:
            group.user_set.add(*changes["added"])
        if changes["removed"]:
            group.user_set.remove(*changes["removed"])
        for key, pks in changes.items():
            for start in range(0, len(pks), EVENT_BATCH):
                batch = self.users.scoped().filter(pk__in=pks[start : start + EVENT_BATCH]).order_by("pk")
                for user in batch:
                    self._record_member(group, user, key)
        return True

    def _record_member(self, group: Group, user: Any, key: str) -> None:
        change: dict[str, list[str]] = {"added": [], "removed": []}
        change[key] = [group.name]
        self.scope.record(
            EventKind.GROUPS_CHANGED,
            user,
            subject=user.scim_subject,
            diff={"groups": change},
            message=f"{key} over SCIM",
        )
