"""Fixtures shared by the end-to-end tests: a browser-like SAML login."""

from __future__ import annotations

import base64
import re
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, urlparse

import pytest
from django.test import Client
from django.urls import reverse
from saml2 import samlp
from saml2.s_utils import decode_base64_and_inflate

from saml_jit.testing.idp import ATTRIBUTE_URIS, TestIdP
from tests.federation import ACS_URL, FRIENDLY_NAMES, IDP_A, SP_ENTITY_ID


def person(
    email: str | None = "alice@example.org",
    given_name: str | None = "Alice",
    surname: str | None = "Liddell",
    **extra: Iterable[str],
) -> dict[str, list[str]]:
    """Attributes as a Shibboleth-style IdP sends them (URI names)."""
    attributes: dict[str, list[str]] = {}
    for friendly, value in (("mail", email), ("givenName", given_name), ("sn", surname)):
        if value is not None:
            attributes[ATTRIBUTE_URIS[friendly]] = [value]
    for name, values in extra.items():
        attributes[ATTRIBUTE_URIS.get(name, name)] = list(values)
    return attributes


@dataclass
class Browser:
    """A browser signing in through the real login and ACS views."""

    client: Client

    def start_login(self, idp: TestIdP = IDP_A, next_url: str = "/") -> str:
        """GET the SP's login view; return the ID of the AuthnRequest it sent."""
        response = self.client.get(reverse("saml2_login"), {"idp": idp.entity_id, "next": next_url})
        if response.status_code == 302:  # HTTP-Redirect binding: deflated
            query = parse_qs(urlparse(response["Location"]).query)
            xml = decode_base64_and_inflate(query["SAMLRequest"][0])
        else:  # HTTP-POST binding: an auto-submitting form
            assert response.status_code == 200, response.content[:500]
            match = re.search(rb'name="SAMLRequest" value="([^"]+)"', response.content)
            assert match, response.content[:500]
            xml = base64.b64decode(match.group(1))
        return samlp.authn_request_from_string(xml).id

    def answered_login(self, name_id: str, **kwargs) -> dict[str, str]:
        """Start a login at IdP A; return its signed answer for ``name_id`` (not posted yet).

        The person's email is ``<name_id>@example.org`` and uid ``name_id``;
        ``kwargs`` go to ``TestIdP.post_data`` (e.g. ``encrypt_for_cert``).
        """
        request_id = self.start_login(IDP_A)
        return IDP_A.post_data(
            sp_entity_id=SP_ENTITY_ID,
            acs_url=ACS_URL,
            name_id=name_id,
            attributes=person(email=f"{name_id}@example.org", uid=[name_id]),
            in_response_to=request_id,
            **kwargs,
        )

    def post_response(self, idp: TestIdP = IDP_A, relay_state: str | None = None, **kwargs):
        kwargs.setdefault("sp_entity_id", SP_ENTITY_ID)
        kwargs.setdefault("acs_url", ACS_URL)
        kwargs.setdefault("friendly_names", FRIENDLY_NAMES)
        data = idp.post_data(**kwargs)
        if relay_state is not None:
            data["RelayState"] = relay_state
        return self.client.post(reverse("saml2_acs"), data)

    def login(
        self,
        idp: TestIdP = IDP_A,
        name_id: str = "subject-alice-0001",
        attributes: Mapping[str, Iterable[str]] | None = None,
        **kwargs,
    ):
        """A complete SP-initiated login; returns the ACS response."""
        request_id = self.start_login(idp)
        return self.post_response(
            idp,
            name_id=name_id,
            attributes=person() if attributes is None else attributes,
            in_response_to=request_id,
            **kwargs,
        )


@pytest.fixture
def browser(client: Client) -> Browser:
    return Browser(client)


@pytest.fixture(params=["xmlsec", "xmlsec1"])
def crypto_backend(request, monkeypatch):
    """A case run with both crypto backends: in-process (``xmlsec``) and pysaml2's ``xmlsec1`` program."""
    if request.param == "xmlsec1" and not shutil.which("xmlsec1"):
        pytest.skip("the xmlsec1 program is not installed")
    monkeypatch.setattr("saml_jit.saml.config.crypto_backend", lambda: request.param)
    return request.param
