"""Decryption without an oracle: one answer for every failure, signatures checked first.

An SP that answers differently depending on what a changed ciphertext
decrypts to lets anyone decrypt it, a few hundred requests per byte (Jager
and Somorovsky, "How to break XML Encryption", 2011): pysaml2 answers "no
assertion" when the plaintext is not well-formed XML and "bad signature"
when it is. :func:`guarded_decryption` wraps pysaml2's validation of one
response, with either crypto backend, so that:

* when the Response is signed, nothing is decrypted before that signature
  has been verified (pysaml2 verifies it first today; this holds it to it);
* every decryption attempt is checked first: the algorithms against the
  allow-list (:mod:`saml_jit.saml.encryption`, CBC only for IdPs that opt
  in), and after: the decrypted document against the work bounds
  (:mod:`saml_jit.saml.bounds`; the SP's certificate is public, anyone can
  encrypt for it);
* once decryption was attempted, every failure — key unwrap, padding, GCM
  tag, a plaintext that is not XML, not an Assertion, too complex, an
  assertion unsigned, wrongly signed or schema-invalid, anything pysaml2
  raises — becomes the one :func:`refusal`: the same code, status, page and
  event message. Only when the plaintext is proven authentic (the decrypted
  assertion's signature verified, or the Response's before decryption) do
  a few outcomes keep their own code: expired, not yet valid, another
  audience, unsolicited. Those depend on what the IdP signed, not on
  anything an attacker can vary.

``OSError`` (a key file or the ``xmlsec1`` program missing) is a fault of the
site, not of the document, and passes through unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from saml2 import saml, samlp
from saml2.response import DecryptionFailed
from saml2.sigver import SignatureError

from ..conf import IdPSettings
from ..exceptions import Rejected
from . import bounds, encryption
from .response import Inspection

__all__ = ["MESSAGE", "DecryptionGuard", "DecryptionRefused", "guarded_decryption", "refusal"]

#: The event message of every decryption failure: fixed, so that not even
#: the event log tells one failure from another.
MESSAGE = (
    "The encrypted assertion could not be decrypted into one valid signed assertion "
    "(wrong key or algorithm, corrupted ciphertext, or the assertion inside unsigned, badly signed or invalid)."
)

#: Reason codes that survive decryption, once the plaintext is authentic.
AUTHENTIC_OUTCOMES = frozenset({"expired", "not_yet_valid", "conditions_not_met", "wrong_audience", "unsolicited"})

_WRAPPED = ("_check_signature", "decrypt_keys")
_RESPONSE = "{urn:oasis:names:tc:SAML:2.0:protocol}Response"
_ASSERTION = "{urn:oasis:names:tc:SAML:2.0:assertion}Assertion"
_ENCRYPTED_ASSERTION = "{urn:oasis:names:tc:SAML:2.0:assertion}EncryptedAssertion"
_ENCRYPTED_DATA = f"{{{encryption.XENC}}}EncryptedData"
_ENCRYPTED_KEY = f"{{{encryption.XENC}}}EncryptedKey"
_MISSING = object()


def refusal() -> Rejected:
    """The one answer to every failure on the decryption path."""
    return Rejected("decryption_failed", MESSAGE)


class DecryptionRefused(DecryptionFailed):
    """Raised from a failed decryption, where pysaml2 would skip a ``DecryptError`` and carry on."""


class DecryptionGuard:
    """State of one response's validation; wraps its pysaml2 security context's methods while active.

    ``signed``: the Response carries a signature (from
    :func:`saml_jit.saml.response.inspect_document`). ``allow_cbc``: the
    IdP's ``ALLOW_CBC_ENCRYPTION``.
    """

    def __init__(self, sec: Any, *, signed: bool, allow_cbc: bool, limits: bounds.Bounds | None = None):
        self.sec, self.signed, self.allow_cbc, self.limits = sec, signed, allow_cbc, limits
        self.response_verified = False
        self.assertion_verified = False
        #: A decryption was attempted: from here on failures look alike.
        self.decrypted = False
        self._saved: dict[str, Any] = {}

    def install(self) -> None:
        sec = self.sec
        self._saved = {name: sec.__dict__.get(name, _MISSING) for name in _WRAPPED}
        sec._check_signature = self._checking(sec._check_signature)
        sec.decrypt_keys = self._decrypting(sec.decrypt_keys)

    def uninstall(self) -> None:
        for name, saved in self._saved.items():
            if saved is _MISSING:
                self.sec.__dict__.pop(name, None)
            else:
                setattr(self.sec, name, saved)

    @property
    def authentic(self) -> bool:
        """The plaintext is what the IdP signed: its own signature, or the Response's, verified."""
        return self.response_verified or self.assertion_verified

    def conceals(self, exc: BaseException) -> bool:
        """Whether ``exc`` must become the one :func:`refusal`."""
        if not self.decrypted or isinstance(exc, OSError):
            return False
        if not self.authentic:
            return True
        return not (isinstance(exc, Rejected) and exc.code in AUTHENTIC_OUTCOMES)

    def _checking(self, check: Callable[..., Any]) -> Callable[..., Any]:
        def check_signature(decoded_xml: Any, item: Any, *args: Any, **kwargs: Any) -> Any:
            result = check(decoded_xml, item, *args, **kwargs)
            if result and isinstance(item, samlp.Response) and not self.decrypted:
                self.response_verified = True
            elif result and isinstance(item, saml.Assertion) and self.decrypted:
                self.assertion_verified = True
            return result

        return check_signature

    def _decrypting(self, decrypt: Callable[..., Any]) -> Callable[..., Any]:
        def decrypt_keys(enctext: Any, keys: Any = None) -> Any:
            if self.signed and not self.response_verified:
                raise SignatureError("the Response's signature must be verified before anything is decrypted")
            self.decrypted = True
            try:
                self._check_input(enctext)
                plaintext = decrypt(enctext, keys=keys)
                self._check_output(plaintext)
            except OSError:
                raise
            except Exception:
                raise DecryptionRefused() from None
            return plaintext

        return decrypt_keys

    def _check_input(self, enctext: Any) -> None:
        root = bounds.parse(_as_bytes(enctext), self.limits)
        encryption.check(encryption.methods(root), allow_cbc=self.allow_cbc)

    def _check_output(self, plaintext: Any) -> None:
        root = bounds.parse(_as_bytes(plaintext), self.limits)
        if root.tag == _RESPONSE:
            for encrypted in root.iter(_ENCRYPTED_ASSERTION):
                _check_decrypted(encrypted)


def _check_decrypted(encrypted: Any) -> None:
    """An ``EncryptedAssertion`` after decryption holds one Assertion (or, nested, one EncryptedData) and nothing else.

    Besides what its signature covers, nothing may come out of a ciphertext
    that changes the answer: no second element (an assertion that verifies
    beside one that "parsed"), no text, no comment, no processing
    instruction. ``EncryptedKey`` siblings stay behind, as they came.
    """
    if (encrypted.text or "").strip():
        raise ValueError("text beside the decrypted assertion")
    payload = []
    for child in encrypted:
        if (child.tail or "").strip() or not isinstance(child.tag, str):
            raise ValueError("text, a comment or a processing instruction beside the decrypted assertion")
        if child.tag != _ENCRYPTED_KEY:
            payload.append(child.tag)
    if payload not in ([_ASSERTION], [_ENCRYPTED_DATA]):
        raise ValueError("the decrypted EncryptedAssertion does not hold exactly one Assertion")


def _as_bytes(text: Any) -> bytes:
    if isinstance(text, bytes):
        return text
    return (text if isinstance(text, str) else str(text)).encode("utf-8")


@contextmanager
def guarded_decryption(sec: Any, inspection: Inspection, settings: IdPSettings) -> Iterator[DecryptionGuard]:
    """Validate one response inside this block (``sec``: the pysaml2 client's ``.sec``).

    ``inspection`` says whether the Response is signed; ``settings`` (the
    claimed IdP's) whether CBC may be decrypted. Any exception leaving the
    block after a decryption was attempted becomes :func:`refusal` (see
    :meth:`DecryptionGuard.conceals`).
    """
    guard = DecryptionGuard(sec, signed=inspection.signed, allow_cbc=settings.ALLOW_CBC_ENCRYPTION)
    guard.install()
    try:
        yield guard
    except Exception as exc:
        if guard.conceals(exc):
            raise refusal() from None
        raise
    finally:
        guard.uninstall()
