"""No attribute values or other PII in the logs.

Every log record emitted while real logins go through the real ACS — a
successful login (with groups), an update, denials and rejections — is
captured with the root logger and the saml_jit, djangosaml2, pysaml2 and
Django loggers at DEBUG, formatted (message, exception text and stack), and
searched for the attribute values the IdP sent and the NameID.

Scope: pysaml2 itself logs whole documents at DEBUG (``saml2.entity`` logs
``XMLSTR: <the response>``, ``saml2.response`` the parsed assertion and the
AVA) and the NameID at INFO (``saml2.response``: ``Subject NameID: …``), so
its DEBUG/INFO output is never PII-free whatever saml_jit does (the README
tells sites to keep the ``saml2`` and ``djangosaml2`` loggers at WARNING);
:func:`test_pysaml2_logs_values_below_warning` pins that down. The assertion
is therefore: nothing from the ``saml_jit`` loggers at any level (DEBUG
included), and nothing from any logger at WARNING and above.
"""

from __future__ import annotations

import logging
import traceback

import pytest

from saml_jit.conf import DEFAULT_ATTRIBUTE_MAP
from saml_jit.testing.idp import ATTRIBUTE_URIS
from tests.conftest import person
from tests.federation import ROGUE_CERT, ROGUE_KEY
from tests.test_security import craft, post

pytestmark = pytest.mark.django_db

NAME_ID = "nameid-8f3a9c7e-5b1d-4e2a-9c6f-pii-canary"
EMAIL = "quintessa.canary@example.org"
GIVEN = "Quintessa"
SURNAME = "Xylocanary"
UID = "qxylocanary"
GROUPS = ["grp-canary-staff-7731", "grp-canary-users-9042"]
CANARIES = [NAME_ID, EMAIL, "quintessa.canary", GIVEN, SURNAME, UID, *GROUPS]
LOGGERS = ["", "saml_jit", "djangosaml2", "saml2", "django", "django.request", "xmlsec"]

SETTINGS = {
    "GROUP_MAP": {GROUPS[0]: "Canary staff", GROUPS[1]: "Canary users"},
    "CREATE_GROUPS": True,
    "STAFF_GROUPS": [GROUPS[0]],
    "ATTRIBUTE_MAP": {**DEFAULT_ATTRIBUTE_MAP, "username": (ATTRIBUTE_URIS["uid"], "uid")},
    "USERNAME_SOURCE": "attribute",
}


def canary_attributes(**overrides) -> dict[str, list[str]]:
    values = {"email": EMAIL, "given_name": GIVEN, "surname": SURNAME, **overrides}
    return person(**values, uid=[UID], isMemberOf=GROUPS)


def formatted(record: logging.LogRecord) -> str:
    text = logging.Formatter("%(name)s %(levelname)s %(message)s").format(record)
    if record.exc_info and not record.exc_text:
        text += "".join(traceback.format_exception(*record.exc_info))
    # Whatever a handler might render: the raw args too.
    return f"{text} {record.args!r} {record.exc_text or ''} {record.stack_info or ''}"


def leaks(records: list[logging.LogRecord]) -> list[tuple[str, str, str]]:
    found = []
    for record in records:
        text = formatted(record)
        for canary in CANARIES:
            if canary.casefold() in text.casefold():
                found.append((record.name, record.levelname, canary))
    return found


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def everything(caplog):
    """Every record from every logger, at DEBUG (independent of pytest's log_level options)."""
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name or None)
    collector = _Collect()
    root = logging.getLogger()
    root.addHandler(collector)
    try:
        yield collector
    finally:
        root.removeHandler(collector)


def scoped(records: list[logging.LogRecord]) -> list[logging.LogRecord]:
    return [r for r in records if r.name.split(".")[0] == "saml_jit" or r.levelno >= logging.WARNING]


def _login_then_update(browser):
    assert browser.login(name_id=NAME_ID, attributes=canary_attributes()).status_code == 302
    browser.client.logout()
    response = browser.login(name_id=NAME_ID, attributes=canary_attributes(given_name=GIVEN + "ia"))
    assert response.status_code == 302


def _denial_bad_value(browser):
    response = browser.login(name_id=NAME_ID, attributes=canary_attributes(surname=SURNAME + "\x7f"))
    assert response.status_code == 403


def _denial_domain(browser, settings):
    settings.SAML_JIT = {**SETTINGS, "ALLOWED_EMAIL_DOMAINS": ["example.com"]}
    assert browser.login(name_id=NAME_ID, attributes=canary_attributes()).status_code == 403


def _denial_whitespace_subject(browser):
    assert browser.login(name_id=f" {NAME_ID}", attributes=canary_attributes()).status_code == 403


def _rejection_rogue_signature(browser):
    response = browser.login(
        name_id=NAME_ID, attributes=canary_attributes(), signing_key_file=ROGUE_KEY, signing_cert_file=ROGUE_CERT
    )
    assert response.status_code == 400


def _rejection_tampered(browser):
    response = browser.login(
        name_id=NAME_ID, attributes=canary_attributes(), tamper=lambda xml: xml.replace(SURNAME, SURNAME + "x")
    )
    assert response.status_code == 400


def _rejection_expired(browser):
    assert browser.login(name_id=NAME_ID, attributes=canary_attributes(), now=-3600).status_code == 400


def _rejection_audience(browser):
    response = browser.login(name_id=NAME_ID, attributes=canary_attributes(), audience="https://other.example/")
    assert response.status_code == 400


def _rejection_unsolicited(browser):
    response = browser.post_response(name_id=NAME_ID, attributes=canary_attributes())
    assert response.status_code == 400


def _rejection_replay(browser):
    assert browser.login(name_id=NAME_ID, attributes=canary_attributes(), assertion_id="_canary-1").status_code == 302
    browser.client.logout()
    response = browser.login(name_id=NAME_ID, attributes=canary_attributes(), assertion_id="_canary-1")
    assert response.status_code == 400


def _rejection_weak_algorithm(browser):
    from saml2.xmldsig import DIGEST_SHA1, SIG_RSA_SHA1

    response = post(
        browser,
        craft(browser, name_id=NAME_ID, attributes=canary_attributes(), sign_alg=SIG_RSA_SHA1, digest_alg=DIGEST_SHA1),
    )
    assert response.status_code == 400


SCENARIOS = {
    "login-and-update": _login_then_update,
    "denied-control-character": _denial_bad_value,
    "denied-email-domain": _denial_domain,
    "denied-whitespace-subject": _denial_whitespace_subject,
    "rejected-rogue-signature": _rejection_rogue_signature,
    "rejected-tampered": _rejection_tampered,
    "rejected-expired": _rejection_expired,
    "rejected-wrong-audience": _rejection_audience,
    "rejected-unsolicited": _rejection_unsolicited,
    "rejected-replay": _rejection_replay,
    "rejected-weak-algorithm": _rejection_weak_algorithm,
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_no_attribute_values_in_logs(browser, settings, everything, scenario):
    settings.SAML_JIT = SETTINGS
    run = SCENARIOS[scenario]
    if run.__code__.co_argcount == 2:
        run(browser, settings)
    else:
        run(browser)
    records = everything.records
    assert any(r.name.startswith("saml_jit") for r in records), "saml_jit logged nothing: capture is broken"
    assert leaks(scoped(records)) == []


def test_pysaml2_logs_values_below_warning(browser, settings, everything):
    """Why the assertion above is scoped: pysaml2's DEBUG and INFO output carries values."""
    settings.SAML_JIT = SETTINGS
    _login_then_update(browser)
    found = set(leaks(everything.records))
    assert found, "pysaml2 no longer logs values: widen test_no_attribute_values_in_logs to every logger"
    assert {name.split(".")[0] for name, _, _ in found} <= {"saml2", "djangosaml2"}, found
    assert {level for _, level, _ in found} == {"DEBUG", "INFO"}, found
    # Whole documents at DEBUG (every attribute value)…
    assert {canary for _, level, canary in found if level == "DEBUG"} >= {NAME_ID, EMAIL, GIVEN, SURNAME, *GROUPS}
    # …and the NameID at INFO ("Subject NameID: …").
    assert {(name, canary) for name, level, canary in found if level == "INFO"} == {("saml2.response", NAME_ID)}
