"""Signals. They notify; they never decide (decisions belong to the policy).

Each is sent once the transaction that made the change has committed, with
``send_robust`` (a failing receiver is logged and breaks nothing). The event
signals are sent by :func:`saml_jit.events.record` with ``sender`` the
event's kind and these keyword arguments: ``event`` (the
:class:`~saml_jit.models.ProvisioningEvent`), ``user`` (or ``None``) and
``request`` (or ``None``). The identity signals are sent by
:mod:`saml_jit.notifications` with ``sender`` ``"linked"`` / ``"unlinked"``
and ``user``, ``identity``, ``request``.
"""

from __future__ import annotations

from django.dispatch import Signal

#: An account was created or linked to a federated identity.
user_provisioned = Signal()
#: An existing account's fields changed (the event's ``diff`` says how).
user_updated = Signal()
#: A validated assertion was refused by policy.
login_denied = Signal()
#: A SAML response failed validation (signature, conditions, syntax…).
assertion_rejected = Signal()
#: An account changed lifecycle state (approved, suspended, deprovisioned,
#: reactivated), whatever the source. Extra keyword arguments: ``state`` (the
#: new one), ``previous``, ``reason`` (the reason code) and ``source``
#: (``saml``, ``scim``, ``admin``, ``dormancy``, ``system``).
lifecycle_changed = Signal()
#: An account was deprovisioned (SCIM, an administrator, a rejected
#: approval); same extra arguments as :data:`lifecycle_changed`. Revoke what
#: saml_jit cannot see here: the site's API tokens, integrations, caches.
account_deprovisioned = Signal()
#: A federated identity was bound to an account (a first login, a link by
#: email, a SCIM create). Extra argument: ``identity``.
identity_linked = Signal()
#: A federated identity was removed from an account (by an administrator).
#: Extra argument: ``identity`` (already deleted; its fields are still set).
identity_unlinked = Signal()
