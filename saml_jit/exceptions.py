"""Refusals: why saml_jit said no, as one family of immutable exceptions.

Every refusal carries a stable, machine-readable ``code`` (stored on its
event and shown on the error page), a ``message`` for administrators (never
an attribute value; it goes on the event, not to the person) and the HTTP
``status`` the answer gets. Three kinds:

* :class:`Rejected` — the message itself was refused before any account was
  looked at (signature, conditions, syntax, a logout message…);
* :class:`Replayed` — a rejection: the assertion was used before;
* :class:`Denied` — a valid assertion refused by policy or by mapping.

A refusal is turned into its single event and its answer in one place,
:mod:`saml_jit.refusals`; what the person reads is the policy's friendly,
translatable message for the code (:meth:`saml_jit.policy.Policy.error_message`),
never ``message``.
"""

from __future__ import annotations

import copy
import sys
from typing import Any, ClassVar

if sys.version_info >= (3, 11):
    from typing import Self
else:  # pragma: no cover - Python 3.10
    from typing_extensions import Self

_FIELDS = frozenset({"code", "message", "status", "field", "subject"})


class Refusal(Exception):
    """Base of every refusal. Immutable: derive a changed copy with :meth:`replace`."""

    #: The HTTP status when none is given.
    default_status: ClassVar[int] = 400

    code: str
    message: str
    status: int
    #: The profile field the refusal is about ("email", "subject"…), if any.
    field: str
    #: The subject, when known, so the event still says whose login it was.
    subject: str

    def __init__(
        self, code: str, message: str = "", *, status: int | None = None, field: str = "", subject: str = ""
    ) -> None:
        super().__init__(message or code)
        values = {"code": code, "message": message, "status": status or self.default_status}
        for name, value in {**values, "field": field, "subject": subject}.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _FIELDS:
            raise AttributeError(f"{type(self).__name__} is immutable; use replace()")
        super().__setattr__(name, value)

    def replace(self, **changes: Any) -> Self:
        """A copy with some fields changed, e.g. ``denial.replace(subject=subject)``."""
        unknown = set(changes) - _FIELDS
        if unknown:
            raise TypeError(f"unknown refusal fields: {', '.join(sorted(unknown))}")
        clone = copy.copy(self)
        clone.__dict__.update(changes)
        return clone

    def __setstate__(self, state: dict[str, Any] | None) -> None:
        # copy and pickle restore attributes through here, not __setattr__.
        self.__dict__.update(state or {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r})"


class Rejected(Refusal):
    """A SAML message refused before any account is looked at."""

    def __init__(self, code: str, message: str = "", status: int | None = None) -> None:
        super().__init__(code, message, status=status)


class Replayed(Rejected):
    """The assertion was used before (on this node or any other)."""

    def __init__(self, assertion_id: str = "") -> None:
        super().__init__("replay", "This assertion was already used.")


class AuthnContextRefused(Rejected):
    """The IdP did not authenticate the person the way this site requires (``REQUIRED_AUTHN_CONTEXT``).

    ``needed`` lists the accepted AuthnContextClassRef values: the error page
    names them, so the person (or their helpdesk) knows what is missing.
    Also raised for the IdP's own ``NoAuthnContext`` status.
    """

    def __init__(self, needed: tuple[str, ...] = (), message: str = "") -> None:
        super().__init__("authn_context_insufficient", message or "The authentication context is insufficient.", 403)
        self.needed = tuple(needed)


class Denied(Refusal):
    """A validated assertion refused for a stated reason (by the mapping or the policy).

    Raise it from :class:`~saml_jit.policy.Policy` hooks::

        raise Denied("contractor", "Contractors sign in through the partner portal.")

    The person sees the policy's message for ``code`` (add yours to
    ``Policy.error_messages``); ``message`` is for administrators and events.
    """

    default_status = 403

    def __init__(
        self, code: str, message: str = "", field: str = "", *, subject: str = "", status: int | None = None
    ) -> None:
        super().__init__(code, message, status=status, field=field, subject=subject)


__all__ = ["AuthnContextRefused", "Denied", "Refusal", "Rejected", "Replayed"]
