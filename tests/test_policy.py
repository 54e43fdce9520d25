"""Tests for :mod:`saml_jit.policy`: the planner and the policy extension point.

Pure logic: profiles and account states are plain data; no database.
"""

from __future__ import annotations

import pytest
from django.test import override_settings

from saml_jit import policy as policy_module
from saml_jit.conf import IdPSettings, app_settings
from saml_jit.mapping import Denied, Profile
from saml_jit.policy import (
    CREATE,
    LINK,
    UPDATE,
    USERNAME_ATTEMPTS,
    AccountPlan,
    AccountState,
    LoginState,
    Policy,
    email_domain_allowed,
    get_policy,
    plan_login,
    username_base,
    username_candidates,
)

IDP = "https://idp.example.org/idp/shibboleth"
OTHER_IDP = "https://login.partner.example/saml"
USERNAME = "username"


def make_settings(**overrides) -> IdPSettings:
    with override_settings(SAML_JIT={"IDPS": {IDP: overrides}}):
        return app_settings.for_idp(IDP)


def make_profile(fields: dict | None = None, subject: str = "AAdzZWNyZXQx") -> Profile:
    fields = (
        {"email": "alice@example.org", "first_name": "Alice", "last_name": "Liddell", "username": "alice"}
        if fields is None
        else fields
    )
    return Profile(idp_entity_id=IDP, subject=subject, name_id_format="", fields=fields)


def account(**kwargs) -> AccountState:
    values = {
        "pk": 7,
        "fields": {"email": "alice@example.org", "first_name": "Alice", "last_name": "Liddell", "username": "alice"},
    }
    values.update(kwargs)
    return AccountState(**values)


def plan(profile=None, settings=None, **kwargs) -> AccountPlan:
    kwargs.setdefault("bound", None)
    return plan_login(profile or make_profile(), settings or make_settings(), username_field=USERNAME, **kwargs)


def denied(profile=None, settings=None, **kwargs) -> Denied:
    with pytest.raises(Denied) as info:
        plan(profile, settings, **kwargs)
    return info.value


# ------------------------------------------------------------- create


class TestCreate:
    def test_create_with_all_fields(self):
        result = plan()
        assert result == AccountPlan(
            CREATE,
            None,
            {"email": "alice@example.org", "first_name": "Alice", "last_name": "Liddell", "username": "alice"},
            {
                "email": [None, "alice@example.org"],
                "first_name": [None, "Alice"],
                "last_name": [None, "Liddell"],
                "username": [None, "alice"],
            },
            True,
        )

    def test_creation_disabled(self):
        assert denied(open_for_signup=False).code == "creation_disabled"

    def test_new_users_inactive(self):
        result = plan(settings=make_settings(NEW_USERS_ACTIVE=False))
        assert (result.action, result.is_active) == (CREATE, False)

    def test_empty_profile(self):
        assert plan(make_profile({})) == AccountPlan(CREATE, None, {}, {}, True)

    def test_email_match_checked_before_creation(self):
        # An email clash must not fall through to "create a second account".
        assert denied(email_match=account(), open_for_signup=True).code == "email_in_use"


# ------------------------------------------------------------- update


class TestUpdate:
    def test_always_fields_updated_with_diff(self):
        profile = make_profile(
            {"email": "alice@example.org", "first_name": "Alicia", "last_name": "Smith", "username": "alice"}
        )
        result = plan(profile, bound=account())
        assert result == AccountPlan(
            UPDATE,
            7,
            {"first_name": "Alicia", "last_name": "Smith"},
            {"first_name": ["Alice", "Alicia"], "last_name": ["Liddell", "Smith"]},
            True,
        )

    def test_nothing_changed(self):
        result = plan(bound=account())
        assert (result.action, result.user_pk, result.changes, result.diff) == (UPDATE, 7, {}, {})

    def test_on_create_fields_not_updated(self):
        settings = make_settings(SYNC={"first_name": "on_create"})
        profile = make_profile({"email": "new@example.org", "first_name": "Alicia"})
        result = plan(profile, settings, bound=account())
        assert result.changes == {"email": "new@example.org"}
        assert result.diff == {"email": ["alice@example.org", "new@example.org"]}

    def test_username_field_defaults_to_on_create(self):
        profile = make_profile({"username": "alice.liddell", "email": "alice@example.org"})
        assert plan(profile, bound=account()).diff == {}

    def test_username_field_can_be_synced_always(self):
        settings = make_settings(SYNC={"username": "always"})
        profile = make_profile({"username": "alice.liddell"})
        assert plan(profile, settings, bound=account()).diff == {"username": ["alice", "alice.liddell"]}

    def test_field_absent_on_account_diffs_from_none(self):
        profile = make_profile({"department": "Maths"})
        assert plan(profile, bound=account()).diff == {"department": [None, "Maths"]}

    def test_missing_profile_field_does_not_blank_account(self):
        # Absent attributes leave the stored value alone.
        result = plan(make_profile({"email": "alice@example.org"}), bound=account())
        assert result.changes == {}

    def test_inactive_bound_account_denied(self):
        assert denied(bound=account(is_active=False)).code == "inactive"

    def test_inactive_bound_account_denied_even_if_privileged(self):
        assert denied(bound=account(is_active=False, is_superuser=True)).code == "inactive"

    def test_bound_account_wins_over_email_match(self):
        result = plan(bound=account(pk=1), email_match=account(pk=2, is_staff=True))
        assert (result.action, result.user_pk) == (UPDATE, 1)

    def test_bound_privileged_account_updates(self):
        # Privilege only matters for linking by email; a bound identity is already trusted.
        result = plan(make_profile({"first_name": "Al"}), bound=account(is_staff=True))
        assert (result.action, result.diff) == (UPDATE, {"first_name": ["Alice", "Al"]})

    def test_creation_disabled_does_not_block_existing_account(self):
        assert plan(bound=account(), open_for_signup=False).action == UPDATE


# --------------------------------------------------------------- link


class TestLink:
    def test_link_by_email_off(self):
        error = denied(email_match=account())
        assert error.code == "email_in_use"

    def test_link_refused_for_privileged(self):
        settings = make_settings(LINK_BY_EMAIL=True)
        assert denied(settings=settings, email_match=account(is_staff=True)).code == "link_refused_privileged"
        assert denied(settings=settings, email_match=account(is_superuser=True)).code == "link_refused_privileged"

    def test_link_refused_when_bound_to_another_subject_of_this_idp(self):
        settings = make_settings(LINK_BY_EMAIL=True)
        error = denied(settings=settings, email_match=account(idps=frozenset({IDP})))
        assert error.code == "email_bound_to_other_subject"

    def test_link_allowed_when_bound_only_to_another_idp(self):
        settings = make_settings(LINK_BY_EMAIL=True)
        assert plan(settings=settings, email_match=account(idps=frozenset({OTHER_IDP}))).action == LINK

    def test_link_refused_for_inactive(self):
        settings = make_settings(LINK_BY_EMAIL=True)
        assert denied(settings=settings, email_match=account(is_active=False)).code == "inactive"

    def test_link_with_diff(self):
        settings = make_settings(LINK_BY_EMAIL=True)
        profile = make_profile({"email": "alice@example.org", "first_name": "Alicia", "username": "aliddell"})
        result = plan(
            profile,
            settings,
            email_match=account(pk=42, fields={"email": "alice@example.org", "first_name": "Al", "username": "al"}),
        )
        assert result == AccountPlan(LINK, 42, {"first_name": "Alicia"}, {"first_name": ["Al", "Alicia"]}, True)

    def test_link_respects_on_create(self):
        settings = make_settings(LINK_BY_EMAIL=True, SYNC={"first_name": "on_create"})
        result = plan(make_profile({"first_name": "Alicia"}), settings, email_match=account())
        assert (result.action, result.diff) == (LINK, {})

    def test_link_ignores_creation_switch(self):
        settings = make_settings(LINK_BY_EMAIL=True)
        assert plan(settings=settings, email_match=account(), open_for_signup=False).action == LINK


# ----------------------------------------------------------- usernames


class TestUsernameBase:
    @pytest.mark.parametrize(
        ("email", "expected"),
        [
            ("alice@example.org", "alice"),
            ("Alice.Liddell@Example.org", "alice.liddell"),
            ("alice+saml@example.org", "alice+saml"),
            ("o'brien@example.org", "obrien"),
            ("a!b#c$d%e&f*g=h?i^j{k}l|m~n/o@example.org", "abcdefghijklmno"),
            ('"quoted"@example.org', "quoted"),
            ("first_last-1@example.org", "first_last-1"),
        ],
    )
    def test_email_localpart(self, email, expected):
        profile = make_profile({"email": email})
        assert username_base(profile, make_settings(USERNAME_SOURCE="email_localpart"), USERNAME) == expected

    def test_email_localpart_is_default(self):
        assert (
            username_base(make_profile({"email": "Bob@example.org", "username": "x"}), make_settings(), USERNAME)
            == "bob"
        )

    def test_email_localpart_falls_back_to_subject(self):
        settings = make_settings()
        assert username_base(make_profile({}, subject="s-1"), settings, USERNAME) == "s-1"
        assert username_base(make_profile({"email": "'''@example.org"}, subject="s-2"), settings, USERNAME) == "s-2"

    def test_attribute(self):
        settings = make_settings(USERNAME_SOURCE="attribute")
        profile = make_profile({"username": "Alice.L", "email": "x@example.org"})
        assert username_base(profile, settings, USERNAME) == "Alice.L"

    def test_attribute_missing_falls_back_to_email(self):
        settings = make_settings(USERNAME_SOURCE="attribute")
        assert username_base(make_profile({"email": "bob@example.org"}), settings, USERNAME) == "bob"

    def test_subject(self):
        settings = make_settings(USERNAME_SOURCE="subject")
        profile = make_profile({"email": "x@example.org", "username": "u"}, subject="jdoe42")
        assert username_base(profile, settings, USERNAME) == "jdoe42"


class TestUsernameCandidates:
    def test_numbering(self):
        assert list(username_candidates("alice", 150, attempts=4)) == ["alice", "alice2", "alice3", "alice4"]

    def test_default_attempts(self):
        candidates = list(username_candidates("alice", None))
        assert len(candidates) == USERNAME_ATTEMPTS
        assert candidates[-1] == f"alice{USERNAME_ATTEMPTS}"
        assert len(set(candidates)) == len(candidates)

    def test_respects_max_length(self):
        candidates = list(username_candidates("alice", 6, attempts=20))
        assert candidates == ["alice"] + [f"alice{n}" for n in range(2, 10)]
        assert all(len(c) <= 6 for c in candidates)

    def test_base_at_max_length(self):
        assert list(username_candidates("a" * 150, 150)) == ["a" * 150]

    def test_base_too_long_gives_nothing(self):
        # Provisioning turns an empty list into a "username_unavailable" denial.
        assert list(username_candidates("a" * 151, 150)) == []

    def test_policy_hook_uses_base_and_max_length(self):
        profile = make_profile({"email": "Carol@example.org"})
        assert Policy().username_candidates(profile, make_settings(), USERNAME, 6)[:3] == ["carol", "carol2", "carol3"]


# --------------------------------------------------------- email domains


class TestEmailDomainAllowed:
    @pytest.mark.parametrize(
        ("email", "allowed", "expected"),
        [
            ("a@example.org", ("example.org",), True),
            ("a@EXAMPLE.org", ("example.org",), True),
            ("a@example.org", ("Example.ORG",), True),
            ("a@mail.example.org", ("example.org",), False),
            ("a@example.org.evil.com", ("example.org",), False),
            ("a@evil-example.org", ("example.org",), False),
            ("a@mail.example.org", ("*.example.org",), True),
            ("a@a.b.example.org", ("*.example.org",), True),
            ("a@evil-example.org", ("*.example.org",), False),
            ("a@example.org", ("*.example.org",), False),
            ("a@example.org.evil.com", ("*.example.org",), False),
            ("a@other.net", ("example.org", "other.net"), True),
            ("a@other.net", ("example.org", "*.other.net"), False),
            ("", ("example.org",), False),
            ("a@", ("example.org",), False),
            ("a@example.org@evil.com", ("example.org",), False),
        ],
    )
    def test_matching(self, email, allowed, expected):
        assert email_domain_allowed(email, allowed) is expected

    def test_empty_allow_list_matches_nothing(self):
        # Policy.authorize only consults it when the list is non-empty.
        assert email_domain_allowed("a@example.org", ()) is False


class TestPolicyAuthorize:
    def test_denies_other_domain(self):
        settings = make_settings(ALLOWED_EMAIL_DOMAINS=["example.org"])
        with pytest.raises(Denied) as info:
            Policy().authorize(None, make_profile({"email": "mallory@evil.com"}), settings)
        assert (info.value.code, info.value.field) == ("email_domain_not_allowed", "email")

    def test_denies_missing_email_when_domains_restricted(self):
        settings = make_settings(ALLOWED_EMAIL_DOMAINS="example.org")
        with pytest.raises(Denied) as info:
            Policy().authorize(None, make_profile({}), settings)
        assert info.value.code == "email_domain_not_allowed"

    def test_allows_listed_domain(self):
        settings = make_settings(ALLOWED_EMAIL_DOMAINS=["*.example.org", "example.org"])
        assert Policy().authorize(None, make_profile({"email": "a@staff.example.org"}), settings) is None

    def test_no_restriction_by_default(self):
        assert Policy().authorize(None, make_profile({}), make_settings()) is None


class TestPolicyHooks:
    def test_is_open_for_signup_follows_create_users(self):
        assert Policy().is_open_for_signup(None, make_profile(), make_settings()) is True
        assert Policy().is_open_for_signup(None, make_profile(), make_settings(CREATE_USERS=False)) is False

    def test_plan_uses_create_users(self):
        settings = make_settings(CREATE_USERS=False)
        result = Policy().plan(None, make_profile(), settings, LoginState(bound=None))
        assert result.denial is not None and result.denial.code == "creation_disabled"

    def test_plan_overridable_signup_hook(self):
        class ClosedPolicy(Policy):
            def is_open_for_signup(self, request, profile, settings):
                return False

        result = ClosedPolicy().plan(None, make_profile(), make_settings(), LoginState(bound=None))
        assert result.denial is not None and result.denial.code == "creation_disabled"


# ------------------------------------------------------------ get_policy


class CustomPolicy(Policy):
    pass


@pytest.fixture
def fresh_policy_cache():
    policy_module._load_policy.cache_clear()
    yield
    policy_module._load_policy.cache_clear()


@pytest.mark.usefixtures("fresh_policy_cache")
class TestGetPolicy:
    def test_default(self):
        result = get_policy()
        assert type(result) is Policy

    def test_custom_dotted_path(self):
        with override_settings(SAML_JIT={"POLICY": f"{__name__}.CustomPolicy"}):
            result = get_policy()
        assert type(result) is CustomPolicy

    def test_instance_is_reused(self):
        with override_settings(SAML_JIT={"POLICY": f"{__name__}.CustomPolicy"}):
            assert get_policy() is get_policy()

    def test_setting_read_lazily(self):
        first = get_policy()
        with override_settings(SAML_JIT={"POLICY": f"{__name__}.CustomPolicy"}):
            assert type(get_policy()) is CustomPolicy
        assert get_policy() is first

    def test_bad_path_raises_import_error(self):
        with override_settings(SAML_JIT={"POLICY": "saml_jit.policy.NoSuchPolicy"}), pytest.raises(ImportError):
            get_policy()
