"""pysaml2 objects -> :class:`~saml_jit.saml.data.AssertionData`.

Values are read from the parsed assertion elements, not from pysaml2's
``ava`` (which strips whitespace, converts names through attribute maps and
silently drops names it has no map for when ``allow_unknown_attributes`` is
off).
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any, cast

from saml2.saml import SCM_BEARER
from saml2.time_util import str_to_time

from .data import AssertionData, Authn


def saml_datetime(value: str | None) -> datetime | None:
    """An xs:dateTime as pysaml2 reads it, in UTC; None for no value."""
    if not value:
        return None
    # pysaml2 is untyped: str_to_time() returns a struct_time for a non-empty value.
    return datetime(*cast(time.struct_time, str_to_time(value))[:6], tzinfo=timezone.utc)


def _not_on_or_after(assertion: Any) -> datetime | None:
    for confirmation in assertion.subject.subject_confirmation or []:
        data = confirmation.subject_confirmation_data
        if confirmation.method == SCM_BEARER and data is not None and data.not_on_or_after:
            return saml_datetime(data.not_on_or_after)
    return None


def authn_of(assertion: Any) -> Authn:
    """The first AuthnStatement (a bearer SSO assertion carries one), as plain data."""
    statements = assertion.authn_statement or []
    if not statements:
        return Authn()
    statement = statements[0]
    context = statement.authn_context
    class_ref = context.authn_context_class_ref if context is not None else None
    return Authn(
        instant=saml_datetime(statement.authn_instant),
        session_not_on_or_after=saml_datetime(statement.session_not_on_or_after),
        context_class=((class_ref.text or "").strip() if class_ref is not None else ""),
        session_index=statement.session_index or "",
    )


def _attributes(assertion: Any) -> tuple[dict[str, tuple[str, ...]], frozenset[str]]:
    """Attributes keyed by Name and FriendlyName; names seen in two elements are duplicates."""
    attributes: dict[str, tuple[str, ...]] = {}
    seen: set[str] = set()
    duplicates: set[str] = set()
    for statement in assertion.attribute_statement or []:
        for attribute in statement.attribute or []:
            values = tuple(value.text or "" for value in attribute.attribute_value or [])
            names = {attribute.name, attribute.friendly_name} - {None, ""}
            for name in names:
                if name.casefold() in seen:
                    duplicates.add(name)
                seen.add(name.casefold())
                attributes[name] = attributes.get(name, ()) + values
    return attributes, frozenset(duplicates)


def issuer_of(response: Any) -> str:
    """The Response's Issuer, or the assertion's when the Response names none (SAML Profiles §4.1.4.2).

    Only for a response :func:`saml_jit.saml.response.verify_response` accepted.
    """
    issuer = response.assertion.issuer
    return response.issuer() or ((issuer.text or "").strip() if issuer is not None else "")


def from_response(response: Any) -> AssertionData:
    """Build assertion data from a validated ``saml2.response.AuthnResponse``."""
    assertion = response.assertion
    name_id = response.name_id
    attributes, duplicates = _attributes(assertion)
    return AssertionData(
        idp_entity_id=issuer_of(response),
        name_id=name_id.text if name_id is not None else None,
        name_id_format=(name_id.format or "") if name_id is not None else "",
        assertion_id=assertion.id or "",
        attributes=attributes,
        duplicate_names=duplicates,
        not_on_or_after=_not_on_or_after(assertion),
        in_response_to=response.in_response_to,
        authn=authn_of(assertion),
    )


def from_session_info(session_info: dict[str, Any], assertion_info: dict[str, Any] | None) -> AssertionData:
    """Fallback for stock djangosaml2 views: what ``session_info`` carries.

    Prefer saml_jit's ACS view, which reads the values as the XML said them.
    """
    name_id = session_info.get("name_id")
    ava = session_info.get("ava") or {}
    return AssertionData(
        idp_entity_id=session_info.get("issuer") or "",
        name_id=getattr(name_id, "text", None),
        name_id_format=getattr(name_id, "format", "") or "",
        assertion_id=(assertion_info or {}).get("assertion_id") or "",
        attributes={name: tuple(values) for name, values in ava.items()},
    )
