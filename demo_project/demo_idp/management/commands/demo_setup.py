"""``manage.py demo_setup``: get the demo ready to run with ``runserver``."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from demo_project.demo_idp.idp import build_idp

ADMIN_USERNAME = "admin"


class Command(BaseCommand):
    help = "Migrate the database, create the 'admin' superuser and generate the demo SAML keys."

    def handle(self, *args: object, **options: object) -> None:
        call_command("migrate", interactive=False, verbosity=options.get("verbosity", 1))
        self._keys()
        self._admin()
        self.stdout.write(f"\nReady. Run `python manage.py runserver` and open {settings.DEMO_BASE_URL}/")

    def _keys(self) -> None:
        # Settings already created the SP keys; building the IdP creates its own.
        build_idp(settings.DEMO_BASE_URL, settings.DEMO_KEYS_DIR)
        self.stdout.write(f"SAML keys are in {settings.DEMO_KEYS_DIR} (git-ignored, never commit them).")

    def _admin(self) -> None:
        users = get_user_model()
        if users._default_manager.filter(username=ADMIN_USERNAME).exists():
            self.stdout.write(f"Superuser '{ADMIN_USERNAME}' already exists; its password is unchanged.")
            return
        password = secrets.token_urlsafe(12)
        users._default_manager.create_superuser(ADMIN_USERNAME, email="", password=password)
        # Shown once and stored nowhere else: the hash is all the database keeps.
        self.stdout.write(self.style.SUCCESS(f"Created superuser '{ADMIN_USERNAME}' with password: {password}"))
