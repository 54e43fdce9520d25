"""The demo people the embedded IdP can sign in as.

Their attributes are sent with URI names and FriendlyNames, the way
Shibboleth and SAML2Int federations send them. The NameIDs are opaque and
stable (persistent), as a real IdP's would be.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from saml_jit.testing.idp import ATTRIBUTE_URIS


@dataclass(frozen=True)
class DemoPerson:
    key: str
    name_id: str
    uid: str
    email: str
    given_name: str
    surname: str
    display_name: str
    groups: tuple[str, ...] = field(default_factory=tuple)
    description: str = ""

    def attributes(self) -> dict[str, list[str]]:
        """The person's attributes keyed by URI name, as the IdP sends them."""
        attributes = {
            ATTRIBUTE_URIS["uid"]: [self.uid],
            ATTRIBUTE_URIS["mail"]: [self.email],
            ATTRIBUTE_URIS["givenName"]: [self.given_name],
            ATTRIBUTE_URIS["sn"]: [self.surname],
            ATTRIBUTE_URIS["displayName"]: [self.display_name],
        }
        if self.groups:
            attributes[ATTRIBUTE_URIS["isMemberOf"]] = list(self.groups)
        return attributes


PEOPLE: tuple[DemoPerson, ...] = (
    DemoPerson(
        key="alice",
        name_id="6a1f0c2e-3b7d-4e59-9c1a-a11ce0000001",
        uid="alice",
        email="alice@example.org",
        given_name="Alice",
        surname="Anders",
        display_name="Alice Anders",
        groups=("engineering", "admins"),
        description="Engineer and administrator (staff-like).",
    ),
    DemoPerson(
        key="bob",
        name_id="9d4e2b71-5c08-4a3f-8e6d-b0b000000002",
        uid="bob",
        email="bob@example.org",
        given_name="Bob",
        surname="Brown",
        display_name="Bob Brown",
        groups=("sales",),
        description="Sales, one group.",
    ),
    DemoPerson(
        key="carol",
        name_id="c3a01a5e-7f3b-4d2c-b1e0-ca7010000003",
        uid="carol",
        # Mixed case on purpose: IdPs really send this; the SP normalises it.
        email="Carol.Nunez@Example.ORG",
        given_name="Carol",
        surname="Nuñez",
        display_name="Carol Nuñez",
        description="No groups, non-ASCII name, mixed-case email.",
    ),
)

PEOPLE_BY_KEY: dict[str, DemoPerson] = {person.key: person for person in PEOPLE}
