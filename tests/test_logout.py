"""Single logout on both bindings: no forced logout by link or form, no unsolicited or replayed answers.

The LogoutRequests and LogoutResponses are built by pysaml2's own IdP
(``Server.create_logout_request``/``create_logout_response`` + ``apply_binding``)
and sent to saml_jit's ``/saml2/ls/`` (HTTP-Redirect) and ``/saml2/ls/post/``
(HTTP-POST) by a browser that signed in for real. Stock djangosaml2's
LogoutView (``/stock-saml2/ls/``) gets the same kind of message for
comparison: it accepts an unsigned one and logs the person out.
"""

from __future__ import annotations

import base64
import copy
import functools
import re
import shutil
import zlib
from urllib.parse import parse_qs, urlparse

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, saml, samlp
from saml2.config import SPConfig
from saml2.metadata import entity_descriptor
from saml2.s_utils import decode_base64_and_inflate
from saml2.time_util import instant
from saml2.xmldsig import DIGEST_SHA1, DIGEST_SHA256, SIG_RSA_SHA1, SIG_RSA_SHA256

from saml_jit.models import EventKind, ProvisioningEvent
from saml_jit.testing.idp import TestIdP
from tests.conftest import person
from tests.federation import IDP_A, IDP_B, ROGUE_CERT, ROGUE_KEY, SP_ENTITY_ID

pytestmark = pytest.mark.django_db

User = get_user_model()
SUBJECT = "subject-alice-0001"
SLO_URL = "http://testserver/saml2/ls/"


@functools.cache
def _sp_metadata() -> str:
    return str(entity_descriptor(SPConfig().load(copy.deepcopy(django_settings.SAML_CONFIG))))


@functools.cache
def logout_idp(key_file: str = IDP_A.key_file, cert_file: str = IDP_A.cert_file, entity_id: str = IDP_A.entity_id):
    """IdP A (or a signer claiming to be it) that knows the SP, to send it logout requests."""
    base = IDP_A.base_url if entity_id == IDP_A.entity_id else IDP_B.base_url
    return TestIdP(entity_id, key_file, cert_file, base, sp_metadata=_sp_metadata())


ROGUE = (str(ROGUE_KEY), str(ROGUE_CERT))


def logout_request_path(
    idp: TestIdP | None = None,
    *,
    sign: bool = True,
    sigalg: str = SIG_RSA_SHA256,
    name_id: str = SUBJECT,
    relay_state: str = "",
) -> str:
    """A LogoutRequest for ``name_id`` over HTTP-Redirect: the path and query to GET."""
    idp = idp or logout_idp()
    _, request = idp.server.create_logout_request(
        destination=SLO_URL,
        issuer_entity_id=SP_ENTITY_ID,
        name_id=saml.NameID(
            text=name_id,
            format=saml.NAMEID_FORMAT_PERSISTENT,
            name_qualifier=idp.entity_id,
            sp_name_qualifier=SP_ENTITY_ID,
        ),
        sign=False,
    )
    info = idp.server.apply_binding(
        BINDING_HTTP_REDIRECT, str(request), SLO_URL, relay_state, sign=sign, sigalg=sigalg if sign else None
    )
    location = urlparse(dict(info["headers"])["Location"])
    return f"{location.path}?{location.query}"


def stock_path(path: str) -> str:
    return path.replace("/saml2/ls/", reverse("stock_ls"), 1)


@pytest.fixture
def signed_in(browser):
    response = browser.login(name_id=SUBJECT, attributes=person())
    assert response.status_code == 302, response.content[:2000]
    user = User.objects.get()
    assert browser.client.session["_auth_user_id"] == str(user.pk)
    return user


def assert_logout_refused(browser, user, response, code, status=403):
    assert response.status_code == status, response.content[:2000]
    assert f"<code>{code}</code>".encode() in response.content
    # Still signed in.
    assert browser.client.session.get("_auth_user_id") == str(user.pk)
    new = list(ProvisioningEvent.objects.exclude(kind=EventKind.CREATED))
    assert [(e.kind, e.reason_code) for e in new] == [(EventKind.REJECTED, code)]


def stock_logout(browser, path: str):
    """The same kind of request to stock djangosaml2's LogoutView."""
    if not shutil.which("xmlsec1"):
        pytest.skip("stock djangosaml2 needs the xmlsec1 program for the comparison")
    browser.client.raise_request_exception = False
    try:
        return browser.client.get(stock_path(path))
    finally:
        browser.client.raise_request_exception = True


def test_unsigned_logout_request_refused(browser, signed_in):
    path = logout_request_path(sign=False)
    response = browser.client.get(path)
    assert_logout_refused(browser, signed_in, response, "logout_unsigned")
    # Stock: the unsigned request logs the person out (forced logout by link).
    stock = stock_logout(browser, path)
    assert stock.status_code == 302, stock.content[:500]
    assert "_auth_user_id" not in browser.client.session


def test_logout_request_signed_with_rogue_key_refused(browser, signed_in):
    path = logout_request_path(logout_idp(*ROGUE))
    response = browser.client.get(path)
    assert_logout_refused(browser, signed_in, response, "logout_bad_signature")
    stock = stock_logout(browser, path)
    assert "_auth_user_id" not in browser.client.session, stock.status_code


def test_logout_request_signed_by_another_trusted_idp_refused(browser, signed_in):
    # IdP B's key, IdP A's name as Issuer: only A's metadata certificates count.
    path = logout_request_path(logout_idp(IDP_B.key_file, IDP_B.cert_file))
    response = browser.client.get(path)
    assert_logout_refused(browser, signed_in, response, "logout_bad_signature")


def test_logout_request_with_tampered_query_refused(browser, signed_in):
    path = logout_request_path(relay_state="/after/")
    response = browser.client.get(path.replace("RelayState=%2Fafter%2F", "RelayState=%2Fother%2F"))
    assert_logout_refused(browser, signed_in, response, "logout_bad_signature")


def test_logout_request_from_unknown_issuer_refused(browser, signed_in):
    stranger = logout_idp(*ROGUE, entity_id="https://stranger.example/idp")
    response = browser.client.get(logout_request_path(stranger))
    assert_logout_refused(browser, signed_in, response, "unknown_issuer")


def test_signed_logout_request_logs_out(browser, signed_in):
    response = browser.client.get(logout_request_path(relay_state="/bye/"))
    assert response.status_code == 302, response.content[:2000]
    # The SP answers the IdP with a LogoutResponse on IdP A's logout endpoint.
    assert response["Location"].startswith(IDP_A.slo_url)
    assert "SAMLResponse=" in response["Location"]
    assert "_auth_user_id" not in browser.client.session
    assert not ProvisioningEvent.objects.filter(kind=EventKind.REJECTED).exists()


def test_sha1_logout_request_refused(browser, signed_in):
    path = logout_request_path(sigalg=SIG_RSA_SHA1)
    response = browser.client.get(path)
    assert_logout_refused(browser, signed_in, response, "weak_algorithm")
    stock = stock_logout(browser, path)
    assert "_auth_user_id" not in browser.client.session, stock.status_code


def test_sha1_logout_request_allowed_per_idp(browser, signed_in, settings):
    settings.SAML_JIT = {"IDPS": {IDP_A.entity_id: {"ALLOW_SHA1": True}}}
    response = browser.client.get(logout_request_path(sigalg=SIG_RSA_SHA1))
    assert response.status_code == 302, response.content[:2000]
    assert "_auth_user_id" not in browser.client.session


def test_unsigned_logout_allowed_only_when_configured(browser, signed_in, settings):
    settings.SAML_JIT = {"IDPS": {IDP_A.entity_id: {"REQUIRE_SIGNED_LOGOUT": False}}}
    response = browser.client.get(logout_request_path(sign=False))
    assert response.status_code == 302, response.content[:2000]
    assert "_auth_user_id" not in browser.client.session


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("SAMLRequest=%%%not-base64", id="not-base64"),
        pytest.param("SAMLRequest=aGVsbG8=", id="not-deflated"),
    ],
)
def test_malformed_logout_request(browser, signed_in, query):
    response = browser.client.get(f"/saml2/ls/?{query}")
    assert_logout_refused(browser, signed_in, response, "malformed_logout", status=400)


# -- both bindings ---------------------------------------------------------------

SLO_POST_URL = "http://testserver/saml2/ls/post/"
REDIRECT, POST = "redirect", "post"
BINDINGS = {REDIRECT: BINDING_HTTP_REDIRECT, POST: BINDING_HTTP_POST}


def _name_id(name_id: str = SUBJECT, idp: TestIdP | None = None) -> saml.NameID:
    return saml.NameID(
        text=name_id,
        format=saml.NAMEID_FORMAT_PERSISTENT,
        name_qualifier=(idp or IDP_A).entity_id,
        sp_name_qualifier=SP_ENTITY_ID,
    )


def send(browser, binding: str, info: dict | str):
    """Deliver what an IdP built: a path to GET (HTTP-Redirect) or form fields to POST (HTTP-POST)."""
    if binding == REDIRECT:
        return browser.client.get(info)
    return browser.client.post("/saml2/ls/post/", info)


def _bound(idp: TestIdP, binding: str, kind: str, message, *, sign: bool, sigalg: str, relay_state: str):
    destination = SLO_URL if binding == REDIRECT else SLO_POST_URL
    if binding == POST:
        fields = {kind: base64.b64encode(str(message).encode()).decode()}
        return {**fields, "RelayState": relay_state} if relay_state else fields
    info = idp.server.apply_binding(
        BINDING_HTTP_REDIRECT,
        str(message),
        destination,
        relay_state,
        response=kind == "SAMLResponse",
        sign=sign,
        sigalg=sigalg if sign else None,
    )
    location = urlparse(dict(info["headers"])["Location"])
    return f"{location.path}?{location.query}"


def logout_request(
    binding: str,
    idp: TestIdP | None = None,
    *,
    sign: bool = True,
    sigalg: str = SIG_RSA_SHA256,
    digest: str = DIGEST_SHA256,
    name_id: str = SUBJECT,
    relay_state: str = "",
    issue_instant: str | None = None,
):
    """An IdP's LogoutRequest on ``binding``: signed in the query (Redirect) or enveloped (POST)."""
    idp = idp or logout_idp()
    enveloped = sign and binding == POST and issue_instant is None
    _, request = idp.server.create_logout_request(
        destination=SLO_URL if binding == REDIRECT else SLO_POST_URL,
        issuer_entity_id=SP_ENTITY_ID,
        name_id=_name_id(name_id),
        sign=enveloped,
        sign_alg=sigalg if enveloped else None,
        digest_alg=digest if enveloped else None,
    )
    if issue_instant is not None:
        request.issue_instant = issue_instant
        if sign and binding == POST:
            request = idp.server.sign(request, sign_alg=sigalg, digest_alg=digest)
    return _bound(idp, binding, "SAMLRequest", request, sign=sign, sigalg=sigalg, relay_state=relay_state)


def logout_response(binding: str, in_response_to: str, idp: TestIdP | None = None, *, sign: bool = True):
    """An IdP's (successful) LogoutResponse to the LogoutRequest ``in_response_to``."""
    idp = idp or logout_idp()
    answered = samlp.LogoutRequest(
        id=in_response_to, issuer=saml.Issuer(text=SP_ENTITY_ID), version="2.0", issue_instant=instant()
    )
    enveloped = sign and binding == POST
    response = idp.server.create_logout_response(
        answered, bindings=[BINDINGS[binding]], sign=enveloped, sign_alg=SIG_RSA_SHA256, digest_alg=DIGEST_SHA256
    )
    return _bound(idp, binding, "SAMLResponse", response, sign=sign, sigalg=SIG_RSA_SHA256, relay_state="")


def sp_logout(browser) -> str:
    """GET ``logout/`` (signed in): the ID of the LogoutRequest the SP sends IdP A."""
    response = browser.client.get(reverse("saml2_logout"))
    assert response.status_code == 302, response.content[:2000]
    assert response["Location"].startswith(IDP_A.slo_url)
    query = parse_qs(urlparse(response["Location"]).query)
    assert "Signature" in query  # the SP signs its LogoutRequest
    return samlp.logout_request_from_string(decode_base64_and_inflate(query["SAMLRequest"][0])).id


def idp_answer_status(response) -> str:
    """The status of the LogoutResponse the SP sent back to the IdP (redirect or POST form)."""
    if response.status_code == 302:
        encoded = parse_qs(urlparse(response["Location"]).query)["SAMLResponse"][0]
        xml = decode_base64_and_inflate(encoded)
    else:
        encoded = re.search(rb'name="SAMLResponse" value="([^"]+)"', response.content).group(1)
        xml = base64.b64decode(encoded)
    code = samlp.logout_response_from_string(xml).status.status_code
    return code.status_code.value if code.status_code is not None else code.value  # the second-level code if any


def logout_events():
    return list(ProvisioningEvent.objects.filter(kind=EventKind.LOGOUT))


def assert_logged_out(browser, user, *, initiated_by: str, binding: str | None, local: bool = False):
    assert "_auth_user_id" not in browser.client.session
    [event] = logout_events()
    assert (event.user, event.idp_entity_id if not local else "") == (user, IDP_A.entity_id if not local else "")
    assert event.diff == {"binding": binding, "initiated_by": initiated_by, "local": local}
    assert not ProvisioningEvent.objects.filter(kind=EventKind.REJECTED).exists()
    return event


@pytest.mark.parametrize("binding", [REDIRECT, POST])
def test_signed_logout_request_ends_the_session_on_both_bindings(browser, signed_in, binding):
    response = send(browser, binding, logout_request(binding, relay_state="/bye/"))
    assert response.status_code in (200, 302), response.content[:2000]
    assert idp_answer_status(response) == samlp.STATUS_SUCCESS
    event = assert_logged_out(browser, signed_in, initiated_by="idp", binding=binding)
    assert event.subject == SUBJECT


@pytest.mark.parametrize("binding", [REDIRECT, POST])
def test_unsigned_logout_request_refused_on_both_bindings(browser, signed_in, binding):
    response = send(browser, binding, logout_request(binding, sign=False))
    assert_logout_refused(browser, signed_in, response, "logout_unsigned")


def stock_post(browser, data):
    if not shutil.which("xmlsec1"):
        pytest.skip("stock djangosaml2 needs the xmlsec1 program for the comparison")
    browser.client.raise_request_exception = False
    try:
        return browser.client.post(reverse("stock_ls"), data)
    finally:
        browser.client.raise_request_exception = True


def test_stock_post_binding_ends_the_session_on_an_unsigned_request(browser, signed_in):
    stock = stock_post(browser, logout_request(POST, sign=False))
    assert stock.status_code == 200, stock.content[:500]  # the LogoutResponse form, back to the IdP
    assert "_auth_user_id" not in browser.client.session


def test_stock_post_binding_answers_an_untrusted_signature_with_a_500(browser, signed_in):
    stock = stock_post(browser, logout_request(POST, logout_idp(*ROGUE)))
    assert stock.status_code == 500


@pytest.mark.parametrize("binding", [REDIRECT, POST])
@pytest.mark.parametrize(
    "signer",
    [
        pytest.param(ROGUE, id="untrusted-key"),
        pytest.param((IDP_B.key_file, IDP_B.cert_file), id="another-trusted-idp"),
    ],
)
def test_logout_request_with_a_key_not_of_its_issuer_refused(browser, signed_in, binding, signer):
    # Stock djangosaml2 answers the POST with a 500 (pysaml2's SignatureError).
    response = send(browser, binding, logout_request(binding, logout_idp(*signer)))
    assert_logout_refused(browser, signed_in, response, "logout_bad_signature")


@pytest.mark.parametrize("binding", [REDIRECT, POST])
def test_logout_request_from_an_unknown_issuer_refused_on_both_bindings(browser, signed_in, binding):
    stranger = logout_idp(*ROGUE, entity_id="https://stranger.example/idp")
    response = send(browser, binding, logout_request(binding, stranger))
    assert_logout_refused(browser, signed_in, response, "unknown_issuer")


def test_post_logout_request_signed_with_sha1_refused_unless_allowed(browser, signed_in, settings):
    data = logout_request(POST, sigalg=SIG_RSA_SHA1, digest=DIGEST_SHA1)
    assert_logout_refused(browser, signed_in, send(browser, POST, data), "weak_algorithm")
    settings.SAML_JIT = {"IDPS": {IDP_A.entity_id: {"ALLOW_SHA1": True}}}
    ProvisioningEvent.objects.filter(kind=EventKind.REJECTED).delete()
    assert send(browser, POST, data).status_code == 200
    assert "_auth_user_id" not in browser.client.session


@pytest.mark.parametrize("binding", [REDIRECT, POST])
def test_stale_logout_request_refused(browser, signed_in, binding):
    response = send(browser, binding, logout_request(binding, issue_instant="2020-01-01T00:00:00Z"))
    assert_logout_refused(browser, signed_in, response, "stale_logout", status=400)


@pytest.mark.parametrize("binding", [REDIRECT, POST])
def test_logout_request_for_another_subject_ends_nothing(browser, signed_in, binding):
    # A valid, signed request for someone else (say, the sender's own): the IdP hears UnknownPrincipal.
    response = send(browser, binding, logout_request(binding, name_id="subject-mallory-0666"))
    assert response.status_code in (200, 302), response.content[:2000]
    assert idp_answer_status(response) == samlp.STATUS_UNKNOWN_PRINCIPAL
    assert browser.client.session.get("_auth_user_id") == str(signed_in.pk)
    assert logout_events() == []


@pytest.mark.parametrize("binding", [REDIRECT, POST])
def test_unsigned_post_logout_allowed_only_when_configured_but_a_bad_signature_never(
    browser, signed_in, settings, binding
):
    settings.SAML_JIT = {"IDPS": {IDP_A.entity_id: {"REQUIRE_SIGNED_LOGOUT": False}}}
    response = send(browser, binding, logout_request(binding, logout_idp(*ROGUE)))
    assert_logout_refused(browser, signed_in, response, "logout_bad_signature")
    response = send(browser, binding, logout_request(binding, sign=False))
    assert response.status_code in (200, 302), response.content[:2000]
    assert "_auth_user_id" not in browser.client.session


def test_post_binding_needs_no_csrf_token(signed_in, browser):
    csrf_browser = type(browser)(Client(enforce_csrf_checks=True))
    csrf_browser.client.cookies = browser.client.cookies
    response = csrf_browser.client.post("/saml2/ls/post/", logout_request(POST))
    assert response.status_code == 200, response.content[:500]


# -- SP-initiated: the IdP's LogoutResponse ----------------------------------------


@pytest.mark.parametrize("binding", [REDIRECT, POST])
def test_sp_initiated_logout_and_its_answer_once(browser, signed_in, binding, settings):
    settings.LOGOUT_REDIRECT_URL = "/signed-out/"
    request_id = sp_logout(browser)
    event = assert_logged_out(browser, signed_in, initiated_by="sp", binding=REDIRECT)
    assert event.subject == SUBJECT
    answer = logout_response(binding, request_id)
    response = send(browser, binding, answer)
    assert (response.status_code, response["Location"]) == (302, "/signed-out/")
    # The same answer again: it answers nothing any more.
    response = send(browser, binding, answer)
    assert response.status_code == 400, response.content[:500]
    assert b"<code>unsolicited_logout</code>" in response.content
    assert [e.kind for e in ProvisioningEvent.objects.exclude(kind=EventKind.CREATED)] == [
        EventKind.REJECTED,
        EventKind.LOGOUT,
    ]


@pytest.mark.parametrize("binding", [REDIRECT, POST])
def test_unsolicited_logout_response_refused(browser, signed_in, binding):
    response = send(browser, binding, logout_response(binding, "_never-sent"))
    assert_logout_refused(browser, signed_in, response, "unsolicited_logout", status=400)


@pytest.mark.parametrize("binding", [REDIRECT, POST])
def test_unsigned_logout_response_refused(browser, signed_in, binding):
    request_id = sp_logout(browser)
    response = send(browser, binding, logout_response(binding, request_id, sign=False))
    assert response.status_code == 403, response.content[:500]
    assert b"<code>logout_unsigned</code>" in response.content


@pytest.mark.parametrize("binding", [REDIRECT, POST])
def test_logout_response_from_another_idp_answers_nothing(browser, signed_in, binding):
    # IdP B, correctly signed, answering the request sent to IdP A.
    request_id = sp_logout(browser)
    other = logout_idp(IDP_B.key_file, IDP_B.cert_file, IDP_B.entity_id)
    response = send(browser, binding, logout_response(binding, request_id, other))
    assert response.status_code == 400, response.content[:500]
    assert b"<code>unsolicited_logout</code>" in response.content


def test_logout_response_answering_another_browser_is_unsolicited(browser, signed_in):
    request_id = sp_logout(browser)
    response = Client().get(logout_response(REDIRECT, request_id))
    assert response.status_code == 400
    assert b"<code>unsolicited_logout</code>" in response.content


# -- SP-initiated without a SAML session --------------------------------------------


def test_local_sign_in_is_logged_out_locally(client, settings):
    # Stock djangosaml2: AttributeError in pysaml2's global_logout, a 500.
    settings.LOGOUT_REDIRECT_URL = "/signed-out/"
    admin = User.objects.create_user(**{User.USERNAME_FIELD: "admin@example.org", "password": "pw"})
    client.force_login(admin)
    response = client.get(reverse("saml2_logout"))
    assert (response.status_code, response["Location"]) == (302, "/signed-out/")
    assert "_auth_user_id" not in client.session
    [event] = logout_events()
    assert (event.user, event.diff) == (admin, {"binding": None, "initiated_by": "sp", "local": True})


def test_saml_sign_in_whose_saml_session_ended_is_logged_out_locally(browser, signed_in):
    del browser.client.cookies["saml_session"]
    response = browser.client.get(reverse("saml2_logout"))
    assert response.status_code == 302
    assert_logged_out(browser, signed_in, initiated_by="sp", binding=None, local=True)


def test_anonymous_logout_is_sent_to_sign_in(client):
    response = client.get(reverse("saml2_logout"))
    assert response.status_code == 302
    assert logout_events() == []


# -- garbage -------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


GARBAGE = {
    "empty": "",
    "not-base64": "%%% not base64 %%%",
    "non-utf8": _b64(b"\xff\xfe<samlp:LogoutRequest \xff/>"),
    "not-xml": _b64(b"hello"),
    "a": _b64(b"<a/>"),
    "nul-bytes": _b64(b"<samlp:LogoutRequest\x00 xmlns:samlp='urn:oasis:names:tc:SAML:2.0:protocol'/>"),
    "dtd": _b64(
        b'<!DOCTYPE x [<!ENTITY e "e">]><samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"/>'
    ),
    "response-as-request": _b64(b'<samlp:LogoutResponse xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"/>'),
    "no-issuer": _b64(b'<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"/>'),
}


@pytest.mark.parametrize("body", sorted(GARBAGE))
def test_garbage_posted_to_the_post_binding_is_refused_with_a_4xx(browser, signed_in, body):
    response = browser.client.post("/saml2/ls/post/", {"SAMLRequest": GARBAGE[body]})
    code = "unknown_issuer" if body == "no-issuer" else "malformed_logout"
    assert_logout_refused(browser, signed_in, response, code, status=403 if body == "no-issuer" else 400)


def test_huge_logout_message_refused_with_413(browser, signed_in):
    response = browser.client.post("/saml2/ls/post/", {"SAMLRequest": "A" * (600 * 1024)})
    assert_logout_refused(browser, signed_in, response, "malformed_logout", status=413)


def test_deflate_bomb_refused_with_413(browser, signed_in):
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = bomb.compress(b"<" + b"a" * (20 * 1024 * 1024)) + bomb.flush()
    response = browser.client.get("/saml2/ls/", {"SAMLRequest": _b64(data)})
    assert_logout_refused(browser, signed_in, response, "malformed_logout", status=413)


@pytest.mark.parametrize("data", [{}, {"SAMLRequest": "x", "SAMLResponse": "y"}], ids=["none", "both"])
def test_logout_endpoint_needs_exactly_one_message(browser, signed_in, data):
    response = browser.client.post("/saml2/ls/post/", data)
    assert_logout_refused(browser, signed_in, response, "malformed_logout", status=400)


@pytest.mark.skipif(not shutil.which("xmlsec1"), reason="needs the xmlsec1 program")
@pytest.mark.parametrize("binding", [REDIRECT, POST])
def test_the_rules_hold_with_the_xmlsec1_backend(browser, signed_in, settings, binding):
    settings.SAML_JIT = {"CRYPTO_BACKEND": "xmlsec1"}
    response = send(browser, binding, logout_request(binding, logout_idp(*ROGUE)))
    assert_logout_refused(browser, signed_in, response, "logout_bad_signature")
    response = send(browser, binding, logout_request(binding))
    assert response.status_code in (200, 302), response.content[:500]
    assert "_auth_user_id" not in browser.client.session
