"""Work bounds (:mod:`saml_jit.saml.bounds`): what a document may cost before its signature is checked.

pysaml2 builds Python objects for every element before it verifies any
signature; without bounds a 512 KB response of 8,000 unsigned
AttributeValues cost about 50 normal logins of CPU. Unit tests of the
bounded parser first, then hostile responses through the real ACS with both
crypto backends, then real IdPs' shapes that must still get in.
"""

from __future__ import annotations

import base64
import statistics
import time

import pytest
from django.contrib.auth import get_user_model

from saml_jit.models import ProvisioningEvent
from saml_jit.saml import bounds
from saml_jit.saml.decryption import MESSAGE
from saml_jit.saml.response import claimed_issuer
from saml_jit.testing import Encryption
from saml_jit.testing.hostile import (
    as_plaintext,
    nested,
    with_attribute_values,
    with_attributes,
    with_extensions,
    with_xml_attributes,
)
from tests.conftest import person
from tests.federation import IDP_A, SP_CERT
from tests.test_acs import assert_only_rejection

User = get_user_model()
LIMITS = bounds.DEFAULT_BOUNDS
GROUPS = "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"
IS_MEMBER_OF = "urn:oid:1.3.6.1.4.1.5923.1.5.1.1"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"


# ==========================================================================
# The bounded parser


def _doc(children: str, root_attributes: str = "") -> bytes:
    return f"<r{root_attributes}>{children}</r>".encode()


def test_a_plain_document_parses():
    root = bounds.parse(_doc("<a x='1'>t</a><b/>"))
    assert [child.tag for child in root] == ["a", "b"]


@pytest.mark.parametrize(
    ("at_limit", "over", "what"),
    [
        pytest.param(_doc("<a/>" * (LIMITS.elements - 1)), _doc("<a/>" * LIMITS.elements), "elements", id="elements"),
        pytest.param(
            _doc("<a>" * (LIMITS.depth - 1) + "</a>" * (LIMITS.depth - 1)),
            _doc("<a>" * LIMITS.depth + "</a>" * LIMITS.depth),
            "levels of nesting",
            id="depth",
        ),
        pytest.param(
            _doc(f"<v:AttributeValue xmlns:v='{SAML}'/>" * LIMITS.attribute_values),
            _doc(f"<v:AttributeValue xmlns:v='{SAML}'/>" * (LIMITS.attribute_values + 1)),
            "AttributeValue",
            id="attribute-values",
        ),
        pytest.param(
            _doc("", "".join(f" a{i}='x'" for i in range(LIMITS.attributes))),
            _doc("", "".join(f" a{i}='x'" for i in range(LIMITS.attributes + 1))),
            "attributes",
            id="attributes",
        ),
        pytest.param(
            _doc("", "".join(f" xmlns:n{i}='urn:{i}'" for i in range(LIMITS.attributes))),
            _doc("", "".join(f" xmlns:n{i}='urn:{i}'" for i in range(LIMITS.attributes + 1))),
            "namespace declarations",
            id="namespace-declarations",
        ),
    ],
)
def test_each_bound_holds_exactly(at_limit, over, what):
    bounds.parse(at_limit)
    with pytest.raises(bounds.TooComplex, match=what):
        bounds.parse(over)


def test_parsing_stops_at_the_first_bound():
    # The end is not even well-formed: a parser that read it all would say so.
    document = b"<r>" + b"<a/>" * 200_000 + b"<unclosed>"
    with pytest.raises(bounds.TooComplex) as raised:
        bounds.parse(document)
    assert raised.value.root is not None and raised.value.root.tag == "r"


@pytest.mark.parametrize(
    "document",
    [
        b"<!DOCTYPE r><r/>",
        b'<!DOCTYPE r [<!ENTITY a "x">]><r>&a;</r>',
        b'<!DOCTYPE r SYSTEM "http://example.invalid/r.dtd"><r/>',
        b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
    ],
    ids=["bare", "internal-entity", "external-dtd", "external-entity"],
)
def test_any_doctype_refused(document):
    with pytest.raises(bounds.DoctypeFound):
        bounds.parse(document)


@pytest.mark.parametrize("document", [b"", b"not xml", b"<r>", b"<r>&undefined;</r>", b"<a/><b/>"])
def test_not_well_formed(document):
    with pytest.raises(bounds.NotWellFormed):
        bounds.parse(document)


# ==========================================================================
# Through the ACS, both crypto backends


def hostile(browser, inflate, **kwargs):
    """An unsigned Response (anyone can send one) around a signed assertion, inflated after signing."""
    return browser.login(sign_response=False, tamper=inflate, **kwargs)


def _cpu_ms(post) -> float:
    start = time.process_time()
    post()
    return (time.process_time() - start) * 1000


def _normal_login_ms(browser) -> float:
    times = []
    for i in range(5):
        times.append(_cpu_ms(lambda i=i: browser.login(name_id=f"subject-normal-{i}")))
        browser.client.logout()
    User.objects.all().delete()
    ProvisioningEvent.objects.all().delete()
    return statistics.median(times)


@pytest.mark.django_db
def test_the_512_kb_document_of_8000_values_is_refused_cheaply(browser, crypto_backend):
    normal = _normal_login_ms(browser)
    times, responses = [], []
    for _ in range(3):
        ProvisioningEvent.objects.all().delete()
        data = browser.answered_login("subject-alice-0001", sign_response=False)
        xml = base64.b64decode(data["SAMLResponse"]).decode()
        data["SAMLResponse"] = base64.b64encode(with_attribute_values(xml, 8000).encode()).decode()
        assert 400_000 < len(data["SAMLResponse"]) <= 512 * 1024
        times.append(_cpu_ms(lambda data=data: responses.append(browser.client.post("/saml2/acs/", data))))
    event = assert_only_rejection(responses[-1], "response_too_complex", 413)
    assert event.idp_entity_id == IDP_A.entity_id  # the claimed issuer, still read within the bounds
    # Before the bounds: ~1,000 ms in-process (50x a normal login), ~2,000 ms with xmlsec1.
    assert statistics.median(times) < 10 * normal, (times, normal)


@pytest.mark.django_db
def test_the_worst_document_within_the_bounds_costs_about_ten_logins_at_most(browser, crypto_backend):
    """The most expensive shape measured (AttributeValues, then Attributes) just under the bounds.

    ``python -m bench hostile`` measures ~6x in-process, ~2x with xmlsec1; the
    margin here is for a shared machine.
    """
    normal = _normal_login_ms(browser)
    values = LIMITS.attribute_values - 10
    attributes = LIMITS.elements - 100 - values  # the minted response itself has ~70 elements

    def inflate(xml: str) -> str:
        return with_attributes(with_attribute_values(xml, values), attributes, xml_attributes=2)

    times = []
    for _ in range(3):
        ProvisioningEvent.objects.all().delete()
        times.append(_cpu_ms(lambda: assert_only_rejection(hostile(browser, inflate), "bad_signature")))
    assert statistics.median(times) < 12 * normal, (times, normal)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "inflate",
    [
        pytest.param(lambda xml: with_attribute_values(xml, LIMITS.attribute_values), id="attribute-values"),
        pytest.param(lambda xml: with_extensions(xml, LIMITS.elements), id="elements"),
        pytest.param(lambda xml: nested(xml, LIMITS.depth), id="depth"),
        pytest.param(lambda xml: with_xml_attributes(xml, LIMITS.attributes), id="attributes"),
        pytest.param(lambda xml: nested(xml, 300), id="depth-past-libxml2s-own-limit"),
        pytest.param(lambda xml: with_extensions(xml, 60_000)[:-40], id="60k-elements-truncated"),
    ],
)
def test_each_bound_refuses_at_the_acs(browser, crypto_backend, inflate):
    assert_only_rejection(hostile(browser, inflate), "response_too_complex", 413)


@pytest.mark.django_db
def test_a_signed_response_is_bounded_too(browser, crypto_backend):
    response = browser.login(tamper=lambda xml: with_attribute_values(xml, 2000))
    assert_only_rejection(response, "response_too_complex", 413)


@pytest.mark.django_db
def test_a_decrypted_assertion_is_bounded_too(browser, crypto_backend):
    """The SP's certificate is public: anyone can encrypt 5,000 values for it. Refused as any decryption failure."""
    plaintext = as_plaintext(lambda xml: with_attribute_values(xml, 5000))
    response = browser.login(sign_response=False, encrypt_for_cert=SP_CERT, encryption=Encryption(plaintext=plaintext))
    event = assert_only_rejection(response, "decryption_failed")
    assert event.message == MESSAGE


def test_claimed_issuer_of_an_over_complex_document():
    xml = IDP_A.make_response(
        sp_entity_id="http://testserver/saml2/metadata/", acs_url="http://testserver/saml2/acs/", name_id="s"
    )
    encoded = base64.b64encode(with_extensions(xml, 5000).encode()).decode()
    assert claimed_issuer(encoded) == IDP_A.entity_id
    assert claimed_issuer("A" * (512 * 1024 + 4)) == ""  # over MAX_RESPONSE_SIZE: not even decoded


# ==========================================================================
# Real IdPs still get in


@pytest.mark.django_db
def test_entra_with_150_groups_logs_in(browser, crypto_backend):
    groups = [f"{i:08x}-1111-2222-3333-444455556666" for i in range(150)]
    attributes = {**person(), GROUPS: groups, "http://schemas.microsoft.com/identity/claims/tenantid": ["t"]}
    response = browser.login(attributes=attributes, sign_response=False)  # Entra signs the assertion only
    assert response.status_code == 302, response.content[:2000]


@pytest.mark.django_db
def test_shibboleth_encrypted_with_many_attributes_logs_in(browser, crypto_backend):
    attributes = {**person(), IS_MEMBER_OF: [f"cn=group-{i},ou=groups,dc=example,dc=org" for i in range(300)]}
    attributes.update({f"urn:oid:1.3.6.1.4.1.99999.{i}": [f"value {i}", f"other {i}"] for i in range(40)})
    response = browser.login(attributes=attributes, encrypt_for_cert=SP_CERT)
    assert response.status_code == 302, response.content[:2000]


@pytest.mark.django_db
def test_900_group_values_log_in(browser, crypto_backend):
    attributes = {**person(), IS_MEMBER_OF: [f"group-{i}" for i in range(900)]}
    response = browser.login(attributes=attributes)
    assert response.status_code == 302, response.content[:2000]
