"""The authentication context: what saml_jit asks an IdP for, and what it holds a response to.

Two things an SP asks of an IdP through an AuthnRequest, and must then check
on the answer, because nothing obliges the IdP to have obeyed:

* ``ForceAuthn`` (the step-up link): the AuthnInstant must be fresh, within
  the IdP's ``FORCE_AUTHN_MAX_AGE`` (saml2int SDP-SP13) — an IdP that
  silently reused its session answers with an old one;
* ``RequestedAuthnContext`` (``REQUIRED_AUTHN_CONTEXT``, or the MFA contexts
  of a step-up): the AuthnContextClassRef must be one of the accepted
  classes (:class:`~saml_jit.conf.RequiredAuthnContext`).

What this SP asked is kept in the SAML session, keyed by the AuthnRequest's
ID (:func:`remember_request`), and looked up by the response's InResponseTo
(:func:`asked_for`). An IdP-initiated response answers no request: only
``REQUIRED_AUTHN_CONTEXT`` applies to it.

Plain rules on plain data, raising :class:`~saml_jit.exceptions.Rejected`;
no models.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from saml2.saml import AuthnContextClassRef
from saml2.samlp import RequestedAuthnContext

from ..conf import IdPSettings, RequiredAuthnContext
from ..exceptions import AuthnContextRefused, Rejected
from .data import Authn

#: SAML session key: AuthnRequest ID -> what it asked for (:class:`Asked` as a dict).
REQUESTS_KEY = "_saml_jit_authn_requests"
#: At most this many requests are remembered per SAML session (the oldest go first).
REMEMBERED_REQUESTS = 10


@dataclass(frozen=True)
class Asked:
    """What one AuthnRequest of this SP asked the IdP for."""

    force_authn: bool = False
    #: The RequestedAuthnContext it carried; None: none.
    context: RequiredAuthnContext | None = None
    #: A step-up: a login to bring privileges back with MFA.
    step_up: bool = False

    def as_session_value(self) -> dict[str, Any]:
        context = self.context
        return {
            "force_authn": self.force_authn,
            "classes": list(context.classes) if context else [],
            "comparison": context.comparison if context else "exact",
            "step_up": self.step_up,
        }

    @classmethod
    def from_session_value(cls, value: Any) -> Asked:
        if not isinstance(value, dict):
            return cls()
        classes = tuple(value.get("classes") or ())
        context = RequiredAuthnContext(classes, value.get("comparison", "exact")) if classes else None
        return cls(bool(value.get("force_authn")), context, bool(value.get("step_up")))


def mfa_context(settings: IdPSettings) -> RequiredAuthnContext:
    """The RequestedAuthnContext of a step-up: the IdP's MFA contexts (or its own required ones)."""
    required = settings.REQUIRED_AUTHN_CONTEXT
    if required is not None and shows_mfa(required.accepted, (), settings.MFA_AUTHN_CONTEXTS):
        return required
    return RequiredAuthnContext(tuple(name for name in settings.MFA_AUTHN_CONTEXTS if ":" in name))


def requested_authn_context(context: RequiredAuthnContext) -> RequestedAuthnContext:
    """The pysaml2 element for an AuthnRequest."""
    return RequestedAuthnContext(
        authn_context_class_ref=[AuthnContextClassRef(text=name) for name in context.classes],
        comparison=context.comparison,
    )


def remember_request(saml_session: MutableMapping[str, Any], request_id: str, asked: Asked) -> None:
    """Keep what AuthnRequest ``request_id`` asked for, for its answer (a bounded number per session)."""
    requests = dict(saml_session.get(REQUESTS_KEY) or {})
    requests[request_id] = asked.as_session_value()
    saml_session[REQUESTS_KEY] = dict(list(requests.items())[-REMEMBERED_REQUESTS:])


def asked_for(saml_session: MutableMapping[str, Any], in_response_to: str | None) -> Asked:
    """What the request a response answers asked for (nothing, for an IdP-initiated one); forgets it."""
    requests = dict(saml_session.get(REQUESTS_KEY) or {})
    value = requests.pop(in_response_to, None) if in_response_to else None
    if value is not None:
        saml_session[REQUESTS_KEY] = requests
    return Asked.from_session_value(value)


def shows_mfa(context_classes: Iterable[str], methods: Iterable[str], mfa_contexts: Iterable[str]) -> bool:
    """Whether an AuthnContextClassRef, or one of the authentication methods (Entra's amr), is an MFA one."""
    accepted = {name.casefold() for name in mfa_contexts}
    return any(value.casefold() in accepted for value in (*context_classes, *methods) if value)


def check_context(authn: Authn, required: RequiredAuthnContext | None) -> None:
    """Refuse a response whose AuthnContextClassRef is not one of ``required``'s accepted classes."""
    if required is None or authn.context_class in required.accepted:
        return
    raise AuthnContextRefused(
        required.accepted,
        f"The AuthnContextClassRef is {authn.context_class or 'missing'!r}; accepted ({required.comparison}): "
        + ", ".join(required.accepted),
    )


def check_fresh(authn: Authn, max_age: int, skew: int, now: datetime) -> None:
    """After ForceAuthn: refuse an AuthnInstant older than ``max_age`` seconds (SDP-SP13), or missing."""
    if authn.instant is None:
        raise Rejected("stale_authn", "ForceAuthn was requested but the AuthnStatement has no AuthnInstant.")
    if now - authn.instant > timedelta(seconds=max_age + skew):
        raise Rejected("stale_authn", f"ForceAuthn was requested but the AuthnInstant is older than {max_age}s.")


def check_session_end(authn: Authn, now: datetime) -> None:
    """A SessionNotOnOrAfter already past: the IdP's session is over, so no session here either."""
    if authn.session_not_on_or_after is not None and authn.session_not_on_or_after <= now:
        raise Rejected("expired", "The AuthnStatement's SessionNotOnOrAfter has passed.")


def check_authn(authn: Authn, asked: Asked, settings: IdPSettings, *, skew: int, now: datetime) -> None:
    """Hold the AuthnStatement to what this SP asked for and to the IdP's ``REQUIRED_AUTHN_CONTEXT``."""
    check_session_end(authn, now)
    if asked.force_authn:
        check_fresh(authn, settings.FORCE_AUTHN_MAX_AGE, skew, now)
    if asked.step_up and shows_mfa((authn.context_class,), (), settings.MFA_AUTHN_CONTEXTS):
        return  # what the step-up asked for, whatever REQUIRED_AUTHN_CONTEXT lists
    check_context(authn, settings.REQUIRED_AUTHN_CONTEXT)
    if asked.context is not None and not asked.step_up:
        check_context(authn, asked.context)


def session_expiry(
    authn: Authn, max_age: int | None, default_age: int, now: datetime
) -> tuple[datetime, tuple[str, ...]]:
    """When the session from this assertion ends, and what decided it.

    The earliest of Django's own ``SESSION_COOKIE_AGE`` (``default``),
    ``MAX_SESSION_AGE`` and the IdP's SessionNotOnOrAfter: saml_jit never
    lengthens a session, only shortens it.
    """
    candidates = [(now + timedelta(seconds=default_age), "SESSION_COOKIE_AGE")]
    if max_age is not None:
        candidates.append((now + timedelta(seconds=max_age), "MAX_SESSION_AGE"))
    if authn.session_not_on_or_after is not None:
        candidates.append((authn.session_not_on_or_after, "SessionNotOnOrAfter"))
    earliest = min(moment for moment, _ in candidates)
    return earliest, tuple(reason for moment, reason in candidates if moment == earliest)
