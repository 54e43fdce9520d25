"""A user's SCIM profile: ``displayName`` and the enterprise extension attributes, as the client set them.

They are not account fields: they live on :class:`~saml_jit.models.ScimProfile`
(one per identity, so each IdP keeps its own), are validated like SAML
display attributes (control characters refused, whitespace normalised,
lengths bounded) and are returned as stored — a client that compares what it
sent with what it reads back (Entra ID does, every cycle) finds nothing to
resend. ``manager`` is kept as the id the client sent, even for a manager it
has not provisioned yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db.models import F
from django.utils import timezone

from ..exceptions import Denied
from ..mapping import check_identifier, normalise_display
from ..models import SCIM_VALUE_MAX_LENGTH, SUBJECT_MAX_LENGTH, ScimProfile
from .common import InputResource, invalid
from .resources import ENTERPRISE, enterprise_model

#: Profile field -> the SCIM attribute it holds (event diffs use these names).
DISPLAY_FIELDS = {"display_name": "displayName"}
ENTERPRISE_FIELDS = {
    "employee_number": "employeeNumber",
    "cost_center": "costCenter",
    "organization": "organization",
    "division": "division",
    "department": "department",
}
MANAGER_FIELD = "manager"
#: Every stored field, the client's own ``externalId`` included (kept even when ``userName`` is the binding).
FIELDS = {**DISPLAY_FIELDS, **ENTERPRISE_FIELDS, MANAGER_FIELD: MANAGER_FIELD, "external_id": "externalId"}
#: What the users queryset annotates each profile field as.
PREFIX = "scim_p_"
#: The annotation that is None for an identity without a profile (made by SAML, or before 0010).
EXISTS = f"{PREFIX}exists"


def annotated(relation: str) -> dict[str, F]:
    """The profile's fields, and whether there is one, as annotations of users through ``relation``."""
    names = {f"{PREFIX}{field}": F(f"{relation}__scim_profile__{field}") for field in FIELDS}
    return {**names, EXISTS: F(f"{relation}__scim_profile__identity_id")}


def stored(user: Any) -> dict[str, str]:
    """The profile values annotated on ``user`` ("" for none)."""
    return {field: getattr(user, f"{PREFIX}{field}", None) or "" for field in FIELDS}


def read(resource: InputResource, external_id: str) -> dict[str, str]:
    """The profile values a User resource carries, validated ("" for an absent one)."""
    notes: list[str] = []
    values = {"display_name": _display(resource.display_name, "displayName", notes)}
    extension = getattr(resource, enterprise_model().__name__, None)
    for field, name in ENTERPRISE_FIELDS.items():
        values[field] = _display(getattr(extension, field, None), name, notes)
    manager = getattr(getattr(extension, "manager", None), "value", None)
    try:
        values[MANAGER_FIELD] = check_identifier(manager, "manager.value", SUBJECT_MAX_LENGTH) if manager else ""
    except Denied as denial:
        raise invalid(denial, "manager") from None
    values["external_id"] = external_id
    return values


def _display(value: Any, label: str, notes: list[str]) -> str:
    try:
        return normalise_display(str(value or ""), label, SCIM_VALUE_MAX_LENGTH, notes)
    except Denied as denial:
        raise invalid(denial, label) from None


def attributes(values: Mapping[str, str]) -> dict[str, Any]:
    """The User attributes of stored profile values: ``displayName`` and the enterprise extension."""
    data: dict[str, Any] = {}
    if values.get("display_name"):
        data["displayName"] = values["display_name"]
    extension: dict[str, Any] = {name: values[field] for field, name in ENTERPRISE_FIELDS.items() if values.get(field)}
    if values.get(MANAGER_FIELD):
        extension["manager"] = {"value": values[MANAGER_FIELD], "$ref": f"Users/{values[MANAGER_FIELD]}"}
    if extension:
        data[ENTERPRISE] = extension
    return data


def diff(before: Mapping[str, str], after: Mapping[str, str]) -> dict[str, list[str | None]]:
    """``{SCIM attribute: [old, new]}`` for the values that change (None for none)."""
    return {
        FIELDS[field]: [before.get(field) or None, value or None]
        for field, value in after.items()
        if (before.get(field) or "") != value
    }


def save(identity_pk: Any, values: Mapping[str, str]) -> None:
    """Write the profile of an identity (created on its first write)."""
    ScimProfile.objects.update_or_create(identity_id=identity_pk, defaults={**values, "modified_at": timezone.now()})
