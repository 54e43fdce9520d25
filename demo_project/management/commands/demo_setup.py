"""``manage.py demo_setup``: get the demo ready to run with ``runserver``."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.core.management.base import BaseCommand

from saml_jit.config import key_paths

ADMIN_USERNAME = "admin"
#: The Django group the IdP's "admins" map onto (GROUP_MAP); its members are staff.
REVIEWERS_GROUP = "Administrators"
#: What a staff member of that group may do in the admin: review, never edit, the saml_jit records.
REVIEW_PERMISSIONS = (
    "view_provisioningevent",
    "view_federatedidentity",
    "view_accountlifecycle",
    "view_grant",
    "view_governancedashboard",
    "view_governancereport",
)


class Command(BaseCommand):
    # It makes what the checks ask for (saml_jit.E018): running them first would refuse to start.
    requires_system_checks: list = []
    help = (
        "Migrate the database, generate the demo SAML keys, let the Administrators group review saml_jit "
        "records in the admin, and create the 'admin' superuser."
    )

    def handle(self, *args: object, **options: object) -> None:
        call_command("migrate", interactive=False, verbosity=options.get("verbosity", 1))
        self._keys()
        self._reviewers()
        self._admin()
        self.stdout.write(f"\nReady. Run `python manage.py runserver` and open {settings.DEMO_BASE_URL}/")

    def _keys(self) -> None:
        if not key_paths(settings.DEMO_KEYS_DIR)["key_file"].exists():
            call_command("saml_jit_keys", common_name="saml_jit demo SP", stdout=self.stdout)
        # The development IdP's key is made (next to them) when settings load.
        self.stdout.write(f"SAML keys are in {settings.DEMO_KEYS_DIR} (git-ignored, never commit them).")

    def _reviewers(self) -> None:
        group, _created = Group.objects.get_or_create(name=REVIEWERS_GROUP)
        permissions = Permission.objects.filter(content_type__app_label="saml_jit", codename__in=REVIEW_PERMISSIONS)
        group.permissions.add(*permissions)
        names = ", ".join(sorted(p.codename for p in permissions))
        self.stdout.write(f"Group '{REVIEWERS_GROUP}' (alice, through the IdP's 'admins') may: {names}.")

    def _admin(self) -> None:
        users = get_user_model()
        if users._default_manager.filter(username=ADMIN_USERNAME).exists():
            self.stdout.write(f"Superuser '{ADMIN_USERNAME}' already exists; its password is unchanged.")
            return
        password = secrets.token_urlsafe(12)
        users._default_manager.create_superuser(ADMIN_USERNAME, email="", password=password)
        # Shown once and stored nowhere else: the hash is all the database keeps.
        self.stdout.write(self.style.SUCCESS(f"Created superuser '{ADMIN_USERNAME}' with password: {password}"))
