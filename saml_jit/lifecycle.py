"""The account lifecycle rules: one state per account, and who may change it.

Pure: plain data in, a :class:`Decision` out. The states:

* ``active`` — may sign in;
* ``pending_approval`` — created by a first login while ``NEW_USERS_ACTIVE``
  is off; waits for an administrator;
* ``suspended`` — e.g. dormant (no evidence from the IdP for
  ``DORMANT_AFTER`` days), or by an administrator;
* ``deprovisioned`` — the IdP (SCIM) or an administrator took the account away.

Who may undo a state depends on who set it (the README has the table):

* a SAML login never reactivates an account that SCIM or an administrator
  suspended or deprovisioned; it reactivates an account suspended for
  dormancy when the IdP that vouches for it allows that
  (``REACTIVATE_DORMANT``, on by default);
* SCIM ``active: true`` reactivates suspended and deprovisioned accounts, but
  never approves a pending one;
* only an administrator approves (or rejects) a pending account.
"""

from __future__ import annotations

from dataclasses import dataclass

ACTIVE = "active"
PENDING = "pending_approval"
SUSPENDED = "suspended"
DEPROVISIONED = "deprovisioned"
STATES = (ACTIVE, PENDING, SUSPENDED, DEPROVISIONED)

# Who changed the state.
SAML = "saml"
SCIM = "scim"
ADMIN = "admin"
DORMANCY = "dormancy"
SYSTEM = "system"
SOURCES = (SAML, SCIM, ADMIN, DORMANCY, SYSTEM)

# What asks for a change.
SAML_LOGIN = "saml_login"
SCIM_ACTIVATE = "scim_activate"
SCIM_DEACTIVATE = "scim_deactivate"
ADMIN_APPROVE = "admin_approve"
ADMIN_REJECT = "admin_reject"
ADMIN_SUSPEND = "admin_suspend"
ADMIN_DEPROVISION = "admin_deprovision"
ADMIN_REACTIVATE = "admin_reactivate"
DORMANT = "dormant"
TRIGGERS = (
    SAML_LOGIN,
    SCIM_ACTIVATE,
    SCIM_DEACTIVATE,
    ADMIN_APPROVE,
    ADMIN_REJECT,
    ADMIN_SUSPEND,
    ADMIN_DEPROVISION,
    ADMIN_REACTIVATE,
    DORMANT,
)

#: The source each trigger records.
TRIGGER_SOURCE = {
    SAML_LOGIN: SAML,
    SCIM_ACTIVATE: SCIM,
    SCIM_DEACTIVATE: SCIM,
    ADMIN_APPROVE: ADMIN,
    ADMIN_REJECT: ADMIN,
    ADMIN_SUSPEND: ADMIN,
    ADMIN_DEPROVISION: ADMIN,
    ADMIN_REACTIVATE: ADMIN,
    DORMANT: DORMANCY,
}

#: Reason codes a transition records (and that a refused login shows).
REASONS = {
    SAML_LOGIN: "dormant_account_returned",
    SCIM_ACTIVATE: "scim_activated",
    SCIM_DEACTIVATE: "scim_deactivated",
    ADMIN_APPROVE: "approved",
    ADMIN_REJECT: "approval_rejected",
    ADMIN_SUSPEND: "suspended_by_admin",
    ADMIN_DEPROVISION: "deprovisioned_by_admin",
    ADMIN_REACTIVATE: "reactivated_by_admin",
    DORMANT: "dormant",
}

#: The denial a SAML login of a non-active account gets, per state.
LOGIN_DENIALS = {
    PENDING: "pending_approval",
    SUSPENDED: "account_suspended",
    DEPROVISIONED: "account_deprovisioned",
}


@dataclass(frozen=True)
class Lifecycle:
    """An account's lifecycle state, as plain data."""

    state: str = ACTIVE
    #: Who set it (one of :data:`SOURCES`).
    source: str = SYSTEM
    reason: str = ""

    @property
    def active(self) -> bool:
        return self.state == ACTIVE


@dataclass(frozen=True)
class Decision:
    """What a trigger does: a new state (or none), or a refusal."""

    #: The state to move to; None: nothing changes.
    to: str | None = None
    reason: str = ""
    source: str = ""
    #: For a SAML login of an account that stays non-active: the denial's reason code.
    denial: str = ""

    @property
    def changes(self) -> bool:
        return self.to is not None


_UNCHANGED = Decision()


def decide(current: Lifecycle, trigger: str, *, reactivate_dormant: bool = True) -> Decision:
    """The one rule book: what ``trigger`` does to an account in state ``current``."""
    if trigger == SAML_LOGIN:
        return _saml_login(current, reactivate_dormant)
    target, source = _target(current, trigger), TRIGGER_SOURCE[trigger]
    # An administrator's suspension or deprovisioning takes the state over
    # (a dormant account an administrator suspends stays suspended at its next login).
    takes_over = source == ADMIN and source != current.source
    if target is None or (target == current.state and not takes_over):
        return _UNCHANGED
    return Decision(target, REASONS[trigger], source)


#: The reason of an account someone deactivated outside saml_jit (``is_active`` unticked in the admin).
OUTSIDE = "inactive"


def _saml_login(current: Lifecycle, reactivate_dormant: bool) -> Decision:
    if current.active:
        return _UNCHANGED
    if current.source == SYSTEM and current.reason == OUTSIDE:
        return Decision(denial="inactive")
    if current.state == SUSPENDED and current.source == DORMANCY and reactivate_dormant:
        return Decision(ACTIVE, REASONS[SAML_LOGIN], SAML)
    return Decision(denial=LOGIN_DENIALS[current.state])


def _target(current: Lifecycle, trigger: str) -> str | None:
    """The state ``trigger`` moves ``current`` to, or None where it does not apply."""
    state = current.state
    if trigger == SCIM_ACTIVATE:
        return ACTIVE if state in (SUSPENDED, DEPROVISIONED) else None
    if trigger in (SCIM_DEACTIVATE, ADMIN_DEPROVISION):
        return DEPROVISIONED
    if trigger == ADMIN_APPROVE:
        return ACTIVE if state == PENDING else None
    if trigger == ADMIN_REJECT:
        return DEPROVISIONED if state == PENDING else None
    if trigger == ADMIN_SUSPEND:
        return SUSPENDED if state in (ACTIVE, PENDING, SUSPENDED) else None
    if trigger == ADMIN_REACTIVATE:
        return ACTIVE if state in (SUSPENDED, DEPROVISIONED, PENDING) else None
    if trigger == DORMANT:
        return SUSPENDED if state == ACTIVE else None
    raise ValueError(f"unknown lifecycle trigger {trigger!r}")


def effective(current: Lifecycle, is_active: bool) -> Lifecycle:
    """The state to decide on: an account whose ``is_active`` was unticked outside saml_jit is not active."""
    if current.active and not is_active:
        return Lifecycle(DEPROVISIONED, SYSTEM, OUTSIDE)
    return current


def initial(*, active: bool, source: str) -> Lifecycle:
    """The state of a new account: active, or waiting for approval (JIT) / deprovisioned (SCIM, inactive)."""
    if active:
        return Lifecycle(ACTIVE, source, "created")
    return Lifecycle(PENDING if source == SAML else DEPROVISIONED, source, "created_inactive")
