"""The floor of a SAML login: the work no implementation can skip, measured piece by piece.

* a Django POST through the same middleware that ends in ``auth.login`` (a
  session cycled and saved, ``last_login`` updated), no SAML at all;
* both signatures (Response and Assertion) verified with libxmlsec1 on one
  parsed tree (plus, for an encrypted assertion, its decryption on that tree);
* libxml2 validation of the document against the SAML schema;
* the identity and event writes (first login: user, identity, event in one
  transaction; returning: the identity's last assertion and the event).

Each piece is timed on its own (CPU and wall) for every login of the
scenario; the floor is their sum.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

import xmlsec
from django.contrib import auth
from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.test import Client
from django.utils import timezone
from lxml import etree

from saml_jit.models import FederatedIdentity, ProvisioningEvent
from saml_jit.saml import schema
from tests.federation import IDP_A, SP_KEY

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
XENC = "http://www.w3.org/2001/04/xmlenc#"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, collect_ids=False)
_keys: dict[str, Any] = {}


def start_view(request: HttpRequest) -> HttpResponse:
    """Untimed: give the browser a session, as the SAML login view does."""
    request.session["floor"] = 1
    return HttpResponse("ok")


def login_view(request: HttpRequest) -> HttpResponse:
    """Timed: the Django part of any login (look the user up, ``auth.login``, redirect)."""
    user = get_user_model().objects.get(username=request.POST["username"])
    auth.login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return HttpResponseRedirect("/")


def _key(name: str) -> Any:
    if name not in _keys:
        if name == "idp":
            _keys[name] = xmlsec.Key.from_file(IDP_A.cert_file, xmlsec.constants.KeyDataFormatCertPem)
        else:
            manager = xmlsec.KeysManager()
            manager.add_key(xmlsec.Key.from_file(str(SP_KEY), xmlsec.constants.KeyDataFormatPem))
            _keys[name] = manager
    return _keys[name]


def _verify(element: Any) -> None:
    ctx = xmlsec.SignatureContext()
    ctx.key = _key("idp")
    ctx.register_id(element, "ID")
    ctx.verify(element.find(f"{{{DS}}}Signature"))


def verify_signatures(data: dict[str, str]) -> None:
    """Parse once; verify the Response's and the Assertion's signatures (decrypting first if need be)."""
    root = etree.fromstring(base64.b64decode(data["SAMLResponse"]), _PARSER)
    _verify(root)
    encrypted = root.find(f"{{{SAML}}}EncryptedAssertion/{{{XENC}}}EncryptedData")
    if encrypted is not None:
        xmlsec.EncryptionContext(_key("sp")).decrypt(encrypted)
    assertion = root.find(f"{{{SAML}}}Assertion")
    if assertion is None:
        assertion = root.find(f"{{{SAML}}}EncryptedAssertion/{{{SAML}}}Assertion")
    _verify(assertion)


def validate_schema(data: dict[str, str]) -> None:
    root = etree.fromstring(base64.b64decode(data["SAMLResponse"]), _PARSER)
    validator = schema._schema()
    if validator is None or not validator.validate(root):
        raise SystemExit("floor: the response does not validate against the SAML schema")


def write_first(name: str) -> None:
    with transaction.atomic():
        user = get_user_model().objects.create(username=name, email=f"{name}@example.org")
        FederatedIdentity.objects.create(
            user=user, idp_entity_id=IDP_A.entity_id, subject=name, last_asserted_at=timezone.now()
        )
        ProvisioningEvent.objects.create(kind="created", idp_entity_id=IDP_A.entity_id, subject=name, user=user)


def write_returning(name: str) -> None:
    with transaction.atomic():
        identity = FederatedIdentity.objects.select_related("user").get(idp_entity_id=IDP_A.entity_id, subject=name)
        FederatedIdentity.objects.filter(pk=identity.pk).update(last_asserted_at=timezone.now(), last_assertion_id="x")
        ProvisioningEvent.objects.create(
            kind="updated", idp_entity_id=IDP_A.entity_id, subject=name, user=identity.user
        )


def django_login(name: str) -> Callable[[], None]:
    """A prepared browser (with a session) whose timed step is the floor login POST."""
    client = Client()
    client.get("/floor/start/")

    def post() -> None:
        response = client.post("/floor/login/", {"username": name})
        if response.status_code != 302:
            raise SystemExit(f"floor login failed: {response.status_code}")

    return post


def timed(step: Callable[[], None]) -> tuple[float, float]:
    """(CPU ms, wall ms) of one call."""
    cpu, wall = time.process_time(), time.perf_counter()
    step()
    return (time.process_time() - cpu) * 1000, (time.perf_counter() - wall) * 1000
