"""Show what a login would do, without writing anything."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from saml_jit.mapping import NAMEID_TRANSIENT, AssertionData
from saml_jit.provisioning import preview

PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"


class Command(BaseCommand):
    help = (
        "Print what a login from IDP with the attributes in FILE (JSON: name -> value or list of values) "
        "would do: the create/update diff, groups added and removed, grants and expiries, or the denial."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("idp", help="The IdP's entity ID.")
        parser.add_argument("attributes", type=Path, help="JSON file of attributes, as the IdP would send them.")
        parser.add_argument("--name-id", default=None, help="The NameID (the subject, unless SUBJECT_ATTRIBUTE).")
        parser.add_argument(
            "--transient", action="store_true", help=f"Mark the NameID as transient ({NAMEID_TRANSIENT})."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        attributes = self._read(options["attributes"])
        assertion = AssertionData(
            idp_entity_id=options["idp"],
            name_id=options["name_id"],
            name_id_format=NAMEID_TRANSIENT if options["transient"] else PERSISTENT,
            assertion_id="dry-run",
            attributes=attributes,
        )
        self.stdout.write(json.dumps(preview(assertion), indent=2, ensure_ascii=False, sort_keys=True))

    def _read(self, path: Path) -> dict[str, tuple[str, ...]]:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CommandError(f"Cannot read {path}: {exc}") from exc
        if not isinstance(raw, dict):
            raise CommandError("The attributes file must hold a JSON object.")
        return {
            str(name): tuple(map(str, value if isinstance(value, list) else [value])) for name, value in raw.items()
        }
