"""A SAML login: gather, plan once, apply — in one transaction, race-safe.

:func:`provision` maps the validated assertion to a profile (pure), then in
one transaction gathers the state (:mod:`.state`), asks the policy for one
:class:`~saml_jit.planning.Plan` and applies it: the account, its identity,
its grants and the event that records it, atomically. A refusal anywhere on
the way — by the mapping, the policy or the replay guard — ends in exactly
one event, written by :func:`saml_jit.refusals.record`.

Concurrent first logins of one identity both see "no identity yet" and both
try to create one. The unique constraints on the user's username and on
(IdP, subject) make one of them fail with ``IntegrityError``; that attempt is
rolled back and retried, and the retry finds the identity the winner created
(the same reasoning as ``RemoteUserBackend``'s ``get_or_create``).

The event row written last in the transaction is also the replay record
(:mod:`.replay`): a second use of an assertion fails on its unique
constraint, and everything it changed rolls back with it. After any
``IntegrityError`` one query tells the two cases apart.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.http import HttpRequest

from .. import events, refusals
from .. import lifecycle as rules
from ..conf import app_settings
from ..exceptions import Denied, Replayed
from ..mapping import AssertionData, Profile, build_profile, field_specs
from ..models import SUBJECT_MAX_LENGTH, EventKind
from ..planning import CREATE, LINK, Plan
from ..policy import get_policy
from . import accounts, grants, lifecycle, replay
from .state import Context, Gathered, gather

logger = logging.getLogger(__name__)

#: Attempts at the whole transaction when a concurrent login wins a race.
ATTEMPTS = 3


@dataclass(frozen=True)
class Outcome:
    """The result of one login: a user, or the refusal and its event."""

    user: Any = None
    kind: str = ""
    denial: Denied | None = None
    event: Any = None
    #: Reason code when the assertion itself was refused (a replay).
    rejection: str = ""
    #: Privileges were asserted but withheld for want of MFA (a step-up brings them back).
    privileges_withheld: bool = False


def _context(assertion: AssertionData, request: HttpRequest | None) -> Context:
    return Context(app_settings.for_idp(assertion.idp_entity_id), get_policy(), get_user_model(), request)


def _profile(ctx: Context, assertion: AssertionData) -> Profile:
    specs = field_specs(ctx.user_model, ctx.settings.ATTRIBUTE_MAP)
    return build_profile(assertion, ctx.settings, specs, SUBJECT_MAX_LENGTH)


def provision(assertion: AssertionData, request: HttpRequest | None = None) -> Outcome:
    """Sign in, create, link or update the account for a validated assertion."""
    ctx = _context(assertion, request)
    profile = None
    try:
        if replay.uses_cache():
            replay.consume_in_cache(assertion.idp_entity_id, assertion.assertion_id, assertion.not_on_or_after)
        profile = _profile(ctx, assertion)
        return _apply_with_retry(ctx, assertion, profile)
    except Replayed:
        return _replayed(ctx, assertion)
    except Denied as denial:
        return _refused(ctx, assertion, denial, profile)


def _raise_if_replayed(assertion: AssertionData) -> None:
    """After an IntegrityError: did a committed event use the assertion up? Then it is a replay."""
    if replay.was_consumed(assertion.idp_entity_id, assertion.assertion_id):
        raise Replayed(assertion.assertion_id)


def _apply_with_retry(ctx: Context, assertion: AssertionData, profile: Profile) -> Outcome:
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


def _apply(ctx: Context, profile: Profile) -> Outcome:
    gathered = gather(ctx, profile)
    plan = ctx.policy.plan(ctx.request, profile, ctx.settings, gathered.state)
    if plan.denial is not None:
        denial = plan.denial.replace(subject=profile.subject)
        return _denied(ctx, denial, profile.assertion_id, gathered.user, profile.event_attributes)
    if plan.action == CREATE:
        return _create(ctx, profile, plan, gathered)
    return _update(ctx, profile, plan, gathered)


def _refused(ctx: Context, assertion: AssertionData, denial: Denied, profile: Profile | None) -> Outcome:
    """A denial outside the login transaction (by the mapping, or a lost race): its one event."""
    attributes = {}
    if profile is not None:
        denial, attributes = denial.replace(subject=profile.subject), profile.event_attributes
    try:
        with transaction.atomic():
            # A denied assertion is used up too (the denied event is the
            # replay record): replaying it is a replay.
            return _denied(ctx, denial, assertion.assertion_id, attributes=attributes)
    except IntegrityError:
        if not replay.was_consumed(assertion.idp_entity_id, assertion.assertion_id):
            raise
    return _replayed(ctx, assertion)


def _denied(ctx: Context, denial: Denied, assertion_id: str, user: Any = None, attributes: Any = None) -> Outcome:
    event = refusals.record(
        denial,
        request=ctx.request,
        user=user,
        idp_entity_id=ctx.settings.entity_id,
        assertion_id=assertion_id,
        attributes=attributes or {},
    )
    return Outcome(kind=EventKind.DENIED, denial=denial, event=event)


def _replayed(ctx: Context, assertion: AssertionData) -> Outcome:
    refusal = Replayed(assertion.assertion_id)
    event = refusals.record(
        refusal, request=ctx.request, idp_entity_id=assertion.idp_entity_id, assertion_id=assertion.assertion_id
    )
    return Outcome(kind=EventKind.REJECTED, event=event, rejection=refusal.code)


def _create(ctx: Context, profile: Profile, plan: Plan, gathered: Gathered) -> Outcome:
    account = plan.account
    assert account is not None
    user = accounts.create_user(
        ctx.user_model, account.changes, is_active=account.is_active, flags=grants.flag_values(plan.groups)
    )
    lifecycle.start(user, active=account.is_active, source=rules.SAML, created_by="jit")
    _bind(ctx, profile, user)
    if gathered.groups is not None:
        grants.apply_plan(user, profile, plan.groups, gathered.groups, gathered.state.now)
    return _event(ctx, profile, EventKind.CREATED, user, plan)


def _update(ctx: Context, profile: Profile, plan: Plan, gathered: Gathered) -> Outcome:
    account, user = plan.account, gathered.user
    assert account is not None
    if account.lifecycle is not None:
        _reactivate(ctx, profile, user, account.lifecycle)
    accounts.update_user(user, account.changes, also=grants.set_flags(user, plan.groups))
    if gathered.groups is not None:
        grants.apply_plan(user, profile, plan.groups, gathered.groups, gathered.state.now)
    if account.action == LINK:
        lifecycle.lifecycle_row(user)
        _bind(ctx, profile, user)
        kind = EventKind.LINKED
    else:
        assert gathered.identity is not None
        accounts.touch(gathered.identity, profile.assertion_id)
        kind = EventKind.UPDATED if plan.diff else EventKind.LOGIN
    return _event(ctx, profile, kind, user, plan)


def _bind(ctx: Context, profile: Profile, user: Any) -> None:
    accounts.bind(
        user,
        profile.idp_entity_id,
        profile.subject,
        name_id_format=profile.name_id_format,
        assertion_id=profile.assertion_id,
        request=ctx.request,
    )


def _reactivate(ctx: Context, profile: Profile, user: Any, decision: rules.Decision) -> None:
    """A dormant account's IdP vouches for it again: the ``reactivated`` event, then the login's own."""
    row = user.saml_lifecycle
    where = lifecycle.Context(
        idp_entity_id=profile.idp_entity_id, request=ctx.request, fields={"subject": profile.subject}
    )
    lifecycle.apply([(user, row, decision)], where)


def _event(ctx: Context, profile: Profile, kind: str, user: Any, plan: Plan) -> Outcome:
    event = events.record(
        kind,
        request=ctx.request,
        user=user,
        idp_entity_id=profile.idp_entity_id,
        subject=profile.subject,
        assertion_id=profile.assertion_id,
        diff=plan.diff,
        authn=profile.authn_record,
        message="; ".join(plan.notes),
        reason_code=_reason_code(plan),
        attributes=profile.event_attributes,
    )
    return Outcome(user=user, kind=kind, event=event, privileges_withheld=bool(plan.groups.withheld))


def _reason_code(plan: Plan) -> str:
    """Why a successful login did less than it was asked: a group overage, or privileges withheld without MFA."""
    if plan.groups.overage:
        return "groups_overage"
    return "mfa_required" if plan.groups.withheld else ""


def preview(assertion: AssertionData) -> dict[str, Any]:
    """What a login with ``assertion`` would do, without writing anything.

    Returns a JSON-ready dict: the action, the field diff, group changes,
    grants with their expiry, or the denial.
    """
    ctx = _context(assertion, None)
    try:
        profile = _profile(ctx, assertion)
        gathered = gather(ctx, profile, lock=False)
    except Denied as denial:
        return _preview_denial(denial)
    plan = ctx.policy.plan(None, profile, ctx.settings, gathered.state)
    if plan.denial is not None or plan.account is None:
        return _preview_denial(plan.denial)
    return {
        "action": plan.action,
        "user": gathered.user.get_username() if gathered.user is not None else None,
        "subject": profile.subject,
        "diff": plan.diff,
        "grants": {
            str(target): expiry.isoformat() if expiry else None for target, expiry in plan.groups.grants.items()
        },
        "revoked_grants": sorted(str(target) for target in plan.groups.revoke),
        "notes": [note for note in plan.notes if note != "held for approval"],
        "active": plan.account.is_active,
    }


def _preview_denial(denial: Denied | None) -> dict[str, Any]:
    assert denial is not None
    return {"action": "deny", "reason_code": denial.code, "message": denial.message}
