"""Create, list and revoke SCIM client tokens."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from saml_jit import tokens
from saml_jit.models import ScimClient


class Command(BaseCommand):
    help = "Manage the bearer tokens SCIM clients (IdPs) use. A token is printed once, at creation."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="Create a client and print its token once.")
        create.add_argument("--name", required=True, help="A unique name, e.g. okta.")
        create.add_argument("--idp", required=True, help="The entity ID of the IdP whose users it manages.")
        sub.add_parser("list", help="List the clients (never their tokens).")
        revoke = sub.add_parser("revoke", help="Revoke a client's token.")
        revoke.add_argument("name")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        getattr(self, f"handle_{action}")(**options)

    def handle_create(self, name: str, idp: str, **options: Any) -> None:
        if ScimClient.objects.filter(name=name).exists():
            raise CommandError(f"A SCIM client named {name!r} already exists.")
        client, token = tokens.create_client(name, idp)
        self.stdout.write(f"SCIM client {client.name} for {client.idp_entity_id} created.")
        self.stdout.write("Bearer token (shown only now; store it in the IdP):")
        self.stdout.write(token)

    def handle_list(self, **options: Any) -> None:
        for client in ScimClient.objects.order_by("name"):
            state = "revoked" if client.revoked else "active"
            used = f"{client.last_used_at:%Y-%m-%d %H:%M:%S}" if client.last_used_at else "never"
            created = f"{client.created_at:%Y-%m-%d}"
            self.stdout.write(f"{client.name}\t{client.idp_entity_id}\t{state}\tcreated {created}\tlast used {used}")

    def handle_revoke(self, name: str, **options: Any) -> None:
        client = ScimClient.objects.filter(name=name).first()
        if client is None:
            raise CommandError(f"No SCIM client named {name!r}.")
        tokens.revoke(client)
        self.stdout.write(self.style.SUCCESS(f"SCIM client {name} revoked."))
