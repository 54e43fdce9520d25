"""Tests for :mod:`saml_jit.groups`: the pure group and privilege planner.

Plain data in, a :class:`GroupPlan` out: no database, no request.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from django.test import override_settings

from saml_jit.conf import IdPSettings, app_settings
from saml_jit.groups import (
    STAFF,
    SUPERUSER,
    GroupPlan,
    GroupState,
    check_required_groups,
    django_groups,
    plan_groups,
    targets,
)
from saml_jit.mapping import Denied, Profile

IDP = "https://idp.example.org/idp/shibboleth"
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
TTL = 3600
LATER = NOW + timedelta(seconds=TTL)

BASE = {
    "GROUP_MAP": {"eng": ["Engineering"], "ops": ["Ops", "On-call"], "admins": ["Admins"]},
    "STAFF_GROUPS": ["staff-users"],
    "SUPERUSER_GROUPS": ["root-users"],
    "PRIVILEGED_GROUPS": ["Ops"],
    "PRIVILEGE_TTL": TTL,
}
ALL_GROUPS = frozenset({"Engineering", "Ops", "On-call", "Admins", "Sales", "team-red", "team-blue"})


def make_settings(**overrides) -> IdPSettings:
    values = {**BASE, **overrides}
    with override_settings(SAML_JIT={"IDPS": {IDP: values}}):
        return app_settings.for_idp(IDP)


def profile(*groups: str, overage: bool = False) -> Profile:
    return Profile(
        idp_entity_id=IDP,
        subject="AAdzZWNyZXQx",
        name_id_format="",
        fields={"email": "alice@example.org"},
        assertion_id="_a1",
        groups=tuple(groups),
        groups_overage=overage,
    )


def state(**kwargs) -> GroupState:
    kwargs.setdefault("existing_groups", ALL_GROUPS)
    kwargs = {k: frozenset(v) if isinstance(v, (set, list, tuple)) else v for k, v in kwargs.items()}
    return GroupState(**kwargs)


def plan(*groups: str, settings: IdPSettings | None = None, overage: bool = False, **state_kwargs) -> GroupPlan:
    return plan_groups(profile(*groups, overage=overage), settings or make_settings(), state(**state_kwargs), NOW)


# --------------------------------------------------------------------------
# django_groups: GROUP_MAP, then GROUP_PATTERN (whole value only)


class TestDjangoGroups:
    def test_map_renames_and_fans_out(self):
        assert django_groups(["eng", "ops"], make_settings()) == {"Engineering", "Ops", "On-call"}

    def test_unmapped_values_are_ignored_without_a_pattern(self):
        assert django_groups(["eng", "Sales", "random"], make_settings()) == {"Engineering"}

    def test_pattern_passes_matching_values_through(self):
        settings = make_settings(GROUP_PATTERN=r"team-[a-z]+")
        assert django_groups(["team-red", "team-blue", "eng"], settings) == {"team-red", "team-blue", "Engineering"}

    def test_pattern_must_match_the_whole_value(self):
        settings = make_settings(GROUP_PATTERN=r"team-[a-z]+")
        # search() or match() would accept these; fullmatch() must not.
        assert django_groups(["xteam-red", "team-red-admins", "team-", "cn=team-red,ou=groups"], settings) == set()

    def test_map_wins_over_pattern(self):
        settings = make_settings(GROUP_MAP={"team-red": ["Red"]}, GROUP_PATTERN=r"team-[a-z]+")
        assert django_groups(["team-red"], settings) == {"Red"}

    def test_map_lookup_is_exact(self):
        assert django_groups(["ENG", "eng ", "Eng"], make_settings()) == set()

    def test_nothing_asserted(self):
        assert django_groups([], make_settings(GROUP_PATTERN=".*")) == set()


# --------------------------------------------------------------------------
# plan_groups: managed memberships only


class TestAddRemove:
    def test_new_groups_are_added_and_granted(self):
        result = plan("eng")
        assert result.add == {"Engineering"}
        assert result.remove == set()
        assert result.grants == {"Engineering": None}
        assert result.revoke == set()

    def test_one_value_mapping_to_several_groups(self):
        result = plan("ops")
        assert result.add == {"Ops", "On-call"}
        assert result.grants == {"Ops": LATER, "On-call": None}

    def test_managed_group_no_longer_asserted_is_removed_and_revoked(self):
        result = plan("eng", member_of={"Engineering", "Ops"}, granted_here={"Engineering", "Ops"})
        assert result.remove == {"Ops"}
        assert result.revoke == {"Ops"}
        assert result.add == set()
        assert "Ops" not in result.grants

    def test_only_managed_groups_are_removed(self):
        # Sales and Admins were added by hand: no grant, never touched.
        result = plan(member_of={"Engineering", "Sales", "Admins"}, granted_here={"Engineering"})
        assert result.remove == {"Engineering"}
        assert result.revoke == {"Engineering"}

    def test_hand_assigned_membership_that_is_asserted_gets_no_grant(self):
        result = plan("eng", member_of={"Engineering"})
        assert result.add == set()
        assert result.remove == set()
        assert result.grants == {}

    def test_hand_assigned_membership_not_asserted_is_kept(self):
        result = plan(member_of={"Engineering"})
        assert result.remove == set()
        assert result.revoke == set()
        assert result.diff == {}

    def test_reasserted_managed_group_refreshes_its_grant(self):
        result = plan("ops", member_of={"Ops", "On-call"}, granted_here={"Ops", "On-call"})
        assert result.add == set() and result.remove == set()
        assert result.grants == {"Ops": LATER, "On-call": None}
        assert result.revoke == set()

    def test_managed_grant_whose_membership_was_removed_by_hand_is_re_added(self):
        result = plan("eng", member_of=set(), granted_here={"Engineering"})
        assert result.add == {"Engineering"}
        assert result.grants == {"Engineering": None}

    def test_grant_without_membership_is_revoked_without_removal(self):
        result = plan(member_of=set(), granted_here={"Engineering"})
        assert result.revoke == {"Engineering"}
        assert result.remove == set()

    def test_grant_held_elsewhere_keeps_the_membership(self):
        result = plan(member_of={"Engineering"}, granted_here={"Engineering"}, granted_elsewhere={"Engineering"})
        assert result.revoke == {"Engineering"}  # our grant goes ...
        assert result.remove == set()  # ... the membership stays for the other IdP

    def test_asserted_group_held_by_another_idp_takes_a_grant_here(self):
        result = plan("eng", member_of={"Engineering"}, granted_elsewhere={"Engineering"})
        assert result.add == set()
        assert result.grants == {"Engineering": None}

    def test_groups_outside_the_mapping_are_not_planned(self):
        result = plan("Sales", "random", member_of={"Sales"})
        assert result.add == set() and result.remove == set() and result.grants == {}

    def test_no_group_settings_means_no_plan(self):
        settings = make_settings(GROUP_MAP={}, STAFF_GROUPS=[], SUPERUSER_GROUPS=[])
        result = plan("eng", "staff-users", settings=settings, member_of={"Engineering"}, granted_here={"Ops"})
        assert result == GroupPlan()


class TestOverage:
    def test_overage_changes_nothing_and_says_so(self):
        result = plan(
            overage=True,
            member_of={"Engineering", "Ops"},
            granted_here={"Engineering", "Ops", STAFF},
            is_staff=True,
        )
        assert result.overage is True
        assert result.add == set() and result.remove == set()
        assert result.revoke == set() and result.grants == {}
        assert result.is_staff is None and result.is_superuser is None
        assert result.diff == {}
        assert any("overage" in note for note in result.notes)

    def test_overage_wins_over_groups_sent_alongside(self):
        result = plan("eng", overage=True)
        assert result.add == set() and result.grants == {}


class TestMissingGroups:
    def test_missing_group_skipped_with_note_when_creation_is_off(self):
        result = plan("eng", "ops", existing_groups={"Ops"})
        assert result.add == {"Ops"}
        assert result.create == set()
        assert set(result.grants) == {"Ops"}
        assert any("CREATE_GROUPS" in note and "2 mapped group(s)" in note for note in result.notes)

    def test_missing_group_created_when_creation_is_on(self):
        result = plan("eng", settings=make_settings(CREATE_GROUPS=True), existing_groups=set())
        assert result.create == {"Engineering"}
        assert result.add == {"Engineering"}
        assert result.grants == {"Engineering": None}
        assert result.notes == []

    def test_unknown_existing_groups_means_no_check(self):
        result = plan("eng", existing_groups=None)
        assert result.add == {"Engineering"}
        assert result.create == set()


# --------------------------------------------------------------------------
# Staff and superuser


class TestStaff:
    def test_staff_from_staff_groups(self):
        result = plan("staff-users")
        assert result.is_staff is True
        assert result.grants == {STAFF: LATER}
        assert result.diff == {"is_staff": [False, True]}

    def test_staff_groups_are_asserted_values_not_django_names(self):
        settings = make_settings(STAFF_GROUPS=["eng"])
        assert plan("eng", settings=settings).is_staff is True
        assert plan("Engineering", settings=settings).is_staff is None

    def test_staff_granted_here_is_demoted_when_not_asserted(self):
        result = plan(is_staff=True, granted_here={STAFF})
        assert result.is_staff is False
        assert result.revoke == {STAFF}
        assert result.diff == {"is_staff": [True, False]}

    def test_staff_reasserted_refreshes_its_grant(self):
        result = plan("staff-users", is_staff=True, granted_here={STAFF})
        assert result.is_staff is None
        assert result.grants == {STAFF: LATER}

    def test_hand_set_staff_is_never_demoted(self):
        result = plan(is_staff=True)
        assert result.is_staff is None
        assert result.revoke == set()
        assert result.diff == {}

    def test_hand_set_staff_asserted_takes_no_grant(self):
        result = plan("staff-users", is_staff=True)
        assert result.is_staff is None
        assert STAFF not in result.grants

    def test_staff_held_by_another_idp_is_kept(self):
        result = plan(is_staff=True, granted_here={STAFF}, granted_elsewhere={STAFF})
        assert result.is_staff is None
        assert result.revoke == {STAFF}


class TestSuperuser:
    def test_superuser_refused_unless_allowed(self):
        result = plan("root-users")
        assert result.is_superuser is None
        assert SUPERUSER not in result.grants
        assert "superuser asserted but ALLOW_SUPERUSER is off" in result.notes

    def test_superuser_granted_when_allowed(self):
        result = plan("root-users", settings=make_settings(ALLOW_SUPERUSER=True))
        assert result.is_superuser is True
        assert result.grants == {SUPERUSER: LATER}
        assert result.diff == {"is_superuser": [False, True]}
        assert result.notes == []

    def test_superuser_granted_here_is_demoted_when_no_longer_allowed(self):
        result = plan("root-users", is_superuser=True, granted_here={SUPERUSER})
        assert result.is_superuser is False
        assert result.revoke == {SUPERUSER}

    def test_superuser_granted_here_is_demoted_when_not_asserted(self):
        settings = make_settings(ALLOW_SUPERUSER=True)
        result = plan(settings=settings, is_superuser=True, granted_here={SUPERUSER})
        assert result.is_superuser is False
        assert result.diff == {"is_superuser": [True, False]}

    def test_hand_set_superuser_is_never_demoted(self):
        result = plan(is_superuser=True)
        assert result.is_superuser is None
        assert result.revoke == set()

    def test_superuser_does_not_imply_staff(self):
        result = plan("root-users", settings=make_settings(ALLOW_SUPERUSER=True))
        assert result.is_staff is None


def test_a_django_group_named_staff_is_an_ordinary_managed_group():
    settings = make_settings(GROUP_MAP={"staff": ["staff"]}, STAFF_GROUPS=[])
    # The membership was granted by this IdP; the IdP no longer asserts it.
    result = plan(settings=settings, existing_groups={"staff"}, member_of={"staff"}, granted_here={"staff"})
    assert result.remove == {"staff"}


# --------------------------------------------------------------------------
# Expiry values (JIT privilege)


class TestExpiry:
    def test_privileged_group_expires_after_ttl(self):
        assert plan("ops").grants["Ops"] == NOW + timedelta(seconds=TTL)

    def test_ordinary_group_does_not_expire(self):
        assert plan("eng").grants["Engineering"] is None

    def test_staff_and_superuser_from_saml_expire(self):
        result = plan("staff-users", "root-users", settings=make_settings(ALLOW_SUPERUSER=True))
        assert result.grants == {STAFF: LATER, SUPERUSER: LATER}

    def test_no_ttl_means_no_expiry(self):
        settings = make_settings(PRIVILEGE_TTL=None, ALLOW_SUPERUSER=True)
        result = plan("ops", "staff-users", "root-users", settings=settings)
        assert result.grants == {"Ops": None, "On-call": None, STAFF: None, SUPERUSER: None}

    def test_ttl_as_timedelta(self):
        settings = make_settings(PRIVILEGE_TTL=timedelta(minutes=5))
        assert plan("ops", settings=settings).grants["Ops"] == NOW + timedelta(minutes=5)

    def test_default_ttl_is_eight_hours(self):
        with override_settings(SAML_JIT={"GROUP_MAP": {"ops": ["Ops"]}, "PRIVILEGED_GROUPS": ["Ops"]}):
            settings = app_settings.for_idp(IDP)
        assert plan("ops", settings=settings).grants["Ops"] == NOW + timedelta(hours=8)

    def test_refresh_moves_expiry_from_now(self):
        result = plan("ops", member_of={"Ops", "On-call"}, granted_here={"Ops", "On-call"})
        assert result.grants["Ops"] == LATER


# --------------------------------------------------------------------------
# Required groups


class TestRequiredGroups:
    def test_no_requirement(self):
        check_required_groups(profile(), make_settings())

    def test_required_group_present(self):
        check_required_groups(profile("eng", "members"), make_settings(REQUIRED_GROUPS=["members", "guests"]))

    def test_required_group_missing(self):
        with pytest.raises(Denied) as caught:
            check_required_groups(profile("eng"), make_settings(REQUIRED_GROUPS=["members"]))
        assert caught.value.code == "missing_required_group"
        assert caught.value.field == "groups"

    def test_required_group_compares_asserted_values_not_django_names(self):
        settings = make_settings(REQUIRED_GROUPS=["Engineering"])
        with pytest.raises(Denied):
            check_required_groups(profile("eng"), settings)

    def test_overage_cannot_satisfy_a_requirement(self):
        with pytest.raises(Denied) as caught:
            check_required_groups(profile("members", overage=True), make_settings(REQUIRED_GROUPS=["members"]))
        assert caught.value.code == "groups_overage"

    def test_overage_without_requirement_is_fine(self):
        check_required_groups(profile(overage=True), make_settings())


# --------------------------------------------------------------------------
# GroupPlan.diff and helpers


class TestDiff:
    def test_empty(self):
        assert GroupPlan().diff == {}

    def test_shape(self):
        result = GroupPlan(add={"b", "a"}, remove={"c"}, is_staff=False, is_superuser=True)
        assert result.diff == {
            "groups": {"added": ["a", "b"], "removed": ["c"]},
            "is_staff": [True, False],
            "is_superuser": [False, True],
        }

    def test_only_removals(self):
        assert GroupPlan(remove={"x"}).diff == {"groups": {"added": [], "removed": ["x"]}}

    def test_grant_refresh_alone_is_not_a_change(self):
        assert GroupPlan(grants={"Ops": LATER}, revoke={"Eng"}).diff == {}

    def test_diff_of_a_full_plan(self):
        result = plan("eng", "staff-users", member_of={"Ops", "Sales"}, granted_here={"Ops"})
        assert result.diff == {
            "groups": {"added": ["Engineering"], "removed": ["Ops"]},
            "is_staff": [False, True],
        }


def test_targets():
    assert targets([("group", "Eng"), ("staff", None), ("superuser", None)]) == {"Eng", STAFF, SUPERUSER}
