"""The review UI: events (read-only, exportable), identities, grants, SCIM clients, and the user page.

Importing this package registers every saml_jit model with ``admin.site`` and
extends the registered user admin; Django's admin autodiscovery does that.

* :mod:`.events` — provisioning events, with :mod:`.exports` (CSV, JSON
  lines) and :mod:`.large_tables` (a changelist over millions of rows);
* :mod:`.identities`, :mod:`.grants` — what SAML bound and granted;
* :mod:`.review` — access review campaigns, their items and holds, and
  reviews of privileged events;
* :mod:`.lifecycle` — every account's state, the approval queue, and the
  actions that change them;
* :mod:`.users` — identities, grants and recent events on the user page;
* :mod:`.scim` — SCIM clients (tokens shown once) and their groups;
* :mod:`.common` — read-only permissions and JSON display.
"""

from __future__ import annotations

from django.contrib import admin

from ..forms import SsoAwareAdminAuthenticationForm
from .common import NoAddChangeMixin, ReadOnlyAdminMixin, pretty_json
from .dashboard import GovernanceDashboardAdmin, GovernanceReportAdmin
from .events import EventDisplayMixin, IdPListFilter, ProvisioningEventAdmin
from .exports import EXPORT_FIELDS
from .grants import GrantAdmin
from .identities import FederatedIdentityAdmin
from .large_tables import DateDrillDownQuerySet, EstimatedCountPaginator
from .lifecycle import AccountLifecycleAdmin, LifecycleInline, PendingAccountAdmin
from .review import AccessHoldAdmin, CampaignAdmin, CampaignItemAdmin, mark_reviewed
from .scim import ScimClientAdmin, ScimGroupAdmin
from .snapshot import AccessSnapshotAdmin
from .users import (
    RECENT_EVENTS,
    GrantInline,
    IdentityInline,
    ManagedGroupFilter,
    RecentEventInline,
    RecentEventsFormSet,
    SamlJitUserAdminMixin,
)

if admin.site.login_form is None:
    # Tells an SSO-only account why its password is refused (saml_jit.backends.PasswordBackend).
    admin.site.login_form = SsoAwareAdminAuthenticationForm

__all__ = [
    "EXPORT_FIELDS",
    "RECENT_EVENTS",
    "AccessHoldAdmin",
    "AccessSnapshotAdmin",
    "AccountLifecycleAdmin",
    "CampaignAdmin",
    "CampaignItemAdmin",
    "DateDrillDownQuerySet",
    "EstimatedCountPaginator",
    "EventDisplayMixin",
    "FederatedIdentityAdmin",
    "GovernanceDashboardAdmin",
    "GovernanceReportAdmin",
    "GrantAdmin",
    "GrantInline",
    "IdPListFilter",
    "IdentityInline",
    "LifecycleInline",
    "ManagedGroupFilter",
    "NoAddChangeMixin",
    "PendingAccountAdmin",
    "ProvisioningEventAdmin",
    "ReadOnlyAdminMixin",
    "RecentEventInline",
    "RecentEventsFormSet",
    "SamlJitUserAdminMixin",
    "ScimClientAdmin",
    "ScimGroupAdmin",
    "mark_reviewed",
    "pretty_json",
]
