"""Signals. They notify; they never decide (decisions belong to the policy).

Each is sent by :func:`saml_jit.events.record` once the transaction that wrote
the event has committed, with ``sender`` the event's kind and these keyword
arguments: ``event`` (the :class:`~saml_jit.models.ProvisioningEvent`),
``user`` (or ``None``) and ``request`` (or ``None``).
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
