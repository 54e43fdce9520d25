"""The authentication backend: thin glue between djangosaml2 and provisioning."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from djangosaml2.backends import Saml2Backend

from . import refusals
from .conf import app_settings
from .exceptions import Denied
from .models import EventSource
from .provisioning import Outcome, provision
from .saml.assertions import from_session_info
from .saml.data import AssertionData

#: Where the backend leaves the login's outcome for the ACS view.
OUTCOME_ATTRIBUTE = "saml_jit_outcome"


class SamlJitBackend(Saml2Backend):
    """Authenticates a pysaml2-validated assertion through saml_jit.

    No decisions are made here: the mapping and the policy decide, and
    provisioning writes. djangosaml2's ``create_unknown_user`` and
    ``attribute_mapping`` arguments are ignored in favour of
    ``SAML_JIT["CREATE_USERS"]`` and ``SAML_JIT["ATTRIBUTE_MAP"]``.
    """

    def authenticate(  # type: ignore[override]
        self,
        request: HttpRequest | None,
        session_info: dict[str, Any] | None = None,
        attribute_mapping: Any = None,
        create_unknown_user: Any = None,
        assertion_info: dict[str, Any] | None = None,
        saml_assertion: AssertionData | None = None,
        **kwargs: Any,
    ) -> Any:
        if saml_assertion is None:
            if not session_info:
                return None
            saml_assertion = from_session_info(session_info, assertion_info)
        outcome = provision(saml_assertion, request)
        if request is not None:
            setattr(request, OUTCOME_ATTRIBUTE, outcome)
        if outcome.user is None or not self.user_can_authenticate(outcome.user):
            # PermissionDenied, not None: Django must not ask the next backend
            # (say, stock djangosaml2's) to sign in an assertion refused here.
            raise PermissionDenied(outcome.denial.code if outcome.denial else outcome.rejection or "inactive")
        return outcome.user


def outcome_of(request: HttpRequest) -> Outcome | None:
    return getattr(request, OUTCOME_ATTRIBUTE, None)


# ----------------------------------------------------------------------------
# No way around SSO


class PasswordBackend(ModelBackend):
    """Django's ``ModelBackend``, refusing passwords to accounts that must sign in through SSO.

    Use it instead of ``django.contrib.auth.backends.ModelBackend``. An
    account bound to an IdP with ``ALLOW_PASSWORD_LOGIN = False`` is refused
    even with the right password (no other backend is asked), with a
    ``denied`` event (``password_login_refused``, at most one per account and
    minute); with :class:`saml_jit.forms.SsoAwareAuthenticationForm` (the
    admin uses it) the person is told to use single sign-on. A wrong password
    is answered as for anybody, so the refusal reveals nothing to a guesser.
    """

    def authenticate(
        self, request: HttpRequest | None, username: Any = None, password: Any = None, **kwargs: Any
    ) -> Any:
        user = super().authenticate(request, username=username, password=password, **kwargs)
        idp = sso_required(user) if user is not None else None
        if idp is None:
            return user
        if request is not None:
            setattr(request, SSO_REQUIRED_ATTRIBUTE, idp)
        _refuse_password(request, user, idp)
        raise PermissionDenied("password_login_refused")


#: Where :class:`PasswordBackend` notes, for the login form, which IdP the account must sign in through.
SSO_REQUIRED_ATTRIBUTE = "saml_jit_sso_required"


def sso_required(user: Any) -> str | None:
    """The IdP ``user`` must sign in through (``ALLOW_PASSWORD_LOGIN`` off), or None."""
    for idp in user.saml_identities.values_list("idp_entity_id", flat=True):
        if not app_settings.for_idp(idp).ALLOW_PASSWORD_LOGIN:
            return idp
    return None


def _refuse_password(request: HttpRequest | None, user: Any, idp: str) -> None:
    if not cache.add(f"saml_jit:password_refused:{user.pk}", 1, 60):
        return  # one event per account and minute: a guessing loop must not flood the log
    denial = Denied("password_login_refused", "Password sign-in is off for accounts of this IdP; use SSO.")
    refusals.record(denial, request=request, user=user, source=EventSource.SYSTEM, idp_entity_id=idp)
