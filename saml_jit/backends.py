"""The authentication backend: thin glue between djangosaml2 and provisioning."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from djangosaml2.backends import Saml2Backend

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
