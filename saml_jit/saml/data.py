"""What a validated assertion said, as plain data: the saml layer's output.

Built by :mod:`saml_jit.saml.assertions` from pysaml2's objects and read by
the pure :mod:`saml_jit.mapping`; nothing here imports pysaml2 or Django.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Authn:
    """What the assertion's AuthnStatement said: when and how the person signed in at the IdP."""

    #: AuthnInstant: when the IdP authenticated the person.
    instant: datetime | None = None
    #: SessionNotOnOrAfter: when the IdP wants the SP's session to end at the latest.
    session_not_on_or_after: datetime | None = None
    #: AuthnContextClassRef, as sent ("" when the statement had none).
    context_class: str = ""
    session_index: str = ""


@dataclass(frozen=True)
class AssertionData:
    """What a validated assertion said, as plain data.

    ``attributes`` is keyed by every name an attribute carried (its ``Name``
    and its ``FriendlyName``); values are exactly as in the XML.
    ``duplicate_names`` lists names that occurred in more than one
    ``<Attribute>`` element.
    """

    idp_entity_id: str
    name_id: str | None = None
    name_id_format: str = ""
    assertion_id: str = ""
    attributes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    duplicate_names: frozenset[str] = frozenset()
    not_on_or_after: datetime | None = None
    in_response_to: str | None = None
    authn: Authn = field(default_factory=Authn)

    def lookup(self, names: Iterable[str]) -> tuple[str | None, tuple[str, ...]]:
        """The first of ``names`` present (case-insensitively), with its values.

        Names that differ only in case ("mail" and "MAIL") are one attribute:
        their values are merged, so conflicting values are noticed rather
        than one of them silently winning.
        """
        for name in names:
            folded = name.casefold()
            keys = [key for key in self.attributes if key.casefold() == folded]
            if keys:
                return keys[0], tuple(value for key in keys for value in self.attributes[key])
        return None, ()

    def is_duplicated(self, name: str) -> bool:
        folded = name.casefold()
        return any(duplicate.casefold() == folded for duplicate in self.duplicate_names)
