"""What the test IdP says: :class:`ResponseSpec` and the pysaml2 objects built from it.

Everything a test may vary is a field of :class:`ResponseSpec`;
:func:`build_response` turns one into a ``samlp.Response`` (with signature
templates where signing is asked for) and :func:`serialise` into the XML the
IdP then signs and encrypts (:class:`saml_jit.testing.idp.TestIdP`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from saml2 import saml, samlp
from saml2.s_utils import sid, success_status_factory
from saml2.saml import (
    NAME_FORMAT_BASIC,
    NAME_FORMAT_UNSPECIFIED,
    NAME_FORMAT_URI,
    NAMEID_FORMAT_ENTITY,
    NAMEID_FORMAT_PERSISTENT,
    SCM_BEARER,
)
from saml2.sigver import pre_encrypt_assertion, pre_signature_part
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from ..conf import AUTHN_METHODS_ATTRIBUTE
from .encryption import DEFAULT_ENCRYPTION, Encryption

__all__ = ["Moment", "ResponseSpec", "Signer", "build_response", "serialise", "spec_with"]

_NAME_FORMATS = {
    "uri": NAME_FORMAT_URI,
    "basic": NAME_FORMAT_BASIC,
    "unspecified": NAME_FORMAT_UNSPECIFIED,
}
_AUTHN_CONTEXT_PPT = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
_AUTHN_DECL_REF = "https://idp.example/authn/declaration"

Moment = dt.datetime | int | float | None


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
# What a response says


@dataclasses.dataclass(frozen=True, kw_only=True)
class ResponseSpec:
    """Every option of :meth:`TestIdP.make_response`; the defaults give a correct response.

    Only the SP (``sp_entity_id``, ``acs_url``) and the subject (``name_id``)
    are required. Derive variants with :func:`dataclasses.replace`, or pass
    changes to ``make_response(spec, **changes)``.
    """

    #: The SP's entity ID: the audience, and the NameID's SPNameQualifier.
    sp_entity_id: str
    #: The SP's ACS URL: the Destination and the bearer Recipient.
    acs_url: str
    name_id: str
    name_id_format: str = NAMEID_FORMAT_PERSISTENT
    #: Attribute name -> values, sent exactly as given, one ``AttributeValue``
    #: each (an empty string becomes ``xsi:nil``, as pysaml2 encodes it). May
    #: also be a sequence of ``(name, values)`` pairs, so that one name can be
    #: sent in several ``<Attribute>`` elements.
    attributes: Mapping[str, Iterable[str]] | Iterable[tuple[str, Iterable[str]]] | None = None
    #: ``"uri"``, ``"basic"``, ``"unspecified"`` or a full NameFormat URI.
    name_format: str = "uri"
    #: Attribute name -> the ``FriendlyName`` to send (e.g. :data:`FRIENDLY_NAMES`).
    friendly_names: Mapping[str, str] | None = None
    in_response_to: str | None = None
    #: ``audience``, ``destination``, ``recipient`` and ``issuer`` override
    #: the correct values to test the SP's checks.
    audience: str | None = None
    destination: str | None = None
    recipient: str | None = None
    issuer: str | None = None
    #: False leaves out the Response's own ``<Issuer>`` (SAML Profiles
    #: §4.1.4.2 allows that when the Response is not signed); the assertion
    #: still names its issuer.
    response_issuer: bool = True
    #: The issue instant (a datetime, or seconds relative to now); the
    #: assertion is valid from then for ``lifetime`` seconds, so
    #: ``now=-3600`` gives an expired response with a valid signature.
    now: Moment = None
    lifetime: int = 300
    #: Seconds until the AuthnStatement's SessionNotOnOrAfter; None: none.
    #: Counted from ``now`` (negative: the IdP session has already ended).
    session_lifetime: int | None = 8 * 3600
    #: The AuthnStatement's AuthnContextClassRef (e.g. REFEDS MFA); None sends an
    #: AuthnContextDeclRef instead (the schema wants one of the two), so no class at all.
    authn_context: str | None = _AUTHN_CONTEXT_PPT
    #: The AuthnInstant (same forms as ``now``; negative seconds: an earlier sign-in at the IdP).
    #: None: the issue instant.
    authn_instant: Moment = None
    #: Entra's ``authnmethodsreferences`` values, sent as that attribute (e.g. ``MICROSOFT_MFA``).
    authn_methods: tuple[str, ...] = ()
    sign_response: bool = True
    sign_assertion: bool = True
    #: Signs with another key (the certificate in KeyInfo is
    #: ``signing_cert_file``, default the IdP's) so that the signature does
    #: not verify against the IdP metadata.
    signing_key_file: str | os.PathLike[str] | None = None
    signing_cert_file: str | os.PathLike[str] | None = None
    #: Applied to the final XML, after signing and encryption.
    tamper: Callable[[str], str] | None = None
    assertion_id: str | None = None
    response_id: str | None = None
    #: Encrypts the (signed) assertion for that certificate file, as
    #: ``encryption`` says (default AES-256-GCM, RSA-OAEP-MGF1P).
    encrypt_for_cert: str | os.PathLike[str] | None = None
    #: The algorithms, and breakages, of the encryption (:class:`~saml_jit.testing.encryption.Encryption`).
    encryption: Encryption = DEFAULT_ENCRYPTION
    #: The Response's Status; default success.
    status: samlp.Status | None = None

    # Options for protocol tests.
    #: The XML-DSig algorithms (e.g. ``saml2.xmldsig.SIG_RSA_SHA1``/``DIGEST_SHA1``).
    sign_alg: str = SIG_RSA_SHA256
    digest_alg: str = DIGEST_SHA256
    #: The Response's IssueInstant apart from the assertion's (same forms as ``now``).
    response_issue_instant: Moment = None
    #: False leaves out the AudienceRestriction.
    audience_restriction: bool = True
    #: Replaces the bearer subject confirmation method (``SCM_SENDER_VOUCHES``, ``SCM_HOLDER_OF_KEY``).
    confirmation_method: str = SCM_BEARER
    #: False leaves NotOnOrAfter out of the SubjectConfirmationData.
    confirmation_not_on_or_after: bool = True


def spec_with(spec: ResponseSpec | None, changes: Mapping[str, Any]) -> ResponseSpec:
    if spec is None:
        return ResponseSpec(**changes)
    return dataclasses.replace(spec, **changes) if changes else spec


class Signer(NamedTuple):
    """Who signs, with which key and algorithms."""

    key_file: str
    cert_b64: str
    sign_alg: str
    digest_alg: str

    def template(self, node_id: str) -> Any:
        # Signature templates go in before serialising; the backend then fills them in.
        return pre_signature_part(node_id, self.cert_b64, sign_alg=self.sign_alg, digest_alg=self.digest_alg)


# --------------------------------------------------------------------------
# Building the objects (nothing signed yet)


def _subject(spec: ResponseSpec, idp_entity_id: str, issue_instant: dt.datetime) -> saml.Subject:
    name_id = saml.NameID(
        text=spec.name_id,
        format=spec.name_id_format,
        name_qualifier=idp_entity_id,
        sp_name_qualifier=spec.sp_entity_id,
    )
    not_on_or_after = _saml_time(issue_instant + dt.timedelta(seconds=spec.lifetime))
    confirmation = saml.SubjectConfirmation(
        method=spec.confirmation_method,
        subject_confirmation_data=saml.SubjectConfirmationData(
            in_response_to=spec.in_response_to,
            not_on_or_after=not_on_or_after if spec.confirmation_not_on_or_after else None,
            recipient=spec.recipient or spec.acs_url,
        ),
    )
    return saml.Subject(name_id=name_id, subject_confirmation=[confirmation])


def _conditions(spec: ResponseSpec, issue_instant: dt.datetime) -> saml.Conditions:
    audience = (spec.audience or spec.sp_entity_id) if spec.audience_restriction else None
    return saml.Conditions(
        not_before=_saml_time(issue_instant),
        not_on_or_after=_saml_time(issue_instant + dt.timedelta(seconds=spec.lifetime)),
        audience_restriction=(
            [saml.AudienceRestriction(audience=[saml.Audience(text=audience)])] if audience is not None else []
        ),
    )


def _authn_statement(spec: ResponseSpec, issue_instant: dt.datetime) -> saml.AuthnStatement:
    lifetime = spec.session_lifetime
    session_end = _saml_time(issue_instant + dt.timedelta(seconds=lifetime)) if lifetime else None
    authn_instant = issue_instant if spec.authn_instant is None else _moment(spec.authn_instant)
    if spec.authn_context is not None:
        context = saml.AuthnContext(authn_context_class_ref=saml.AuthnContextClassRef(text=spec.authn_context))
    else:
        context = saml.AuthnContext(authn_context_decl_ref=saml.AuthnContextDeclRef(text=_AUTHN_DECL_REF))
    return saml.AuthnStatement(
        authn_instant=_saml_time(authn_instant),
        session_index=sid(),
        session_not_on_or_after=session_end,
        authn_context=context,
    )


def _with_authn_methods(spec: ResponseSpec) -> Any:
    """The attributes, plus Entra's authnmethodsreferences when ``authn_methods`` asks for it."""
    if not spec.authn_methods:
        return spec.attributes or {}
    attributes = spec.attributes or {}
    pairs = list(attributes.items() if isinstance(attributes, Mapping) else attributes)
    return [*pairs, (AUTHN_METHODS_ATTRIBUTE, list(spec.authn_methods))]


def _assertion(spec: ResponseSpec, idp_entity_id: str, issue_instant: dt.datetime) -> saml.Assertion:
    statement = _attribute_statement(_with_authn_methods(spec), spec.name_format, spec.friendly_names)
    return saml.Assertion(
        id=spec.assertion_id or sid(),
        version="2.0",
        issue_instant=_saml_time(issue_instant),
        issuer=saml.Issuer(text=spec.issuer or idp_entity_id, format=NAMEID_FORMAT_ENTITY),
        subject=_subject(spec, idp_entity_id, issue_instant),
        conditions=_conditions(spec, issue_instant),
        authn_statement=[_authn_statement(spec, issue_instant)],
        attribute_statement=[statement] if statement is not None else [],
    )


def build_response(spec: ResponseSpec, idp_entity_id: str, signer: Signer) -> samlp.Response:
    """The Response with its one assertion, signature templates in place where signing is asked for."""
    issue_instant = _moment(spec.now)
    assertion = _assertion(spec, idp_entity_id, issue_instant)
    response_instant = issue_instant if spec.response_issue_instant is None else _moment(spec.response_issue_instant)
    response = samlp.Response(
        id=spec.response_id or sid(),
        version="2.0",
        issue_instant=_saml_time(response_instant),
        destination=spec.destination or spec.acs_url,
        in_response_to=spec.in_response_to,
        issuer=saml.Issuer(text=spec.issuer or idp_entity_id, format=NAMEID_FORMAT_ENTITY)
        if spec.response_issuer
        else None,
        status=spec.status or success_status_factory(),
    )
    if spec.sign_assertion:
        assertion.signature = signer.template(assertion.id)
    if spec.sign_response:
        response.signature = signer.template(response.id)
    response.assertion = assertion
    return response


def serialise(response: samlp.Response, *, for_encryption: bool) -> str:
    if not for_encryption:
        return _preserve_carriage_returns(str(response))
    # Same sequence as pysaml2's Entity._response: move the assertion into an
    # EncryptedAssertion with its namespaces self-contained; it is signed
    # there, then replaced by its encryption.
    assertion_tag = response.assertion._to_element_tree().tag
    response = pre_encrypt_assertion(response)
    xml = response.get_xml_string_with_self_contained_assertion_within_encrypted_assertion(assertion_tag)
    return _preserve_carriage_returns(xml if isinstance(xml, str) else xml.decode("utf-8"))
