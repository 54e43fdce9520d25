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

Schema validation: pysaml2 validates every signed element against the SAML
schema before checking its signature, in pure Python (xmlschema, ~8 ms per
response). The security context built here (:class:`SecurityContext`) has it
done by libxml2 with pysaml2's verdicts (:mod:`saml_jit.schema`), and does not
repeat it for a signed Assertion inside a signed Response it has just
validated and verified (a subtree of a valid document is valid); an encrypted
assertion is decrypted afterwards, so it is a new document and is validated.

Selecting it
------------
``SAML_JIT["CRYPTO_BACKEND"]`` is ``"xmlsec"`` (this module, the default) or
``"xmlsec1"`` (pysaml2's subprocess path, unchanged). With ``"xmlsec"``,
:mod:`saml_jit.spconfig` loads the pysaml2 configuration with
``crypto_backend = "saml_jit.xmlsec"`` (:data:`BACKEND_NAME`) and calls
:func:`enable`, which teaches pysaml2's ``security_context()`` that one
value: every pysaml2 object built from such a configuration (the ACS client,
djangosaml2's login, logout and metadata views, the metadata store) then uses
this backend, and neither ``xmlsec1 --version`` nor any other subprocess is
started, nor is the ``xmlsec1`` binary looked for. Any other
``crypto_backend`` value goes to pysaml2 untouched.

:func:`install` is the explicit, per-object alternative: it swaps the crypto
backend of one pysaml2 ``Entity`` (e.g. a ``Saml2Client``) that was built
from any configuration.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import threading
from collections import OrderedDict
from contextvars import ContextVar
from typing import Any

from lxml import etree

try:
    import xmlsec
except Exception as exc:  # xmlsec.InternalError at import: "lxml & xmlsec libxml2 library version mismatch"
    raise ImportError(
        "saml_jit.crypto needs the 'xmlsec' package, built against the same libxml2 as lxml "
        f"({exc}). Install matching wheels (see requirements.txt), or build both from source: "
        "pip install --no-binary lxml,xmlsec lxml xmlsec"
    ) from exc
from saml2 import SamlBase
from saml2.s_utils import Unsupported
from saml2.sigver import (
    ASSERT_XPATH,
    NODE_NAME,
    CryptoBackend,
    DecryptError,
    EncryptError,
    RSACrypto,
    SignatureError,
    import_rsa_key_from_file,
    pre_encrypt_assertion,
)
from saml2.sigver import SecurityContext as Saml2SecurityContext
from saml2.xml.schema import validate as saml2_validate_doc_with_schema
from saml2.xmldsig import ALLOWED_CANONICALIZATIONS, ALLOWED_TRANSFORMS, TRANSFORM_ENVELOPED

from . import schema

logger = logging.getLogger(__name__)

__all__ = [
    "BACKEND_NAME",
    "SecurityContext",
    "XmlSecBackend",
    "disable",
    "enable",
    "get_backend",
    "install",
    "is_enabled",
    "rsa_crypto",
    "security_context",
]

#: The ``crypto_backend`` value of a pysaml2 configuration that selects this backend.
BACKEND_NAME = "saml_jit.xmlsec"

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


def _serialise(root: etree._Element) -> str:
    # Like the xmlsec1 program's output: the whole document, with a declaration.
    return '<?xml version="1.0"?>\n' + etree.tostring(root.getroottree(), encoding="unicode") + "\n"


def _qname(node_name: str) -> str:
    """pysaml2's ``"urn:...:assertion:Assertion"`` as an lxml ``{ns}tag``."""
    namespace, _, local = node_name.rpartition(":")
    return f"{{{namespace}}}{local}" if namespace else local


class _KeyCache:
    """Parsed xmlsec keys, keyed by the bytes they were read from (bounded)."""

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._keys: OrderedDict[tuple[int, bytes], xmlsec.Key] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, data: bytes, key_format: int) -> xmlsec.Key:
        cache_key = (key_format, hashlib.sha256(data).digest())
        with self._lock:
            key = self._keys.get(cache_key)
            if key is not None:
                self._keys.move_to_end(cache_key)
                return key
        key = xmlsec.Key.from_memory(data, key_format)
        with self._lock:
            self._keys[cache_key] = key
            while len(self._keys) > self._size:
                self._keys.popitem(last=False)
        return key

    def from_file(self, path: str | os.PathLike[str], key_format: int) -> xmlsec.Key:
        # Read every time (a few hundred bytes): a rotated file is picked up
        # at once, and pysaml2's temporary files (new names every call) are
        # still parsed only once.
        with open(path, "rb") as handle:
            return self.get(handle.read(), key_format)

    def clear(self) -> None:
        with self._lock:
            self._keys.clear()


class XmlSecBackend(CryptoBackend):
    """pysaml2 ``CryptoBackend`` on libxmlsec1, in-process. Thread-safe and stateless per call."""

    def __init__(self) -> None:
        super().__init__()
        self.keys = _KeyCache()
        # Creating a KeysManager costs ~15 ms (libxmlsec1 sets up an X.509
        # store), more than the decryption itself: keep one per key and
        # thread (a manager is not shared between threads).
        self._managers = threading.local()

    def _manager(self, key: xmlsec.Key) -> xmlsec.KeysManager:
        managers: dict[int, tuple[xmlsec.Key, xmlsec.KeysManager]] = self._managers.__dict__.setdefault("by_key", {})
        entry = managers.get(id(key))
        if entry is None or entry[0] is not key:
            if len(managers) >= 64:  # keys rotated many times: start afresh
                managers.clear()
            manager = xmlsec.KeysManager()
            manager.add_key(key)
            entry = managers[id(key)] = (key, manager)
        return entry[1]

    @property
    def version(self) -> str:
        # The xmlsec stubs omit get_libxmlsec_version(), which the module has had since 1.3.14.
        return ".".join(str(part) for part in xmlsec.get_libxmlsec_version())  # type: ignore[attr-defined]

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
            key_format = {"pem": _c.KeyDataFormatCertPem, "der": _c.KeyDataFormatCertDer}[cert_type]
        except KeyError:
            raise SignatureError(f"unsupported certificate type {cert_type!r}") from None
        if not node_id:
            raise SignatureError("the signed element has no ID")
        root = _parse(signedtext, SignatureError)
        target = _signed_element(root, _qname(node_name), node_id)
        signature = _enveloped_signature(target, node_id)
        try:
            trusted = self.keys.from_file(cert_file, key_format)
        except (OSError, xmlsec.Error) as exc:
            raise SignatureError(f"the trusted certificate could not be loaded: {exc}") from None

        ctx = xmlsec.SignatureContext()  # no keys manager: KeyInfo is never consulted
        for transform in _REFERENCE_TRANSFORMS:
            ctx.enable_reference_transform(transform)
        for transform in _SIGNATURE_TRANSFORMS:
            ctx.enable_signature_transform(transform)
        ctx.key = trusted
        try:
            ctx.register_id(target, "ID")  # this element only
            ctx.verify(signature)
        except xmlsec.Error as exc:
            raise SignatureError(f"signature verification failed: {exc}") from None
        return True

    def sign_statement(self, statement: Any, node_name: str, key_file: str, node_id: str | None) -> str:
        """Fill in the signature template of the element ``node_name``/``node_id``; return the document."""
        if isinstance(statement, SamlBase):
            statement = str(statement)
        root = _parse(statement, SignatureError)
        qname = _qname(node_name)
        elements = [root] if root.tag == qname else []
        elements += list(root.iterdescendants(qname))
        if node_id:
            targets = [element for element in elements if element.get("ID") == node_id]
            if len(targets) != 1:
                raise SignatureError(f"expected one {node_name} with ID {node_id}, found {len(targets)}")
            start = targets[0]
        else:
            start = root
        signature = next(start.iter(f"{_DS}Signature"), None)
        if signature is None:
            raise SignatureError("no signature template to fill in")
        try:
            key = self.keys.from_file(key_file, _c.KeyDataFormatPem)
        except (OSError, xmlsec.Error) as exc:
            raise SignatureError(f"the signing key could not be loaded: {exc}") from None
        ctx = xmlsec.SignatureContext()
        ctx.key = key
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
        _register_retrieved_keys(root)
        try:
            key = self.keys.from_file(key_file, _c.KeyDataFormatPem)
        except (OSError, xmlsec.Error) as exc:
            raise DecryptError(f"the decryption key could not be loaded: {exc}") from None
        ctx = xmlsec.EncryptionContext(self._manager(key))
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
        nodes = [
            node for node in root.getroottree().xpath(node_xpath or ASSERT_XPATH) if isinstance(node, etree._Element)
        ]
        if node_id:
            nodes = [node for node in nodes if node.get("ID") == node_id]
        if not nodes:
            raise EncryptError("nothing to encrypt")
        try:
            algorithm, bits = _SESSION_KEYS[key_type]
        except KeyError:
            raise EncryptError(f"unsupported session key type {key_type!r}") from None
        try:
            manager = xmlsec.KeysManager()
            manager.add_key(self.keys.from_file(enc_key, _c.KeyDataFormatCertPem))
            ctx = xmlsec.EncryptionContext(manager)
            ctx.key = xmlsec.Key.generate(algorithm, bits, _c.KeyDataTypeSession)
            ctx.encrypt_xml(template_root, nodes[0])
        except (OSError, xmlsec.Error) as exc:
            raise EncryptError(f"encryption failed: {exc}") from None
        return _serialise(root)

    def encrypt(self, text: str, recv_key: str, template: str, session_key_type: str, xpath: str = "") -> str:
        # Only pysaml2's IdP uses this (encrypted attributes); never a login.
        raise Unsupported("encrypting whole documents needs crypto_backend 'xmlsec1'")


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
    return signature


# --------------------------------------------------------------------------
# pysaml2 integration

_backend: XmlSecBackend | None = None
_backend_lock = threading.Lock()


def get_backend() -> XmlSecBackend:
    """The process-wide backend (it only holds a cache of parsed keys)."""
    global _backend
    if _backend is None:
        with _backend_lock:
            if _backend is None:
                _backend = XmlSecBackend()
    return _backend


_rsa_cache: dict[tuple[str, int, int], RSACrypto] = {}
_rsa_lock = threading.Lock()


def rsa_crypto(key_file: str | None) -> RSACrypto | None:
    """pysaml2's ``RSACrypto`` for ``key_file`` (HTTP-Redirect signatures), loaded once per file version.

    pysaml2 loads (and fully checks) the SP's RSA key each time it builds a
    security context: about 45 ms for RSA-2048, per request.
    """
    if not key_file:
        return None
    stat = os.stat(key_file)
    cache_key = (os.fspath(key_file), stat.st_mtime_ns, stat.st_size)
    with _rsa_lock:
        found = _rsa_cache.get(cache_key)
    if found is None:
        found = RSACrypto(import_rsa_key_from_file(key_file))
        with _rsa_lock:
            for stale in [k for k in _rsa_cache if k[0] == cache_key[0]]:
                del _rsa_cache[stale]
            _rsa_cache[cache_key] = found
    return found


#: How :func:`_validate_doc_with_schema` validates: ``None`` outside
#: saml_jit's :class:`SecurityContext` (pysaml2's own validator, unchanged),
#: ``"fast"`` inside it (:mod:`saml_jit.schema`, same verdicts), ``"done"``
#: for an element whose schema validity the context already established.
_schema_mode: ContextVar[str | None] = ContextVar("saml_jit_schema_mode", default=None)

#: Assertions remembered per context (a response carries one; bounded so that
#: a long-lived context cannot grow).
_REMEMBERED_ASSERTIONS = 8


def _validate_doc_with_schema(doc: str, validator: Any = None) -> None:
    """pysaml2's ``validate_doc_with_schema``, as :class:`SecurityContext` asks for it."""
    mode = _schema_mode.get()
    if mode == "done":
        return
    if mode == "fast":
        schema.validate(doc, validator)
        return
    saml2_validate_doc_with_schema(doc, validator)


class SecurityContext(Saml2SecurityContext):
    """pysaml2's ``SecurityContext`` with fast schema validation, done once per document.

    ``_check_signature`` validates the element against the SAML schema (here
    through :mod:`saml_jit.schema`: libxml2, pysaml2's verdicts), then
    verifies its signature. When it succeeds for a Response, the Response's
    assertion objects are remembered; when the same objects (identity, not
    equality: pysaml2 hands in ``response.assertion[i]``) are checked next,
    their schema validation is skipped, because validating the whole document
    validated them in place. The signature check itself is never skipped.
    pysaml2 builds one context per entity, which djangosaml2 builds per request.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._validated_assertions: list[Any] = []

    def _check_signature(
        self,
        decoded_xml: Any,
        item: Any,
        node_name: str = NODE_NAME,
        origdoc: Any = None,
        must: bool = False,
        only_valid_cert: bool = False,
        issuer: Any = None,
    ) -> Any:
        arguments = (decoded_xml, item, node_name, origdoc, must, only_valid_cert, issuer)
        done = any(item is validated for validated in self._validated_assertions)
        token = _schema_mode.set("done" if done else "fast")
        try:
            result = super()._check_signature(*arguments)
        finally:
            _schema_mode.reset(token)
        if not done:
            inside = [a for a in getattr(item, "assertion", None) or [] if isinstance(a, SamlBase)]
            self._validated_assertions = [*self._validated_assertions, *inside][-_REMEMBERED_ASSERTIONS:]
        return result


def security_context(conf: Any) -> SecurityContext | None:
    """pysaml2's ``security_context()`` for this backend: no xmlsec1 binary, no subprocess."""
    if not conf:
        return None
    metadata = getattr(conf, "metadata", None)
    enc_key_files = [pair["key_file"] for pair in (conf.encryption_keypairs or []) if "key_file" in pair]
    return SecurityContext(
        get_backend(),
        conf.key_file,
        cert_file=conf.cert_file,
        metadata=metadata,
        only_use_keys_in_metadata=conf.only_use_keys_in_metadata,
        cert_handler_extra_class=conf.cert_handler_extra_class,
        generate_cert_info=conf.generate_cert_info,
        tmp_cert_file=conf.tmp_cert_file,
        tmp_key_file=conf.tmp_key_file,
        validate_certificate=conf.validate_certificate,
        enc_key_files=enc_key_files,
        encryption_keypairs=conf.encryption_keypairs,
        sec_backend=rsa_crypto(conf.getattr("key_file", "")),
        delete_tmpfiles=conf.delete_tmpfiles,
    )


def install(entity: Any) -> Any:
    """Make one pysaml2 ``Entity`` (``Saml2Client``, ``Server``…) use the in-process backend.

    Works whatever ``crypto_backend`` its configuration names; returns the entity.
    """
    sec = entity.sec
    sec.crypto = get_backend()
    if sec.sec_backend is None:
        sec.sec_backend = rsa_crypto(entity.config.getattr("key_file", ""))
    return entity


# Modules that bound ``security_context`` at import time.
_PATCHED_MODULES = ("saml2.sigver", "saml2.entity", "saml2.mdstore", "saml2.response", "saml2.metadata")
_enable_lock = threading.Lock()
_original_security_context: Any = None


def _dispatching_security_context(conf: Any) -> Any:
    if conf and getattr(conf, "crypto_backend", None) == BACKEND_NAME:
        return security_context(conf)
    return _original_security_context(conf)


def enable() -> None:
    """Let pysaml2 build this backend for configurations with ``crypto_backend = BACKEND_NAME``.

    Idempotent and thread-safe. Configurations naming any other backend are
    handed to pysaml2's own ``security_context()`` unchanged; without
    :func:`enable`, pysaml2 refuses :data:`BACKEND_NAME` ("Unknown
    crypto_backend"), so a missing call fails closed.
    """
    global _original_security_context
    with _enable_lock:
        import saml2.sigver

        if _original_security_context is None:
            _original_security_context = saml2.sigver.security_context
        # Only ever skips inside saml_jit's SecurityContext (see there).
        saml2.sigver.validate_doc_with_schema = _validate_doc_with_schema
        for name in _PATCHED_MODULES:
            module: Any = importlib.import_module(name)  # Any: security_context is set on it below
            if getattr(module, "security_context", None) is _original_security_context:
                module.security_context = _dispatching_security_context


def disable() -> None:
    """Undo :func:`enable` (for tests)."""
    with _enable_lock:
        if _original_security_context is None:
            return
        import saml2.sigver

        saml2.sigver.validate_doc_with_schema = saml2_validate_doc_with_schema
        for name in _PATCHED_MODULES:
            module: Any = importlib.import_module(name)
            if getattr(module, "security_context", None) is _dispatching_security_context:
                module.security_context = _original_security_context


def is_enabled() -> bool:
    import saml2.entity

    return saml2.entity.security_context is _dispatching_security_context
