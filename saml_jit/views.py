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
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from djangosaml2 import views as djangosaml2_views
from djangosaml2.cache import IdentityCache, OutstandingQueriesCache
from djangosaml2.overrides import Saml2Client
from djangosaml2.utils import get_fallback_login_redirect_url, validate_referral_url

from . import refusals
from .backends import outcome_of
from .conf import app_settings
from .exceptions import Denied, Refusal, Rejected, Replayed
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
            issuer = claimed_issuer(saml_response) if saml_response else ""
            return self.refuse(request, rejection, refusals.record(rejection, request=request, idp_entity_id=issuer))
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
        response = self.validate(client, saml_response, outstanding)
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
        self.run_custom_validation(response)
        oq_cache.delete(response.session_id())
        return response

    def run_custom_validation(self, response: Any) -> None:
        """djangosaml2's ``custom_validation`` hook; anything it raises is a rejection."""
        try:
            self.custom_validation(response)
        except Exception as exc:
            raise Rejected("invalid_response", type(exc).__name__) from exc

    @staticmethod
    def validate(client: Any, saml_response: str, outstanding: dict[str, Any]) -> Any:
        """pysaml2's own validation; its many exception types become one :class:`Rejected` each."""
        try:
            response = client.parse_authn_request_response(saml_response, saml2.BINDING_HTTP_POST, outstanding)
        except Exception as exc:  # pysaml2 raises many unrelated types
            code, status = classify(exc)
            raise Rejected(code, type(exc).__name__, status) from exc
        if response is None or response.assertion is None:
            # Stock djangosaml2 crashes on this (a wrong Destination, a stale
            # IssueInstant, an undecryptable assertion…).
            raise Rejected("no_assertion", "pysaml2 found no valid assertion in the response.")
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
            return self.refused(request, assertion.idp_entity_id)
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

    def refused(self, request: HttpRequest, idp_entity_id: str) -> HttpResponse:
        """The page for an assertion the backend did not sign in (its event is already written)."""
        outcome = outcome_of(request)
        if outcome is None:
            # Another backend (or none) handled authenticate(); still leave evidence.
            denial = Denied(
                "not_authenticated", "No authentication backend accepted the assertion; is SamlJitBackend configured?"
            )
            return self.refuse(request, denial, refusals.record(denial, request=request, idp_entity_id=idp_entity_id))
        if outcome.rejection:
            return self.refuse(request, Replayed(), outcome.event)
        if outcome.denial is None:
            # Provisioned, but the account may not sign in yet (held for approval).
            return self.refuse(request, Denied("inactive"), outcome.event, pending=True)
        return self.refuse(request, outcome.denial, outcome.event)

    def refuse(self, request: HttpRequest, refusal: Refusal, event: Any, pending: bool = False) -> HttpResponse:
        """The page for a refused login; override to customise (the event is already written)."""
        return refusals.answer(request, refusal, event, pending=pending)


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
                return refusals.answer(request, rejection, refusals.record(rejection, request=request))
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
