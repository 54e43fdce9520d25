"""Property test of the lifecycle (hypothesis): any sequence of SAML logins, SCIM changes, sweeps and
administrator actions keeps its promises.

* an account SCIM or an administrator took away (suspended, deprovisioned,
  rejected) is never active again without SCIM or an administrator giving it back;
* an account that is not active never keeps a live session or a privileged grant
  (staff, superuser, a privileged group).

Logins go through :func:`saml_jit.provisioning.provision` (the ACS's own
entry point, the real planner and writer) and open a real database session
the way ``auth.login`` does; every other change goes through the one
transition function. Each example runs in a transaction that is rolled back.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from importlib import import_module

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.db import transaction
from django.db.models import Q
from django.test import override_settings
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from saml_jit import lifecycle as rules
from saml_jit.mapping import AssertionData
from saml_jit.models import Grant, GrantKind
from saml_jit.provisioning import lifecycle, provision
from tests.federation import IDP_A

User = get_user_model()
PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
GROUPS = "urn:oid:1.3.6.1.4.1.5923.1.5.1.1"
SETTINGS = {
    "STAFF_GROUPS": ["admins"],
    "GROUP_MAP": {"ops": ["Ops"], "eng": ["Engineering"]},
    "PRIVILEGED_GROUPS": ["Ops"],
    "CREATE_GROUPS": True,
}
#: Triggers by SCIM or an administrator, and whether they give access back.
TAKERS = {rules.SCIM_DEACTIVATE, rules.ADMIN_SUSPEND, rules.ADMIN_DEPROVISION, rules.ADMIN_REJECT}
GIVERS = {rules.SCIM_ACTIVATE, rules.ADMIN_REACTIVATE, rules.ADMIN_APPROVE}
OPERATIONS = ("login", *sorted(TAKERS), *sorted(GIVERS), rules.DORMANT)


@dataclass
class World:
    user: object = None
    #: SCIM or an administrator took access away, and nobody of theirs gave it back.
    taken: bool = False
    sessions: list[str] = field(default_factory=list)


def assertion() -> AssertionData:
    attributes = {"mail": ("alice@example.org",), "givenName": ("Alice",), GROUPS: ("admins", "ops", "eng")}
    return AssertionData(
        idp_entity_id=IDP_A.entity_id,
        name_id="subject-alice-0001",
        name_id_format=PERSISTENT,
        assertion_id=f"_{uuid.uuid4().hex}",
        attributes=attributes,
    )


def open_session(user) -> str:
    store = import_module(django_settings.SESSION_ENGINE).SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "saml_jit.backends.SamlJitBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.create()
    return store.session_key


def do(world: World, operation: str) -> None:
    if operation == "login":
        outcome = provision(assertion())
        if outcome.user is not None and outcome.user.is_active:
            world.user = outcome.user
            world.sessions.append(open_session(outcome.user))
        return
    if world.user is None:
        return
    decision = lifecycle.transition(world.user, operation, lifecycle.Context(idp_entity_id=IDP_A.entity_id))
    if decision.changes and operation in TAKERS:
        world.taken = True
    if decision.changes and operation in GIVERS:
        world.taken = False


def live_sessions(user) -> list[str]:
    store = import_module(django_settings.SESSION_ENGINE).SessionStore
    live = []
    for key in user_sessions(user):
        data = store(session_key=key).load()
        if data.get(HASH_SESSION_KEY) == user.get_session_auth_hash():
            live.append(key)
    return live


def user_sessions(user) -> list[str]:
    from django.contrib.sessions.models import Session

    return [s.session_key for s in Session.objects.all() if s.get_decoded().get(SESSION_KEY) == str(user.pk)]


def check(world: World) -> None:
    if world.user is None:
        return
    user = User.objects.get(pk=world.user.pk)
    if world.taken:
        assert not user.is_active, "SAML or the dormancy sweep gave back what SCIM or an administrator took"
    if not user.is_active:
        assert live_sessions(user) == []
        privileged = Grant.objects.filter(user=user).filter(~Q(kind=GrantKind.GROUP) | Q(group__name="Ops"))
        assert not privileged.exists() and not user.is_staff and not user.is_superuser


@pytest.mark.django_db
@hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(pending=st.booleans(), operations=st.lists(st.sampled_from(OPERATIONS), min_size=1, max_size=10))
def test_lifecycle_promises_hold_for_any_sequence(pending, operations):
    with override_settings(SAML_JIT={**SETTINGS, "NEW_USERS_ACTIVE": not pending}), transaction.atomic():
        world = World()
        for operation in ["login", *operations]:
            if world.user is None and operation == "login":
                outcome = provision(assertion())
                world.user = outcome.user
                if outcome.user is not None and outcome.user.is_active:
                    world.sessions.append(open_session(outcome.user))
            else:
                do(world, operation)
            check(world)
        transaction.set_rollback(True)
