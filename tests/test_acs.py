"""End to end: real signed responses through the real ACS view."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from saml_jit.models import EventKind, FederatedIdentity, ProvisioningEvent
from tests.conftest import person
from tests.federation import IDP_A

pytestmark = pytest.mark.django_db


def test_first_login_creates_user_identity_and_event(browser):
    response = browser.login()
    assert response.status_code == 302, response.content[:2000]
    user = get_user_model().objects.get()
    assert user.email == "alice@example.org"
    identity = FederatedIdentity.objects.get()
    assert (identity.user, identity.idp_entity_id, identity.subject) == (user, IDP_A.entity_id, "subject-alice-0001")
    event = ProvisioningEvent.objects.get()
    assert event.kind == EventKind.CREATED
    assert event.diff["email"] == [None, "alice@example.org"]
