"""Applying plans: accounts, identities, grants, lifecycle state and the replay record.

The one writer of account state, whatever the source:

* :mod:`.login` — a SAML login: gather (:mod:`.state`), plan once, apply, in
  one transaction (:func:`provision`, and :func:`preview` for dry runs);
* :mod:`.accounts` — creating and updating users, binding identities (SAML
  and SCIM alike);
* :mod:`.grants` — managed memberships and privileges: load, apply, expire;
* :mod:`.lifecycle` — deactivation, reactivation, ending sessions;
* :mod:`.replay` — each assertion accepted once, on every node.
"""

from __future__ import annotations

from .login import ATTEMPTS, Outcome, preview, provision

__all__ = ["ATTEMPTS", "Outcome", "preview", "provision"]
