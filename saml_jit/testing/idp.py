"""A small but real SAML 2.0 identity provider, for tests and the demo.

It is built on pysaml2's own IdP classes (:class:`saml2.server.Server`) and
signs in-process, with saml_jit's libxmlsec1 backend
(:mod:`saml_jit.saml.backend`) installed on its own ``Server`` only: it needs
no ``xmlsec1`` program and leaves pysaml2's global state as it found it. It
encrypts with ``cryptography`` (:mod:`saml_jit.testing.encryption`: every
algorithm, and every breakage, a test asks for), independently of the
libxmlsec1 the SP decrypts with. What
it produces is what a real IdP sends: the service-provider side (djangosaml2
+ pysaml2) validates it with no shortcut, with either crypto backend.

Unlike ``Server.create_authn_response``, :meth:`TestIdP.make_response` builds
the assertion objects itself, from a :class:`ResponseSpec`. That is what lets
a test ask for exactly the hostile or broken response it needs (wrong
audience, expired, unsolicited, re-used assertion ID, odd attribute
values...) while keeping the signature valid, because every change is made
*before* signing. A broken signature is only ever produced on purpose
(``signing_key_file`` or ``tamper``).

Typical use::

    key, crt = generate_keypair(tmp_path, "idp", "Test IdP")
    idp = TestIdP("https://idp.example/metadata/", key, crt, "https://idp.example")
    settings.SAML_CONFIG = saml_config(  # from saml_jit.config
        entity_id="http://testserver/saml2/metadata/",
        base_url="http://testserver",
        idp_metadata_xml=idp.metadata_xml(),
    )
    data = idp.post_data(
        sp_entity_id="http://testserver/saml2/metadata/",
        acs_url="http://testserver/saml2/acs/",
        name_id="a7f3...",
        attributes={ATTRIBUTE_URIS["mail"]: ["alice@example.org"]},
        friendly_names=FRIENDLY_NAMES,
        in_response_to=request_id,
    )
    client.post("/saml2/acs/", data)
"""

from __future__ import annotations

import base64
import os
import warnings
from pathlib import Path
from typing import Any, NamedTuple

from lxml import etree
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.metadata import entity_descriptor
from saml2.saml import NAME_FORMAT_URI, NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_TRANSIENT
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

with warnings.catch_warnings():
    # saml2.server imports pysaml2's AESCipher, whose class body names cryptography's CFB mode (moved to its
    # "decrepit" module): a warning on every manage.py command of a site running the dev IdP, about a cipher
    # neither this IdP nor the SP uses. Only that warning, only for this import.
    warnings.filterwarnings("ignore", message="CFB has been moved", module=r"saml2\.cryptography\.symmetric")
    from saml2.server import Server

from saml_jit.saml.adapter import install
from saml_jit.saml.backend import get_backend

from .encryption import Encryption, encrypted_data
from .keys import _cert_base64, generate_keypair
from .responses import ResponseSpec, Signer, build_response, serialise, spec_with
from .sp import sp_saml_config

__all__ = [
    "ATTRIBUTE_URIS",
    "FRIENDLY_NAMES",
    "AuthnRequestInfo",
    "ResponseSpec",
    "TestIdP",
    "generate_keypair",
    "sp_saml_config",
]

#: Friendly name -> URI name of the attributes real IdPs send (docs/idps/README.md).
ATTRIBUTE_URIS: dict[str, str] = {
    "uid": "urn:oid:0.9.2342.19200300.100.1.1",
    "mail": "urn:oid:0.9.2342.19200300.100.1.3",
    "givenName": "urn:oid:2.5.4.42",
    "sn": "urn:oid:2.5.4.4",
    "displayName": "urn:oid:2.16.840.1.113730.3.1.241",
    "isMemberOf": "urn:oid:1.3.6.1.4.1.5923.1.5.1.1",
    "eduPersonEntitlement": "urn:oid:1.3.6.1.4.1.5923.1.1.1.7",
    "eduPersonPrincipalName": "urn:oid:1.3.6.1.4.1.5923.1.1.1.6",
    "eduPersonAffiliation": "urn:oid:1.3.6.1.4.1.5923.1.1.1.1",
    "eduPersonScopedAffiliation": "urn:oid:1.3.6.1.4.1.5923.1.1.1.9",
    "eduPersonTargetedID": "urn:oid:1.3.6.1.4.1.5923.1.1.1.10",
    "subject-id": "urn:oasis:names:tc:SAML:attribute:subject-id",
    "pairwise-id": "urn:oasis:names:tc:SAML:attribute:pairwise-id",
}

#: URI name -> friendly name, ready to pass as ``friendly_names``.
FRIENDLY_NAMES: dict[str, str] = {uri: friendly for friendly, uri in ATTRIBUTE_URIS.items()}

SAML_NS = "urn:oasis:names:tc:SAML:2.0:assertion"
_ASSERTION_NODE = "urn:oasis:names:tc:SAML:2.0:assertion:Assertion"
_RESPONSE_NODE = "urn:oasis:names:tc:SAML:2.0:protocol:Response"


class AuthnRequestInfo(NamedTuple):
    """What the IdP needs from an SP's AuthnRequest to answer it."""

    request_id: str
    sp_entity_id: str
    acs_url: str


# --------------------------------------------------------------------------
# The IdP


def _in_process(server: Server) -> Server:
    """``server`` with saml_jit's in-process backend: its own security context and its metadata store's."""
    install(server)
    if server.metadata is not None:
        server.metadata.security.crypto = get_backend()
    return server


class TestIdP:
    """An in-memory pysaml2 IdP that signs with RSA-SHA256 / SHA-256.

    ``sp_metadata`` is the metadata of the SPs it serves (XML strings); it is
    only needed to answer real AuthnRequests (:meth:`parse_authn_request`),
    not to build responses for tests.
    """

    __test__ = False  # keep pytest from collecting this as a test class

    def __init__(
        self,
        entity_id: str,
        key_file: str | os.PathLike[str],
        cert_file: str | os.PathLike[str],
        base_url: str,
        sp_metadata: str | list[str] | None = None,
        *,
        name: str = "saml_jit test IdP",
    ) -> None:
        self.entity_id = entity_id
        self.key_file = str(key_file)
        self.cert_file = str(cert_file)
        self.base_url = base_url.rstrip("/")
        self.name = name
        if isinstance(sp_metadata, str):
            sp_metadata = [sp_metadata]
        self._sp_metadata: list[str] = list(sp_metadata or [])
        self._server = self._build_server()

    # -- configuration -----------------------------------------------------

    @property
    def sso_redirect_url(self) -> str:
        return f"{self.base_url}/sso/redirect/"

    @property
    def sso_post_url(self) -> str:
        return f"{self.base_url}/sso/post/"

    @property
    def slo_url(self) -> str:
        return f"{self.base_url}/slo/"

    @property
    def server(self) -> Server:
        """The underlying :class:`saml2.server.Server` (e.g. for logout)."""
        return self._server

    def _config_dict(self) -> dict:
        config: dict = {
            "entityid": self.entity_id,
            # pysaml2 builds an entity's security context from this value, and
            # knows "xmlsec1" (which needs the program) and "XMLSecurity" (a
            # constructor that does nothing). The latter, replaced at once by
            # the in-process backend (_in_process), needs neither the program
            # nor saml_jit's global patch of pysaml2.
            "crypto_backend": "XMLSecurity",
            "key_file": self.key_file,
            "cert_file": self.cert_file,
            "signing_algorithm": SIG_RSA_SHA256,
            "digest_algorithm": DIGEST_SHA256,
            "allow_unknown_attributes": True,
            "delete_tmpfiles": True,
            "service": {"idp": self._idp_service()},
        }
        if self._sp_metadata:
            config["metadata"] = {"inline": list(self._sp_metadata)}
        return config

    def _idp_service(self) -> dict:
        return {
            "name": self.name,
            "endpoints": {
                "single_sign_on_service": [
                    (self.sso_redirect_url, BINDING_HTTP_REDIRECT),
                    (self.sso_post_url, BINDING_HTTP_POST),
                ],
                "single_logout_service": [
                    (self.slo_url, BINDING_HTTP_REDIRECT),
                    (self.slo_url, BINDING_HTTP_POST),
                ],
            },
            "name_id_format": [NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_TRANSIENT],
            "sign_response": True,
            "sign_assertion": True,
            "want_authn_requests_signed": False,
            "policy": {"default": {"name_form": NAME_FORMAT_URI}},
        }

    def _build_server(self) -> Server:
        return _in_process(Server(config=IdPConfig().load(self._config_dict())))

    def add_sp_metadata(self, xml: str) -> None:
        """Trust one more SP (its metadata XML) for :meth:`parse_authn_request`."""
        self._sp_metadata.append(xml)
        self._server = self._build_server()

    def metadata_xml(self) -> str:
        """The IdP's ``EntityDescriptor``, with its signing certificate."""
        descriptor = entity_descriptor(self._server.config)
        return str(descriptor)

    # -- AuthnRequest ------------------------------------------------------

    def parse_authn_request(
        self,
        saml_request: str,
        relay_state: str | None = None,
        binding: str = BINDING_HTTP_REDIRECT,
    ) -> AuthnRequestInfo:
        """Parse an SP's AuthnRequest and return where and how to answer it.

        The SP must be known (see ``sp_metadata``) and the ACS URL it asks
        for must be one its metadata declares: answering to an arbitrary URL
        would hand signed assertions to whoever forged the request.
        ``relay_state`` is accepted for signature compatibility with the
        bindings; it is opaque to the IdP and simply echoed by the caller.
        """
        del relay_state  # opaque: the caller sends it back unchanged
        message = self._server.parse_authn_request(saml_request, binding).message
        sp_entity_id = message.issuer.text.strip() if message.issuer is not None else ""
        known = self._acs_urls(sp_entity_id)
        acs_url = message.assertion_consumer_service_url or (known[0] if known else "")
        if acs_url not in known:
            raise ValueError("AuthnRequest from an unknown SP or for an ACS URL its metadata does not declare")
        return AuthnRequestInfo(request_id=message.id, sp_entity_id=sp_entity_id, acs_url=acs_url)

    def _acs_urls(self, sp_entity_id: str) -> list[str]:
        try:
            endpoints = self._server.metadata.assertion_consumer_service(sp_entity_id, BINDING_HTTP_POST)
        except Exception:  # unknown entity: pysaml2 raises several types
            return []
        return [endpoint["location"] for endpoint in endpoints]

    # -- Response ----------------------------------------------------------

    def make_response(self, spec: ResponseSpec | None = None, /, **options: Any) -> str:
        """Return a SAML ``Response`` XML document carrying one assertion.

        ``options`` are the fields of :class:`ResponseSpec` (which documents
        them), given as keyword arguments, or changes to ``spec``.

        Steps, in this order: build the objects, sign the assertion, encrypt
        it, sign the response (its signature covers everything), tamper.
        """
        spec = spec_with(spec, options)
        signer = self._signer(spec)
        response = build_response(spec, self.entity_id, signer)
        assertion_id = response.assertion.id
        xml = serialise(response, for_encryption=bool(spec.encrypt_for_cert))
        if spec.sign_assertion:
            xml = self._sign(xml, _ASSERTION_NODE, assertion_id, signer)
        if spec.encrypt_for_cert:
            xml = self._encrypt(xml, spec.encrypt_for_cert, spec.encryption)
        if spec.sign_response:
            xml = self._sign(xml, _RESPONSE_NODE, response.id, signer)
        return spec.tamper(xml) if spec.tamper else xml

    def post_data(self, spec: ResponseSpec | None = None, /, **options: Any) -> dict[str, str]:
        """:meth:`make_response`, base64-encoded as the HTTP-POST binding sends it."""
        xml = self.make_response(spec, **options)
        return {"SAMLResponse": base64.b64encode(xml.encode("utf-8")).decode("ascii")}

    # -- signing and encryption ---------------------------------------------

    def _signer(self, spec: ResponseSpec) -> Signer:
        return Signer(
            key_file=str(spec.signing_key_file or self.key_file),
            cert_b64=_cert_base64(spec.signing_cert_file or self.cert_file),
            sign_alg=spec.sign_alg,
            digest_alg=spec.digest_alg,
        )

    def _sign(self, xml: str, node_name: str, node_id: str, signer: Signer) -> str:
        return self._server.sec.sign_statement(xml, node_name, key_file=signer.key_file, node_id=node_id)

    def _encrypt(self, xml: str, cert_file: str | os.PathLike[str], spec: Encryption) -> str:
        """Replace the (signed) assertion inside the EncryptedAssertion by its encryption for ``cert_file``."""
        root = etree.fromstring(xml.encode("utf-8"))
        assertion = root.find(f"{{{SAML_NS}}}EncryptedAssertion/{{{SAML_NS}}}Assertion")
        if assertion is None:
            raise ValueError("no assertion to encrypt")
        plaintext = etree.tostring(assertion, encoding="utf-8", xml_declaration=False)
        assertion.getparent().replace(assertion, encrypted_data(plaintext, Path(cert_file).read_bytes(), spec))
        return '<?xml version="1.0"?>\n' + etree.tostring(root, encoding="unicode")
