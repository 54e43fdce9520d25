"""What a login would do, without writing anything: from attributes, or from a pasted SAML response.

Used by the admin's dry-run page (:mod:`saml_jit.admin.dry_run`) and the
``saml_jit_dry_run`` command. Both end in :func:`saml_jit.provisioning.preview`,
which maps, gathers (without locking) and plans exactly as a login does, then
stops before anything is applied.

A pasted response goes through the ACS's own check
(:func:`saml_jit.views.validate_response`: pysaml2's signature, conditions
and decryption, then saml_jit's stricter checks) with one difference: there
is no browser session, so an ``InResponseTo`` is taken as answering a
request of this browser, and the result says so. Whatever stops the
response (an expired or stale one, a wrong audience, a bad signature…) is
the answer, with its reason code and detail; an assertion already used is
the ``replay`` a login would meet.

A dry run writes no event and no row: it decides nothing. One log line of
identifiers (IdP, outcome) records that one was run.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext as _
from djangosaml2.overrides import Saml2Client

from .conf import app_settings
from .exceptions import Rejected, Replayed
from .mapping import NAMEID_TRANSIENT, AssertionData
from .provisioning import preview
from .provisioning.replay import already_used
from .refusals import is_metadata_idp
from .saml.assertions import from_response
from .saml.config import get_sp_config
from .saml.response import claimed_issuer, inspect_document
from .views import validate_response

logger = logging.getLogger(__name__)

PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"

#: The assertion ID of a dry run from attributes (no assertion exists).
DRY_RUN_ASSERTION_ID = "dry-run"


@dataclass(frozen=True)
class DryRun:
    """The answer: the plan a login would follow (``preview``'s dict), or the rejection that stops it first."""

    idp_entity_id: str
    plan: dict[str, Any] | None = None
    rejection: Rejected | None = None
    #: For the administrator: what the dry run could not check, or what a login would meet besides the plan.
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def outcome(self) -> str:
        """``create``, ``link``, ``update``, ``login``, ``deny`` or the rejection's reason code."""
        if self.rejection is not None:
            return self.rejection.code
        return str((self.plan or {}).get("action", ""))


def parse_attributes(text: str) -> dict[str, tuple[str, ...]]:
    """Attributes as an administrator pastes them; :class:`ValueError` says what is wrong.

    A JSON object (name -> a value or a list of values), or ``name: value``
    lines where a repeated name adds a value (blank lines and ``#`` comments
    are skipped).
    """
    text = text.strip()
    if text.startswith(("{", "[")):
        return _json_attributes(text)
    attributes: dict[str, tuple[str, ...]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise ValueError(_("Line %(number)d is not “name: value”.") % {"number": number})
        attributes[name.strip()] = (*attributes.get(name.strip(), ()), value.strip())
    return attributes


def _json_attributes(text: str) -> dict[str, tuple[str, ...]]:
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ValueError(_("The attributes are not valid JSON: %(error)s") % {"error": exc}) from exc
    if not isinstance(raw, dict):
        raise ValueError(_("The attributes must be a JSON object: name -> value or list of values."))
    return {str(name): tuple(map(str, value if isinstance(value, list) else [value])) for name, value in raw.items()}


def from_attributes(
    idp_entity_id: str,
    name_id: str | None,
    attributes: dict[str, tuple[str, ...]],
    *,
    transient: bool = False,
    request: HttpRequest | None = None,
) -> DryRun:
    """What a login from ``idp_entity_id`` with this NameID and these attributes would do."""
    assertion = AssertionData(
        idp_entity_id=idp_entity_id,
        name_id=name_id or None,
        name_id_format=NAMEID_TRANSIENT if transient else PERSISTENT,
        assertion_id=DRY_RUN_ASSERTION_ID,
        attributes=attributes,
    )
    notes: tuple[str, ...] = (
        _("No SAML response was checked: the attributes are taken as a validated assertion would carry them."),
    )
    if not is_metadata_idp(request, idp_entity_id):
        notes += (_("This IdP is not in the SP's metadata: a real response from it would be rejected."),)
    return _logged(DryRun(idp_entity_id, plan=preview(assertion), notes=notes))


def from_saml_response(saml_response: str, request: HttpRequest | None = None) -> DryRun:
    """What a login with this (base64) SAML response would do, checked as the ACS checks it."""
    text = "".join(saml_response.split())  # pasted from a tracer, with line breaks
    try:
        response, notes = _validated(text, request)
    except Rejected as rejection:
        return _logged(DryRun(claimed_issuer(text) if text else "", rejection=rejection))
    assertion = from_response(response)
    if already_used(assertion.idp_entity_id, assertion.assertion_id):
        return _logged(DryRun(assertion.idp_entity_id, rejection=Replayed(assertion.assertion_id), notes=notes))
    return _logged(DryRun(assertion.idp_entity_id, plan=preview(assertion), notes=notes))


def _validated(text: str, request: HttpRequest | None) -> tuple[Any, tuple[str, ...]]:
    if not text:
        raise Rejected("missing_response", "Nothing was pasted.")
    if len(text) > app_settings.MAX_RESPONSE_SIZE:
        raise Rejected("response_too_large", "The SAMLResponse exceeds MAX_RESPONSE_SIZE.", status=413)
    inspection = inspect_document(text)
    client = Saml2Client(get_sp_config(request))  # an identity cache in memory: nothing is stored
    outstanding: dict[str, Any] = {}
    notes: tuple[str, ...] = ()
    if inspection.in_response_to is not None:
        outstanding = {inspection.in_response_to: "/"}
        notes = (
            _(
                "The response answers request %(id)s; a dry run has no browser session, so it was taken as a "
                "request this browser made (a login checks it)."
            )
            % {"id": inspection.in_response_to},
        )
    return validate_response(client, text, inspection, outstanding), notes


def _logged(result: DryRun) -> DryRun:
    logger.info("saml_jit dry run idp=%s outcome=%s", result.idp_entity_id, result.outcome)
    return result


__all__ = ["DryRun", "from_attributes", "from_saml_response", "parse_attributes"]
