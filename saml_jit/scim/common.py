"""What the SCIM users and groups adapters share: the scope, versions, ids, field facts.

Input goes through the same checks as SAML attributes
(:mod:`saml_jit.mapping`): identifiers (the subject, the username, the email)
are refused rather than altered, display fields are normalised. Every query
is scoped: users are those bound to the client's IdP by a
:class:`~saml_jit.models.FederatedIdentity`, groups those the IdP manages
(:class:`~saml_jit.models.ScimGroup`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.http import HttpRequest
from scim2_models import InvalidValueException, Meta, Resource

from .. import events
from ..exceptions import Denied
from ..models import EventSource, ScimClient

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


def version_of(data: dict[str, Any]) -> str:
    """A weak ETag of the attributes a resource is built from: changes whenever its content does."""
    content = json.dumps(data, sort_keys=True, default=str)
    return f'W/"{hashlib.sha256(content.encode()).hexdigest()[:20]}"'


def finish(
    resource: Resource[Any],
    resource_type: str,
    created: datetime | None,
    version: str,
    modified: datetime | None = None,
) -> Resource[Any]:
    """Set ``meta`` (``location`` is the service's to set, when it publishes the resource)."""
    modified = modified or created
    resource.meta = Meta(resource_type=resource_type, created=created, last_modified=modified, version=version)
    return resource


def parse_pk(model: Any, value: Any) -> Any:
    """The primary key ``value`` names, or None when it cannot be one."""
    try:
        return model._meta.pk.to_python(value)
    except (ValidationError, ValueError, TypeError):
        return None


def has_field(model: Any, name: str) -> bool:
    try:
        model._meta.get_field(name)
    except FieldDoesNotExist:
        return False
    return True


def max_length(model: Any, name: str) -> int | None:
    return getattr(model._meta.get_field(name), "max_length", None)
