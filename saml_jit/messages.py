"""What a person reads when saml_jit refuses a sign-in: one message per reason code.

Each message says what happened in words a person understands and what to
do next; none repeats the administrator's detail (that stays on the event).
They are translatable (``gettext_lazy``). Sites change or add messages on
their policy, as django-allauth's adapter does::

    class MyPolicy(Policy):
        error_messages = {
            **Policy.error_messages,
            "contractor": _("Contractors sign in through the partner portal: https://partners.example.org"),
        }
"""

from __future__ import annotations

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

#: For any code without a message of its own.
GENERIC = _(
    "You could not be signed in. Go back to the site and try again; if it keeps happening, contact your administrator."
)

#: Reason code -> message. Rejections (the SAML message itself) first, then denials (policy and mapping).
ERROR_MESSAGES: dict[str, Promise | str] = {
    # -- the SAML response ------------------------------------------------
    "missing_response": _("The sign-in did not reach this site complete. Go back to the site and sign in again."),
    "response_too_large": _(
        "The sign-in message from your identity provider is larger than this site accepts. Contact your administrator."
    ),
    "response_too_complex": _(
        "The sign-in message from your identity provider is more complex than this site accepts. Contact your administrator."
    ),
    "malformed_response": _("The sign-in message could not be read. Go back to the site and sign in again."),
    "invalid_response": _("The sign-in message is not valid. Go back to the site and sign in again."),
    "bad_signature": _(
        "The sign-in message is not signed by an identity provider this site trusts. Sign in again from this site's sign-in page."
    ),
    "decryption_failed": _(
        "The sign-in message could not be decrypted. Sign in again; if it keeps happening, contact your administrator."
    ),
    "expired": _("Your sign-in took too long and has expired. Go back to the site and sign in again."),
    "not_yet_valid": _(
        "The sign-in message is not valid yet, which usually means a server clock is wrong. Wait a minute and sign in again."
    ),
    "unsolicited": _(
        "This sign-in was not started from this browser, or your sign-in session ended. Start again from this site's sign-in page."
    ),
    "idp_status": _("Your identity provider did not sign you in. Go back to the site and try again."),
    "unsupported_version": _(
        "Your identity provider uses a SAML version this site does not support. Contact your administrator."
    ),
    "conditions_not_met": _(
        "The sign-in message was not meant for this site. Start again from this site's sign-in page."
    ),
    "wrong_audience": _(
        "The sign-in message was issued for another service. Start again from this site's sign-in page."
    ),
    "response_in_query": _(
        "The sign-in message reached this site by a link instead of a form, which this site does not accept. Start again from this site's sign-in page."
    ),
    "no_assertion": _("The sign-in message holds no usable sign-in. Go back to the site and sign in again."),
    "dtd_forbidden": _("The sign-in message has a form this site never accepts. Contact your administrator."),
    "issuer_mismatch": _("The sign-in message names inconsistent identity providers. Contact your administrator."),
    "wrong_destination": _(
        "The sign-in message was addressed to another site. Start again from this site's sign-in page."
    ),
    "subject_confirmation": _(
        "The sign-in message cannot be confirmed for this site. Start again from this site's sign-in page."
    ),
    "weak_algorithm": _(
        "Your identity provider signs with an algorithm this site no longer accepts. Contact your administrator."
    ),
    "encryption_algorithm": _(
        "Your identity provider encrypts with an algorithm this site does not accept. Contact your administrator."
    ),
    "replay": _("This sign-in was already used once. Go back to the site and sign in again."),
    "stale_response": _("Your sign-in is too old. Go back to the site and sign in again."),
    "stale_authn": _(
        "This site asked your identity provider to confirm it is you again, but it answered with an earlier sign-in. Sign in again from this site's sign-in page."
    ),
    "authn_context_insufficient": _(
        "Your identity provider did not sign you in the way this site requires (listed below). Sign in again and complete every step it asks for, such as a second factor; if it keeps happening, ask your administrator to enable it for your account."
    ),
    # -- logout messages ----------------------------------------------------
    "malformed_logout": _("The sign-out message could not be read. Close your browser to end your session."),
    "logout_unsigned": _(
        "The sign-out message is not signed, so it was ignored. Close your browser to end your session."
    ),
    "logout_bad_signature": _(
        "The sign-out message's signature is not valid, so it was ignored. Close your browser to end your session."
    ),
    "stale_logout": _("The sign-out message is too old, so it was ignored. Close your browser to end your session."),
    "unknown_issuer": _(
        "The message comes from an identity provider this site does not trust. Contact your administrator."
    ),
    "unsolicited_logout": _(
        "This sign-out answer does not match a sign-out started from this browser, so it was ignored. Close your browser to end your session."
    ),
    # -- the sign-in link -----------------------------------------------------
    "unknown_idp": _(
        "The sign-in link names an identity provider this site does not know. Start again from this site's sign-in page."
    ),
    # -- faults on this site's side (503: nothing the person did) -------------
    "service_unavailable": _(
        "This site could not complete your request because of a problem on its side. Try again in a moment."
    ),
    "session_unavailable": _(
        "Your sign-in was accepted, but this site could not finish it because of a problem on its side. Try again in a moment: you may already be signed in."
    ),
    "replay_store_unavailable": _(
        "This site cannot check sign-ins right now because of a problem on its side. Try again in a moment."
    ),
    # -- the account --------------------------------------------------------
    "inactive": _("Your account is not active. Contact your administrator to have it activated."),
    "account_suspended": _("Your account is suspended. Contact your administrator to have it reactivated."),
    "account_deprovisioned": _(
        "Your account was closed by your organisation. If you think this is a mistake, contact your administrator."
    ),
    "password_login_refused": _(
        "This account signs in through single sign-on only. Use your organisation's sign-in page."
    ),
    "pending_approval": _(
        "Your account exists but awaits an administrator's approval. You can sign in once it is approved."
    ),
    "creation_disabled": _(
        "There is no account for you on this site yet, and accounts are not created at first sign-in. Ask your administrator for access."
    ),
    "email_in_use": _(
        "An account with your email address already exists on this site. Ask your administrator to connect it to your sign-in."
    ),
    "email_ambiguous": _("Several accounts on this site share your email address. Contact your administrator."),
    "email_bound_to_other_subject": _(
        "The account with your email address belongs to another person at your identity provider. Contact your administrator."
    ),
    "link_refused_privileged": _(
        "Your email address belongs to an administrator account, which cannot be connected automatically. Contact your administrator."
    ),
    "email_domain_not_allowed": _(
        "People with your email domain cannot sign in to this site. Use your organisation account, or ask your administrator."
    ),
    "missing_required_group": _("You are not in a group that may use this site. Ask your administrator for access."),
    "groups_overage": _(
        "Your identity provider did not send your groups, so your access cannot be checked. Contact your administrator."
    ),
    "username_unavailable": _("No username could be chosen for your new account. Contact your administrator."),
    "conflict": _(
        "Your account could not be saved because it conflicts with another account. Try again in a moment; if it keeps happening, contact your administrator."
    ),
    "not_authenticated": _("This site could not sign you in. Contact your administrator."),
    # -- what the identity provider sent -------------------------------------
    "missing_subject": _("Your identity provider did not say who you are. Contact your administrator."),
    "transient_name_id": _(
        "Your identity provider sent a one-time identifier, which cannot identify an account. Contact your administrator."
    ),
    "email_name_id": _(
        "Your identity provider identifies you by email address, which this site does not accept as an identifier. Contact your administrator."
    ),
    "missing_attribute": _(
        "Your identity provider did not send all the information this site needs. Contact your administrator."
    ),
    "multiple_values": _("Your identity provider sent conflicting information about you. Contact your administrator."),
    "duplicate_attribute": _(
        "Your identity provider sent conflicting information about you. Contact your administrator."
    ),
    "control_characters": _(
        "Your identity provider sent information with characters this site does not accept. Contact your administrator."
    ),
    "invisible_characters": _(
        "Your identity provider sent information with characters this site does not accept. Contact your administrator."
    ),
    "whitespace": _(
        "Your identity provider sent information with characters this site does not accept. Contact your administrator."
    ),
    "too_long": _("Your identity provider sent information longer than this site accepts. Contact your administrator."),
    "non_ascii_username": _("Your username has characters this site does not accept. Contact your administrator."),
    "invalid_username": _("Your username has characters this site does not accept. Contact your administrator."),
    "non_ascii_email": _("Your email address has characters this site does not accept. Contact your administrator."),
    "invalid_email": _("Your identity provider sent an email address that is not valid. Contact your administrator."),
}

__all__ = ["ERROR_MESSAGES", "GENERIC"]
