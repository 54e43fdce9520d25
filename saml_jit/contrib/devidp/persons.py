"""The people the development IdP signs in as, and the edits this browser made to them.

A person is plain data: a stable persistent NameID, attributes keyed by
friendly name (``mail``, ``givenName``...) and groups. The IdP sends known
friendly names under their URI names with a FriendlyName, the way Shibboleth
and SAML2Int federations do, and groups as ``isMemberOf``.

``SAML_DEVIDP_PERSONS`` (a list of dicts with the fields of :class:`Person`)
replaces :data:`DEFAULT_PERSONS`. Edits made on the IdP's pages live in a
signed cookie of this browser only — no model, nothing shared.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from django.conf import settings
from django.core import signing

from saml_jit.testing.idp import ATTRIBUTE_URIS

COOKIE_NAME = "saml_jit_devidp"
COOKIE_SALT = "saml_jit.contrib.devidp.persons"
#: Browsers refuse cookies much over 4 kB; edits past this are refused with a message.
COOKIE_MAX = 3800
GROUPS_ATTRIBUTE = "isMemberOf"


@dataclass(frozen=True)
class Person:
    key: str
    name_id: str
    attributes: dict[str, list[str]] = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)
    description: str = ""

    @property
    def label(self) -> str:
        return (self.attributes.get("displayName") or [self.key])[0]

    def saml_attributes(self) -> dict[str, list[str]]:
        """Attributes as sent: URI names where the friendly name is known, groups as ``isMemberOf``."""
        sent = {ATTRIBUTE_URIS.get(name, name): list(values) for name, values in self.attributes.items() if values}
        if self.groups:
            sent[ATTRIBUTE_URIS[GROUPS_ATTRIBUTE]] = list(self.groups)
        return sent


def _person(key: str, name_id: str, mail: str, given: str, sn: str, groups: Iterable[str], description: str) -> dict:
    attributes = {"uid": [key], "mail": [mail], "givenName": [given], "sn": [sn], "displayName": [f"{given} {sn}"]}
    return {
        "key": key,
        "name_id": name_id,
        "attributes": attributes,
        "groups": list(groups),
        "description": description,
    }


#: alice (staff through "admins"), bob (one group), carol (no groups, non-ASCII, mixed-case email).
DEFAULT_PERSONS: list[dict[str, Any]] = [
    _person(
        "alice",
        "6a1f0c2e-3b7d-4e59-9c1a-a11ce0000001",
        "alice@example.org",
        "Alice",
        "Anders",
        ["engineering", "admins"],
        "Engineer and administrator.",
    ),
    _person("bob", "9d4e2b71-5c08-4a3f-8e6d-b0b000000002", "bob@example.org", "Bob", "Brown", ["sales"], "Sales."),
    _person(
        "carol",
        "c3a01a5e-7f3b-4d2c-b1e0-ca7010000003",
        # Mixed case on purpose: IdPs really send this; the SP normalises it.
        "Carol.Nunez@Example.ORG",
        "Carol",
        "Nuñez",
        [],
        "No groups, non-ASCII name, mixed-case email.",
    ),
]


def from_dict(data: Mapping[str, Any]) -> Person:
    attributes = {str(name): [str(v) for v in values] for name, values in dict(data.get("attributes") or {}).items()}
    return Person(
        key=str(data["key"]),
        name_id=str(data["name_id"]),
        attributes=attributes,
        groups=[str(group) for group in data.get("groups") or []],
        description=str(data.get("description") or ""),
    )


def configured() -> list[Person]:
    """The people from ``SAML_DEVIDP_PERSONS``, or the built-in three."""
    return [from_dict(data) for data in getattr(settings, "SAML_DEVIDP_PERSONS", None) or DEFAULT_PERSONS]


def read_edits(cookie: str | None) -> dict[str, Person]:
    """This browser's edited people, by key; a cookie that does not verify counts as none."""
    if not cookie:
        return {}
    try:
        raw = signing.loads(cookie, salt=COOKIE_SALT)
        return {key: from_dict(data) for key, data in dict(raw).items()}
    except (signing.BadSignature, ValueError, KeyError, TypeError, AttributeError):
        return {}


def dump_edits(edits: Mapping[str, Person]) -> str:
    return signing.dumps({key: asdict(person) for key, person in edits.items()}, salt=COOKIE_SALT, compress=True)


def people(cookie: str | None) -> list[Person]:
    """The configured people with this browser's edits applied (configured order)."""
    edits = read_edits(cookie)
    return [edits.get(person.key, person) for person in configured()]


def find(cookie: str | None, key: str) -> Person | None:
    return next((person for person in people(cookie) if person.key == key), None)


def parse_attributes(text: str) -> dict[str, list[str]]:
    """``name: value`` lines (a name may repeat for several values) → attributes; ``ValueError`` on bad lines."""
    attributes: dict[str, list[str]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise ValueError(number)
        attributes.setdefault(name.strip(), []).append(value.strip())
    return attributes


def format_attributes(attributes: Mapping[str, Iterable[str]]) -> str:
    return "\n".join(f"{name}: {value}" for name, values in attributes.items() for value in values)


def as_json(person: Person) -> str:
    """What the IdP will send for ``person``, for the pages."""
    return json.dumps(person.saml_attributes(), indent=2, ensure_ascii=False)
