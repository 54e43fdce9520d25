"""saml_jit.saml.schema: libxml2 answers for pysaml2's schema validator, never differently.

pysaml2 validates ``str(item)`` — its own serialisation of the parsed
Response or Assertion — so every document here goes through that same
round trip first. Then, for each: :func:`schema.validate` raises exactly when
pysaml2's validator does, and whatever libxml2 alone accepts
(:func:`schema.accepts_fast`) pysaml2 accepts too. The documents: the crypto
corpus, IdP-shaped responses, targeted cases where the two XSD
implementations are known to differ, and a few thousand random mutations
(element deletions, duplications, moves and insertions, attribute and text
values) of signed, assertion-only and encrypted responses.
"""

from __future__ import annotations

import base64
import copy
import random
import threading
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from lxml import etree
from saml2 import saml, samlp
from saml2.xml.schema import XMLSchemaError
from saml2.xml.schema import validate as pysaml2_validate

from saml_jit.saml import schema
from tests.federation import SP_CERT
from tests.test_crypto import CASES, mint, minted

SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
DS = "http://www.w3.org/2000/09/xmldsig#"
XSI = "http://www.w3.org/2001/XMLSchema-instance"


def as_pysaml2_validates(xml: str) -> str | None:
    """``str(item)`` as pysaml2 builds it for ``validate_doc_with_schema``; None if pysaml2 cannot parse it."""
    root = etree.fromstring(xml.encode())
    parse = samlp.response_from_string if root.tag == f"{{{SAMLP}}}Response" else saml.assertion_from_string
    try:
        item = parse(xml)
    except Exception:
        return None
    return str(item) if item is not None else None


def pysaml2_accepts(doc: str) -> bool:
    try:
        pysaml2_validate(doc)
    except XMLSchemaError:
        return False
    return True


def ours_accepts(doc: str) -> bool:
    try:
        schema.validate(doc)
    except XMLSchemaError:
        return False
    return True


def assert_same_verdict(doc: str) -> tuple[bool, bool]:
    """(pysaml2's verdict, whether libxml2 alone answered)."""
    theirs, fast = pysaml2_accepts(doc), schema.accepts_fast(doc)
    assert ours_accepts(doc) == theirs, doc
    assert not fast or theirs, f"libxml2 accepted what pysaml2 refuses:\n{doc}"
    return theirs, fast


def both_levels(xml: str) -> list[str]:
    """The Response and each Assertion in it, as pysaml2 validates them."""
    root = etree.fromstring(xml.encode())
    docs = [as_pysaml2_validates(xml)]
    for assertion in root.iter(f"{{{SAML}}}Assertion"):
        docs.append(as_pysaml2_validates(etree.tostring(assertion, encoding="unicode")))
    return [doc for doc in docs if doc is not None]


# --------------------------------------------------------------------------
# Valid documents take the fast path; the corpus agrees


@pytest.mark.parametrize("case", list(CASES))
def test_crypto_corpus_same_verdicts(case):
    for doc in both_levels(minted(case)):
        assert_same_verdict(doc)


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"sign_response": False}, {"encrypt_for_cert": SP_CERT}, {"attributes": {"mail": ["a@example.org"]}}],
    ids=["signed", "assertion signed", "encrypted", "one attribute"],
)
def test_valid_responses_are_answered_by_libxml2(kwargs):
    for doc in both_levels(mint(**kwargs)):
        assert assert_same_verdict(doc) == (True, True)


# Shapes real IdPs send (trimmed; unsigned: the schema makes Signature optional).
ENTRA = f"""<samlp:Response ID="_1d6f" Version="2.0" IssueInstant="2026-11-28T10:00:00.123Z"
 Destination="https://sp.example.org/saml2/acs/" InResponseTo="id-1" xmlns:samlp="{SAMLP}">
 <Issuer xmlns="{SAML}">https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/</Issuer>
 <samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>
 <Assertion ID="_a1b2" IssueInstant="2026-11-28T10:00:00.123Z" Version="2.0" xmlns="{SAML}">
  <Issuer>https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/</Issuer>
  <Subject><NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">AAAAAAAAAAAAAAAAAAAAAC4</NameID>
   <SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><SubjectConfirmationData
    InResponseTo="id-1" NotOnOrAfter="2026-11-28T11:00:00.123Z" Recipient="https://sp.example.org/saml2/acs/"/>
   </SubjectConfirmation></Subject>
  <Conditions NotBefore="2026-11-28T09:55:00.123Z" NotOnOrAfter="2026-11-28T11:00:00.123Z">
   <AudienceRestriction><Audience>https://sp.example.org/saml2/metadata/</Audience></AudienceRestriction></Conditions>
  <AttributeStatement>
   <Attribute Name="http://schemas.microsoft.com/identity/claims/objectidentifier">
    <AttributeValue>7c1d9e2a-0000-4000-8000-000000000001</AttributeValue></Attribute>
   <Attribute Name="http://schemas.microsoft.com/ws/2008/06/identity/claims/groups">
    <AttributeValue>0e8b7a8e-0000-4000-8000-000000000002</AttributeValue>
    <AttributeValue>1f9c8b9f-0000-4000-8000-000000000003</AttributeValue></Attribute>
  </AttributeStatement>
  <AuthnStatement AuthnInstant="2026-11-28T09:59:58.000Z" SessionIndex="_a1b2"><AuthnContext>
   <AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:Password</AuthnContextClassRef>
  </AuthnContext></AuthnStatement>
 </Assertion></samlp:Response>"""

OKTA = f"""<saml2p:Response Destination="https://sp.example.org/saml2/acs/" ID="id123" InResponseTo="id-1"
 IssueInstant="2026-11-28T10:00:00.321Z" Version="2.0" xmlns:saml2p="{SAMLP}">
 <saml2:Issuer Format="urn:oasis:names:tc:SAML:2.0:nameid-format:entity"
  xmlns:saml2="{SAML}">http://www.okta.com/exk1</saml2:Issuer>
 <saml2p:Status><saml2p:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></saml2p:Status>
 <saml2:Assertion ID="id456" IssueInstant="2026-11-28T10:00:00.321Z" Version="2.0" xmlns:saml2="{SAML}"
  xmlns:xs="http://www.w3.org/2001/XMLSchema">
  <saml2:Issuer Format="urn:oasis:names:tc:SAML:2.0:nameid-format:entity">http://www.okta.com/exk1</saml2:Issuer>
  <saml2:Subject><saml2:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified">00u1</saml2:NameID>
   <saml2:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml2:SubjectConfirmationData
    InResponseTo="id-1" NotOnOrAfter="2026-11-28T10:05:00.321Z" Recipient="https://sp.example.org/saml2/acs/"/>
   </saml2:SubjectConfirmation></saml2:Subject>
  <saml2:Conditions NotBefore="2026-11-28T09:55:00.321Z" NotOnOrAfter="2026-11-28T10:05:00.321Z">
   <saml2:AudienceRestriction><saml2:Audience>https://sp.example.org/saml2/metadata/</saml2:Audience>
   </saml2:AudienceRestriction></saml2:Conditions>
  <saml2:AuthnStatement AuthnInstant="2026-11-28T10:00:00.321Z" SessionIndex="id789"><saml2:AuthnContext>
   <saml2:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml2:AuthnContextClassRef>
  </saml2:AuthnContext></saml2:AuthnStatement>
  <saml2:AttributeStatement>
   <saml2:Attribute Name="email" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified">
    <saml2:AttributeValue xmlns:xsi="{XSI}" xsi:type="xs:string">alice@example.org</saml2:AttributeValue>
   </saml2:Attribute>
   <saml2:Attribute Name="groups" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:basic">
    <saml2:AttributeValue xmlns:xsi="{XSI}" xsi:type="xs:string">Everyone</saml2:AttributeValue>
   </saml2:Attribute>
  </saml2:AttributeStatement>
 </saml2:Assertion></saml2p:Response>"""

SHIBBOLETH = f"""<saml2p:Response xmlns:saml2p="{SAMLP}" Destination="https://sp.example.org/saml2/acs/" ID="_c0ffee"
 InResponseTo="id-1" IssueInstant="2026-11-28T10:00:00.000Z" Version="2.0">
 <saml2:Issuer xmlns:saml2="{SAML}">https://idp.example.org/idp/shibboleth</saml2:Issuer>
 <saml2p:Status><saml2p:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></saml2p:Status>
 <saml2:Assertion xmlns:saml2="{SAML}" xmlns:xsd="http://www.w3.org/2001/XMLSchema" ID="_beef"
  IssueInstant="2026-11-28T10:00:00.000Z" Version="2.0">
  <saml2:Issuer>https://idp.example.org/idp/shibboleth</saml2:Issuer>
  <saml2:Subject><saml2:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
   NameQualifier="https://idp.example.org/idp/shibboleth">AAdzZWNyZXQx</saml2:NameID></saml2:Subject>
  <saml2:AttributeStatement>
   <saml2:Attribute FriendlyName="eduPersonPrincipalName" Name="urn:oid:1.3.6.1.4.1.5923.1.1.1.6"
    NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri">
    <saml2:AttributeValue xmlns:xsi="{XSI}" xsi:type="xsd:string">alice@example.org</saml2:AttributeValue>
   </saml2:Attribute>
   <saml2:Attribute FriendlyName="eduPersonTargetedID" Name="urn:oid:1.3.6.1.4.1.5923.1.1.1.10"
    NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri"><saml2:AttributeValue>
    <saml2:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">Zm9vYmFy</saml2:NameID>
   </saml2:AttributeValue></saml2:Attribute>
  </saml2:AttributeStatement>
 </saml2:Assertion></saml2p:Response>"""


@pytest.mark.parametrize("xml", [ENTRA, OKTA, SHIBBOLETH], ids=["entra", "okta", "shibboleth"])
def test_idp_shaped_responses(xml):
    docs = both_levels(xml)
    assert len(docs) == 2
    for doc in docs:
        assert assert_same_verdict(doc) == (True, True)


# --------------------------------------------------------------------------
# Where libxml2 and xmlschema differ: pysaml2's verdict wins both ways


def _edit(xml: str, edit) -> str:
    root = etree.fromstring(xml.encode())
    edit(root)
    doc = as_pysaml2_validates(etree.tostring(root, encoding="unicode"))
    assert doc is not None
    return doc


def _first(root, tag):
    return next(root.iter(tag))


def _assertion(root):
    return _first(root, f"{{{SAML}}}Assertion")


def test_base64_garbage_libxml2_would_accept_is_refused():
    """libxml2 does not check base64Binary content; pysaml2 refuses it, and so does saml_jit."""
    for tag in ("DigestValue", "SignatureValue", "X509Certificate"):
        doc = _edit(mint(), lambda root, tag=tag: setattr(_first(root, f"{{{DS}}}{tag}"), "text", "http://x.example"))
        assert not schema.accepts_fast(doc)
        assert assert_same_verdict(doc) == (False, False)


def test_base64_with_line_breaks_is_fine():
    def wrap(root):
        element = _first(root, f"{{{DS}}}X509Certificate")
        text = "".join(element.text.split())
        element.text = "\n" + "\n".join(text[i : i + 64] for i in range(0, len(text), 64)) + "\n"

    assert assert_same_verdict(_edit(mint(), wrap)) == (True, True)


def test_uri_libxml2_refuses_is_accepted_as_pysaml2_does():
    """libxml2 is stricter about xs:anyURI: it refuses, pysaml2 decides (here: accepts)."""
    doc = _edit(mint(), lambda root: _first(root, f"{{{SAML}}}Issuer").set("Format", "2026-11-28T10:00:00+01:00"))
    assert not schema.accepts_fast(doc)
    assert assert_same_verdict(doc) == (True, False)


@pytest.mark.parametrize(
    "edit",
    [
        lambda root: _assertion(root).remove(_first(_assertion(root), f"{{{SAML}}}Issuer")),
        lambda root: _assertion(root).attrib.pop("Version"),
        lambda root: _first(root, f"{{{SAML}}}Assertion").set("IssueInstant", "yesterday"),
        lambda root: _first(root, f"{{{SAML}}}Assertion").set("ID", "1-not-an-ncname"),
        lambda root: _first(root, f"{{{SAML}}}SubjectConfirmation").attrib.pop("Method"),
        lambda root: etree.SubElement(_first(root, f"{{{SAML}}}Subject"), f"{{{SAML}}}Unknown"),
        lambda root: _first(root, f"{{{SAML}}}Conditions").set("Unexpected", "x"),
    ],
    ids=["no issuer", "version", "issue instant", "id", "no method", "unknown element", "unknown attribute"],
)
def test_structural_errors_refused_by_both(edit):
    xml = mint(sign_response=False)
    root = etree.fromstring(xml.encode())
    edit(root)
    assertion = etree.tostring(_first(root, f"{{{SAML}}}Assertion"), encoding="unicode")
    doc = as_pysaml2_validates(assertion)
    assert doc is not None
    assert assert_same_verdict(doc) == (False, False)


def test_duplicate_ids_refused_by_both():
    root = etree.fromstring(mint().encode())
    assertion = _first(root, f"{{{SAML}}}Assertion")
    assertion.set("ID", root.get("ID"))
    doc = as_pysaml2_validates(etree.tostring(root, encoding="unicode"))
    assert assert_same_verdict(doc) == (False, False)


# --------------------------------------------------------------------------
# Random mutations


VALUES = [
    "", " ", "1abc", "_x", "a b", "3.0", "2.0", "yesterday", "2026-13-01T00:00:00Z", "2026-11-28T10:00:00",
    "2026-11-28T10:00:00+01:00", "2026-11-28T10:00:00.123456789Z", "-1", "0", "99999999999", "abc", "urn:x",
    "http://exa mple.org", "%zz", "true", "1", "\u00e9", "#frag", "::", "a:b", "Zm9v", "Zm9v===", "not base64!",
    "xs:string", "xsd:int", "urn:oasis:names:tc:SAML:2.0:status:Success",
]  # fmt: skip
NEW_ELEMENTS = [
    f"{{{SAML}}}Issuer", f"{{{SAML}}}Foo", f"{{{SAMLP}}}Extensions", f"{{{DS}}}Signature", "{urn:other}X",
    "{http://eidas.europa.eu/saml-extensions}SPType", f"{{{SAML}}}Attribute", f"{{{SAML}}}AttributeValue", "Plain",
    f"{{{SAML}}}NameID", f"{{{SAML}}}Conditions", f"{{{SAML}}}Assertion", f"{{{DS}}}DigestValue",
]  # fmt: skip
NEW_ATTRIBUTES = ["Foo", "{urn:other}a", f"{{{XSI}}}type", f"{{{XSI}}}nil", "ID", "Version", "Format", "Method"]


def mutate(root: etree._Element, rnd: random.Random) -> None:
    element = rnd.choice(list(root.iter()))
    parent = element.getparent()
    operation = rnd.randrange(9)
    if operation == 0 and parent is not None:
        parent.remove(element)
    elif operation == 1 and parent is not None:
        element.addnext(copy.deepcopy(element))
    elif operation == 2 and parent is not None:
        parent.remove(element)
        parent.insert(rnd.randrange(len(parent) + 1), element)
    elif operation == 3 and element.attrib:
        element.set(rnd.choice(list(element.attrib)), rnd.choice(VALUES))
    elif operation == 4 and element.attrib:
        del element.attrib[rnd.choice(list(element.attrib))]
    elif operation == 5:
        element.set(rnd.choice(NEW_ATTRIBUTES), rnd.choice(VALUES))
    elif operation == 6:
        etree.SubElement(element, rnd.choice(NEW_ELEMENTS)).text = rnd.choice([*VALUES, None])
    elif operation == 7:
        element.text = rnd.choice(VALUES)
    elif operation == 8 and len(element):
        element[0].tail = rnd.choice(["x", " ", "\n"])


@pytest.mark.parametrize("seed", range(4))
def test_random_mutations_same_verdicts(seed):
    rnd = random.Random(seed)
    bases = [mint(), mint(sign_response=False), mint(encrypt_for_cert=SP_CERT)]
    outcomes: Counter[tuple[bool, bool]] = Counter()
    for _ in range(250):
        root = etree.fromstring(rnd.choice(bases).encode())
        if rnd.random() < 0.5:
            assertion = next(root.iter(f"{{{SAML}}}Assertion"), None)
            root = copy.deepcopy(assertion) if assertion is not None else root
        for _ in range(rnd.randint(1, 3)):
            mutate(root, rnd)
        doc = as_pysaml2_validates(etree.tostring(root, encoding="unicode"))
        if doc is not None:
            outcomes[assert_same_verdict(doc)] += 1
    # Both paths were exercised: libxml2 answered for some, pysaml2 refused others.
    assert outcomes[(True, True)] > 0 and outcomes[(False, False)] > 0, outcomes


# --------------------------------------------------------------------------
# Operation


def test_threads_share_nothing():
    docs = both_levels(mint())
    bad = _edit(mint(), lambda root: setattr(_first(root, f"{{{DS}}}DigestValue"), "text", "!!"))
    failures: list[str] = []

    def work() -> None:
        for _ in range(20):
            if not all(schema.accepts_fast(doc) for doc in docs) or schema.accepts_fast(bad):
                failures.append(threading.current_thread().name)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_without_libxml2_schema_pysaml2_decides(monkeypatch, caplog):
    monkeypatch.setattr(schema, "_fast", schema._Fast())
    monkeypatch.setattr(schema, "_broken", False)

    def broken(_xsd):
        raise LookupError("schema import 'http://elsewhere/x.xsd' is not one of pysaml2's schema files")

    monkeypatch.setattr(schema, "_build", broken)
    doc = both_levels(mint())[0]
    assert not schema.accepts_fast(doc)
    assert ours_accepts(doc)
    assert "could not build the libxml2 SAML schema" in caplog.text
    bad = _edit(mint(), lambda root: root.attrib.pop("Version"))
    assert not ours_accepts(bad)


def test_schema_files_are_pysaml2s_and_nothing_else_loads():
    files = schema._schema_files(schema._pysaml2_schema)
    assert "urn:oasis:names:tc:SAML:2.0:protocol" in files and DS in files
    assert all(path.is_file() for path in files.values())
    resolver = schema._Resolver(files)
    with pytest.raises(LookupError):
        resolver.resolve("http://attacker.example/evil.xsd", None, None)


@pytest.mark.parametrize("value", ["QUJD", "QU JD\n", "QUJD!", "QUJ", "", "QQ==", "QQ=", "====", "Q U J D"])
def test_remembered_base64_verdicts_are_xmlschemas(value):
    """The kept set of valid values never changes a verdict, and an invalid value is never kept."""
    from saml_jit.saml import schema

    assert schema._schema() is not None and schema._base64 is not None
    checker = schema._base64
    expected = checker.type.is_valid(value)
    assert checker.is_valid(value) is expected
    assert checker.is_valid(value) is expected  # again, from the kept set when valid
    assert value not in checker._valid or expected


BASE64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


@given(
    st.one_of(
        st.text(st.sampled_from(BASE64_ALPHABET + "= \t\r\n"), max_size=24),
        st.text(st.sampled_from(BASE64_ALPHABET + "= \t\n-_.!\u00a0\u2028\x0b\x0c"), max_size=24),
        st.binary(max_size=18).map(lambda raw: base64.b64encode(raw).decode()),
        st.tuples(st.binary(min_size=1, max_size=18), st.integers(0, 30), st.sampled_from(" \n=A-\u00a0")).map(
            lambda t: (lambda text, i, c: text[:i] + c + text[i:])(base64.b64encode(t[0]).decode(), t[1], t[2])
        ),
    )
)
@hypothesis_settings(max_examples=3000, deadline=None)
def test_property_canonical_base64_only_accepts_what_xmlschema_accepts(value):
    """The fast check never accepts a value xmlschema's ``base64Binary`` refuses (it may leave some to it)."""
    assert schema._schema() is not None and schema._base64 is not None
    if schema.canonical_base64(value):
        assert schema._base64.type.is_valid(value)
    if value.strip(" \t\r\n") and set(value) <= set(BASE64_ALPHABET + " \t\r\n") and len(value.split()) == 1:
        # Unpadded base64 of a length that needs no padding: both agree.
        assert schema.canonical_base64(value) is schema._base64.type.is_valid(value)
