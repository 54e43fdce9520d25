"""Applies a plan: users and identities, in one transaction, race-safe.

This is the imperative shell around :mod:`saml_jit.mapping` and
:mod:`saml_jit.policy`. It reads the current state, asks the policy for a
plan and writes it, together with the event that records it, atomically.

Concurrent first logins of one identity both see "no identity yet" and both
try to create one. The unique constraints on the user's username and on
(IdP, subject) make one of them fail with ``IntegrityError``; that attempt is
rolled back and retried, and the retry finds the identity the winner created
(the same reasoning as ``RemoteUserBackend``'s ``get_or_create``).

The event row written last in the transaction is also the replay record
(:mod:`saml_jit.replay`): a second use of an assertion fails on its unique
constraint, and everything it changed rolls back with it. After any
``IntegrityError`` one query tells the two cases apart.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from . import events, grants, replay
from .conf import IdPSettings, app_settings
from .grants import LoadedState
from .groups import GroupPlan
from .mapping import AssertionData, Denied, Profile, build_profile, check_username, field_specs
from .models import SUBJECT_MAX_LENGTH, EventKind, FederatedIdentity, users_with_email
from .policy import CREATE, LINK, AccountState, Plan, Policy, get_policy

logger = logging.getLogger(__name__)

#: Attempts at the whole transaction when a concurrent login wins a race.
ATTEMPTS = 3


@dataclass
class Outcome:
    """The result of one login: a user, or the denial and its event."""

    user: Any = None
    kind: str = ""
    denial: Denied | None = None
    event: Any = None
    #: Reason code when the assertion itself was refused (a replay).
    rejection: str = ""


@dataclass(frozen=True)
class _Context:
    settings: IdPSettings
    policy: Policy
    user_model: Any
    request: HttpRequest | None

    @property
    def username_field(self) -> str:
        return self.user_model.USERNAME_FIELD


def provision(assertion: AssertionData, request: HttpRequest | None = None) -> Outcome:
    """Sign in, create, link or update the account for a validated assertion."""
    user_model = get_user_model()
    ctx = _Context(app_settings.for_idp(assertion.idp_entity_id), get_policy(), user_model, request)
    profile = None
    try:
        if replay.uses_cache():
            replay.consume_in_cache(assertion.idp_entity_id, assertion.assertion_id, assertion.not_on_or_after)
    except replay.Replayed:
        return _reject_replay(ctx, assertion)
    try:
        specs = field_specs(user_model, ctx.settings.ATTRIBUTE_MAP)
        profile = build_profile(assertion, ctx.settings, specs, SUBJECT_MAX_LENGTH)
        ctx.policy.authorize(request, profile, ctx.settings)
        return _apply_with_retry(ctx, assertion, profile)
    except Denied as denial:
        return _deny(ctx, assertion, profile, denial)
    except replay.Replayed:
        return _reject_replay(ctx, assertion)


def _raise_if_replayed(assertion: AssertionData) -> None:
    """After an IntegrityError: did a committed event use the assertion up? Then it is a replay."""
    if replay.was_consumed(assertion.idp_entity_id, assertion.assertion_id):
        raise replay.Replayed(assertion.assertion_id)


def _apply_with_retry(ctx: _Context, assertion: AssertionData, profile: Profile) -> Outcome:
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with transaction.atomic():
                # The account changes and the event (the replay record) commit
                # together, or not at all.
                return _apply(ctx, profile)
        except IntegrityError:
            _raise_if_replayed(assertion)
            if attempt == ATTEMPTS:
                raise Denied("conflict", "The account could not be saved: it conflicts with another account.") from None
            logger.info("saml_jit concurrent login for idp=%s; retrying (%d)", profile.idp_entity_id, attempt)
    raise AssertionError("unreachable")


def _deny(ctx: _Context, assertion: AssertionData, profile: Profile | None, denial: Denied) -> Outcome:
    if denial.user is None and profile is not None:
        # Refused before the account was looked up (policy.authorize): the
        # event should still say whose login it was, if it was anyone's.
        identity = (
            FederatedIdentity.objects.select_related("user")
            .filter(idp_entity_id=profile.idp_entity_id, subject=profile.subject)
            .first()
        )
        denial.user = identity.user if identity is not None else None
    try:
        event = _record_denial(ctx, assertion, profile, denial)
    except replay.Replayed:
        return _reject_replay(ctx, assertion)
    logger.info("saml_jit denied idp=%s reason=%s event=%s", assertion.idp_entity_id, denial.code, event.pk)
    return Outcome(kind=EventKind.DENIED, denial=denial, event=event)


def _record_denial(ctx: _Context, assertion: AssertionData, profile: Profile | None, denial: Denied) -> Any:
    try:
        with transaction.atomic():
            # A denied assertion is used up too (the denied event is the
            # replay record): replaying it is a replay.
            return events.record(
                EventKind.DENIED,
                request=ctx.request,
                user=denial.user,
                idp_entity_id=assertion.idp_entity_id,
                subject=profile.subject if profile else denial.subject,
                assertion_id=assertion.assertion_id,
                reason_code=denial.code,
                message=denial.message,
                attributes=profile.event_attributes if profile else {},
            )
    except IntegrityError:
        _raise_if_replayed(assertion)
        raise


def _reject_replay(ctx: _Context, assertion: AssertionData) -> Outcome:
    event = events.record(
        EventKind.REJECTED,
        request=ctx.request,
        idp_entity_id=assertion.idp_entity_id,
        assertion_id=assertion.assertion_id,
        reason_code="replay",
        message="This assertion was already used.",
    )
    logger.warning("saml_jit rejected a replayed assertion idp=%s event=%s", assertion.idp_entity_id, event.pk)
    return Outcome(kind=EventKind.REJECTED, event=event, rejection="replay")


def _account_state(user: Any, field_names: list[str], idps: frozenset[str] = frozenset()) -> AccountState:
    return AccountState(
        pk=user.pk,
        fields={name: getattr(user, name, None) for name in field_names},
        is_active=bool(getattr(user, "is_active", True)),
        is_staff=bool(getattr(user, "is_staff", False)),
        is_superuser=bool(getattr(user, "is_superuser", False)),
        idps=idps,
    )


def _find_by_email(ctx: _Context, email: str) -> Any:
    if not email:
        return None
    matches = list(users_with_email(ctx.user_model, email)[:2])
    if len(matches) > 1:
        raise Denied("email_ambiguous", "Several local accounts share this email address.")
    return matches[0] if matches else None


@dataclass
class _Gathered:
    """The current state a login plans against."""

    identity: Any
    user: Any
    plan: Plan


def _gather(ctx: _Context, profile: Profile, lock: bool = True) -> _Gathered:
    identities = FederatedIdentity.objects.select_related("user")
    if lock:
        identities = identities.select_for_update()
    identity = identities.filter(idp_entity_id=profile.idp_entity_id, subject=profile.subject).first()
    names = list(profile.fields)
    bound = match = email_match = None
    if identity is None:
        match = _find_by_email(ctx, profile.email)
    if match is not None:
        bindings = set(match.saml_identities.values_list("idp_entity_id", "subject"))
        if (profile.idp_entity_id, profile.subject) in bindings:
            # A concurrent first login of this very identity committed between
            # our two reads: the account is ours, not a mere email match.
            identity = identities.get(idp_entity_id=profile.idp_entity_id, subject=profile.subject)
            match = None
        else:
            email_match = _account_state(match, names, frozenset(idp for idp, _ in bindings))
    if identity is not None:
        bound = _account_state(identity.user, names)
    try:
        plan = ctx.policy.plan(
            ctx.request,
            profile,
            ctx.settings,
            username_field=ctx.username_field,
            bound=bound,
            email_match=email_match,
        )
    except Denied as denial:
        denial.user = identity.user if identity is not None else None
        raise
    return _Gathered(identity, identity.user if identity is not None else match, plan)


def _apply(ctx: _Context, profile: Profile) -> Outcome:
    gathered = _gather(ctx, profile)
    if gathered.plan.action == CREATE:
        return _create(ctx, profile, gathered.plan)
    return _update(ctx, profile, gathered.plan, gathered.user, gathered.identity)


def preview(assertion: AssertionData) -> dict[str, Any]:
    """What a login with ``assertion`` would do, without writing anything.

    Returns a JSON-ready dict: the action, the field diff, group changes,
    grants with their expiry, or the denial.
    """
    user_model = get_user_model()
    ctx = _Context(app_settings.for_idp(assertion.idp_entity_id), get_policy(), user_model, None)
    try:
        profile = build_profile(
            assertion, ctx.settings, field_specs(user_model, ctx.settings.ATTRIBUTE_MAP), SUBJECT_MAX_LENGTH
        )
        ctx.policy.authorize(None, profile, ctx.settings)
        gathered = _gather(ctx, profile, lock=False)
        user = gathered.user if gathered.user is not None else user_model()
        now = timezone.now()
        _, group_plan = _plan_groups(ctx, profile, user, now)
        diff = {**gathered.plan.diff, **group_plan.diff}
        if gathered.plan.action == CREATE and ctx.username_field != user_model.get_email_field_name():
            diff[ctx.username_field] = [None, _free_username(ctx, profile)]
    except Denied as denial:
        return {"action": "deny", "reason_code": denial.code, "message": denial.message}
    return {
        "action": gathered.plan.action,
        "user": gathered.user.get_username() if gathered.user is not None else None,
        "subject": profile.subject,
        "diff": diff,
        "grants": {str(target): expiry.isoformat() if expiry else None for target, expiry in group_plan.grants.items()},
        "revoked_grants": sorted(str(target) for target in group_plan.revoke),
        "notes": [*profile.notes, *group_plan.notes],
        "active": gathered.plan.is_active,
    }


def _free_username(ctx: _Context, profile: Profile) -> str:
    field = ctx.user_model._meta.get_field(ctx.username_field)
    candidates = ctx.policy.username_candidates(profile, ctx.settings, ctx.username_field, field.max_length)
    if not candidates:
        raise Denied("username_unavailable", "No username could be generated for this account.")
    check_username(candidates[0], ctx.username_field, field.max_length)
    taken = set(
        ctx.user_model._default_manager.filter(**{f"{ctx.username_field}__in": candidates}).values_list(
            ctx.username_field, flat=True
        )
    )
    for candidate in candidates:
        if candidate not in taken:
            return candidate
    raise Denied("username_unavailable", "Every generated username for this account is taken.")


def _plan_groups(ctx: _Context, profile: Profile, user: Any, now: datetime) -> tuple[LoadedState | None, GroupPlan]:
    if not ctx.settings.manages_groups:
        return None, GroupPlan()
    loaded = grants.load_state(user, profile, ctx.settings, now)
    return loaded, ctx.policy.plan_groups(ctx.request, profile, ctx.settings, loaded.state, now)


def _create(ctx: _Context, profile: Profile, plan: Plan) -> Outcome:
    user = ctx.user_model(**plan.changes)
    diff: dict[str, Any] = dict(plan.diff)
    if ctx.username_field != ctx.user_model.get_email_field_name():
        username = _free_username(ctx, profile)
        setattr(user, ctx.username_field, username)
        diff[ctx.username_field] = [None, username]
    if hasattr(user, "is_active"):
        user.is_active = plan.is_active
    user.set_unusable_password()
    now = timezone.now()
    loaded, group_plan = _plan_groups(ctx, profile, user, now)
    grants.set_flags(user, group_plan)
    ctx.policy.populate_user(ctx.request, user, profile, plan)
    user.save()
    _bind(profile, user)
    if loaded is not None:
        grants.apply_plan(user, profile, group_plan, loaded, now)
    return _event(ctx, profile, EventKind.CREATED, user, {**diff, **group_plan.diff}, group_plan)


def _update(ctx: _Context, profile: Profile, plan: Plan, user: Any, identity: Any) -> Outcome:
    for name, value in plan.changes.items():
        setattr(user, name, value)
    now = timezone.now()
    loaded, group_plan = _plan_groups(ctx, profile, user, now)
    update_fields = list(plan.changes) + grants.set_flags(user, group_plan)
    ctx.policy.populate_user(ctx.request, user, profile, plan)
    if update_fields:
        user.save(update_fields=update_fields)
    if loaded is not None:
        grants.apply_plan(user, profile, group_plan, loaded, now)
    diff = {**plan.diff, **group_plan.diff}
    if plan.action == LINK:
        _bind(profile, user)
        kind = EventKind.LINKED
    else:
        _touch(identity, profile)
        kind = EventKind.UPDATED if diff else EventKind.LOGIN
    return _event(ctx, profile, kind, user, diff, group_plan)


def _bind(profile: Profile, user: Any) -> FederatedIdentity:
    now = timezone.now()
    return FederatedIdentity.objects.create(
        user=user,
        idp_entity_id=profile.idp_entity_id,
        subject=profile.subject,
        name_id_format=profile.name_id_format,
        first_asserted_at=now,
        last_asserted_at=now,
        last_assertion_id=profile.assertion_id,
    )


def _touch(identity: FederatedIdentity, profile: Profile) -> None:
    FederatedIdentity.objects.filter(pk=identity.pk).update(
        last_asserted_at=timezone.now(), last_assertion_id=profile.assertion_id
    )


def _event(
    ctx: _Context, profile: Profile, kind: str, user: Any, diff: dict[str, Any], group_plan: GroupPlan
) -> Outcome:
    notes = [*profile.notes, *group_plan.notes]
    if kind == EventKind.CREATED and not getattr(user, "is_active", True):
        notes.insert(0, "held for approval")
    event = events.record(
        kind,
        request=ctx.request,
        user=user,
        idp_entity_id=profile.idp_entity_id,
        subject=profile.subject,
        assertion_id=profile.assertion_id,
        diff=diff,
        message="; ".join(notes),
        reason_code="groups_overage" if group_plan.overage else "",
        attributes=profile.event_attributes,
    )
    return Outcome(user=user, kind=kind, event=event)
