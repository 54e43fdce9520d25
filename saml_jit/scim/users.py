"""Django users as SCIM User resources, and User input back to model fields.

Only the username, the email, the first and last name and ``active`` are
ever written to the account; ``is_staff``, ``is_superuser``, permissions and
the password are not in the served schema and can never be set over SCIM.
Accounts and identities are written through :mod:`saml_jit.provisioning`,
the same functions a SAML login uses; ``displayName``, the client's
``externalId`` and the enterprise attributes go to the identity's SCIM
profile (:mod:`.profiles`).

The identity binding (IdP, subject) comes from the IdP's
``SCIM_SUBJECT_ATTRIBUTE``: ``externalId`` (required, unless
``SCIM_USERNAME_FALLBACK`` binds a user sent without one by its
``userName``) or ``userName``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.db.models import F, FilteredRelation, Prefetch, Q, QuerySet
from django.db.models.functions import Upper
from django.utils import timezone
from scim2_models import (
    InvalidValueException,
    NotFoundException,
    PreconditionFailedException,
    Resource,
    UniquenessException,
)

from .. import lifecycle as rules
from ..exceptions import Denied
from ..mapping import check_email, check_identifier, check_username, normalise_display
from ..models import SUBJECT_MAX_LENGTH, EventKind, FederatedIdentity, ScimGroup
from ..provisioning import accounts, lifecycle
from . import conf, profiles
from .common import (
    EMAIL_TYPE,
    NAME_FIELDS,
    InputResource,
    Scope,
    finish,
    has_field,
    invalid,
    max_length,
    parse_pk,
    version_of,
)
from .filters import NOTHING, Column, Constant, Target, compare_column
from .resources import user_model


@dataclass
class UserInput:
    fields: dict[str, str]
    subject: str
    active: bool | None
    #: The SCIM profile (:mod:`.profiles`), externalId included.
    profile: dict[str, str]


class Users:
    """Users bound to the client's IdP."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.model = get_user_model()
        self.username_field: str = self.model.USERNAME_FIELD
        self.email_field: str = self.model.get_email_field_name()
        self.name_fields = {attr: f for attr, f in NAME_FIELDS.items() if has_field(self.model, f)}

    # -- reading -------------------------------------------------------------

    @property
    def subject_attribute(self) -> str:
        return conf.subject_attribute(self.scope.idp)

    def scoped(self) -> QuerySet:
        """Users bound to the client's IdP, with their subject: the base of every query."""
        # Case-insensitive look-ups go through the UPPER() indexes (migrations 0006, 0010).
        upper = {"scim_username_upper": Upper(self.username_field)}
        if has_field(self.model, self.email_field):
            upper["scim_email_upper"] = Upper(self.email_field)
        identity = FilteredRelation("saml_identities", condition=Q(saml_identities__idp_entity_id=self.scope.idp))
        return (
            self.model._default_manager.alias(scim_identity=identity, **upper)
            .filter(scim_identity__isnull=False)
            .annotate(
                scim_subject=F("scim_identity__subject"),
                scim_identity_pk=F("scim_identity__pk"),
                scim_bound_at=F("scim_identity__first_asserted_at"),
            )
        )

    def queryset(self) -> QuerySet:
        managed = Group.objects.filter(saml_jit_scim__idp_entity_id=self.scope.idp).order_by("pk")
        return (
            self.scoped()
            .annotate(**profiles.annotated("scim_identity"))
            .prefetch_related(Prefetch("groups", queryset=managed, to_attr="scim_groups"))
            .order_by("pk")
        )

    def listing(self, start: int, count: int | None) -> tuple[int, list[Any]]:
        """Every user, in pk order: their number and one page (``count`` None: all).

        Counted and paged on the identity table's indexes (one identity per
        user and IdP; the (user, IdP) unique index is in pk order), then only
        the page's users are read: a page deep into 100,000 users costs
        about what the first one does.
        """
        identities = FederatedIdentity.objects.filter(idp_entity_id=self.scope.idp)
        total = identities.count()
        stop = total if count is None else start + count
        ids = list(identities.order_by("user_id").values_list("user_id", flat=True)[start:stop]) if stop > start else []
        found = {user.pk: user for user in self.queryset().filter(pk__in=ids)} if ids else {}
        return total, [found[pk] for pk in ids if pk in found]

    def columns(self) -> dict[tuple[str, str | None], Target]:
        columns: dict[tuple[str, str | None], Target] = {
            ("id", None): self._id_filter,
            ("username", None): self._upper_filter(self.username_field, "scim_username_upper"),
            ("active", None): Column("is_active", kind="boolean"),
            ("emails", "value"): self._upper_filter(self.email_field, "scim_email_upper"),
            ("emails", "type"): Constant(EMAIL_TYPE),
            ("emails", "primary"): Constant(True),
            ("externalid", None): self._external_id_filter,
            ("displayname", None): Column(f"{profiles.PREFIX}display_name"),
            ("manager", None): Column(f"{profiles.PREFIX}manager", case_exact=True),
            ("manager", "value"): Column(f"{profiles.PREFIX}manager", case_exact=True),
        }
        for field, name in profiles.ENTERPRISE_FIELDS.items():
            columns[(name.lower(), None)] = Column(f"{profiles.PREFIX}{field}")
        for attr, field in self.name_fields.items():
            columns[("name", attr.replace("_", ""))] = Column(field)
        return columns

    @staticmethod
    def _upper_filter(field: str, upper: str) -> Any:
        """``eq``/``ne`` as ``UPPER(field) = 'VALUE'`` (an index look-up); other operators on the field."""

        def compare(op: Any, value: Any) -> Q:
            if op in ("eq", "ne") and isinstance(value, str):
                q = Q(**{upper: value.upper()})
                return ~q if op == "ne" else q
            return compare_column(Column(field), op, value)

        return compare

    def _external_id_filter(self, op: Any, value: Any) -> Q:
        stored = compare_column(Column(f"{profiles.PREFIX}external_id", case_exact=True), op, value)
        if self.subject_attribute != conf.SUBJECT_EXTERNAL_ID:
            return stored
        # The subject is the externalId whenever the client sent one, so an
        # equality is the (IdP, subject) index look-up; identities without a
        # profile (made by a SAML login) report their subject as externalId.
        legacy = Q(**{f"{profiles.EXISTS}__isnull": True})
        if op == "eq" and isinstance(value, str):
            return Q(scim_subject=value) & (legacy | Q(**{f"{profiles.PREFIX}external_id": value}))
        return stored | (legacy & compare_column(Column("scim_subject", case_exact=True), op, value))

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
            "externalId": self.external_id_of(user),
            "active": bool(getattr(user, "is_active", True)),
            "emails": [{"value": email, "type": EMAIL_TYPE, "primary": True}] if email else None,
            "groups": [
                {"value": str(g.pk), "$ref": f"Groups/{g.pk}", "display": g.name, "type": "direct"}
                for g in getattr(user, "scim_groups", [])
            ]
            or None,
            **profiles.attributes(profiles.stored(user)),
        }
        names = {attr: getattr(user, f) for attr, f in self.name_fields.items() if getattr(user, f)}
        if names:
            data["name"] = {("givenName" if a == "given_name" else "familyName"): v for a, v in names.items()}
        data = {k: v for k, v in data.items() if v is not None}
        created = getattr(user, "date_joined", None) or getattr(user, "scim_bound_at", None)
        return finish(user_model().model_validate(data), "User", created, version_of(data))

    def version(self, user: Any) -> str | None:
        meta = self.to_resource(user).meta
        return meta.version if meta is not None else None

    def external_id_of(self, user: Any) -> str | None:
        """The client's externalId; for an identity without a SCIM profile, its subject in externalId mode."""
        if getattr(user, profiles.EXISTS, None) is not None:
            return getattr(user, f"{profiles.PREFIX}external_id", None) or None
        return user.scim_subject if self.subject_attribute == conf.SUBJECT_EXTERNAL_ID else None

    # -- input ---------------------------------------------------------------

    def read_input(self, resource: InputResource) -> UserInput:
        """Validate a User resource into model fields, the subject, ``active`` and the SCIM profile."""
        fields: dict[str, str] = {}
        user_name = resource.user_name or ""
        username_max = max_length(self.model, self.username_field)
        try:
            if self.username_field == self.email_field:
                fields[self.username_field] = check_email(user_name, "userName", username_max)
            else:
                fields[self.username_field] = check_username(user_name, "userName", username_max)
        except Denied as denial:
            raise invalid(denial, "userName") from None
        if self.email_field != self.username_field and has_field(self.model, self.email_field):
            fields[self.email_field] = self._email(resource)
        notes: list[str] = []
        for attr, field in self.name_fields.items():
            value = getattr(resource.name, attr, None) if resource.name is not None else None
            try:
                fields[field] = normalise_display(value or "", f"name.{attr}", max_length(self.model, field), notes)
            except Denied as denial:
                raise invalid(denial, "name") from None
        external_id = self._external_id(resource)
        subject = self._subject(external_id, fields[self.username_field])
        return UserInput(fields, subject, resource.active, profiles.read(resource, external_id))

    def _email(self, resource: InputResource) -> str:
        emails = [e for e in resource.emails or [] if e.value]
        if not emails:
            return ""
        chosen = next((e for e in emails if e.primary), None) or next(
            (e for e in emails if (e.type or "").lower() == EMAIL_TYPE), emails[0]
        )
        try:
            return check_email(chosen.value, "emails.value", max_length(self.model, self.email_field))
        except Denied as denial:
            raise invalid(denial, "emails") from None

    @staticmethod
    def _external_id(resource: InputResource) -> str:
        if not resource.external_id:
            return ""
        try:
            return check_identifier(resource.external_id, "externalId", SUBJECT_MAX_LENGTH)
        except Denied as denial:
            raise invalid(denial, "externalId") from None

    def _subject(self, external_id: str, user_name: str) -> str:
        if self.subject_attribute == conf.SUBJECT_USERNAME:
            return user_name
        if external_id:
            return external_id
        if conf.username_fallback(self.scope.idp):
            return user_name
        raise InvalidValueException(
            detail="externalId is required: it must equal the person's SAML subject "
            "(or bind users by userName: SCIM_SUBJECT_ATTRIBUTE, SCIM_USERNAME_FALLBACK)."
        )

    def _check_unique(self, wanted: UserInput, user: Any = None) -> None:
        others = self.model._default_manager.exclude(pk=user.pk) if user is not None else self.model._default_manager
        username = wanted.fields[self.username_field]
        if others.filter(**{f"{self.username_field}__iexact": username}).exists():
            raise UniquenessException(detail="userName is already taken.")
        identities = FederatedIdentity.objects.filter(idp_entity_id=self.scope.idp, subject=wanted.subject)
        if user is not None:
            identities = identities.exclude(user=user)
        if identities.exists():
            raise UniquenessException(detail="The person's subject is already bound to another user.")

    # -- writing -------------------------------------------------------------

    def create(self, resource: Resource[Any]) -> Resource[Any]:
        wanted = self.read_input(resource)
        self._check_unique(wanted)
        active = True if wanted.active is None else wanted.active
        try:
            with transaction.atomic():
                user = accounts.create_user(self.model, wanted.fields, is_active=active)
                lifecycle.start(user, active=active, source=rules.SCIM, created_by="scim", actor=self.scope.client.name)
                identity = accounts.bind(
                    user, self.scope.idp, wanted.subject, asserted=False, request=self.scope.request
                )
                profiles.save(identity.pk, wanted.profile)
        except IntegrityError:
            raise UniquenessException(detail="The user conflicts with an existing one.") from None
        diff: dict[str, list[Any]] = {name: [None, value] for name, value in wanted.fields.items() if value}
        diff.update(profiles.diff({}, wanted.profile))
        diff["is_active"] = [None, user.is_active]
        self.scope.record(EventKind.CREATED, user, subject=wanted.subject, diff=diff, message="created over SCIM")
        return self.to_resource(self.get_user(str(user.pk)))

    def update(self, resource: Resource[Any], expected_version: str | None) -> Resource[Any]:
        user = self.get_user(str(resource.id), lock=True)
        if expected_version is not None and self.version(user) != expected_version:
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
        lifecycle.touch_scim(user)
        return self.to_resource(self.get_user(str(user.pk)))

    def _apply(self, user: Any, wanted: UserInput, diff: dict[str, Any]) -> None:
        old_subject = user.scim_subject
        accounts.update_user(user, {name: value for name, (_, value) in diff.items()})
        if wanted.subject != old_subject:
            accounts.rebind(user, self.scope.idp, wanted.subject)
            diff["subject"] = [old_subject, wanted.subject]
        changed = profiles.diff(profiles.stored(user), wanted.profile)
        if changed or getattr(user, profiles.EXISTS, None) is None:
            profiles.save(user.scim_identity_pk, wanted.profile)
        diff.update(changed)
        if diff:
            self.scope.record(EventKind.UPDATED, user, subject=wanted.subject, diff=diff, message="updated over SCIM")

    def _apply_active(self, user: Any, active: bool | None, subject: str) -> None:
        if active is not None:
            self.transition(user, rules.SCIM_ACTIVATE if active else rules.SCIM_DEACTIVATE, subject)

    def transition(self, user: Any, trigger: str, subject: str, reason: str = "") -> None:
        """The lifecycle rule for ``trigger`` (SCIM never approves a pending account; see saml_jit.lifecycle)."""
        context = lifecycle.Context(
            actor=self.scope.client.name,
            idp_entity_id=self.scope.idp,
            request=self.scope.request,
            reason=reason,
            fields={"subject": subject},
        )
        lifecycle.transition(user, trigger, context)

    def delete(self, resource_id: str) -> None:
        user = self.get_user(resource_id, lock=True)
        if conf.hard_delete():
            self.scope.record(EventKind.DELETED, user, subject=user.scim_subject, message="deleted over SCIM")
            # The groups lose a member: their versions (ETags) move on.
            ScimGroup.objects.filter(group__user=user, idp_entity_id=self.scope.idp).update(
                revision=F("revision") + 1, modified_at=timezone.now()
            )
            user.delete()
            return
        self.transition(user, rules.SCIM_DEACTIVATE, user.scim_subject, reason="scim_delete")
        lifecycle.touch_scim(user)
