"""A small but real SAML 2.0 identity provider, for tests and the demo.

It is built on pysaml2's own IdP classes (:class:`saml2.server.Server`) and
signs with ``xmlsec1``, so what it produces is what a real IdP sends: the
service-provider side (djangosaml2 + pysaml2) validates it with no shortcut.

Unlike ``Server.create_authn_response``, :meth:`TestIdP.make_response` builds
the assertion objects itself. That is what lets a test ask for exactly the
hostile or broken response it needs (wrong audience, expired, unsolicited,
re-used assertion ID, odd attribute values...) while keeping the signature
valid, because every change is made *before* signing. A broken signature is
only ever produced on purpose (``signing_key_file`` or ``tamper``).

Typical use::

    key, crt = generate_keypair(tmp_path, "idp", "Test IdP")
    idp = TestIdP("https://idp.example/metadata/", key, crt, "https://idp.example")
    settings.SAML_CONFIG = sp_saml_config(
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
import datetime as dt
import os
import shutil
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, saml, samlp
from saml2.config import IdPConfig
from saml2.metadata import entity_descriptor
from saml2.s_utils import sid, success_status_factory
from saml2.saml import (
    NAME_FORMAT_BASIC,
    NAME_FORMAT_UNSPECIFIED,
    NAME_FORMAT_URI,
    NAMEID_FORMAT_ENTITY,
    NAMEID_FORMAT_PERSISTENT,
    NAMEID_FORMAT_TRANSIENT,
    SCM_BEARER,
)
from saml2.server import Server
from saml2.sigver import get_xmlsec_binary, pre_encrypt_assertion, pre_encryption_part, pre_signature_part
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from saml_jit import crypto

crypto.enable()

__all__ = [
    "ATTRIBUTE_URIS",
    "FRIENDLY_NAMES",
    "AuthnRequestInfo",
    "TestIdP",
    "generate_keypair",
    "sp_saml_config",
]

#: Friendly name -> URI name of the attributes real IdPs send (see IDP-ATTRIBUTES.md).
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

_NAME_FORMATS = {
    "uri": NAME_FORMAT_URI,
    "basic": NAME_FORMAT_BASIC,
    "unspecified": NAME_FORMAT_UNSPECIFIED,
}
_AUTHN_CONTEXT_PPT = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
_AES256_CBC = "http://www.w3.org/2001/04/xmlenc#aes256-cbc"
_ASSERTION_NODE = "urn:oasis:names:tc:SAML:2.0:assertion:Assertion"
_RESPONSE_NODE = "urn:oasis:names:tc:SAML:2.0:protocol:Response"

Moment = dt.datetime | int | float | None


class AuthnRequestInfo(NamedTuple):
    """What the IdP needs from an SP's AuthnRequest to answer it."""

    request_id: str
    sp_entity_id: str
    acs_url: str


# --------------------------------------------------------------------------
# Keys


def generate_keypair(directory: str | os.PathLike[str], name: str, common_name: str) -> tuple[Path, Path]:
    """Return ``(key_file, cert_file)`` for ``name`` in ``directory``, creating them once.

    The key is RSA-2048 and the certificate self-signed for ten years, both
    PEM. The directory gets a ``.gitignore`` of ``*`` so a private key can
    never be committed by accident; existing files are reused so that
    metadata exchanged earlier stays valid across restarts.
    """
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    gitignore = folder / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text("*\n")
    key_file, cert_file = folder / f"{name}.key", folder / f"{name}.crt"
    if key_file.exists() and cert_file.exists():
        return key_file, cert_file
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write_private(
        key_file,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    cert_file.write_bytes(_self_signed_cert(key, common_name).public_bytes(serialization.Encoding.PEM))
    return key_file, cert_file


def _write_private(path: Path, data: bytes) -> None:
    # Created 0600 from the start: no window where the key is world-readable.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _self_signed_cert(key: rsa.RSAPrivateKey, common_name: str) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


def _cert_base64(cert_file: str | os.PathLike[str]) -> str:
    """The base64 body of a PEM certificate, as SAML KeyInfo carries it."""
    cert = x509.load_pem_x509_certificate(Path(cert_file).read_bytes())
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode("ascii")


def _xmlsec_binary() -> str | None:
    """The xmlsec1 program, if installed: only stock pysaml2 configurations need it."""
    try:
        return get_xmlsec_binary()
    except Exception:  # pysaml2 raises a bare SigverError with odd search paths
        return shutil.which("xmlsec1")


# --------------------------------------------------------------------------
# Time helpers


def _moment(value: Moment) -> dt.datetime:
    """A datetime, or seconds relative to now (negative = in the past)."""
    now = dt.datetime.now(dt.timezone.utc)
    if value is None:
        return now
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    return now + dt.timedelta(seconds=value)


def _saml_time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------
# Attribute values


def _check_xml_chars(value: str) -> None:
    # XML 1.0 cannot carry most C0 controls even as character references;
    # a "response" containing them is not XML at all. Tests wanting that use
    # ``tamper`` to build the broken document explicitly.
    for char in value:
        code = ord(char)
        if (code < 0x20 and char not in "\t\n\r") or code in (0xFFFE, 0xFFFF) or 0xD800 <= code <= 0xDFFF:
            raise ValueError(f"U+{code:04X} cannot be carried in XML 1.0; use tamper= to inject it")


def _attribute(name: str, values: Iterable[str], name_format: str, friendly_name: str | None) -> saml.Attribute:
    attribute_values = []
    for value in values:
        _check_xml_chars(value)
        attribute_values.append(saml.AttributeValue(text=value))
    return saml.Attribute(
        name=name,
        name_format=name_format,
        friendly_name=friendly_name,
        attribute_value=attribute_values,
    )


def _attribute_statement(
    attributes: Mapping[str, Iterable[str]] | Iterable[tuple[str, Iterable[str]]],
    name_format: str,
    friendly_names: Mapping[str, str] | None,
) -> saml.AttributeStatement | None:
    # A mapping, or (name, values) pairs when a name must appear in several elements.
    pairs = list(attributes.items() if isinstance(attributes, Mapping) else attributes)
    if not pairs:
        return None
    uri = _NAME_FORMATS.get(name_format, name_format)
    names = friendly_names or {}
    return saml.AttributeStatement(attribute=[_attribute(name, values, uri, names.get(name)) for name, values in pairs])


def _preserve_carriage_returns(xml: str) -> str:
    # A literal CR is turned into LF by every XML parser (end-of-line
    # normalisation), so a value would not reach the SP "exactly as given".
    # ElementTree already escapes CRs in attribute values; this covers text.
    return xml.replace("\r", "&#13;")


# --------------------------------------------------------------------------
# The IdP


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
            # Signs and encrypts in-process (libxmlsec1 via the xmlsec package).
            "crypto_backend": crypto.BACKEND_NAME,
            "key_file": self.key_file,
            "cert_file": self.cert_file,
            "signing_algorithm": SIG_RSA_SHA256,
            "digest_algorithm": DIGEST_SHA256,
            "allow_unknown_attributes": True,
            "delete_tmpfiles": True,
            "service": {
                "idp": {
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
                },
            },
        }
        if self._sp_metadata:
            config["metadata"] = {"inline": list(self._sp_metadata)}
        return config

    def _build_server(self) -> Server:
        return Server(config=IdPConfig().load(self._config_dict()))

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

    def make_response(
        self,
        *,
        sp_entity_id: str,
        acs_url: str,
        name_id: str,
        name_id_format: str = NAMEID_FORMAT_PERSISTENT,
        attributes: Mapping[str, Iterable[str]] | Iterable[tuple[str, Iterable[str]]] | None = None,
        name_format: str = "uri",
        friendly_names: Mapping[str, str] | None = None,
        in_response_to: str | None = None,
        audience: str | None = None,
        destination: str | None = None,
        recipient: str | None = None,
        issuer: str | None = None,
        now: Moment = None,
        lifetime: int = 300,
        session_lifetime: int | None = 8 * 3600,
        sign_response: bool = True,
        sign_assertion: bool = True,
        signing_key_file: str | os.PathLike[str] | None = None,
        signing_cert_file: str | os.PathLike[str] | None = None,
        tamper: Callable[[str], str] | None = None,
        assertion_id: str | None = None,
        response_id: str | None = None,
        encrypt_for_cert: str | os.PathLike[str] | None = None,
        status: samlp.Status | None = None,
        sign_alg: str = SIG_RSA_SHA256,
        digest_alg: str = DIGEST_SHA256,
        response_issue_instant: Moment = None,
        audience_restriction: bool = True,
        confirmation_method: str = SCM_BEARER,
        confirmation_not_on_or_after: bool = True,
    ) -> str:
        """Return a SAML ``Response`` XML document carrying one assertion.

        Attribute values are sent exactly as given, one ``AttributeValue``
        each (an empty string becomes ``xsi:nil``, as pysaml2 encodes it).
        ``name_format`` is ``"uri"``, ``"basic"``, ``"unspecified"`` or a
        full NameFormat URI; ``friendly_names`` maps attribute names to the
        ``FriendlyName`` to send (e.g. :data:`FRIENDLY_NAMES`).

        ``now`` is the issue instant (a datetime, or seconds relative to now);
        the assertion is valid from then for ``lifetime`` seconds, so
        ``now=-3600`` gives an expired response with a valid signature.
        ``audience``, ``destination``, ``recipient`` and ``issuer`` override
        the correct values to test the SP's checks.

        ``signing_key_file`` signs with another key (the certificate in
        KeyInfo is ``signing_cert_file``, default the IdP's) so that the
        signature does not verify against the IdP metadata. ``tamper`` is
        applied to the final XML, after signing and encryption.
        ``encrypt_for_cert`` encrypts the (signed) assertion for that
        certificate file (AES-256-CBC, RSA-OAEP).

        ``attributes`` may also be a sequence of ``(name, values)`` pairs, so
        that one name can be sent in several ``<Attribute>`` elements.

        Options for protocol tests (defaults give a correct response):
        ``sign_alg``/``digest_alg`` pick the XML-DSig algorithms (e.g.
        ``saml2.xmldsig.SIG_RSA_SHA1``/``DIGEST_SHA1``);
        ``response_issue_instant`` sets the Response's IssueInstant apart
        from the assertion's (same forms as ``now``);
        ``audience_restriction=False`` leaves out the AudienceRestriction;
        ``confirmation_method`` replaces the bearer subject confirmation
        method (``SCM_SENDER_VOUCHES``, ``SCM_HOLDER_OF_KEY``);
        ``confirmation_not_on_or_after=False`` leaves NotOnOrAfter out of the
        SubjectConfirmationData.
        """
        issue_instant = _moment(now)
        issuer_id = issuer or self.entity_id
        assertion = self._assertion(
            assertion_id=assertion_id or sid(),
            issuer=issuer_id,
            issue_instant=issue_instant,
            lifetime=lifetime,
            session_lifetime=session_lifetime,
            name_id=saml.NameID(
                text=name_id,
                format=name_id_format,
                name_qualifier=self.entity_id,
                sp_name_qualifier=sp_entity_id,
            ),
            in_response_to=in_response_to,
            recipient=recipient or acs_url,
            audience=(audience or sp_entity_id) if audience_restriction else None,
            statement=_attribute_statement(attributes or {}, name_format, friendly_names),
            confirmation_method=confirmation_method,
            confirmation_not_on_or_after=confirmation_not_on_or_after,
        )
        response = samlp.Response(
            id=response_id or sid(),
            version="2.0",
            issue_instant=_saml_time(
                issue_instant if response_issue_instant is None else _moment(response_issue_instant)
            ),
            destination=destination or acs_url,
            in_response_to=in_response_to,
            issuer=saml.Issuer(text=issuer_id, format=NAMEID_FORMAT_ENTITY),
            status=status or success_status_factory(),
        )
        xml = self._sign_and_encrypt(
            response,
            assertion,
            sign_response=sign_response,
            sign_assertion=sign_assertion,
            key_file=str(signing_key_file or self.key_file),
            cert_b64=_cert_base64(signing_cert_file or self.cert_file),
            encrypt_for_cert=encrypt_for_cert,
            sign_alg=sign_alg,
            digest_alg=digest_alg,
        )
        return tamper(xml) if tamper else xml

    def post_data(self, **kwargs: object) -> dict[str, str]:
        """:meth:`make_response`, base64-encoded as the HTTP-POST binding sends it."""
        xml = self.make_response(**kwargs)  # type: ignore[arg-type]
        return {"SAMLResponse": base64.b64encode(xml.encode("utf-8")).decode("ascii")}

    def _assertion(
        self,
        *,
        assertion_id: str,
        issuer: str,
        issue_instant: dt.datetime,
        lifetime: int,
        session_lifetime: int | None,
        name_id: saml.NameID,
        in_response_to: str | None,
        recipient: str,
        audience: str | None,
        statement: saml.AttributeStatement | None,
        confirmation_method: str = SCM_BEARER,
        confirmation_not_on_or_after: bool = True,
    ) -> saml.Assertion:
        not_on_or_after = _saml_time(issue_instant + dt.timedelta(seconds=lifetime))
        confirmation = saml.SubjectConfirmation(
            method=confirmation_method,
            subject_confirmation_data=saml.SubjectConfirmationData(
                in_response_to=in_response_to,
                not_on_or_after=not_on_or_after if confirmation_not_on_or_after else None,
                recipient=recipient,
            ),
        )
        session_end = _saml_time(issue_instant + dt.timedelta(seconds=session_lifetime)) if session_lifetime else None
        authn = saml.AuthnStatement(
            authn_instant=_saml_time(issue_instant),
            session_index=sid(),
            session_not_on_or_after=session_end,
            authn_context=saml.AuthnContext(authn_context_class_ref=saml.AuthnContextClassRef(text=_AUTHN_CONTEXT_PPT)),
        )
        return saml.Assertion(
            id=assertion_id,
            version="2.0",
            issue_instant=_saml_time(issue_instant),
            issuer=saml.Issuer(text=issuer, format=NAMEID_FORMAT_ENTITY),
            subject=saml.Subject(name_id=name_id, subject_confirmation=[confirmation]),
            conditions=saml.Conditions(
                not_before=_saml_time(issue_instant),
                not_on_or_after=not_on_or_after,
                audience_restriction=(
                    [saml.AudienceRestriction(audience=[saml.Audience(text=audience)])] if audience is not None else []
                ),
            ),
            authn_statement=[authn],
            attribute_statement=[statement] if statement is not None else [],
        )

    # -- signing and encryption ---------------------------------------------

    def _sign_and_encrypt(
        self,
        response: samlp.Response,
        assertion: saml.Assertion,
        *,
        sign_response: bool,
        sign_assertion: bool,
        key_file: str,
        cert_b64: str,
        encrypt_for_cert: str | os.PathLike[str] | None,
        sign_alg: str = SIG_RSA_SHA256,
        digest_alg: str = DIGEST_SHA256,
    ) -> str:
        # Signature templates go in before serialising; xmlsec1 then fills
        # them in. Order matters: assertion first (it is inside the response
        # and, when encrypting, must be signed before it is hidden), response
        # last so its signature covers everything.
        if sign_assertion:
            assertion.signature = self._signature_template(assertion.id, cert_b64, sign_alg, digest_alg)
        if sign_response:
            response.signature = self._signature_template(response.id, cert_b64, sign_alg, digest_alg)
        response.assertion = assertion
        if encrypt_for_cert:
            xml = self._encrypted_assertion_xml(response, assertion, sign_assertion, key_file, encrypt_for_cert)
        else:
            xml = _preserve_carriage_returns(str(response))
            if sign_assertion:
                xml = self._sign(xml, _ASSERTION_NODE, assertion.id, key_file)
        if sign_response:
            xml = self._sign(xml, _RESPONSE_NODE, response.id, key_file)
        return xml

    def _encrypted_assertion_xml(
        self,
        response: samlp.Response,
        assertion: saml.Assertion,
        sign_assertion: bool,
        key_file: str,
        cert_file: str | os.PathLike[str],
    ) -> str:
        # Same sequence as pysaml2's Entity._response: move the assertion into
        # an EncryptedAssertion with its namespaces self-contained, sign it,
        # then let xmlsec1 replace it by its encryption.
        assertion_tag = assertion._to_element_tree().tag
        response = pre_encrypt_assertion(response)
        xml = response.get_xml_string_with_self_contained_assertion_within_encrypted_assertion(assertion_tag)
        xml = _preserve_carriage_returns(xml if isinstance(xml, str) else xml.decode("utf-8"))
        if sign_assertion:
            xml = self._sign(xml, _ASSERTION_NODE, assertion.id, key_file)
        template = pre_encryption_part(msg_enc=_AES256_CBC, encrypt_cert=_cert_base64(cert_file))
        return self._server.sec.encrypt_assertion(xml, str(cert_file), template, key_type="aes-256")

    @staticmethod
    def _signature_template(
        node_id: str, cert_b64: str, sign_alg: str = SIG_RSA_SHA256, digest_alg: str = DIGEST_SHA256
    ) -> object:
        return pre_signature_part(node_id, cert_b64, sign_alg=sign_alg, digest_alg=digest_alg)

    def _sign(self, xml: str, node_name: str, node_id: str, key_file: str) -> str:
        return self._server.sec.sign_statement(xml, node_name, key_file=key_file, node_id=node_id)


# --------------------------------------------------------------------------
# The SP side


def sp_saml_config(
    *,
    entity_id: str,
    base_url: str,
    idp_metadata_xml: str | list[str] | None = None,
    idp_metadata_file: str | os.PathLike[str] | list[str] | None = None,
    idp_metadata_url: str | list[str] | None = None,
    key_file: str | os.PathLike[str] | None = None,
    cert_file: str | os.PathLike[str] | None = None,
    name: str = "saml_jit service provider",
    path: str = "/saml2/",
    authn_requests_signed: bool = False,
    accepted_time_diff: int | None = None,
    extra: Mapping[str, object] | None = None,
) -> dict:
    """Return a djangosaml2 ``SAML_CONFIG`` for an SP mounted at ``{base_url}{path}``.

    Secure defaults: signed assertions required, unsolicited responses
    refused, persistent NameIDs requested, RSA-SHA256 signatures. Unknown
    attribute names are kept (``allow_unknown_attributes``) because pysaml2
    otherwise silently drops every name it has no map for, and saml_jit
    does its own mapping. ``key_file``/``cert_file`` let the SP sign
    requests and decrypt encrypted assertions. ``extra`` is merged last at
    the top level, for anything not covered here.
    """
    sp_url = base_url.rstrip("/") + "/" + path.strip("/") + "/"
    config: dict = {
        "entityid": entity_id,
        # For stock djangosaml2 views (saml_jit's own views use in-process crypto).
        **({"xmlsec_binary": binary} if (binary := _xmlsec_binary()) else {}),
        "allow_unknown_attributes": True,
        "signing_algorithm": SIG_RSA_SHA256,
        "digest_algorithm": DIGEST_SHA256,
        "metadata": _metadata_sources(idp_metadata_xml, idp_metadata_file, idp_metadata_url),
        "service": {"sp": _sp_service(name, sp_url, authn_requests_signed, signs=bool(key_file))},
        "debug": 0,
    }
    if key_file and cert_file:
        config["key_file"] = str(key_file)
        config["cert_file"] = str(cert_file)
        config["encryption_keypairs"] = [{"key_file": str(key_file), "cert_file": str(cert_file)}]
    if accepted_time_diff is not None:
        config["accepted_time_diff"] = accepted_time_diff
    config.update(extra or {})
    return config


def _sp_service(name: str, sp_url: str, authn_requests_signed: bool, *, signs: bool) -> dict:
    return {
        "name": name,
        "name_id_format": NAMEID_FORMAT_PERSISTENT,
        "endpoints": {
            "assertion_consumer_service": [(f"{sp_url}acs/", BINDING_HTTP_POST)],
            "single_logout_service": [
                (f"{sp_url}ls/", BINDING_HTTP_REDIRECT),
                (f"{sp_url}ls/post/", BINDING_HTTP_POST),
            ],
        },
        "want_assertions_signed": True,
        "want_response_signed": False,
        "allow_unsolicited": False,
        "authn_requests_signed": authn_requests_signed,
        "logout_requests_signed": signs,
        "signing_algorithm": SIG_RSA_SHA256,
        "digest_algorithm": DIGEST_SHA256,
        "required_attributes": [],
        "optional_attributes": [],
    }


def _as_list(value: object) -> list:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _metadata_sources(xml: object, files: object, urls: object) -> dict:
    metadata: dict = {}
    if inline := _as_list(xml):
        metadata["inline"] = inline
    if local := [str(path) for path in _as_list(files)]:
        metadata["local"] = local
    if remote := [{"url": url} for url in _as_list(urls)]:
        metadata["remote"] = remote
    return metadata
