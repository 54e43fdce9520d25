"""pysaml2's security context on the in-process backend, with schema validation done once.

pysaml2 validates every signed element against the SAML schema before
checking its signature, in pure Python (xmlschema, ~8 ms per response). The
security context built here (:class:`SecurityContext`) has it done by libxml2
with pysaml2's verdicts (:mod:`saml_jit.saml.schema`), and does not repeat it
for a signed Assertion inside a signed Response it has just validated and
verified (a subtree of a valid document is valid); an encrypted assertion is
decrypted afterwards, so it is a new document and is validated.

pysaml2 calls its module-level ``validate_doc_with_schema``; while
:func:`saml_jit.saml.adapter.enable` is in effect that name is
:func:`_validate_doc_with_schema`, which behaves exactly like pysaml2's
outside this module's context.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from saml2 import SamlBase
from saml2.sigver import NODE_NAME
from saml2.sigver import SecurityContext as Saml2SecurityContext
from saml2.xml.schema import validate as saml2_validate_doc_with_schema

from . import schema
from .backend import get_backend
from .keys import rsa_crypto

__all__ = ["SecurityContext", "security_context"]

#: How :func:`_validate_doc_with_schema` validates: ``None`` outside
#: saml_jit's :class:`SecurityContext` (pysaml2's own validator, unchanged),
#: ``"fast"`` inside it (:mod:`saml_jit.saml.schema`, same verdicts), ``"done"``
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
    through :mod:`saml_jit.saml.schema`: libxml2, pysaml2's verdicts), then
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
