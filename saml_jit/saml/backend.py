"""In-process XML signatures and encryption for pysaml2, on libxmlsec1.

pysaml2's default crypto backend starts the ``xmlsec1`` program for every
signature check, decryption and signature (plus ``xmlsec1 --version`` twice
per call). :class:`XmlSecBackend` does the same work in-process through the
`xmlsec <https://pypi.org/project/xmlsec/>`_ package: the same C library
(libxmlsec1) the program is built on, and what python3-saml uses. A login
then starts no subprocess, and a machine needs no system package.

It is at least as strict as pysaml2's ``xmlsec1`` path, check for check:

* Only the certificate pysaml2 hands in (from the IdP's metadata) is trusted:
  it is set as the signature context's only key and there is no keys
  manager, so nothing in ``KeyInfo`` (a certificate, a key value, a key name,
  a retrieval method) is ever read.
* The signature verified is the one that is a direct child of the element
  being verified; its ``SignedInfo`` has exactly one ``Reference`` whose
  ``URI`` is ``#`` + that element's ``ID`` (no empty URI, no external or
  XPointer URI), only the enveloped-signature and exclusive-c14n transforms
  (with enveloped among them), an exclusive-c14n canonicalisation method and
  no ``ds:Object``.
* The ``ID`` attribute is registered on that one element only (never on the
  whole document), and the document is refused when the ``ID`` value occurs
  on any other element, or when two elements of the verified type share an
  ``ID`` (``xmlsec1 --id-attr`` refuses those too): the classic signature
  wrapping shapes.
* No DTD, no entities, no network access when parsing.
* Decryption only with the algorithms of :mod:`saml_jit.saml.encryption`
  (AES-GCM or AES-CBC content, RSA-OAEP key transport; never RSA-1_5, key
  agreement or a ``CipherReference``), checked before anything is
  decrypted. Which IdP may use CBC is decided before that, per IdP
  (:mod:`saml_jit.saml.decryption`).

How pysaml2 is made to use it: :mod:`saml_jit.saml.adapter`.
"""

from __future__ import annotations

import threading
from typing import Any

from lxml import etree
from saml2 import SamlBase
from saml2.s_utils import Unsupported
from saml2.sigver import (
    ASSERT_XPATH,
    CryptoBackend,
    DecryptError,
    EncryptError,
    SignatureError,
    pre_encrypt_assertion,
)
from saml2.xmldsig import ALLOWED_CANONICALIZATIONS, ALLOWED_TRANSFORMS, TRANSFORM_ENVELOPED

from . import encryption
from ._libxmlsec import xmlsec
from .keys import KeyCache, ManagerCache

__all__ = ["XmlSecBackend", "get_backend", "parse_document"]

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
XENC_NS = "http://www.w3.org/2001/04/xmlenc#"
XML_ID = "{http://www.w3.org/XML/1998/namespace}id"
_DS = f"{{{DS_NS}}}"
_XENC = f"{{{XENC_NS}}}"

_c = xmlsec.constants

#: Digest methods and reference transforms a SAML signature may use. MD5 and
#: RIPEMD-160 (which the xmlsec1 program would accept) are left out.
_REFERENCE_TRANSFORMS = (
    _c.TransformEnveloped,
    _c.TransformExclC14N,
    _c.TransformExclC14NWithComments,
    _c.TransformSha1,
    _c.TransformSha224,
    _c.TransformSha256,
    _c.TransformSha384,
    _c.TransformSha512,
)
#: Canonicalisation and signature methods.
_SIGNATURE_TRANSFORMS = (
    _c.TransformExclC14N,
    _c.TransformExclC14NWithComments,
    _c.TransformRsaSha1,
    _c.TransformRsaSha224,
    _c.TransformRsaSha256,
    _c.TransformRsaSha384,
    _c.TransformRsaSha512,
    _c.TransformEcdsaSha1,
    _c.TransformEcdsaSha224,
    _c.TransformEcdsaSha256,
    _c.TransformEcdsaSha384,
    _c.TransformEcdsaSha512,
    _c.TransformDsaSha1,
)

_CERTIFICATE_FORMATS = {"pem": _c.KeyDataFormatCertPem, "der": _c.KeyDataFormatCertDer}

_SESSION_KEYS = {
    "aes-128": (_c.KeyDataAes, 128),
    "aes-192": (_c.KeyDataAes, 192),
    "aes-256": (_c.KeyDataAes, 256),
    "des-192": (_c.KeyDataDes, 192),
}

# Parsing: never a DTD, an entity or the network; no automatic ID table (so
# xml:id attributes are not IDs either: only what this module registers is).
_PARSER_OPTIONS = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "dtd_validation": False,
    "huge_tree": False,
    "collect_ids": False,
    "remove_blank_text": False,
}


class _Parsers(threading.local):
    """lxml parsers are not thread-safe: one pair per thread."""

    def __init__(self) -> None:
        self.text = etree.XMLParser(encoding="utf-8", **_PARSER_OPTIONS)
        self.binary = etree.XMLParser(**_PARSER_OPTIONS)


_parsers = _Parsers()


def _parse(document: str | bytes, error: type[Exception]) -> etree._Element:
    """Parse untrusted XML; raise ``error`` for anything but a plain document."""
    try:
        if isinstance(document, str):
            root = etree.fromstring(document.encode("utf-8"), _parsers.text)
        else:
            root = etree.fromstring(document, _parsers.binary)
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise error(f"XML could not be parsed: {exc}") from None
    info = root.getroottree().docinfo
    if info.doctype or info.internalDTD is not None or info.externalDTD is not None:
        raise error("XML with a document type declaration is refused")
    return root


def parse_document(document: str | bytes) -> etree._Element:
    """Parse a document to verify signatures in (no DTD, no entities, no network, no ID table)."""
    return _parse(document, SignatureError)


def _serialise(root: etree._Element) -> str:
    # Like the xmlsec1 program's output: the whole document, with a declaration.
    return '<?xml version="1.0"?>\n' + etree.tostring(root.getroottree(), encoding="unicode") + "\n"


def _qname(node_name: str) -> str:
    """pysaml2's ``"urn:...:assertion:Assertion"`` as an lxml ``{ns}tag``."""
    namespace, _, local = node_name.rpartition(":")
    return f"{{{namespace}}}{local}" if namespace else local


class XmlSecBackend(CryptoBackend):
    """pysaml2 ``CryptoBackend`` on libxmlsec1, in-process. Thread-safe and stateless per call."""

    def __init__(self) -> None:
        super().__init__()
        self.keys = KeyCache()
        self._managers = ManagerCache()

    @property
    def version(self) -> str:
        # The xmlsec stubs omit get_libxmlsec_version(), which the module has had since 1.3.14.
        return ".".join(str(part) for part in xmlsec.get_libxmlsec_version())  # type: ignore[attr-defined]

    def _load(
        self, path: str, key_format: int, error: type[Exception], what: str, *, verify_only: bool = False
    ) -> xmlsec.Key:
        try:
            return self.keys.from_file(path, key_format, verify_only=verify_only)
        except (OSError, xmlsec.Error) as exc:
            raise error(f"the {what} could not be loaded: {exc}") from None

    # -- signatures ----------------------------------------------------------

    def validate_signature(
        self, signedtext: str | bytes, cert_file: str, cert_type: str, node_name: str, node_id: str | None
    ) -> bool:
        """Verify the signature of the element ``node_name`` with ``ID`` ``node_id``.

        Returns True, or raises :class:`saml2.sigver.SignatureError` (an
        ``XmlsecError``, as the xmlsec1 backend does; pysaml2 then tries the
        next metadata certificate and finally refuses the message).
        """
        try:
            key_format = _CERTIFICATE_FORMATS[cert_type]
        except KeyError:
            raise SignatureError(f"unsupported certificate type {cert_type!r}") from None
        trusted = self._load(cert_file, key_format, SignatureError, "trusted certificate", verify_only=True)
        self.verify_parsed(parse_document(signedtext), node_name, node_id, [trusted])
        return True

    def verify_parsed(
        self, root: etree._Element, node_name: str, node_id: str | None, trusted: list[xmlsec.Key]
    ) -> None:
        """Verify, in the parsed document ``root``, the signature of ``node_name``/``node_id`` with one of ``trusted``.

        Every check of :meth:`validate_signature` (the profile, the ID rules,
        one trusted key at a time, no ``KeyInfo``) on a tree parsed once by
        :func:`parse_document`: the tree is not changed, so one parse serves
        the Response's and the Assertion's signatures. Raises
        :class:`saml2.sigver.SignatureError` unless a key verifies it.
        """
        target = self.signed_element(root, node_name, node_id)
        signature = _enveloped_signature(target, str(node_id))
        failure = "no trusted key"
        for key in trusted:
            ctx = _verification_context(key)
            try:
                ctx.register_id(target, "ID")  # this element only
                ctx.verify(signature)
                return
            except xmlsec.Error as exc:
                failure = str(exc)
        raise SignatureError(f"signature verification failed: {failure}")

    @staticmethod
    def signed_element(root: etree._Element, node_name: str, node_id: str | None) -> etree._Element:
        """The one element of type ``node_name`` with ``ID`` ``node_id`` in ``root``; refuse ambiguous documents."""
        if not node_id:
            raise SignatureError("the signed element has no ID")
        return _signed_element(root, _qname(node_name), node_id)

    def trusted_certificate(self, pem: bytes) -> xmlsec.Key:
        """A certificate from metadata, parsed once (no temporary file)."""
        try:
            return self.keys.get(pem, _c.KeyDataFormatCertPem, verify_only=True)
        except xmlsec.Error as exc:
            raise SignatureError(f"the trusted certificate could not be loaded: {exc}") from None

    def sign_statement(self, statement: Any, node_name: str, key_file: str, node_id: str | None) -> str:
        """Fill in the signature template of the element ``node_name``/``node_id``; return the document."""
        if isinstance(statement, SamlBase):
            statement = str(statement)
        root = _parse(statement, SignatureError)
        qname = _qname(node_name)
        elements = [root] if root.tag == qname else []
        elements += list(root.iterdescendants(qname))
        signature = next(_signing_start(root, elements, node_name, node_id).iter(f"{_DS}Signature"), None)
        if signature is None:
            raise SignatureError("no signature template to fill in")
        ctx = xmlsec.SignatureContext()
        ctx.key = self._load(key_file, _c.KeyDataFormatPem, SignatureError, "signing key")
        try:
            for element in elements:  # as xmlsec1 --id-attr:ID node_name
                if element.get("ID") is not None:
                    ctx.register_id(element, "ID")
            ctx.sign(signature)
        except xmlsec.Error as exc:
            raise SignatureError(f"signing failed: {exc}") from None
        return _serialise(root)

    # -- encryption ----------------------------------------------------------

    def decrypt(self, enctext: str | bytes, key_file: str) -> str:
        """Decrypt the first ``EncryptedData`` of the document with the private key in ``key_file``.

        Returns the whole document with that element replaced, like
        ``xmlsec1 --decrypt``; raises :class:`saml2.sigver.DecryptError`.
        """
        root = _parse(enctext, DecryptError)
        encrypted = next(root.iter(f"{_XENC}EncryptedData"), None)
        if encrypted is None:
            raise DecryptError("no EncryptedData element")
        try:
            encryption.check(encryption.methods(root), allow_cbc=True)
        except encryption.Unacceptable as exc:
            raise DecryptError(f"refused before decrypting: {exc}") from None
        _register_retrieved_keys(root)
        key = self._load(key_file, _c.KeyDataFormatPem, DecryptError, "decryption key")
        ctx = xmlsec.EncryptionContext(self._managers.get(key))
        try:
            decrypted = ctx.decrypt(encrypted)
        except xmlsec.Error as exc:
            raise DecryptError(f"decryption failed: {exc}") from None
        if not isinstance(decrypted, etree._Element):
            raise DecryptError("the EncryptedData did not hold XML")
        return _serialise(decrypted)

    def encrypt_assertion(
        self,
        statement: Any,
        enc_key: str,
        template: Any,
        key_type: str = "des-192",
        node_xpath: str | None = None,
        node_id: str | None = None,
    ) -> str:
        """Encrypt the assertion (IdP side) for the certificate in ``enc_key``, like the xmlsec1 backend."""
        if isinstance(statement, SamlBase):
            statement = pre_encrypt_assertion(statement)
        root = _parse(str(statement), EncryptError)
        template_root = _parse(str(template), EncryptError)
        node = _node_to_encrypt(root, node_xpath, node_id)
        try:
            algorithm, bits = _SESSION_KEYS[key_type]
        except KeyError:
            raise EncryptError(f"unsupported session key type {key_type!r}") from None
        try:
            manager = xmlsec.KeysManager()
            manager.add_key(self.keys.from_file(enc_key, _c.KeyDataFormatCertPem))
            ctx = xmlsec.EncryptionContext(manager)
            ctx.key = xmlsec.Key.generate(algorithm, bits, _c.KeyDataTypeSession)
            ctx.encrypt_xml(template_root, node)
        except (OSError, xmlsec.Error) as exc:
            raise EncryptError(f"encryption failed: {exc}") from None
        return _serialise(root)

    def encrypt(self, text: str, recv_key: str, template: str, session_key_type: str, xpath: str = "") -> str:
        # Only pysaml2's IdP uses this (encrypted attributes); never a login.
        raise Unsupported("encrypting whole documents needs crypto_backend 'xmlsec1'")


def _verification_context(trusted: xmlsec.Key) -> xmlsec.SignatureContext:
    """A signature context trusting ``trusted`` only, with SAML's algorithms."""
    ctx = xmlsec.SignatureContext()  # no keys manager: KeyInfo is never consulted
    for transform in _REFERENCE_TRANSFORMS:
        ctx.enable_reference_transform(transform)
    for transform in _SIGNATURE_TRANSFORMS:
        ctx.enable_signature_transform(transform)
    ctx.key = trusted
    return ctx


def _signing_start(
    root: etree._Element, elements: list[etree._Element], node_name: str, node_id: str | None
) -> etree._Element:
    """Where to look for the signature template: the one element with ``node_id``, or the document."""
    if not node_id:
        return root
    targets = [element for element in elements if element.get("ID") == node_id]
    if len(targets) != 1:
        raise SignatureError(f"expected one {node_name} with ID {node_id}, found {len(targets)}")
    return targets[0]


def _node_to_encrypt(root: etree._Element, node_xpath: str | None, node_id: str | None) -> etree._Element:
    nodes = [node for node in root.getroottree().xpath(node_xpath or ASSERT_XPATH) if isinstance(node, etree._Element)]
    if node_id:
        nodes = [node for node in nodes if node.get("ID") == node_id]
    if not nodes:
        raise EncryptError("nothing to encrypt")
    return nodes[0]


def _register_retrieved_keys(root: etree._Element) -> None:
    """Let ``ds:RetrievalMethod`` reach a sibling ``EncryptedKey`` (as ``xmlsec1 --id-attr:Id EncryptedKey``).

    Only same-document references to exactly one ``EncryptedKey`` are allowed:
    libxmlsec1 would otherwise follow a URI to a file or the network.
    """
    for method in root.iter(f"{_DS}RetrievalMethod"):
        uri = method.get("URI", "")
        if not uri.startswith("#") or len(uri) < 2:
            raise DecryptError("only same-document RetrievalMethod references are followed")
        targets = [key for key in root.iter(f"{_XENC}EncryptedKey") if key.get("Id") == uri[1:]]
        if len(targets) != 1:
            raise DecryptError(f"RetrievalMethod {uri!r} must name exactly one EncryptedKey")
        xmlsec.tree.add_ids(targets[0], ["Id"])


# --------------------------------------------------------------------------
# SAML's signature profile


def _signed_element(root: etree._Element, qname: str, node_id: str) -> etree._Element:
    """The one element with ``ID`` ``node_id``, of type ``qname``; refuse ambiguous documents."""
    holders = [element for element in root.iter(etree.Element) if node_id in (element.get("ID"), element.get(XML_ID))]
    if len(holders) != 1:
        raise SignatureError(f"{len(holders)} elements carry the ID {node_id!r}")
    target = holders[0]
    if target.tag != qname:
        raise SignatureError(f"the element with ID {node_id!r} is a {target.tag}, not a {qname}")
    seen: set[str] = set()
    for element in root.iter(qname):  # xmlsec1 --id-attr:ID refuses duplicates among these
        value = element.get("ID")
        if value is None:
            continue
        if value in seen:
            raise SignatureError(f"duplicate ID {value!r}")
        seen.add(value)
    return target


def _enveloped_signature(target: etree._Element, node_id: str) -> etree._Element:
    """The enveloped ``ds:Signature`` of ``target``, checked against SAML's signature profile."""
    signatures = target.findall(f"{_DS}Signature")
    if len(signatures) != 1:
        raise SignatureError(f"expected one enveloped signature, found {len(signatures)}")
    signature = signatures[0]
    if signature.find(f"{_DS}Object") is not None:
        raise SignatureError("signatures with a ds:Object are refused")
    signed_infos = signature.findall(f"{_DS}SignedInfo")
    if len(signed_infos) != 1:
        raise SignatureError("expected one SignedInfo")
    signed_info = signed_infos[0]
    c14n = signed_info.find(f"{_DS}CanonicalizationMethod")
    if c14n is None or c14n.get("Algorithm") not in ALLOWED_CANONICALIZATIONS:
        raise SignatureError("canonicalisation must be exclusive c14n")
    _check_reference(signed_info, node_id)
    return signature


def _check_reference(signed_info: etree._Element, node_id: str) -> None:
    """Exactly one ``Reference``, to the signed element, with the enveloped transform and c14n only."""
    references = signed_info.findall(f"{_DS}Reference")
    if len(references) != 1:
        raise SignatureError(f"expected one Reference, found {len(references)}")
    reference = references[0]
    if reference.get("URI") != f"#{node_id}":
        raise SignatureError("the Reference does not point at the signed element")
    transforms = [element.get("Algorithm") for element in reference.iterfind(f"{_DS}Transforms/{_DS}Transform")]
    if not 1 <= len(transforms) <= 2 or TRANSFORM_ENVELOPED not in transforms:
        raise SignatureError("the enveloped-signature transform is required")
    if not set(transforms) <= ALLOWED_TRANSFORMS:
        raise SignatureError("only enveloped-signature and exclusive c14n transforms are allowed")


# --------------------------------------------------------------------------
# The process-wide backend

_backend: XmlSecBackend | None = None
_backend_lock = threading.Lock()


def get_backend() -> XmlSecBackend:
    """The process-wide backend (it only holds caches of parsed keys)."""
    global _backend
    if _backend is None:
        with _backend_lock:
            if _backend is None:
                _backend = XmlSecBackend()
    return _backend
