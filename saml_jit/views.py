"""djangosaml2's views, made to keep evidence: the ACS, single logout, login and metadata.

Every response ends in exactly one of: a login, a ``denied`` event (the
assertion was valid, the policy said no) or a ``rejected`` event (pysaml2, or
saml_jit's own pre-checks, refused the response). Failures answer with a
clear error page and a 4xx status, never a 500. Each logout is one ``logout``
event. The database or the cache failing under any of these views is
answered 503 with the error page and a reference (:class:`ServerFaultMixin`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import saml2
from django.conf import settings
from django.contrib import auth
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render, resolve_url
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from djangosaml2 import views as djangosaml2_views
from djangosaml2.cache import IdentityCache, OutstandingQueriesCache
from djangosaml2.overrides import Saml2Client
from djangosaml2.utils import get_fallback_login_redirect_url, validate_referral_url
from saml2.s_utils import sid

from . import events, refusals, sessions
from .backends import outcome_of
from .conf import IdPSettings, app_settings
from .exceptions import AuthnContextRefused, Denied, Refusal, Rejected, Replayed
from .middleware import LOGIN_COMMITTED
from .models import ENTITY_ID_MAX_LENGTH, SUBJECT_MAX_LENGTH, EventKind, FederatedIdentity
from .provisioning.sessions import end_sessions_from
from .saml import authn as saml_authn
from .saml import logout as slo
from .saml.assertions import authn_of, from_response, issuer_of
from .saml.config import CachedSPConfigMixin
from .saml.decryption import guarded_decryption
from .saml.errors import classify
from .saml.response import (
    Inspection,
    check_claimed_destination,
    check_encryption,
    claimed_issuer,
    inspect_document,
    verify_response,
)

logger = logging.getLogger(__name__)


class ServerFaultMixin:
    """Answer the database or the cache failing under a view with a 503 page and a reference, never a bare 500.

    Once a login's transaction has committed the page says so ("you may
    already be signed in"): the person did nothing wrong, and trying again
    starts a new login.
    """

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return super().dispatch(request, *args, **kwargs)  # type: ignore[misc, no-any-return]
        except refusals.FAULTS as exc:
            return refusals.fault(request, exc, self.fault_code(request))

    def fault_code(self, request: HttpRequest) -> str:
        return "session_unavailable" if getattr(request, LOGIN_COMMITTED, False) else "service_unavailable"


def pysaml2_validate(client: Any, saml_response: str, outstanding: dict[str, Any]) -> Any:
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


def validate_response(
    client: Any,
    saml_response: str,
    inspection: Inspection,
    outstanding: dict[str, Any],
    *,
    validate: Callable[[Any, str, dict[str, Any]], Any] = pysaml2_validate,
    saml_session: Any = None,
) -> Any:
    """The ACS's whole check of one response: pysaml2's, then saml_jit's stricter ones; raise :class:`Rejected`.

    ``outstanding`` are the requests this browser sent (request ID -> where
    it came from). Shared by the ACS and the admin's dry run, which checks a
    pasted response exactly as a login would, minus the browser session
    (``saml_session``: what this browser asked for, to name the contexts an
    IdP's NoAuthnContext answer did not meet).
    """
    conf = client.config
    # pysaml2's allow_unsolicited is all-or-nothing; saml_jit allows it per
    # IdP, and only for responses that do not claim to answer a request.
    client.allow_unsolicited = (
        inspection.in_response_to is None and app_settings.for_idp(inspection.issuer).ALLOW_IDP_INITIATED
    )
    acs_urls = client.service_urls(binding=saml2.BINDING_HTTP_POST)
    check_claimed_destination(inspection, acs_urls)
    idp = app_settings.for_idp(inspection.issuer)
    check_encryption(inspection, idp)
    with guarded_decryption(client.sec, inspection, idp), _naming_needed(idp, saml_session or {}, inspection):
        response = validate(client, saml_response, outstanding)
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
    return response


def remember_issuer(client: Any, response: Any) -> None:
    """For a Response without its own Issuer, file the session under the assertion's (for logout).

    pysaml2 files what it validated under the Response's Issuer, empty here;
    logout then finds no IdP to send its LogoutRequest to.
    """
    if response.issuer() or client.users is None:
        return
    info = {**response.session_info(), "issuer": issuer_of(response)}
    client.users.cache.delete(info["name_id"])  # filed under "", which logout would try to reach
    client.users.add_information_about_person(info)


@method_decorator(csrf_exempt, name="dispatch")
class AssertionConsumerServiceView(
    ServerFaultMixin, CachedSPConfigMixin, djangosaml2_views.AssertionConsumerServiceView
):
    """djangosaml2's ACS with saml_jit's evidence and error handling.

    A GET (djangosaml2 answers it with an empty 405) gets a page saying what
    this address is for (:meth:`get`).
    """

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """405 with a page: a bare GET is a navigation (no event); a SAMLResponse in the query is bad input.

        SAML responses arrive by HTTP-POST only (the ACS publishes no
        HTTP-Redirect binding), so a ``SAMLResponse`` in a query string is a
        misconfigured IdP or a pasted link: one ``rejected`` event
        (``response_in_query``), never parsed beyond its claimed issuer.
        """
        saml_response = request.GET.get("SAMLResponse", "")
        if saml_response:
            detail = "A SAMLResponse came by GET; the ACS accepts HTTP-POST only."
            rejection = Rejected("response_in_query", detail, status=405)
            event = refusals.record(rejection, request=request, idp_entity_id=claimed_issuer(saml_response))
            response = self.refuse(request, rejection, event)
        else:
            context = {"try_again_url": refusals.try_again_url(request), "home_url": refusals.home_url()}
            response = render(request, "saml_jit/acs.html", context, status=405)
        response["Allow"] = "POST"
        return response

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
        response = validate_response(
            client, saml_response, inspection, outstanding, validate=self.validate, saml_session=saml_session
        )
        self.check_authn(saml_session, response)
        self.run_custom_validation(response)
        remember_issuer(client, response)
        oq_cache.delete(response.session_id())
        return response

    @staticmethod
    def check_authn(saml_session: Any, response: Any) -> None:
        """Hold the AuthnStatement to what this SP's request asked (ForceAuthn, context) and to the IdP's settings."""
        try:
            authn = authn_of(response.assertion)
        except (TypeError, ValueError):
            raise Rejected("invalid_response", "The AuthnStatement has an invalid instant.") from None
        asked = saml_authn.asked_for(saml_session, response.in_response_to)
        idp = app_settings.for_idp(response.issuer() or "")
        saml_authn.check_authn(authn, asked, idp, skew=app_settings.CLOCK_SKEW, now=timezone.now())

    def run_custom_validation(self, response: Any) -> None:
        """djangosaml2's ``custom_validation`` hook; anything it raises is a rejection."""
        try:
            self.custom_validation(response)
        except Exception as exc:
            raise Rejected("invalid_response", type(exc).__name__) from exc

    @staticmethod
    def validate(client: Any, saml_response: str, outstanding: dict[str, Any]) -> Any:
        """pysaml2's own validation; its many exception types become one :class:`Rejected` each."""
        return pysaml2_validate(client, saml_response, outstanding)

    def login(self, request: HttpRequest, response: Any) -> HttpResponse:
        assertion = from_response(response)
        # The verified issuer, also when the Response named none (the assertion's).
        session_info = {**response.session_info(), "issuer": assertion.idp_entity_id}
        try:
            user = auth.authenticate(
                request,
                session_info=session_info,
                assertion_info={"assertion_id": assertion.assertion_id, "not_on_or_after": assertion.not_on_or_after},
                saml_assertion=assertion,
            )
        except Rejected as rejection:  # before any account was looked at: the replay cache is unreachable
            event = refusals.record(
                rejection, request=request, idp_entity_id=assertion.idp_entity_id, assertion_id=assertion.assertion_id
            )
            return self.refuse(request, rejection, event)
        if user is None:
            return self.refused(request, assertion.idp_entity_id)
        # Committed: from here on a fault is never reported as the person's (see SamlSessionMiddleware).
        setattr(request, LOGIN_COMMITTED, True)
        sessions.sign_in(request, user)
        outcome = outcome_of(request)
        sessions.remember_login(
            request,
            assertion,
            app_settings.for_idp(assertion.idp_entity_id),
            user=user,
            privileges_withheld=outcome is not None and outcome.privileges_withheld,
        )
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


@contextmanager
def _naming_needed(idp: IdPSettings, saml_session: Any, inspection: Inspection) -> Iterator[None]:
    """The IdP's NoAuthnContext status, refused with the contexts this site accepts (for the error page)."""
    try:
        yield
    except Rejected as rejection:
        if rejection.code != "authn_context_insufficient" or isinstance(rejection, AuthnContextRefused):
            raise
        requests = saml_session.get(saml_authn.REQUESTS_KEY) or {}
        asked = saml_authn.Asked.from_session_value(requests.get(inspection.in_response_to or ""))
        context = asked.context or idp.REQUIRED_AUTHN_CONTEXT
        needed = context.accepted if context is not None else ()
        raise AuthnContextRefused(
            needed, "The IdP answered NoAuthnContext: it could not authenticate as asked."
        ) from None


# -- single logout -------------------------------------------------------------


def _is_known_idp(conf: Any, entity_id: str, *, unsure: bool) -> bool:
    """Whether the metadata describes ``entity_id`` as an IdP; ``unsure`` when asking it failed (say, MDQ)."""
    try:
        return "idpsso_descriptor" in conf.metadata[entity_id]
    except KeyError:
        return False
    except Exception:  # a metadata query service failing
        return unsure


def _logout_redirect() -> HttpResponse:
    return HttpResponseRedirect(resolve_url(settings.LOGOUT_REDIRECT_URL or "/"))


def _http_answer(http_info: dict[str, Any]) -> HttpResponse:
    """pysaml2's ``http_info`` as a response: a redirect, or the auto-submitting POST form."""
    headers = dict(http_info.get("headers") or [])
    if "Location" in headers:
        return HttpResponseRedirect(headers["Location"])
    data = http_info.get("data", "")
    return HttpResponse("".join(data) if isinstance(data, list) else data)


def _identity_subject(user: Any, idp_entity_id: str) -> str:
    if user is None or not idp_entity_id:
        return ""
    identity = FederatedIdentity.objects.filter(user=user, idp_entity_id=idp_entity_id).only("subject").first()
    return identity.subject if identity is not None else ""


def end_session(
    request: HttpRequest,
    *,
    idp_entity_id: str,
    binding: str | None,
    initiated_by: str,
    local: bool = False,
    everywhere: bool = False,
) -> None:
    """Log the person out here: the one ``logout`` event, the SAML subject forgotten, Django's logout.

    The event's ``diff`` says how: ``binding`` (``redirect``, ``post``, or
    None when no IdP was told), ``initiated_by`` (``sp`` or ``idp``) and
    ``local`` (True when this session held no SAML sign-in to end at an IdP).
    With ``everywhere`` (``LOGOUT_ALL_SESSIONS``) every other session the
    person holds from that IdP ends too, and ``sessions_ended`` counts them.
    """
    user = getattr(request, "user", None)
    user = user if user is not None and user.is_authenticated else None
    diff: dict[str, Any] = {
        "binding": slo.BINDING_NAMES.get(binding or ""),
        "initiated_by": initiated_by,
        "local": local,
    }
    # One transaction: with database sessions, no event for a logout whose session could not be ended.
    with transaction.atomic():
        if everywhere and user is not None:
            diff["sessions_ended"] = end_sessions_from(user, idp_entity_id)
        events.record(
            EventKind.LOGOUT,
            request=request,
            user=user,
            idp_entity_id=idp_entity_id[:ENTITY_ID_MAX_LENGTH],
            subject=_identity_subject(user, idp_entity_id)[:SUBJECT_MAX_LENGTH],
            diff=diff,
        )
        auth.logout(request)
    request.saml_session.pop("_saml2_subject_id", None)  # type: ignore[attr-defined]


def end_sessions_of_subject(request: HttpRequest, subject: str, *, idp_entity_id: str, binding: str) -> bool:
    """End every indexed session of the person bound to (IdP, ``subject``); False when nobody is.

    The browser that carried the request keeps its own session (it is not
    theirs); the one ``logout`` event names the person, with
    ``session_here: False``.
    """
    identity = (
        FederatedIdentity.objects.filter(idp_entity_id=idp_entity_id, subject=subject).select_related("user").first()
    )
    if identity is None:
        return False
    diff: dict[str, Any] = {
        "binding": slo.BINDING_NAMES.get(binding),
        "initiated_by": "idp",
        "local": False,
        "session_here": False,
    }
    with transaction.atomic():
        diff["sessions_ended"] = end_sessions_from(identity.user, idp_entity_id)
        events.record(
            EventKind.LOGOUT,
            request=request,
            user=identity.user,
            idp_entity_id=idp_entity_id[:ENTITY_ID_MAX_LENGTH],
            subject=subject[:SUBJECT_MAX_LENGTH],
            diff=diff,
        )
    return True


@method_decorator(csrf_exempt, name="dispatch")
class LogoutView(ServerFaultMixin, CachedSPConfigMixin, djangosaml2_views.LogoutView):
    """djangosaml2's single-logout endpoint (``ls/``, ``ls/post/``), with the same rules on both bindings.

    Stock djangosaml2 ends the session on an unsigned LogoutRequest (anyone
    can log a person out with a link or a form), accepts any LogoutResponse,
    twice, and answers garbage with a 500. Here (see
    :mod:`saml_jit.saml.logout`): the Issuer must be an IdP of the metadata;
    the message must be signed with its metadata certificates (per IdP,
    ``REQUIRE_SIGNED_LOGOUT``) and recent; a LogoutResponse must answer a
    LogoutRequest this session sent, once; a LogoutRequest ends the session
    only when it names the subject this session signed in as. Anything else
    is refused with a ``rejected`` event and a 4xx page, and no one is
    logged out.
    """

    def do_logout_service(self, request: HttpRequest, data: Any, binding: str, *args: Any, **kwargs: Any) -> Any:
        issuer = ""
        try:
            message = slo.read_logout_message(data, binding, app_settings.MAX_RESPONSE_SIZE)
            issuer = message.issuer
            state, client = self.get_state_client(request)
            signed = self.verify(request, client, message, binding)
            if message.is_request:
                relay_state = data.get("RelayState", "")
                return self.logout_requested(request, client, state, message, binding, relay_state, signed=signed)
            return self.logout_answered(request, client, state, message, binding)
        except Rejected as rejection:
            return self.refuse(request, rejection, refusals.record(rejection, request=request, idp_entity_id=issuer))

    def verify(self, request: HttpRequest, client: Any, message: slo.LogoutMessage, binding: str) -> bool:
        """Issuer known, recent, and signed with its metadata certificates (unless not required); or Rejected.

        Returns whether a signature was verified (False: unsigned, and allowed unsigned).
        """
        metadata = client.config.metadata
        if not message.issuer or not _is_known_idp(client.config, message.issuer, unsure=False):
            raise Rejected("unknown_issuer", "The logout message names no IdP of this SP's metadata.", status=403)
        slo.check_fresh(message, app_settings.MAX_RESPONSE_AGE, app_settings.CLOCK_SKEW)
        settings_for_idp = app_settings.for_idp(message.issuer)
        required = settings_for_idp.REQUIRE_SIGNED_LOGOUT
        if binding == saml2.BINDING_HTTP_POST:
            if required or message.signed:
                slo.verify_post_signature(message, client.sec, settings_for_idp.ALLOW_SHA1)
                return True
            return False
        query = request.META.get("QUERY_STRING", "")
        if required or slo.is_redirect_signed(query):
            certificates = [cert for _, cert in metadata.certs(message.issuer, "idpsso", use="signing")]
            slo.verify_redirect_signature(query, certificates, settings_for_idp.ALLOW_SHA1)
            return True
        return False

    def logout_requested(
        self,
        request: HttpRequest,
        client: Any,
        state: Any,
        message: slo.LogoutMessage,
        binding: str,
        relay_state: str,
        *,
        signed: bool = False,
    ) -> HttpResponse:
        """IdP-initiated: end the session if the request names its subject; answer the IdP either way.

        With ``LOGOUT_ALL_SESSIONS``, a *signed* request naming someone this
        browser is not signed in as still ends that person's sessions from
        the IdP (the IdP may send it through any browser of theirs, or one
        that has none here). Never for an unsigned one: a page could make
        any browser send it.
        """
        stored = djangosaml2_views._get_subject_id(request.saml_session)  # type: ignore[attr-defined]
        everywhere = app_settings.for_idp(message.issuer).LOGOUT_ALL_SESSIONS
        elsewhere = None
        if everywhere and signed:
            elsewhere = partial(end_sessions_of_subject, request, idp_entity_id=message.issuer, binding=binding)
        answer = slo.answer_logout_request(client, message, binding, relay_state, stored, elsewhere)
        state.sync()
        if answer.matched:
            end_session(
                request, idp_entity_id=message.issuer, binding=binding, initiated_by="idp", everywhere=everywhere
            )
        elif not answer.ended_elsewhere:
            logger.warning("saml_jit logout request from idp=%s names another subject; none ended", message.issuer)
        return _http_answer(answer.http_info) if answer.http_info is not None else _logout_redirect()

    def logout_answered(
        self, request: HttpRequest, client: Any, state: Any, message: slo.LogoutMessage, binding: str
    ) -> HttpResponse:
        """SP-initiated, completed: the IdP's answer to this session's LogoutRequest (its event was written then)."""
        response = slo.parse_logout_response(client, message, binding)
        slo.claim_logout_request(state, message)
        state.sync()
        return djangosaml2_views.finish_logout(request, response)  # type: ignore[no-any-return]

    def refuse(self, request: HttpRequest, refusal: Refusal, event: Any) -> HttpResponse:
        """The page for a refused logout message; override to customise (the event is already written)."""
        return refusals.answer(request, refusal, event)


class LogoutInitView(ServerFaultMixin, CachedSPConfigMixin, djangosaml2_views.LogoutInitView):
    """SP-initiated logout (``logout/``): a LogoutRequest to the IdP the person signed in with.

    Whoever signed in without SAML (a local password, the admin), or whose
    IdP offers no logout endpoint, is logged out here only (stock djangosaml2
    answers them with a 500 or a bare 400). Either way one ``logout`` event.
    """

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        state, client = self.get_state_client(request)
        subject = djangosaml2_views._get_subject_id(request.saml_session)  # type: ignore[attr-defined]
        idp_entity_id = next(iter(slo.issuers_of(client, subject)), "")
        sent = slo.start_logout(client, subject)
        slo.forget(client, subject)  # signed out here now; the IdP's answer needs only the request's state
        state.sync()
        if sent is None:
            end_session(request, idp_entity_id=idp_entity_id, binding=None, initiated_by="sp", local=True)
            return _logout_redirect()
        end_session(request, idp_entity_id=sent.idp_entity_id, binding=sent.binding, initiated_by="sp")
        return _http_answer(sent.http_info)


class LoginView(ServerFaultMixin, CachedSPConfigMixin, djangosaml2_views.LoginView):
    """djangosaml2's login view on the cached configuration, with saml_jit's error page.

    The AuthnRequest carries a RequestedAuthnContext only for an IdP with
    ``REQUIRED_AUTHN_CONTEXT`` (never by default: saml2int SDP-SP07, and
    Entra ID refuses a context it does not support with AADSTS75011). What
    it asked for is remembered in the SAML session under the request's ID,
    and the ACS holds the answer to it (:mod:`saml_jit.saml.authn`).
    """

    #: A step-up login: ForceAuthn and the IdP's MFA contexts (:class:`StepUpView`).
    step_up = False

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        idp = request.GET.get("idp")
        # Asked before djangosaml2 asks pysaml2, which logs an unknown entity at ERROR.
        if idp and not _is_known_idp(self.get_sp_config(request), idp, unsure=True):  # unsure: djangosaml2 decides
            return self.unknown_idp(request, idp)
        return super().get(request, *args, **kwargs)  # type: ignore[no-any-return]

    def should_prevent_auth(self, request: HttpRequest) -> bool:
        # A step-up is for a person who is signed in already.
        return not self.step_up and super().should_prevent_auth(request)  # type: ignore[no-any-return]

    def load_sso_kwargs(self, sso_kwargs: dict[str, Any]) -> None:
        """Name the request, ask for what this IdP needs, and remember what was asked."""
        idp = app_settings.for_idp(self.selected_idp())
        asked = self.asked(idp, bool(sso_kwargs.get("force_authn")))
        if asked.force_authn:
            sso_kwargs["force_authn"] = "true"
        if asked.context is not None:
            sso_kwargs["requested_authn_context"] = saml_authn.requested_authn_context(asked.context)
        sso_kwargs["message_id"] = request_id = sid()
        saml_authn.remember_request(self.request.saml_session, request_id, asked)  # type: ignore[attr-defined]

    def asked(self, idp: IdPSettings, force_authn: bool) -> saml_authn.Asked:
        if self.step_up:
            return saml_authn.Asked(force_authn=True, context=saml_authn.mfa_context(idp), step_up=True)
        return saml_authn.Asked(force_authn=force_authn, context=idp.REQUIRED_AUTHN_CONTEXT)

    def selected_idp(self) -> str:
        """The IdP djangosaml2 sends the request to: ``?idp=``, else the only one configured."""
        chosen = self.request.GET.get("idp")
        return chosen or next(iter(djangosaml2_views.available_idps(self.conf)), "")

    def unknown_idp(self, request: HttpRequest, idp: str) -> HttpResponse:
        """An IdP that is not in the metadata: one log line (djangosaml2 logs a traceback) and a 403 page."""
        logger.warning("saml_jit login for an IdP not in the metadata: %r", str(idp)[:200])
        return refusals.answer(request, Rejected("unknown_idp", "The IdP is not in this SP's metadata.", status=403))


class StepUpView(LoginView):
    """``step-up/``: sign in again at the same IdP with ForceAuthn and the MFA context, to get privileges back.

    For a person whose privileges were withheld because their sign-in showed
    no MFA (``PRIVILEGES_REQUIRE_MFA``; :func:`saml_jit.sessions.step_up_url`).
    The IdP is the one this session signed in with (``?idp=`` otherwise).
    The answer goes through the ACS like any login: with MFA, the privileges
    come back; without, the person stays signed in without them.
    """

    step_up = True

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        idp = request.session.get(sessions.IDP) if hasattr(request, "session") else None
        if idp and "idp" not in request.GET:
            query = request.GET.copy()
            query["idp"] = idp
            request.GET = query  # type: ignore[assignment]  # a copy with the IdP added
        return super().get(request, *args, **kwargs)


class MetadataView(ServerFaultMixin, CachedSPConfigMixin, djangosaml2_views.MetadataView):
    pass
