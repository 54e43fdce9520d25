"""Telling people: a signal, and optionally an email, when an identity is linked to or unlinked from their account.

NIST SP 800-63C-4 §3.7.1 asks that a subscriber be told when a federated
identity is linked to or removed from their account. saml_jit sends
:data:`~saml_jit.signals.identity_linked` / :data:`~saml_jit.signals.identity_unlinked`
after the transaction commits and, for IdPs with ``NOTIFY_IDENTITY_CHANGES``,
an email through Django's mail (templates ``saml_jit/email/identity_linked_subject.txt``,
``identity_linked.txt``, ``identity_unlinked_subject.txt``, ``identity_unlinked.txt``;
override them in your templates). A failing receiver or mail server is
logged and never breaks the login.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.mail import send_mail
from django.db import transaction
from django.dispatch import Signal
from django.template.loader import render_to_string

from . import signals
from .conf import app_settings

logger = logging.getLogger(__name__)


def identity_linked(user: Any, identity: Any, request: Any = None) -> None:
    _after_commit(signals.identity_linked, "linked", user, identity, request)


def identity_unlinked(user: Any, identity: Any, request: Any = None) -> None:
    _after_commit(signals.identity_unlinked, "unlinked", user, identity, request)


def _after_commit(signal: Signal, what: str, user: Any, identity: Any, request: Any) -> None:
    transaction.on_commit(lambda: _send(signal, what, user, identity, request))


def _send(signal: Signal, what: str, user: Any, identity: Any, request: Any) -> None:
    for receiver, result in signal.send_robust(sender=what, user=user, identity=identity, request=request):
        if isinstance(result, Exception):
            logger.error("saml_jit signal receiver %r failed for identity %s", receiver, what, exc_info=result)
    if app_settings.for_idp(identity.idp_entity_id).NOTIFY_IDENTITY_CHANGES:
        _email(what, user, identity)


def _email(what: str, user: Any, identity: Any) -> None:
    address = getattr(user, user.get_email_field_name(), "") or ""
    if not address:
        return
    context = {"user": user, "identity": identity, "idp_entity_id": identity.idp_entity_id}
    subject = render_to_string(f"saml_jit/email/identity_{what}_subject.txt", context).strip()
    body = render_to_string(f"saml_jit/email/identity_{what}.txt", context)
    try:
        send_mail(" ".join(subject.split()), body, None, [address])
    except Exception:  # a mail server must never break a login
        logger.exception("saml_jit could not email the identity %s notice to user id=%s", what, user.pk)
