"""The login query budget, measured against stock djangosaml2 in the same test.

Issue 6's budget was a returning login at most 4 queries more than stock
djangosaml2, a first login at most 8 more; issue 17's is at most 17 and 20
queries. Since a fresh browser's session is written once
(:func:`saml_jit.sessions.sign_in`) a returning login costs 14 and a first
login 19 (stock: 13 and 14, its login writing the session twice). saml_jit's
own extras are the login transaction's BEGIN/COMMIT (the account changes
and the event commit together), the identity's last-asserted update and
the event row, which is also the replay record. These tests hold those
figures.
"""

from __future__ import annotations

import shutil

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.conftest import Browser

pytestmark = [
    pytest.mark.django_db(transaction=True),  # no test transaction: real BEGIN/COMMIT, no savepoints
    pytest.mark.skipif(not shutil.which("xmlsec1"), reason="stock djangosaml2 needs the xmlsec1 program"),
]

SAML_JIT = ("/saml2/acs/", ["django.contrib.auth.backends.ModelBackend", "saml_jit.backends.SamlJitBackend"])
STOCK = ("/stock-saml2/acs/", ["django.contrib.auth.backends.ModelBackend", "djangosaml2.backends.Saml2Backend"])


def queries_for_login(settings, product, name_id: str) -> int:
    acs_path, backends = product
    settings.AUTHENTICATION_BACKENDS = backends
    browser = Browser(Client())
    data = browser.answered_login(name_id)
    with CaptureQueriesContext(connection) as queries:
        response = browser.client.post(acs_path, data)
    assert response.status_code == 302, response.content[:300]
    return len(queries.captured_queries)


@pytest.fixture
def stock_settings(settings):
    settings.SAML_ATTRIBUTE_MAPPING = {"mail": ("email",), "uid": ("username",)}
    settings.SAML_USE_NAME_ID_AS_USERNAME = True
    return settings


def test_first_login_budget(stock_settings):
    stock = queries_for_login(stock_settings, STOCK, "stock-first")
    ours = queries_for_login(stock_settings, SAML_JIT, "ours-first")
    assert ours <= stock + 5, (ours, stock)
    assert ours <= 19, ours  # 18 on SQLite (no row locks: one identity query)


def test_returning_login_budget(stock_settings):
    queries_for_login(stock_settings, STOCK, "stock-again")
    queries_for_login(stock_settings, SAML_JIT, "ours-again")
    stock = queries_for_login(stock_settings, STOCK, "stock-again")
    ours = queries_for_login(stock_settings, SAML_JIT, "ours-again")
    assert ours <= stock + 1, (ours, stock)
    assert ours <= 14, ours
