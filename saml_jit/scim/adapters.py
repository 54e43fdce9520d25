"""Django users and groups as SCIM resources, and SCIM input back to model fields.

Input goes through the same checks as SAML attributes
(:mod:`saml_jit.mapping`): identifiers (the subject, the username, the email)
are refused rather than altered, display fields are normalised. Only the
username, the email, the first and last name and ``active`` are ever written;
``is_staff``, ``is_superuser``, permissions and the password are not in the
served schema and can never be set over SCIM.

Every query is scoped: users are those bound to the client's IdP by a
:class:`~saml_jit.models.FederatedIdentity`, groups those the IdP manages
(:class:`~saml_jit.models.ScimGroup`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, FilteredRelation, Prefetch, Q, QuerySet
from django.http import HttpRequest
from scim2_models import (
    InvalidFilterException,
    InvalidValueException,
    Meta,
    NotFoundException,
    PreconditionFailedException,
    Resource,
    UniquenessException,
)

from .. import events
from ..mapping import Denied, check_email, check_identifier, check_username, normalise_display
from ..models import SUBJECT_MAX_LENGTH, EventKind, EventSource, FederatedIdentity, ScimClient, ScimGroup
from . import conf, lifecycle
from .filters import NOTHING, Column, Constant, Target
from .resources import group_model, user_model

#: The type every stored email is reported with (one email is kept).
EMAIL_TYPE = "work"
NAME_FIELDS = {"given_name": "first_name", "family_name": "last_name"}

#: A User or Group resource from the client: an instance of a model built at run
#: time from the trimmed schemas (:func:`~saml_jit.scim.resources.models`), so
#: its attributes (``user_name``, ``emails``, ``members``...) have no static type.
InputResource = Any


@dataclass(frozen=True)
class Scope:
    """Who is asking: the client, its IdP and the HTTP request (for events)."""

    client: ScimClient
    request: HttpRequest | None = None

    @property
    def idp(self) -> str:
        return self.client.idp_entity_id

    def record(self, kind: str, user: Any = None, **fields: Any) -> Any:
        return events.record(
            kind,
            request=self.request,
            user=user,
            source=EventSource.SCIM,
            idp_entity_id=self.idp,
            actor=self.client.name,
            **fields,
        )


def invalid(denial: Denied, label: str) -> InvalidValueException:
    return InvalidValueException(detail=f"{label}: {denial.message}")


def version_of(resource: Resource[Any]) -> str:
    """A weak ETag: changes whenever the resource's content does."""
    content = json.dumps(resource.model_dump(exclude={"meta"}), sort_keys=True, default=str)
    return f'W/"{hashlib.sha256(content.encode()).hexdigest()[:20]}"'


def finish(resource: Resource[Any], resource_type: str, created: datetime | None) -> Resource[Any]:
    version = version_of(resource)
    resource.meta = Meta(resource_type=resource_type, created=created, last_modified=created, version=version)
    return resource


def parse_pk(model: Any, value: Any) -> Any:
    """The primary key ``value`` names, or None when it cannot be one."""
    try:
        return model._meta.pk.to_python(value)
    except (ValidationError, ValueError, TypeError):
        return None


def _has_field(model: Any, name: str) -> bool:
    try:
        model._meta.get_field(name)
    except FieldDoesNotExist:
        return False
    return True


def _max_length(model: Any, name: str) -> int | None:
    return getattr(model._meta.get_field(name), "max_length", None)


# ----------------------------------------------------------------------------
# Users


@dataclass
class UserInput:
    fields: dict[str, str]
    subject: str
    active: bool | None


class Users:
    """Users bound to the client's IdP."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.model = get_user_model()
        self.username_field: str = self.model.USERNAME_FIELD
        self.email_field: str = self.model.get_email_field_name()
        self.name_fields = {attr: f for attr, f in NAME_FIELDS.items() if _has_field(self.model, f)}

    # -- reading -------------------------------------------------------------

    def queryset(self) -> QuerySet:
        managed = Group.objects.filter(saml_jit_scim__idp_entity_id=self.scope.idp).order_by("pk")
        return (
            self.model._default_manager.alias(
                scim_identity=FilteredRelation(
                    "saml_identities", condition=Q(saml_identities__idp_entity_id=self.scope.idp)
                )
            )
            .filter(scim_identity__isnull=False)
            .annotate(scim_subject=F("scim_identity__subject"), scim_bound_at=F("scim_identity__first_asserted_at"))
            .prefetch_related(Prefetch("groups", queryset=managed, to_attr="scim_groups"))
            .order_by("pk")
        )

    def columns(self) -> dict[tuple[str, str | None], Target]:
        columns: dict[tuple[str, str | None], Target] = {
            ("id", None): self._id_filter,
            ("username", None): Column(self.username_field),
            ("active", None): Column("is_active", kind="boolean"),
            ("emails", "value"): Column(self.email_field),
            ("emails", "type"): Constant(EMAIL_TYPE),
            ("emails", "primary"): Constant(True),
        }
        if conf.subject_attribute() == conf.SUBJECT_EXTERNAL_ID:
            columns[("externalid", None)] = Column("scim_subject", case_exact=True)
        for attr, field in self.name_fields.items():
            columns[("name", attr.replace("_", ""))] = Column(field)
        return columns

    def _id_filter(self, op: Any, value: Any) -> Q:
        pk = parse_pk(self.model, value)
        q = NOTHING if pk is None else Q(pk=pk)
        return ~q if op == "ne" else q

    def get_user(self, resource_id: str, lock: bool = False) -> Any:
        pk = parse_pk(self.model, resource_id)
        queryset = self.queryset()
        if lock:
            queryset = queryset.select_for_update(of=("self",))
        user = queryset.filter(pk=pk).first() if pk is not None else None
        if user is None:
            raise NotFoundException(detail=f"User {resource_id} not found")
        return user

    def to_resource(self, user: Any) -> Resource[Any]:
        email = getattr(user, self.email_field, "") or ""
        data: dict[str, Any] = {
            "id": str(user.pk),
            "userName": user.get_username(),
            "active": bool(getattr(user, "is_active", True)),
            "emails": [{"value": email, "type": EMAIL_TYPE, "primary": True}] if email else None,
            "groups": [
                {"value": str(g.pk), "$ref": f"Groups/{g.pk}", "display": g.name, "type": "direct"}
                for g in getattr(user, "scim_groups", [])
            ]
            or None,
        }
        if conf.subject_attribute() == conf.SUBJECT_EXTERNAL_ID:
            data["externalId"] = user.scim_subject
        names = {attr: getattr(user, f) for attr, f in self.name_fields.items() if getattr(user, f)}
        if names:
            data["name"] = {("givenName" if a == "given_name" else "familyName"): v for a, v in names.items()}
            data["displayName"] = " ".join(v for v in (names.get("given_name"), names.get("family_name")) if v)
        resource = user_model().model_validate({k: v for k, v in data.items() if v is not None})
        created = getattr(user, "date_joined", None) or getattr(user, "scim_bound_at", None)
        return finish(resource, "User", created)

    # -- input ---------------------------------------------------------------

    def read_input(self, resource: InputResource) -> UserInput:
        """Validate a User resource into model fields, the subject and ``active``."""
        fields: dict[str, str] = {}
        user_name = resource.user_name or ""
        username_max = _max_length(self.model, self.username_field)
        try:
            if self.username_field == self.email_field:
                fields[self.username_field] = check_email(user_name, "userName", username_max)
            else:
                fields[self.username_field] = check_username(user_name, "userName", username_max)
        except Denied as denial:
            raise invalid(denial, "userName") from None
        if self.email_field != self.username_field and _has_field(self.model, self.email_field):
            fields[self.email_field] = self._email(resource)
        notes: list[str] = []
        for attr, field in self.name_fields.items():
            value = getattr(resource.name, attr, None) if resource.name is not None else None
            try:
                fields[field] = normalise_display(value or "", f"name.{attr}", _max_length(self.model, field), notes)
            except Denied as denial:
                raise invalid(denial, "name") from None
        return UserInput(fields, self._subject(resource, fields[self.username_field]), resource.active)

    def _email(self, resource: InputResource) -> str:
        emails = [e for e in resource.emails or [] if e.value]
        if not emails:
            return ""
        chosen = next((e for e in emails if e.primary), None) or next(
            (e for e in emails if (e.type or "").lower() == EMAIL_TYPE), emails[0]
        )
        try:
            return check_email(chosen.value, "emails.value", _max_length(self.model, self.email_field))
        except Denied as denial:
            raise invalid(denial, "emails") from None

    def _subject(self, resource: Resource[Any], user_name: str) -> str:
        if conf.subject_attribute() == conf.SUBJECT_USERNAME:
            return user_name
        if not resource.external_id:
            raise InvalidValueException(detail="externalId is required: it must equal the person's SAML subject.")
        try:
            return check_identifier(resource.external_id, "externalId", SUBJECT_MAX_LENGTH)
        except Denied as denial:
            raise invalid(denial, "externalId") from None

    def _check_unique(self, wanted: UserInput, user: Any = None) -> None:
        others = self.model._default_manager.exclude(pk=user.pk) if user is not None else self.model._default_manager
        username = wanted.fields[self.username_field]
        if others.filter(**{f"{self.username_field}__iexact": username}).exists():
            raise UniquenessException(detail="userName is already taken.")
        identities = FederatedIdentity.objects.filter(idp_entity_id=self.scope.idp, subject=wanted.subject)
        if user is not None:
            identities = identities.exclude(user=user)
        if identities.exists():
            raise UniquenessException(detail=f"{conf.subject_attribute()} is already bound to another user.")

    # -- writing -------------------------------------------------------------

    def create(self, resource: Resource[Any]) -> Resource[Any]:
        wanted = self.read_input(resource)
        self._check_unique(wanted)
        user = self.model(**wanted.fields)
        user.is_active = True if wanted.active is None else wanted.active
        user.set_unusable_password()
        try:
            with transaction.atomic():
                user.save()
                FederatedIdentity.objects.create(user=user, idp_entity_id=self.scope.idp, subject=wanted.subject)
        except IntegrityError:
            raise UniquenessException(detail="The user conflicts with an existing one.") from None
        diff: dict[str, list[Any]] = {name: [None, value] for name, value in wanted.fields.items() if value}
        diff["is_active"] = [None, user.is_active]
        self.scope.record(EventKind.CREATED, user, subject=wanted.subject, diff=diff, message="created over SCIM")
        return self.to_resource(self.get_user(str(user.pk)))

    def update(self, resource: Resource[Any], expected_version: str | None) -> Resource[Any]:
        user = self.get_user(str(resource.id), lock=True)
        if expected_version is not None and version_of(self.to_resource(user)) != expected_version:
            raise PreconditionFailedException(detail="The user changed meanwhile.")
        wanted = self.read_input(resource)
        self._check_unique(wanted, user)
        diff = {
            name: [getattr(user, name), value] for name, value in wanted.fields.items() if getattr(user, name) != value
        }
        try:
            with transaction.atomic():
                self._apply(user, wanted, diff)
        except IntegrityError:
            raise UniquenessException(detail="The user conflicts with an existing one.") from None
        self._apply_active(user, wanted.active, wanted.subject)
        return self.to_resource(self.get_user(str(user.pk)))

    def _apply(self, user: Any, wanted: UserInput, diff: dict[str, Any]) -> None:
        old_subject = user.scim_subject
        for name, (_, value) in diff.items():
            setattr(user, name, value)
        if diff:
            user.save(update_fields=list(diff))
        if wanted.subject != old_subject:
            FederatedIdentity.objects.filter(user=user, idp_entity_id=self.scope.idp).update(subject=wanted.subject)
            diff["subject"] = [old_subject, wanted.subject]
        if diff:
            self.scope.record(EventKind.UPDATED, user, subject=wanted.subject, diff=diff, message="updated over SCIM")

    def _apply_active(self, user: Any, active: bool | None, subject: str) -> None:
        if active is None or active == user.is_active:
            return
        if active:
            diff = lifecycle.reactivate(user)
            self.scope.record(EventKind.REACTIVATED, user, subject=subject, diff=diff, message="reactivated over SCIM")
        else:
            self.deactivate(user, subject)

    def deactivate(self, user: Any, subject: str, reason: str = "") -> None:
        diff = lifecycle.deactivate(user, self.scope.idp)
        self.scope.record(
            EventKind.DEACTIVATED,
            user,
            subject=subject,
            diff={"is_active": diff["is_active"]},
            reason_code=reason,
            message=f"deactivated over SCIM; {diff['sessions_ended']} database session(s) ended, "
            f"{diff['grants_removed']} grant(s) removed",
        )

    def delete(self, resource_id: str) -> None:
        user = self.get_user(resource_id, lock=True)
        if conf.hard_delete():
            self.scope.record(EventKind.DELETED, user, subject=user.scim_subject, message="deleted over SCIM")
            user.delete()
            return
        if user.is_active:
            self.deactivate(user, user.scim_subject, reason="scim_delete")


# ----------------------------------------------------------------------------
# Groups


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
            return check_identifier(resource.display_name or "", "displayName", _max_length(Group, "name"))
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
