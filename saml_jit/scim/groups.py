"""Django groups an IdP manages over SCIM, as SCIM Group resources.

Only groups created over SCIM are managed: a SCIM client can never take over
a group that already existed (an administrator's group with permissions,
say), and members an administrator added by hand are never shown or removed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.db.models import Prefetch, Q, QuerySet
from scim2_models import (
    InvalidFilterException,
    InvalidValueException,
    NotFoundException,
    PreconditionFailedException,
    Resource,
    UniquenessException,
)

from ..exceptions import Denied
from ..mapping import check_identifier
from ..models import SUBJECT_MAX_LENGTH, EventKind, ScimGroup
from .common import InputResource, Scope, finish, invalid, max_length, parse_pk, version_of
from .filters import NOTHING, Column, Target
from .resources import group_model
from .users import Users


class Groups:
    """Groups the client's IdP manages over SCIM."""

    def __init__(self, scope: Scope, users: Users) -> None:
        self.scope = scope
        self.users = users

    def queryset(self) -> QuerySet:
        members = self.users.queryset().order_by("pk")
        return (
            Group.objects.filter(saml_jit_scim__idp_entity_id=self.scope.idp)
            .select_related("saml_jit_scim")
            .prefetch_related(Prefetch("user_set", queryset=members, to_attr="scim_members"))
            .order_by("pk")
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
        q = NOTHING if pk is None else Q(pk__in=self.users.queryset().filter(pk=pk).values("groups"))
        return ~q if op == "ne" else q

    def get_group(self, resource_id: str, lock: bool = False) -> Group:
        pk = parse_pk(Group, resource_id)
        queryset = self.queryset()
        if lock:
            queryset = queryset.select_for_update(of=("self",))
        group = queryset.filter(pk=pk).first() if pk is not None else None
        if group is None:
            raise NotFoundException(detail=f"Group {resource_id} not found")
        return group

    def to_resource(self, group: Group) -> Resource[Any]:
        data: dict[str, Any] = {"id": str(group.pk), "displayName": group.name}
        if group.saml_jit_scim.external_id:
            data["externalId"] = group.saml_jit_scim.external_id
        members = [
            {"value": str(u.pk), "$ref": f"Users/{u.pk}", "type": "User"} for u in getattr(group, "scim_members", [])
        ]
        if members:
            data["members"] = members
        return finish(group_model().model_validate(data), "Group", group.saml_jit_scim.created_at)

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

    def _members(self, resource: InputResource) -> dict[Any, Any]:
        wanted: dict[Any, Any] = {}
        ids = []
        for member in resource.members or []:
            if member.type and str(member.type).lower() != "user":
                raise InvalidValueException(detail="Only users can be group members (no nested groups).")
            pk = parse_pk(self.users.model, member.value)
            if pk is None:
                raise InvalidValueException(detail=f"Unknown member {member.value}.")
            ids.append(pk)
        if ids:
            wanted = {user.pk: user for user in self.users.queryset().filter(pk__in=ids)}
            missing = set(ids) - set(wanted)
            if missing:
                raise InvalidValueException(detail=f"Unknown member(s): {', '.join(sorted(map(str, missing)))}.")
        return wanted

    def _check_name(self, name: str, group: Group | None = None) -> None:
        others = Group.objects.exclude(pk=group.pk) if group is not None else Group.objects.all()
        # Any existing group counts: a SCIM client never takes over a group
        # it did not create (an administrator's group with permissions, say).
        if others.filter(name__iexact=name).exists():
            raise UniquenessException(detail="A group with this displayName already exists.")

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
        self._change_members(group, list(members.values()), [])
        return self.to_resource(self.get_group(str(group.pk)))

    def update(self, resource: Resource[Any], expected_version: str | None) -> Resource[Any]:
        group = self.get_group(str(resource.id), lock=True)
        if expected_version is not None and version_of(self.to_resource(group)) != expected_version:
            raise PreconditionFailedException(detail="The group changed meanwhile.")
        name, external_id = self._name(resource), self._external_id(resource)
        members = self._members(resource)
        diff: dict[str, Any] = {}
        if name != group.name:
            self._check_name(name, group)
            diff["group"] = [group.name, name]
            group.name = name
            group.save(update_fields=["name"])
        if external_id != group.saml_jit_scim.external_id:
            diff["externalId"] = [group.saml_jit_scim.external_id, external_id]
            ScimGroup.objects.filter(pk=group.saml_jit_scim.pk).update(external_id=external_id)
        if diff:
            self.scope.record(EventKind.GROUPS_CHANGED, diff=diff, message="group updated over SCIM")
        # scim_members: prefetched by queryset() (Prefetch to_attr), which the stubs cannot know about.
        current = {user.pk: user for user in group.scim_members}  # type: ignore[attr-defined]
        added = [user for pk, user in members.items() if pk not in current]
        removed = [user for pk, user in current.items() if pk not in members]
        self._change_members(group, added, removed)
        return self.to_resource(self.get_group(str(group.pk)))

    def delete(self, resource_id: str) -> None:
        group = self.get_group(resource_id, lock=True)
        self._change_members(group, [], list(group.scim_members))  # type: ignore[attr-defined]  # as in update()
        self.scope.record(
            EventKind.GROUPS_CHANGED, diff={"group": [group.name, None]}, message="group deleted over SCIM"
        )
        group.delete()

    def _change_members(self, group: Group, added: Iterable[Any], removed: Iterable[Any]) -> None:
        added, removed = list(added), list(removed)
        if added:
            group.user_set.add(*added)
        if removed:
            group.user_set.remove(*removed)
        for users, key in ((added, "added"), (removed, "removed")):
            for user in users:
                change: dict[str, list[str]] = {"added": [], "removed": []}
                change[key] = [group.name]
                self.scope.record(
                    EventKind.GROUPS_CHANGED,
                    user,
                    subject=getattr(user, "scim_subject", ""),
                    diff={"groups": change},
                    message=f"{key} over SCIM",
                )
