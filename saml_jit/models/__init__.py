"""saml_jit's models, one module per family; everything is importable from ``saml_jit.models``."""

from __future__ import annotations

from ..saml.limits import ENTITY_ID_MAX_LENGTH, SUBJECT_MAX_LENGTH
from .events import ASSERTION_CONSUMING_KINDS, EventKind, EventSource, ProvisioningEvent
from .grants import Grant, GrantKind
from .identities import FederatedIdentity
from .lifecycle import AccountLifecycle, LifecycleSource, LifecycleState, PendingAccount, lifecycle_of
from .review import (
    AccessHold,
    AccessKind,
    AccessSnapshot,
    AccessSource,
    Campaign,
    CampaignItem,
    CampaignState,
    DailyEventCount,
    Decision,
    EventReview,
    GovernanceDashboard,
    GovernanceReport,
    RolledUpDay,
)
from .scim import SCIM_VALUE_MAX_LENGTH, USER_USERNAME_INDEX, ScimClient, ScimGroup, ScimProfile, user_username_index
from .sessions import SamlSession
from .users import USER_EMAIL_INDEX, user_email_index, users_with_email

__all__ = [
    "ASSERTION_CONSUMING_KINDS",
    "ENTITY_ID_MAX_LENGTH",
    "SCIM_VALUE_MAX_LENGTH",
    "SUBJECT_MAX_LENGTH",
    "USER_EMAIL_INDEX",
    "USER_USERNAME_INDEX",
    "AccessHold",
    "AccessKind",
    "AccessSnapshot",
    "AccessSource",
    "AccountLifecycle",
    "Campaign",
    "CampaignItem",
    "CampaignState",
    "DailyEventCount",
    "Decision",
    "EventKind",
    "EventReview",
    "EventSource",
    "FederatedIdentity",
    "GovernanceDashboard",
    "GovernanceReport",
    "Grant",
    "GrantKind",
    "LifecycleSource",
    "LifecycleState",
    "PendingAccount",
    "ProvisioningEvent",
    "RolledUpDay",
    "SamlSession",
    "ScimClient",
    "ScimGroup",
    "ScimProfile",
    "lifecycle_of",
    "user_email_index",
    "user_username_index",
    "users_with_email",
]
