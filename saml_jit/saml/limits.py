"""Length limits of SAML identifiers (SAML core §8.3), shared with the models that store them."""

from __future__ import annotations

#: SAML core §8.3.7: persistent identifiers are at most 256 characters.
SUBJECT_MAX_LENGTH = 256
#: SAML core §8.3.6: entity identifiers are URIs of at most 1024 characters.
ENTITY_ID_MAX_LENGTH = 1024

__all__ = ["ENTITY_ID_MAX_LENGTH", "SUBJECT_MAX_LENGTH"]
