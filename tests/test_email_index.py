"""The user-table index behind first logins' email look-up (migration 0006)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection

from saml_jit.models import USER_EMAIL_INDEX, user_email_index, users_with_email

User = get_user_model()
EMAIL_FIELD = User.get_email_field_name()


def make_user(email: str):
    fields = {EMAIL_FIELD: email}
    if User.USERNAME_FIELD != EMAIL_FIELD:
        fields[User.USERNAME_FIELD] = email.split("@")[0]
    return User._default_manager.create(**fields)


def index_names() -> set[str]:
    with connection.cursor() as cursor:
        return set(connection.introspection.get_constraints(cursor, User._meta.db_table))


def query_plan(email: str) -> str:
    sql, params = users_with_email(User, email).query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")  # a few rows: show the index is usable at all
            cursor.execute(f"EXPLAIN {sql}", params)
        else:
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        return "\n".join(str(row) for row in cursor.fetchall())


@pytest.mark.django_db
def test_lookup_ignores_ascii_case_only():
    alice = make_user("Alice.Liddell@Example.org")
    make_user("bob@example.org")
    assert list(users_with_email(User, "alice.liddell@example.ORG")) == [alice]
    assert list(users_with_email(User, "ALICE.LIDDELL@EXAMPLE.ORG")) == [alice]
    assert not users_with_email(User, "alice.liddell@example.org.evil").exists()
    assert not users_with_email(User, "alice_liddell@example.org").exists()  # "_" is no wildcard
    assert not users_with_email(User, "alice%@example.org").exists()


@pytest.mark.django_db
def test_same_matches_as_iexact_for_ascii_addresses():
    for email in ("carol@example.org", "CAROL2@example.org", "dave@EXAMPLE.org"):
        make_user(email)
    for probe in ("carol@example.org", "Carol2@Example.Org", "DAVE@example.ORG", "nobody@example.org"):
        expected = set(User._default_manager.filter(**{f"{EMAIL_FIELD}__iexact": probe}))
        assert set(users_with_email(User, probe)) == expected


@pytest.mark.django_db
def test_the_index_exists_and_serves_the_lookup():
    assert USER_EMAIL_INDEX in index_names()
    assert USER_EMAIL_INDEX in query_plan("alice@example.org")


@pytest.mark.django_db(transaction=True)
def test_migration_adds_and_removes_the_index():
    try:
        call_command("migrate", "saml_jit", "0005", verbosity=0)
        assert USER_EMAIL_INDEX not in index_names()
    finally:
        call_command("migrate", "saml_jit", verbosity=0)
    assert USER_EMAIL_INDEX in index_names()


def test_no_index_for_a_user_model_without_email():
    class NoEmail:
        _meta = User._meta

        @classmethod
        def get_email_field_name(cls) -> str:
            return "no_such_field"

    assert user_email_index(NoEmail) is None
    assert user_email_index(User) is not None
