"""Prepared reads (:mod:`saml_jit.models.prepared`): compiled once, the same SQL, the same instances as the ORM.

Each read is checked against ``list(queryset)`` on the database the suite runs
on (SQLite, PostgreSQL in CI): the SQL sent (captured), the instances (every
field, after the backend's conversions) and the related instances
``select_related`` attaches. A query the prepared read cannot keep as it is
(a value transformed on its way in, an empty queryset) goes through the ORM.
"""

from __future__ import annotations

import threading
import uuid
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, connections, transaction
from django.db.models import Manager
from django.db.models.sql.compiler import SQLCompiler
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from saml_jit import lifecycle as rules
from saml_jit.mapping import AssertionData
from saml_jit.models import AccountLifecycle, FederatedIdentity
from saml_jit.models.prepared import PreparedRead
from saml_jit.provisioning import lifecycle, provision, state
from tests.federation import IDP_A, IDP_B

User = get_user_model()
PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"


def sign_in(subject: str, email: str = "", idp=IDP_A):
    outcome = provision(
        AssertionData(
            idp_entity_id=idp.entity_id,
            name_id=subject,
            name_id_format=PERSISTENT,
            assertion_id=f"_{uuid.uuid4().hex}",
            attributes={"mail": (email or f"{uuid.uuid4().hex[:12]}@example.org",), "givenName": ("Alice",)},
        )
    )
    assert outcome.user is not None, outcome
    return outcome.user


def bind(subject: str):
    """An account with its lifecycle row and an identity of IdP A named ``subject`` (any text, as stored)."""
    name = uuid.uuid4().hex[:12]
    user = User._default_manager.create(
        **{User.USERNAME_FIELD: f"{name}@example.org", User.get_email_field_name(): f"{name}@example.org"}
    )
    lifecycle.start(user, active=True, source=rules.SAML, created_by="jit")
    FederatedIdentity.objects.create(
        user=user, idp_entity_id=IDP_A.entity_id, subject=subject, last_asserted_at=timezone.now()
    )
    return user


def identities(idp: str, subject: str):
    return FederatedIdentity.objects.select_related("user", "user__saml_lifecycle").filter(
        idp_entity_id=idp, subject=subject
    )[:1]


def fields(instance) -> dict:
    return {field.attname: getattr(instance, field.attname) for field in type(instance)._meta.concrete_fields}


def same_instances(prepared: list, orm: list) -> None:
    assert [type(i) for i in prepared] == [type(i) for i in orm]
    for mine, theirs in zip(prepared, orm, strict=True):
        assert fields(mine) == fields(theirs)
        assert mine._state.db == theirs._state.db and mine._state.adding is theirs._state.adding is False
        assert fields(mine.user) == fields(theirs.user)
        assert fields(mine.user.saml_lifecycle) == fields(theirs.user.saml_lifecycle)


def sql_of(run) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        run()
    return [query["sql"] for query in queries.captured_queries]


@pytest.mark.django_db
def test_a_prepared_read_sends_the_orms_sql_and_builds_the_same_instances():
    user = sign_in("subject-one")
    sign_in("subject-two")
    read = PreparedRead(identities, "idp", "subject")
    values = {"idp": IDP_A.entity_id, "subject": "subject-one"}

    orm_sql = sql_of(lambda: list(identities(**values)))
    prepared_sql = sql_of(lambda: read.fetch("default", **values))  # compiles
    again_sql = sql_of(lambda: read.fetch("default", **values))  # compiled already

    assert orm_sql == prepared_sql == again_sql and len(orm_sql) == 1
    found = read.fetch("default", **values)
    same_instances(found, list(identities(**values)))
    assert found[0].user == user
    assert found[0].user.saml_lifecycle.state == AccountLifecycle.objects.get(user=user).state
    # Converted as the backend converts them: aware datetimes, real booleans.
    assert found[0].last_asserted_at.tzinfo is not None
    assert found[0].user.is_active is True
    assert read.fetch("default", idp=IDP_B.entity_id, subject="subject-one") == []


@pytest.mark.django_db
def test_it_is_compiled_once():
    sign_in("subject-one")
    read = PreparedRead(identities, "idp", "subject")
    with mock.patch.object(SQLCompiler, "as_sql", autospec=True, side_effect=SQLCompiler.as_sql) as as_sql:
        for subject in ("subject-one", "subject-two", "nobody"):
            read.fetch("default", idp=IDP_A.entity_id, subject=subject)
    assert as_sql.call_count == 1


@pytest.mark.django_db
def test_a_value_transformed_on_its_way_in_is_not_prepared_and_still_right():
    sign_in("subject-one")
    transformed = PreparedRead(lambda subject: identities(IDP_A.entity_id, subject.lower()), "subject")
    with mock.patch.object(SQLCompiler, "as_sql", autospec=True, side_effect=SQLCompiler.as_sql) as as_sql:
        found = transformed.fetch("default", subject="SUBJECT-ONE")
        transformed.fetch("default", subject="Subject-One")
    assert as_sql.call_count == 3  # the placeholder and two runs through the ORM
    same_instances(found, list(identities(IDP_A.entity_id, "subject-one")))


@pytest.mark.django_db
def test_a_value_used_twice_or_not_at_all_is_not_prepared():
    sign_in("subject-one")
    twice = PreparedRead(lambda s: FederatedIdentity.objects.filter(subject=s, subject__in=[s]), "s")
    unused = PreparedRead(lambda idp, subject: identities(IDP_A.entity_id, "subject-one"), "idp", "subject")
    assert len(twice.fetch("default", s="subject-one")) == 1
    assert len(unused.fetch("default", idp="x", subject="y")) == 1
    assert twice._compiled[connections["default"]] is None and unused._compiled[connections["default"]] is None


@pytest.mark.django_db
def test_an_empty_queryset_is_not_kept():
    sign_in("subject-one")
    hidden = True
    read = PreparedRead(
        lambda idp, subject: FederatedIdentity.objects.none() if hidden else identities(idp, subject), "idp", "subject"
    )
    assert read.fetch("default", idp=IDP_A.entity_id, subject="subject-one") == []
    assert connections["default"] not in read._compiled
    hidden = False
    assert len(read.fetch("default", idp=IDP_A.entity_id, subject="subject-one")) == 1
    assert read._compiled[connections["default"]] is not None


@pytest.mark.django_db
def test_a_locking_read_needs_a_transaction_exactly_where_the_orm_does():
    sign_in("subject-one")
    locked = PreparedRead(
        lambda idp, subject: identities(idp, subject).select_for_update(of=("self", "user")), "idp", "subject"
    )
    values = {"idp": IDP_A.entity_id, "subject": "subject-one"}
    with transaction.atomic():
        assert len(locked.fetch("default", **values)) == 1
        assert sql_of(lambda: locked.fetch("default", **values)) == sql_of(
            lambda: list(identities(**values).select_for_update(of=("self", "user")))
        )
    orm_refuses = prepared_refuses = False
    with mock.patch.object(connection, "get_autocommit", return_value=True):
        try:
            list(identities(**values).select_for_update(of=("self", "user")))
        except TransactionManagementError:
            orm_refuses = True
        try:
            locked.fetch("default", **values)
        except TransactionManagementError:
            prepared_refuses = True
    assert prepared_refuses is orm_refuses is connection.features.has_select_for_update


@pytest.mark.django_db(transaction=True)
def test_each_thread_compiles_for_its_own_connection():
    sign_in("subject-one")
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        pytest.skip("an in-memory SQLite database is not shared with another thread's connection")
    read = PreparedRead(identities, "idp", "subject")
    values = {"idp": IDP_A.entity_id, "subject": "subject-one"}
    mine = read.fetch("default", **values)
    theirs: list = []
    thread = threading.Thread(target=lambda: theirs.extend(read.fetch("default", **values)))
    thread.start()
    thread.join()
    assert len(read._compiled) == 2  # this thread's connection and the other's
    assert [fields(i) for i in theirs] == [fields(i) for i in mine]


TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=40)


@pytest.mark.django_db
@hypothesis_settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stored=st.lists(TEXT, min_size=1, max_size=4, unique=True), asked=TEXT)
def test_property_prepared_reads_find_what_the_orm_finds(stored, asked):
    with transaction.atomic():
        for subject in stored:
            bind(subject)
        read = PreparedRead(identities, "idp", "subject")
        for subject in [*stored, asked, asked.upper(), f"{asked}%", "' OR 1=1 --"]:
            found = read.fetch("default", idp=IDP_A.entity_id, subject=subject)
            same_instances(found, list(identities(IDP_A.entity_id, subject)))
            assert len(found) == (subject in stored)
        transaction.set_rollback(True)


# -- The login's reads of the user table -------------------------------------------------------------------------


def username_field_is_email() -> bool:
    return User.get_email_field_name() == User.USERNAME_FIELD


@pytest.mark.django_db
@hypothesis_settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(existing=st.lists(st.from_regex(r"[a-z]{1,8}[0-9]?", fullmatch=True), max_size=5, unique=True), data=st.data())
def test_property_taken_usernames_are_the_orms(existing, data):
    field = User.USERNAME_FIELD
    with transaction.atomic():
        for name in existing:
            value = f"{name}@example.org" if username_field_is_email() else name
            User._default_manager.create(**{field: value, User.get_email_field_name(): f"{name}@example.org"})
        pool = [f"{n}@example.org" if username_field_is_email() else n for n in [*existing, "zz", "yy9"]]
        candidates = tuple(data.draw(st.lists(st.sampled_from(pool), min_size=1, max_size=6)))
        orm = set(User._default_manager.filter(**{f"{field}__in": candidates}).values_list(field, flat=True))
        assert state._taken(User, field, candidates) == orm
        assert state._user_reads(User).taken(field, len(candidates)) is not None  # it was prepared
        transaction.set_rollback(True)


@pytest.mark.django_db
def test_the_email_read_matches_case_insensitively_as_before():
    alice = sign_in("subject-alice", email="Alice.Liddell@Example.org")
    read = state._user_reads(User).email
    assert read is not None
    assert read.fetch("default", email="ALICE.LIDDELL@EXAMPLE.ORG") == [alice]
    assert read.fetch("default", email="ALICE.LIDDELL@EXAMPLE.ORG.EVIL") == []


def test_a_user_manager_that_filters_its_queryset_is_never_prepared():
    class TenantManager(Manager):
        def get_queryset(self):
            return super().get_queryset().filter(is_active=True)

    class Model:
        _default_manager = TenantManager()

    reads = state._UserReads(Model)
    assert reads.email is None and reads.taken("username", 3) is None
    assert state._UserReads(User).taken("username", state._UserReads.MAX_CANDIDATES + 1) is None


# -- Through the real ACS ------------------------------------------------------------------------------------------


def compiled_and_sent(run) -> tuple[list[str], str]:
    """(the tables of every SELECT Django compiled, all SQL sent) while ``run`` ran."""
    tables: list[str] = []
    real = SQLCompiler.as_sql

    def as_sql(compiler, *args, **kwargs):
        if not type(compiler).__name__.startswith("Prepared"):  # not a prepared read's first compilation
            tables.append(compiler.query.get_meta().db_table)
        return real(compiler, *args, **kwargs)

    with mock.patch.object(SQLCompiler, "as_sql", as_sql), CaptureQueriesContext(connection) as queries:
        run()
    return tables, "\n".join(query["sql"] for query in queries.captured_queries)


@pytest.mark.django_db(transaction=True)
def test_logins_through_the_acs_do_not_compile_their_reads(client):
    """Neither a first nor a returning login has Django compile the identity or user reads: they are prepared."""
    from tests.conftest import Browser

    def login(name_id: str) -> None:
        browser = Browser(client.__class__())
        response = browser.client.post("/saml2/acs/", browser.answered_login(name_id))
        assert response.status_code == 302, response.content[:300]

    identities, users = FederatedIdentity._meta.db_table, User._meta.db_table
    for name_id in ("prepared-first", "prepared-first"):  # a first login, then a returning one
        compiled, sent = compiled_and_sent(lambda name_id=name_id: login(name_id))
        assert f"FROM {connection.ops.quote_name(identities)}" in sent  # the identity was read…
        assert identities not in compiled and users not in compiled, compiled  # …without compiling a query
