"""pysaml2's security context on the in-process backend: each document parsed, validated and verified once.

pysaml2 validates every signed element against the SAML schema before
checking its signature, in pure Python (xmlschema, ~8 ms per response), on a
re-serialisation of its Python objects, and the backend then parses the
whole document again for each signature. The security context built here
(:class:`SecurityContext`) validates the document the IdP sent once, with
libxml2 and pysaml2's verdicts (:mod:`saml_jit.saml.schema`), and verifies
every signature in it on one parsed tree; an encrypted assertion is
decrypted afterwards, so it is a new document and is validated too.

pysaml2 calls its module-level ``validate_doc_with_schema``; while
:func:`saml_jit.saml.adapter.enable` is in effect that name is
:func:`_validate_doc_with_schema`, which behaves exactly like pysaml2's
outside this module's context.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

import defusedxml.ElementTree
from lxml import etree
from saml2 import class_name, create_class_from_element_tree, samlp
from saml2.sigver import NODE_NAME, SignatureError, pem_format
from saml2.sigver import SecurityContext as Saml2SecurityContext
from saml2.xml.schema import validate as saml2_validate_doc_with_schema

from . import schema
from .backend import get_backend, parse_document
from .keys import rsa_crypto
from .schema import XMLSchemaError

__all__ = ["SecurityContext", "any_response_from_string", "security_context"]

#: The types pysaml2's ``samlp.any_response_from_string`` tries, in its order.
RESPONSE_TYPES = (
    samlp.StatusResponseType_,
    samlp.Response,
    samlp.ArtifactResponse,
    samlp.LogoutResponse,
    samlp.NameIDMappingResponse,
    samlp.ManageNameIDResponse,
)


def any_response_from_string(xmlstr: str | bytes) -> Any:
    """pysaml2's ``samlp.any_response_from_string``, parsing the document once.

    pysaml2's parses it again for every type it tries (a ``Response`` is the
    second: two parses of the whole document per login). Same parser
    (defusedxml), same types in the same order, same result and exceptions.
    """
    tree = defusedxml.ElementTree.fromstring(xmlstr if isinstance(xmlstr, bytes) else xmlstr.encode("utf-8"))
    for response_type in RESPONSE_TYPES:
        response = create_class_from_element_tree(response_type, tree)
        if response:
            return response
    raise Exception("Unknown response type")  # pysaml2's exception, which its callers catch


#: How :func:`_validate_doc_with_schema` validates: ``None`` outside
#: saml_jit's :class:`SecurityContext` (pysaml2's own validator, unchanged),
#: ``"fast"`` inside it (:mod:`saml_jit.saml.schema`, same verdicts).
_schema_mode: ContextVar[str | None] = ContextVar("saml_jit_schema_mode", default=None)


def _validate_doc_with_schema(doc: str, validator: Any = None) -> None:
    """pysaml2's ``validate_doc_with_schema``, as :class:`SecurityContext` asks for it."""
    if _schema_mode.get() == "fast":
        schema.validate(doc, validator)
        return
    saml2_validate_doc_with_schema(doc, validator)


class SecurityContext(Saml2SecurityContext):
    """pysaml2's ``SecurityContext``, checking each signature on a document parsed once.

    pysaml2's ``_check_signature`` re-serialises the signed element from its
    Python objects (``str(item)``, ~1 ms each) to validate it against the SAML
    schema, writes every metadata certificate to a temporary file, checks the
    ``ds:Signature`` profile on its objects, then hands the whole document to
    the backend, which parses it again for each signature. Here, for the
    common case (signing keys from metadata, no certificate validation), the
    document the signature is verified in is parsed once per context and:

    * validated against the SAML schema once (:mod:`saml_jit.saml.schema`,
      pysaml2's verdicts): the document the IdP sent, not a re-serialisation,
      so nothing pysaml2's object model would drop escapes the schema; the
      assertion of a response already validated is inside that document; a
      decrypted assertion comes in a new document, which is validated;
    * verified with the metadata's certificates, parsed once per process
      (:meth:`~saml_jit.saml.backend.XmlSecBackend.verify_parsed`), which
      also enforces SAML's signature profile (the checks pysaml2 makes on its
      objects: one Reference to the element's ID, exclusive c14n, the
      enveloped transform, no ds:Object) on the tree itself.

    Anything else (no metadata, certificates from the message, certificate
    validation, ``only_valid_cert``) goes to pysaml2's own path, with schema
    validation through libxml2. pysaml2 builds one context per entity, which
    djangosaml2 builds per request.
    """

    #: Documents parsed per context (a response and its decryption).
    _KEPT_DOCUMENTS = 4

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._documents: dict[str, Any] = {}
        self._validated: set[str] = set()

    def correctly_signed_response(
        self,
        decoded_xml: Any,
        must: bool = False,
        origdoc: Any = None,
        only_valid_cert: bool = False,
        require_response_signature: bool = False,
        **kwargs: Any,
    ) -> Any:
        """pysaml2's, with the document parsed once (:func:`any_response_from_string`, which never returns None)."""
        response = any_response_from_string(decoded_xml)
        if response.signature:
            if "do_not_verify" not in kwargs:
                self._check_signature(decoded_xml, response, class_name(response), origdoc)
        elif require_response_signature:
            raise SignatureError("Signature missing for response")
        return response

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
        trusted = self._metadata_keys(item, issuer) if not only_valid_cert else []
        if not trusted or not isinstance(decoded_xml, (str, bytes)):
            return self._pysaml2_check(decoded_xml, item, node_name, origdoc, must, only_valid_cert, issuer)
        if isinstance(decoded_xml, bytes):  # pysaml2 hands in the same document as bytes or as text
            decoded_xml = decoded_xml.decode("utf-8")
        root = self._parsed(decoded_xml)
        backend = get_backend()
        node_id = getattr(item, "id", None)
        if decoded_xml not in self._validated:
            self._validate_schema(decoded_xml, root, backend.signed_element(root, node_name, node_id), item)
        backend.verify_parsed(root, node_name, node_id, trusted)
        return item

    def _pysaml2_check(self, *arguments: Any) -> Any:
        token = _schema_mode.set("fast")
        try:
            return super()._check_signature(*arguments)
        finally:
            _schema_mode.reset(token)

    def _metadata_keys(self, item: Any, issuer: Any) -> list[Any]:
        """The IdP's signing certificates from metadata, as pysaml2 finds them; [] for pysaml2's own path."""
        if self.metadata is None or getattr(self.cert_handler, "_verify_cert", True):
            return []
        name = _issuer_text(item) or _issuer_text_of(issuer)
        try:
            certs = self.metadata.certs(name, "any", "signing")
        except KeyError:
            return []
        if not all(isinstance(cert, str) for _, cert in certs):
            return []
        backend = get_backend()
        return [backend.trusted_certificate(pem_format(cert)) for _, cert in certs]

    def _parsed(self, document: str) -> Any:
        root = self._documents.get(document)
        if root is None:
            if len(self._documents) >= self._KEPT_DOCUMENTS:
                self._documents.clear()
                self._validated.clear()
            root = self._documents[document] = parse_document(document)
        return root

    def _validate_schema(self, document: str, root: Any, target: Any, item: Any) -> None:
        """Validate the signed element as the IdP sent it; the whole document once it is the root.

        An assertion inside a document whose root validated is not validated
        again; a decrypted assertion sits in an ``EncryptedAssertion`` (not
        valid as a whole), so its own subtree is validated.
        """
        whole = target is root
        text = document if whole else etree.tostring(target, encoding="unicode")
        try:
            schema.validate(text)
        except XMLSchemaError as exc:
            reason = {"message": "Signature verification failed. Invalid document format.", "reason": str(exc)}
            raise SignatureError({**reason, "ID": getattr(item, "id", None)}) from exc
        if whole:
            self._validated.add(document)


def _issuer_text(item: Any) -> str | None:
    return _issuer_text_of(getattr(item, "issuer", None))


def _issuer_text_of(issuer: Any) -> str | None:
    try:
        return str(issuer.text.strip())
    except AttributeError:
        return None


def security_context(conf: Any) -> SecurityContext | None:
    """pysaml2's ``security_context()`` for the in-process backend: no xmlsec1 binary, no subprocess."""
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
