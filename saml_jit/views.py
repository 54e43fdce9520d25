"""The assertion consumer service: djangosaml2's, made to keep evidence.

Every response ends in exactly one of: a login, a ``denied`` event (the
assertion was valid, the policy said no) or a ``rejected`` event (pysaml2, or
saml_jit's own pre-checks, refused the response). Failures answer with a
clear error page and a 4xx status, never a 500.
"""

from __future__ import annotations

import logging
from typing import Any

import saml2
from django.contrib import auth
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils.decorators import method_decorator
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt
from djangosaml2 import views as djangosaml2_views
from djangosaml2.cache import IdentityCache, OutstandingQueriesCache
from djangosaml2.overrides import Saml2Client
from djangosaml2.utils import get_fallback_login_redirect_url, validate_referral_url

from . import events
from .backends import outcome_of
from .conf import app_settings
from .exceptions import Rejected
from .models import EventKind
from .saml.assertions import from_response
from .saml.config import CachedSPConfigMixin
from .saml.errors import classify
from .saml.logout import logout_issuer, verify_redirect_signature
from .saml.response import (
    Inspection,
    check_claimed_destination,
    claimed_issuer,
    inspect_document,
    verify_response,
)

logger = logging.getLogger(__name__)

REASONS: dict[str, Any] = {
    "missing_response": _("The request carried no SAML response."),
    "response_too_large": _("The SAML response is larger than this site accepts."),
    "malformed_response": _("The SAML response could not be read."),
    "invalid_response": _("The SAML response is not valid."),
    "bad_signature": _("The SAML response is not signed by a trusted identity provider."),
    "decryption_failed": _("The encrypted assertion could not be decrypted."),
    "expired": _("The SAML response has expired. Please sign in again."),
    "not_yet_valid": _("The SAML response is not valid yet. Check the clocks of both servers."),
    "unsolicited": _("This SAML response does not answer a sign-in started from this browser."),
    "idp_status": _("The identity provider did not sign you in."),
    "unsupported_version": _("The SAML response uses an unsupported protocol version."),
    "conditions_not_met": _("The SAML response was not meant for this site."),
    "wrong_audience": _("The SAML assertion was issued for another service."),
    "no_assertion": _("The SAML response holds no valid assertion."),
    "dtd_forbidden": _("The SAML response contains a document type declaration, which is never allowed."),
    "issuer_mismatch": _("The SAML response names inconsistent issuers."),
    "wrong_destination": _("The SAML response was addressed to another site."),
    "subject_confirmation": _("The SAML assertion cannot be confirmed for this site."),
    "weak_algorithm": _("The SAML response is signed with a weak algorithm (SHA-1)."),
    "replay": _("This SAML assertion was already used. Please sign in again."),
    "stale_response": _("The SAML response is too old. Please sign in again."),
    "malformed_logout": _("The logout message could not be read."),
    "logout_unsigned": _("The logout message is not signed."),
    "logout_bad_signature": _("The logout message's signature is not valid."),
    "unknown_issuer": _("The message comes from an identity provider this site does not trust."),
}


def error_page(
    request: HttpRequest, code: str, status: int, event: Any, message: str = "", pending: bool = False
) -> HttpResponse:
    """The clear error page (``ERROR_TEMPLATE``) for a rejected or denied message."""
    context = {
        "reason_code": code,
        "reason": REASONS.get(code) or message,
        "event": event,
        "pending": pending,
        "status": status,
    }
    return render(request, app_settings.ERROR_TEMPLATE, context, status=status)


@method_decorator(csrf_exempt, name="dispatch")
class AssertionConsumerServiceView(CachedSPConfigMixin, djangosaml2_views.AssertionConsumerServiceView):
    """djangosaml2's ACS with saml_jit's evidence and error handling."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        saml_response = request.POST.get("SAMLResponse", "")
        try:
            if not saml_response:
                raise Rejected("missing_response", "The request carried no SAMLResponse.")
            if len(saml_response) > app_settings.MAX_RESPONSE_SIZE:
                raise Rejected("response_too_large", "The SAMLResponse exceeds MAX_RESPONSE_SIZE.", status=413)
            inspection = inspect_document(saml_response)
            response = self.parse(request, saml_response, inspection)
        except Rejected as rejection:
            return self.reject(request, rejection.code, rejection.status, saml_response=saml_response)
        return self.login(request, response)

    def parse(self, request: HttpRequest, saml_response: str, inspection: Inspection) -> Any:
        """Validate with pysaml2, then with saml_jit's stricter checks; raise :class:`Rejected`."""
        conf = self.get_sp_config(request)
        saml_session = request.saml_session  # type: ignore[attr-defined]  # set by djangosaml2's SamlSessionMiddleware
        client = Saml2Client(conf, identity_cache=IdentityCache(saml_session))
        oq_cache = OutstandingQueriesCache(saml_session)
        oq_cache.sync()
        outstanding = oq_cache.outstanding_queries()
        # pysaml2's allow_unsolicited is all-or-nothing; saml_jit allows it per
        # IdP, and only for responses that do not claim to answer a request.
        client.allow_unsolicited = (
            inspection.in_response_to is None and app_settings.for_idp(inspection.issuer).ALLOW_IDP_INITIATED
        )
        acs_urls = client.service_urls(binding=saml2.BINDING_HTTP_POST)
        check_claimed_destination(inspection, acs_urls)
        try:
            response = client.parse_authn_request_response(saml_response, saml2.BINDING_HTTP_POST, outstanding)
        except Exception as exc:  # pysaml2 raises many unrelated types
            code, status = classify(exc)
            raise Rejected(code, type(exc).__name__, status) from exc
        if response is None or response.assertion is None:
            # Stock djangosaml2 crashes on this (a wrong Destination, a stale
            # IssueInstant, an undecryptable assertion…).
            raise Rejected("no_assertion", "pysaml2 found no valid assertion in the response.")
        verify_response(
            response,
            inspection,
            outstanding=outstanding,
            acs_urls=acs_urls,
            sp_entity_id=conf.entityid,
            settings_for=app_settings.for_idp,
            max_age=app_settings.MAX_RESPONSE_AGE,
            skew=app_settings.CLOCK_SKEW,
        )
        try:
            self.custom_validation(response)
        except Exception as exc:
            raise Rejected("invalid_response", type(exc).__name__) from exc
        oq_cache.delete(response.session_id())
        return response

    def login(self, request: HttpRequest, response: Any) -> HttpResponse:
        session_info = response.session_info()
        assertion = from_response(response)
        user = auth.authenticate(
            request,
            session_info=session_info,
            assertion_info={"assertion_id": assertion.assertion_id, "not_on_or_after": assertion.not_on_or_after},
            saml_assertion=assertion,
        )
        if user is None:
            outcome = outcome_of(request)
            if outcome is not None and outcome.rejection:
                return self.error_page(request, outcome.rejection, 400, outcome.event)
            return self.deny(request, assertion.idp_entity_id)
        auth.login(request, user)
        djangosaml2_views._set_subject_id(request.saml_session, session_info["name_id"])  # type: ignore[attr-defined]
        self.post_login_hook(request, user, session_info)
        self.customize_session(user, session_info)
        return self.redirect_after_login(request, user, session_info)

    def redirect_after_login(self, request: HttpRequest, user: Any, session_info: dict[str, Any]) -> HttpResponse:
        relay_state = self.build_relay_state()
        custom = self.custom_redirect(user, relay_state, session_info)
        if custom:
            return HttpResponseRedirect(custom)
        # Only this site (or SAML_ALLOWED_HOSTS): never an open redirect.
        target = validate_referral_url(request, relay_state) or get_fallback_login_redirect_url()
        return HttpResponseRedirect(target)

    def deny(self, request: HttpRequest, idp_entity_id: str) -> HttpResponse:
        outcome = outcome_of(request)
        if outcome is None:
            # Another backend (or none) handled authenticate(); still leave evidence.
            event = events.record(
                EventKind.DENIED,
                request=request,
                idp_entity_id=idp_entity_id,
                reason_code="not_authenticated",
                message="No authentication backend accepted the assertion; is SamlJitBackend configured?",
            )
            return self.error_page(request, "not_authenticated", 403, event)
        if outcome.denial is None:
            # Provisioned, but the account may not sign in yet (held for approval).
            return self.error_page(request, "inactive", 403, outcome.event, pending=True)
        return self.error_page(request, outcome.denial.code, 403, outcome.event, message=outcome.denial.message)

    def reject(self, request: HttpRequest, code: str, status: int, saml_response: str = "") -> HttpResponse:
        message = str(REASONS.get(code, REASONS["invalid_response"]))
        event = events.record(
            EventKind.REJECTED,
            request=request,
            idp_entity_id=claimed_issuer(saml_response) if saml_response else "",
            reason_code=code,
            message=message,
        )
        logger.warning("saml_jit rejected response reason=%s event=%s", code, event.pk)
        return self.error_page(request, code, status, event)

    def error_page(
        self, request: HttpRequest, code: str, status: int, event: Any, message: str = "", pending: bool = False
    ) -> HttpResponse:
        """The page for a refused login; override to customise."""
        return error_page(request, code, status, event, message, pending)


class LogoutView(CachedSPConfigMixin, djangosaml2_views.LogoutView):
    """djangosaml2's single-logout endpoint, refusing forged redirect-binding messages.

    Stock djangosaml2 accepts an unsigned LogoutRequest over HTTP-Redirect, so
    anyone can log a person out with a link (forced logout). Here a message
    from an IdP whose metadata carries a signing certificate must be signed
    with it (per IdP, ``REQUIRE_SIGNED_LOGOUT``); other messages are refused
    with a ``rejected`` event and no one is logged out.
    """

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        message = request.GET.get("SAMLRequest") or request.GET.get("SAMLResponse")
        if message:
            try:
                self.verify_redirect(request, message)
            except Rejected as rejection:
                event = events.record(
                    EventKind.REJECTED, request=request, reason_code=rejection.code, message=rejection.message
                )
                logger.warning("saml_jit rejected a logout message reason=%s event=%s", rejection.code, event.pk)
                return error_page(request, rejection.code, rejection.status, event, rejection.message)
        return super().get(request, *args, **kwargs)

    def verify_redirect(self, request: HttpRequest, message: str) -> None:
        issuer = logout_issuer(message)
        settings = app_settings.for_idp(issuer)
        if not settings.REQUIRE_SIGNED_LOGOUT:
            return
        conf = self.get_sp_config(request)
        try:
            certificates = conf.metadata.certs(issuer, "idpsso", use="signing") if issuer else []
        except Exception:  # pysaml2 raises KeyError and others for unknown entities
            certificates = []
        if not certificates:
            raise Rejected("unknown_issuer", "The logout message names no trusted IdP.", status=403)
        verify_redirect_signature(
            request.META.get("QUERY_STRING", ""), [cert for _, cert in certificates], settings.ALLOW_SHA1
        )


# djangosaml2's other views, on the cached configuration (and in-process crypto).
class LoginView(CachedSPConfigMixin, djangosaml2_views.LoginView):
    pass


class LogoutInitView(CachedSPConfigMixin, djangosaml2_views.LogoutInitView):
    pass


class MetadataView(CachedSPConfigMixin, djangosaml2_views.MetadataView):
    pass
