"""Bearer tokens of SCIM clients: minted once, stored as a hash, revocable.

A token is ``saml_jit_scim_`` followed by 32 random bytes (URL-safe base64);
the prefix lets secret scanners recognise a leaked token. Only its SHA-256
hash is stored, so the token exists only in the answer to whoever created the
client (the ``saml_jit_scim_token`` command or the admin).

Nothing here needs a request or the SCIM library: the admin and the command
use it without the ``scim`` extra. Checking the token a request carries is
:mod:`saml_jit.scim.auth`.
"""

from __future__ import annotations

import hashlib
import logging
import secrets

from django.db.models import QuerySet
from django.utils import timezone

from .models import ScimClient

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "saml_jit_scim_"  # noqa: S105 - a prefix, not a secret


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> tuple[str, str]:
    """A fresh token and its hash."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, hash_token(token)


def create_client(name: str, idp_entity_id: str) -> tuple[ScimClient, str]:
    """Create a client; return it with its token (the only time the token exists)."""
    token, digest = new_token()
    client = ScimClient.objects.create(name=name, idp_entity_id=idp_entity_id, token_hash=digest)
    logger.info("saml_jit SCIM client %s created for idp=%s", client.pk, idp_entity_id)
    return client, token


def revoke(client: ScimClient) -> None:
    """Refuse the client's token from now on; the row and its events stay."""
    ScimClient.objects.filter(pk=client.pk).update(revoked=True, revoked_at=timezone.now())
    logger.info("saml_jit SCIM client %s revoked", client.pk)


def revoke_active(clients: QuerySet[ScimClient]) -> int:
    """Revoke those of ``clients`` not yet revoked; return how many were."""
    return clients.filter(revoked=False).update(revoked=True, revoked_at=timezone.now())
