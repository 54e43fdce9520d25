"""XML Encryption at the ACS: the algorithm allow-list, one answer for every decryption failure, signatures first.

Every case mints a real encrypted response with the test IdP
(:mod:`saml_jit.testing.encryption`, written on ``cryptography``, not on the
libxmlsec1 the SP decrypts with) and posts it through the real ACS, with
both crypto backends: in-process libxmlsec1 and pysaml2's ``xmlsec1``
program (Debian's 1.2.37).
"""

from __future__ import annotations

import base64
import re
import statistics
import time

import pytest
from django.contrib.auth import get_user_model
from lxml import etree
from saml2.sigver import CryptoBackendXmlSec1, DecryptError, SignatureError

from saml_jit.models import ProvisioningEvent
from saml_jit.saml import encryption as allowed
from saml_jit.saml.backend import XmlSecBackend
from saml_jit.saml.decryption import MESSAGE, DecryptionGuard
from saml_jit.testing.encryption import (
    AES128_CBC,
    AES128_GCM,
    AES192_CBC,
    AES192_GCM,
    AES256_CBC,
    AES256_GCM,
    DEFAULT_ENCRYPTION,
    MGF1_SHA1,
    MGF1_SHA256,
    RSA_1_5,
    RSA_OAEP,
    SHA1,
    SHA256,
    SHA512,
    Encryption,
    bad_padding,
    encrypted_data,
    flip,
)
from tests.conftest import person
from tests.federation import ACS_URL, IDP_A, IDP_B, ROGUE_CERT, SP_CERT, SP_ENTITY_ID, SP_KEY
from tests.test_acs import assert_only_rejection

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("crypto_backend")]  # both crypto backends

User = get_user_model()
SAML_NS = "urn:oasis:names:tc:SAML:2.0:assertion"
CBC_FOR_IDP_A = {"IDPS": {IDP_A.entity_id: {"ALLOW_CBC_ENCRYPTION": True}}}
#: Debian's xmlsec1 1.2.37 knows neither xmlenc 1.1's rsa-oaep nor a SHA-256
#: digest under rsa-oaep-mgf1p (README, *Accepted algorithms*): with the xmlsec1 backend
#: such responses pass the allow-list and then fail to decrypt — as the one
#: uniform decryption refusal, like any other decryption failure.
XMLSEC1_CANNOT = "xmlsec1 1.2.37 cannot decrypt this combination"


def login(browser, encryption: Encryption = DEFAULT_ENCRYPTION, **kwargs):
    kwargs.setdefault("encrypt_for_cert", SP_CERT)
    return browser.login(encryption=encryption, **kwargs)


def assert_logged_in(response):
    assert response.status_code == 302, response.content[:2000]
    assert User.objects.count() == 1


# ==========================================================================
# The allow-list


def _xmlsec1_decrypts(method: Encryption) -> bool:
    if method.key_transport == RSA_OAEP:
        return False
    return method.digest in (None, SHA1)


ACCEPTED = {
    "aes128-gcm, rsa-oaep-mgf1p": Encryption(data=AES128_GCM),
    "aes256-gcm, rsa-oaep-mgf1p (default)": Encryption(),
    "aes256-gcm, rsa-oaep-mgf1p, sha1": Encryption(digest=SHA1),
    "aes256-gcm, rsa-oaep-mgf1p, sha256": Encryption(digest=SHA256),
    "aes128-gcm, xmlenc11 rsa-oaep": Encryption(data=AES128_GCM, key_transport=RSA_OAEP),
    "aes256-gcm, rsa-oaep, sha1, mgf1sha1": Encryption(key_transport=RSA_OAEP, digest=SHA1, mgf=MGF1_SHA1),
    "aes256-gcm, rsa-oaep, sha256": Encryption(key_transport=RSA_OAEP, digest=SHA256),
    "aes256-gcm, rsa-oaep, sha256, mgf1sha256": Encryption(key_transport=RSA_OAEP, digest=SHA256, mgf=MGF1_SHA256),
}


@pytest.mark.parametrize("name", list(ACCEPTED))
def test_accepted_by_default(browser, crypto_backend, name):
    method = ACCEPTED[name]
    response = login(browser, method)
    if crypto_backend == "xmlsec1" and not _xmlsec1_decrypts(method):
        event = assert_only_rejection(response, "decryption_failed")  # XMLSEC1_CANNOT
        assert event.message == MESSAGE
        return
    assert_logged_in(response)


#: name -> (encryption, why it is refused)
REFUSED = {
    "aes128-cbc": (Encryption(data=AES128_CBC), "AES-CBC content encryption is not enabled"),
    "aes256-cbc": (Encryption(data=AES256_CBC), "AES-CBC content encryption is not enabled"),
    "aes192-gcm": (Encryption(data=AES192_GCM), "content encryption"),
    "aes192-cbc": (Encryption(data=AES192_CBC), "content encryption"),
    "rsa-1_5": (Encryption(key_transport=RSA_1_5), "rsa-1_5"),
    "oaep sha512 digest": (Encryption(digest=SHA512), "OAEP digest"),
    "mgf under rsa-oaep-mgf1p": (Encryption(mgf=MGF1_SHA256), "mask generation"),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_refused_by_default(browser, name):
    method, why = REFUSED[name]
    event = assert_only_rejection(login(browser, method), "encryption_algorithm")
    assert why in event.message


@pytest.mark.parametrize(
    "method",
    [
        pytest.param(Encryption(data=AES128_CBC), id="aes128-cbc"),
        pytest.param(Encryption(data=AES256_CBC), id="aes256-cbc"),
        pytest.param(Encryption(data=AES256_CBC, digest=SHA256), id="aes256-cbc, sha256"),
        pytest.param(Encryption(data=AES128_CBC, key_transport=RSA_OAEP, mgf=MGF1_SHA256), id="aes128-cbc, rsa-oaep"),
    ],
)
def test_cbc_accepted_for_an_idp_that_opts_in(browser, settings, crypto_backend, method):
    settings.SAML_JIT = CBC_FOR_IDP_A
    response = login(browser, method)
    if crypto_backend == "xmlsec1" and not _xmlsec1_decrypts(method):
        assert_only_rejection(response, "decryption_failed")  # XMLSEC1_CANNOT
        return
    assert_logged_in(response)


def test_cbc_opt_in_is_per_idp(browser, settings):
    settings.SAML_JIT = {"IDPS": {IDP_B.entity_id: {"ALLOW_CBC_ENCRYPTION": True}}}
    assert_only_rejection(login(browser, Encryption(data=AES256_CBC)), "encryption_algorithm")


@pytest.mark.parametrize("data", [AES256_GCM, AES128_CBC], ids=["gcm", "cbc"])
def test_rsa_1_5_refused_even_with_cbc_allowed(browser, settings, data):
    settings.SAML_JIT = {"ALLOW_CBC_ENCRYPTION": True}
    event = assert_only_rejection(login(browser, Encryption(data=data, key_transport=RSA_1_5)), "encryption_algorithm")
    assert "never accepted" in event.message


def test_rsa_1_5_never_reaches_a_decryptor(browser, settings, monkeypatch):
    """Checked on the document, before either backend is asked (xmlsec1 itself would decrypt RSA-1_5)."""
    calls = spy_decryption(monkeypatch)
    settings.SAML_JIT = {"ALLOW_CBC_ENCRYPTION": True}
    assert_only_rejection(login(browser, Encryption(data=AES128_CBC, key_transport=RSA_1_5)), "encryption_algorithm")
    assert calls == []


def _with_cipher_reference(xml: str) -> str:
    root = etree.fromstring(xml.encode())
    cipher_data = next(root.iter(f"{{{allowed.XENC}}}CipherData"))
    for child in list(cipher_data):
        cipher_data.remove(child)
    etree.SubElement(cipher_data, f"{{{allowed.XENC}}}CipherReference", URI="file:///etc/passwd")
    return etree.tostring(root, encoding="unicode")


def _retrieval_method_to(uri: str):
    def tamper(xml: str) -> str:
        root = etree.fromstring(xml.encode())
        key_info = next(root.iter(f"{{{allowed.DS}}}KeyInfo"))
        etree.SubElement(key_info, f"{{{allowed.DS}}}RetrievalMethod", URI=uri)
        return etree.tostring(root, encoding="unicode")

    return tamper


@pytest.mark.parametrize(
    ("tamper", "why"),
    [
        pytest.param(_with_cipher_reference, "CipherReference", id="cipher-reference"),
        pytest.param(_retrieval_method_to("file:///etc/passwd"), "RetrievalMethod", id="retrieval-method-file"),
        pytest.param(_retrieval_method_to("http://evil.example/key"), "RetrievalMethod", id="retrieval-method-http"),
    ],
)
def test_references_out_of_the_document_refused(browser, tamper, why):
    event = assert_only_rejection(login(browser, sign_response=False, tamper=tamper), "encryption_algorithm")
    assert why in event.message


def _minted(**kwargs) -> str:
    return IDP_A.make_response(
        sp_entity_id=SP_ENTITY_ID, acs_url=ACS_URL, name_id="subject-alice-0001", attributes=person(), **kwargs
    )


def test_in_process_backend_checks_algorithms_itself():
    """Outside the ACS too: the backend refuses RSA-1_5 before decrypting anything."""
    refused = _minted(encrypt_for_cert=SP_CERT, encryption=Encryption(key_transport=RSA_1_5))
    with pytest.raises(DecryptError, match="rsa-1_5"):
        XmlSecBackend().decrypt(refused, str(SP_KEY))
    cbc = _minted(encrypt_for_cert=SP_CERT, encryption=Encryption(data=AES128_CBC))
    assert "subject-alice-0001" in XmlSecBackend().decrypt(cbc, str(SP_KEY))  # CBC is decided per IdP, above


# ==========================================================================
# One answer for every decryption failure (no oracle)


def _not_xml(_assertion: bytes) -> bytes:
    return b"\x00\x8f\xff this is not XML at all \x01"


def _not_an_assertion(_assertion: bytes) -> bytes:
    return f'<saml:Issuer xmlns:saml="{SAML_NS}">https://idp-a.example.org/idp/metadata</saml:Issuer>'.encode()


def _bad_signature(assertion: bytes) -> bytes:
    assert b"alice@example.org" in assertion
    return assertion.replace(b"alice@example.org", b"mallory@example.org")


def _schema_invalid(assertion: bytes) -> bytes:
    # An element the schema does not allow where it stands (the signature no longer matches either).
    root = etree.fromstring(assertion)
    root.find(f"{{{SAML_NS}}}Issuer").addnext(etree.Element(f"{{{SAML_NS}}}Bogus"))
    return etree.tostring(root)


def _without_signature(assertion: bytes) -> bytes:
    root = etree.fromstring(assertion)
    root.remove(root.find(f"{{{allowed.DS}}}Signature"))
    return etree.tostring(root)


def _twice(assertion: bytes) -> bytes:
    return assertion + assertion


def _followed_by(extra: bytes):
    # Beside the authentic assertion: what a changed CBC ciphertext may add after it.
    return lambda assertion: assertion + extra


def _too_complex(assertion: bytes) -> bytes:
    root = etree.fromstring(assertion)
    attribute = next(root.iter(f"{{{SAML_NS}}}Attribute"))
    for i in range(3000):
        etree.SubElement(attribute, f"{{{SAML_NS}}}AttributeValue").text = f"v{i}"
    return etree.tostring(root)


#: name -> Encryption fields (plus mint options under "mint") that break decryption one way.
BROKEN = {
    "key for another certificate": {"mint": {"encrypt_for_cert": ROGUE_CERT}},
    "wrapped key changed": {"wrapped_key": flip(-1)},
    "ciphertext: last byte changed": {"ciphertext": flip(-1)},
    "ciphertext: first byte (IV) changed": {"ciphertext": flip(0)},
    "ciphertext: middle byte changed": {"ciphertext": flip(100, 0x20)},
    "ciphertext truncated": {"ciphertext": lambda data: data[:-16]},
    "plaintext not XML": {"plaintext": _not_xml},
    "plaintext XML but not an Assertion": {"plaintext": _not_an_assertion},
    "plaintext: Assertion with a bad signature": {"plaintext": _bad_signature},
    "plaintext: Assertion failing the schema": {"plaintext": _schema_invalid},
    "plaintext: unsigned Assertion": {"plaintext": _without_signature},
    "plaintext: the Assertion twice": {"plaintext": _twice},
    "plaintext: 3,000 AttributeValues": {"plaintext": _too_complex},
    "plaintext: the Assertion, then another element": {"plaintext": _followed_by(b"<x/>")},
    "plaintext: the Assertion, then text": {"plaintext": _followed_by(b"garbage")},
    "plaintext: the Assertion, then a comment": {"plaintext": _followed_by(b"<!-- x -->")},
}
CBC_ONLY = {"CBC: bad padding": {"padding": bad_padding}}


def _broken(name: str, data: str) -> tuple[Encryption, dict]:
    fields = dict({**BROKEN, **CBC_ONLY}[name])
    mint = fields.pop("mint", {})
    return Encryption(data=data, **fields), mint


def _page(response) -> bytes:
    return re.sub(rb"#\d+", b"#N", response.content)


def answer(browser, settings, name: str, data: str, *, sign_response: bool) -> tuple:
    """Everything an attacker (and an administrator) can see of one refused response."""
    settings.SAML_JIT = CBC_FOR_IDP_A
    method, mint = _broken(name, data)
    response = login(browser, method, sign_response=sign_response, **mint)
    event = assert_only_rejection(response, "decryption_failed")
    seen = (response.status_code, _page(response), event.kind, event.reason_code, event.message, event.idp_entity_id)
    ProvisioningEvent.objects.all().delete()
    browser.client.cookies.clear()
    return seen


CASES = [(name, data) for name in BROKEN for data in (AES256_GCM, AES128_CBC)]
CASES += [(name, AES256_CBC) for name in CBC_ONLY]


@pytest.mark.parametrize("sign_response", [False, True], ids=["response-unsigned", "response-signed"])
def test_every_decryption_failure_gets_the_same_answer(browser, settings, sign_response):
    """The decryption-oracle test: whatever went wrong after decryption began, one answer.

    Unsigned responses are the attack (anyone can send one); signed ones
    around a broken ciphertext (the IdP's own fault) are answered alike.
    """
    answers = {f"{name} [{data.rpartition('#')[2]}]": answer(browser, settings, name, data, sign_response=sign_response)
               for name, data in CASES}  # fmt: skip
    distinct = set(answers.values())
    assert len(distinct) == 1, {k: v[4] for k, v in answers.items()}
    ((status, _, _, code, message, idp),) = distinct
    assert (status, code, message, idp) == (400, "decryption_failed", MESSAGE, IDP_A.entity_id)


def test_the_same_answers_on_both_backends(browser, settings, crypto_backend):
    """One mode per family, compared against a constant: both backends' answers are that constant."""
    for name, data in [("plaintext not XML", AES128_CBC), ("plaintext: Assertion with a bad signature", AES128_CBC)]:
        seen = answer(browser, settings, name, data, sign_response=False)
        assert seen[3:5] == ("decryption_failed", MESSAGE)


def _with_a_plain_assertion_too(xml: str) -> str:
    """Beside the encrypted assertion, a plain one: it would decide the answer whatever the ciphertext held."""
    root = etree.fromstring(xml.encode())
    encrypted = root.find(f"{{{SAML_NS}}}EncryptedAssertion")
    encrypted.addprevious(etree.fromstring(_minted(sign_response=False).encode()).find(f"{{{SAML_NS}}}Assertion"))
    return etree.tostring(root, encoding="unicode")


def test_an_encrypted_assertion_must_be_the_only_one(browser, monkeypatch):
    calls = spy_decryption(monkeypatch)
    response = login(browser, sign_response=False, tamper=_with_a_plain_assertion_too)
    assert_only_rejection(response, "invalid_response")
    assert calls == []


@pytest.mark.parametrize("data", [AES256_GCM, AES128_CBC], ids=["gcm", "cbc"])
def test_the_unbroken_control_logs_in(browser, settings, data):
    settings.SAML_JIT = CBC_FOR_IDP_A
    assert_logged_in(login(browser, Encryption(data=data), sign_response=False))


def test_authentic_plaintext_keeps_its_reason(browser):
    """An expired assertion is still "expired" once its signature proved it authentic: no oracle there."""
    response = login(browser, sign_response=False, now=-3600, response_issue_instant=0)
    assert_only_rejection(response, "expired")


def test_failure_modes_take_comparable_time(browser, settings, crypto_backend):
    """Not the requirement (identical answers are), but no mode should be wildly slower or faster."""
    if crypto_backend == "xmlsec1":
        pytest.skip("subprocess start-up dominates and varies")
    medians = {}
    for name in ("key for another certificate", "plaintext not XML", "plaintext: Assertion with a bad signature"):
        times = []
        for _ in range(5):
            start = time.process_time()
            answer(browser, settings, name, AES128_CBC, sign_response=False)
            times.append(time.process_time() - start)
        medians[name] = statistics.median(times)
    assert max(medians.values()) < 3 * min(medians.values()), medians


# ==========================================================================
# The Response's signature before any decryption


def spy_decryption(monkeypatch) -> list[str]:
    calls: list[str] = []
    for cls in (XmlSecBackend, CryptoBackendXmlSec1):
        real = cls.decrypt

        def decrypt(self, *args, _real=real, **kwargs):
            calls.append(type(self).__name__)
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(cls, "decrypt", decrypt)
    return calls


def _change_ciphertext(xml: str) -> str:
    """After signing, like an attacker: one byte of the assertion's ciphertext."""
    values = re.findall(r"<xenc:CipherValue>([^<]+)</xenc:CipherValue>", xml)
    data = base64.b64decode(values[-1])
    changed = base64.b64encode(flip(20)(data)).decode()
    return xml.replace(values[-1], changed)


def test_signed_response_with_a_bad_signature_is_never_decrypted(browser, monkeypatch):
    calls = spy_decryption(monkeypatch)
    assert_only_rejection(login(browser, tamper=_change_ciphertext), "bad_signature")
    assert calls == []


def test_unsigned_response_is_decrypted_and_refused_alike(browser, monkeypatch):
    calls = spy_decryption(monkeypatch)
    event = assert_only_rejection(login(browser, sign_response=False, tamper=_change_ciphertext), "decryption_failed")
    assert calls and event.message == MESSAGE


class _FakeSecurityContext:
    def __init__(self) -> None:
        self.decrypted: list[str] = []

    def _check_signature(self, decoded_xml, item, *args, **kwargs):
        return item

    def decrypt_keys(self, enctext, keys=None):
        self.decrypted.append(enctext)
        return enctext


def test_guard_refuses_to_decrypt_a_signed_response_not_yet_verified():
    """Should pysaml2 ever decrypt first, the guard refuses (and the backend is never called)."""
    sec = _FakeSecurityContext()
    guard = DecryptionGuard(sec, signed=True, allow_cbc=False)
    guard.install()
    try:
        with pytest.raises(SignatureError, match="verified before anything is decrypted"):
            sec.decrypt_keys("<Response/>")
    finally:
        guard.uninstall()
    assert sec.decrypted == []
    assert "decrypt_keys" not in sec.__dict__  # uninstalled


def test_attributes_are_what_the_idp_sent_after_decryption(browser, settings):
    settings.SAML_JIT = CBC_FOR_IDP_A
    response = login(browser, Encryption(data=AES128_CBC), attributes=person(email="carol@example.org"))
    assert_logged_in(response)
    assert User.objects.get().email == "carol@example.org"


# ==========================================================================
# Hostile shapes of encryption: never a 500, always one rejected event

XENC_DATA = f"{{{allowed.XENC}}}EncryptedData"


def _edit(change):
    def tamper(xml: str) -> str:
        root = etree.fromstring(xml.encode())
        change(root)
        return etree.tostring(root, encoding="unicode")

    return tamper


def _drop(tag: str, *, first: bool = True):
    def change(root) -> None:
        found = list(root.iter(tag))
        for element in found[:1] if first else found:
            element.getparent().remove(element)

    return _edit(change)


def _set_cipher_value(index: int, text: str):
    def change(root) -> None:
        list(root.iter(f"{{{allowed.XENC}}}CipherValue"))[index].text = text

    return _edit(change)


def _duplicate_encrypted_assertion(root) -> None:
    encrypted = next(root.iter(f"{{{SAML_NS}}}EncryptedAssertion"))
    encrypted.addnext(etree.fromstring(etree.tostring(encrypted)))


def _encrypted_again(inner: Encryption):
    def plaintext(assertion: bytes) -> bytes:
        return etree.tostring(encrypted_data(assertion, SP_CERT.read_bytes(), inner))

    return plaintext


def _drop_key_info(root) -> None:
    encrypted = next(root.iter(XENC_DATA))
    encrypted.remove(encrypted.find(f"{{{allowed.DS}}}KeyInfo"))


def _doctype_in_plaintext(assertion: bytes) -> bytes:
    return b'<!DOCTYPE x [<!ENTITY e "e">]>' + assertion


HOSTILE = {
    "EncryptedAssertion emptied": ({}, _drop(XENC_DATA)),
    "no EncryptionMethod": ({}, _drop(f"{{{allowed.XENC}}}EncryptionMethod")),
    "EncryptedData without KeyInfo": ({}, _edit(_drop_key_info)),
    "CipherValue not base64": ({}, _set_cipher_value(-1, "%%% not base64 %%%")),
    "CipherValue empty": ({}, _set_cipher_value(-1, "")),
    "wrapped key empty": ({}, _set_cipher_value(0, "")),
    "two EncryptedAssertions": ({}, _edit(_duplicate_encrypted_assertion)),
    "plaintext encrypted again, inner RSA-1_5": (
        {"encryption": Encryption(plaintext=_encrypted_again(Encryption(key_transport=RSA_1_5)))},
        None,
    ),
    "plaintext with a DTD": ({"encryption": Encryption(plaintext=_doctype_in_plaintext)}, None),
    "plaintext empty": ({"encryption": Encryption(plaintext=lambda _: b"")}, None),
}


@pytest.mark.parametrize("sign_response", [False, True], ids=["response-unsigned", "response-signed"])
@pytest.mark.parametrize("name", list(HOSTILE))
def test_no_hostile_encryption_is_a_500(browser, name, sign_response):
    """The test client re-raises view exceptions: a crash fails here. Tampering a signed response breaks it."""
    options, tamper = HOSTILE[name]
    response = login(browser, sign_response=sign_response, tamper=tamper, **options)
    assert 400 <= response.status_code < 500, response.content[:1000]
    event = ProvisioningEvent.objects.get()
    assert (event.kind, event.user) == ("rejected", None)
    assert not User.objects.exists()
    if tamper is None:  # an authentic ciphertext (IdP-made), or an attacker's unsigned one: one answer
        assert (event.reason_code, event.message) == ("decryption_failed", MESSAGE)


def test_nested_encryption_is_checked_layer_by_layer(browser):
    """pysaml2 decrypts until no EncryptedData is left; every layer passes the allow-list (RSA-1_5 inside: above)."""
    response = login(browser, Encryption(plaintext=_encrypted_again(Encryption(data=AES128_GCM))), sign_response=False)
    assert_logged_in(response)
