"""What a refused person reads: a message per reason code, translatable, shipped in the catalogue."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.utils import translation

from saml_jit.messages import ERROR_MESSAGES, GENERIC
from saml_jit.policy import Policy

CATALOGUE = Path(__file__).resolve().parent.parent / "saml_jit" / "locale" / "en" / "LC_MESSAGES" / "django.po"

#: Every reason code the README lists (denials and rejections).
README_CODES = {
    "creation_disabled", "inactive", "email_in_use", "email_domain_not_allowed", "missing_attribute",
    "missing_subject", "transient_name_id", "multiple_values", "duplicate_attribute", "control_characters",
    "invisible_characters", "whitespace", "too_long", "non_ascii_username", "invalid_username", "invalid_email",
    "non_ascii_email", "missing_required_group", "groups_overage", "link_refused_privileged",
    "email_bound_to_other_subject", "conflict", "missing_response", "response_too_large", "malformed_response",
    "bad_signature", "decryption_failed", "expired", "not_yet_valid", "unsolicited", "idp_status",
    "conditions_not_met", "wrong_audience", "no_assertion", "invalid_response", "dtd_forbidden", "issuer_mismatch",
    "wrong_destination", "subject_confirmation", "weak_algorithm", "replay", "stale_response", "malformed_logout",
    "logout_unsigned", "logout_bad_signature", "unknown_issuer", "email_name_id",
    "response_too_complex", "encryption_algorithm", "replay_store_unavailable", "stale_logout",
    "unsolicited_logout", "service_unavailable", "session_unavailable", "unknown_idp",
    "pending_approval", "account_suspended", "account_deprovisioned", "password_login_refused", "response_in_query",
}  # fmt: skip


def catalogue_msgids() -> set[str]:
    text = CATALOGUE.read_text(encoding="utf-8")
    ids = set()
    for block in re.findall(r'^msgid ((?:".*"\n)+)', text, flags=re.M):
        ids.add("".join(re.findall(r'"(.*)"', block)).replace('\\"', '"'))
    return ids


def test_every_listed_reason_code_has_its_own_message():
    assert README_CODES - set(ERROR_MESSAGES) == set()


@pytest.mark.parametrize("code", sorted(ERROR_MESSAGES))
def test_messages_say_what_to_do_next_and_never_leak_the_detail(code):
    text = str(ERROR_MESSAGES[code])
    assert text.endswith(".")
    assert "SAML_JIT" not in text and "NameID" not in text  # people, not administrators


def test_catalogue_holds_every_message():
    missing = {str(message) for message in [*ERROR_MESSAGES.values(), GENERIC]} - catalogue_msgids()
    assert missing == set(), "run makemessages (README, What people read)"


def test_unknown_code_gets_the_generic_message():
    assert Policy().error_message("no-such-code") == str(GENERIC)


def test_messages_are_lazy_translations():
    with translation.override("en"):
        assert Policy().error_message("replay") == str(ERROR_MESSAGES["replay"])
    assert type(ERROR_MESSAGES["replay"]).__name__ == "__proxy__"


def test_sites_reword_messages_on_their_policy():
    class SitePolicy(Policy):
        error_messages = {**Policy.error_messages, "replay": "Start again at https://intranet.example.org."}

    assert SitePolicy().error_message("replay") == "Start again at https://intranet.example.org."
    assert SitePolicy().error_message("expired") == str(ERROR_MESSAGES["expired"])
