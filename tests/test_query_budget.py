"""The login query budget, measured against stock djangosaml2 in the same test.

Issue 6's budget: a returning login at most 4 queries more than stock
djangosaml2, a first login at most 8 more. saml_jit's extras on a returning
login are the login transaction's own BEGIN/COMMIT (the account changes and
the event commit together), the identity's last-asserted update and the
event row, which is also the replay record; the identity lookup replaces
stock's user lookup.
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
    assert ours <= stock + 8, (ours, stock)


def test_returning_login_budget(stock_settings):
    queries_for_login(stock_settings, STOCK, "stock-again")
    queries_for_login(stock_settings, SAML_JIT, "ours-again")
    stock = queries_for_login(stock_settings, STOCK, "stock-again")
    ours = queries_for_login(stock_settings, SAML_JIT, "ours-again")
    assert ours <= stock + 4, (ours, stock)
