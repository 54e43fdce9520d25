"""``manage.py saml_jit_keys``: generate the SP's signing and encryption keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from saml_jit.config import key_paths
from saml_jit.keygen import ignore_folder, write_keypair

#: Where the keys go when neither ``--dir`` nor ``SAML_CONFIG`` says (relative to the current folder).
DEFAULT_DIR = Path(".saml_jit") / "keys"


def configured_pairs() -> list[tuple[Path, Path]]:
    """The (key, certificate) files ``SAML_CONFIG`` names: the signing pair, then the encryption pairs."""
    config = getattr(settings, "SAML_CONFIG", None) or {}
    pairs = [(config.get("key_file"), config.get("cert_file"))]
    pairs += [(pair.get("key_file"), pair.get("cert_file")) for pair in config.get("encryption_keypairs") or []]
    unique = {(Path(key), Path(cert)): None for key, cert in pairs if key and cert}  # ordered, no repeats
    return list(unique)


class Command(BaseCommand):
    # It makes what the checks ask for (saml_jit.E018): running them first would refuse to start.
    requires_system_checks: list = []
    help = (
        "Generate the SP's signing and encryption keys (RSA-2048, self-signed certificates) where SAML_CONFIG "
        "expects them, or into --dir (default .saml_jit/keys/). Keys are 0600 and the folder is git-ignored; "
        "existing keys are kept unless --force."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dir", type=Path, default=None, help="Write sp-signing.* and sp-encryption.* here.")
        parser.add_argument("--force", action="store_true", help="Replace existing keys (IdPs must re-trust them).")
        parser.add_argument("--common-name", default="saml_jit service provider", help="Certificates' subject CN.")

    def handle(self, *args: Any, **options: Any) -> None:
        pairs = self._pairs(options["dir"])
        existing = [str(key) for key, _cert in pairs if key.exists()]
        if existing and not options["force"]:
            raise CommandError(
                f"Not overwriting existing keys: {', '.join(existing)}. Replacing an SP key breaks every IdP "
                "that trusts its certificate; pass --force if that is what you want."
            )
        for key, cert in pairs:
            ignore_folder(key.parent)
            write_keypair(key, cert, options["common_name"], overwrite=True)
            self.stdout.write(f"Wrote {key} (mode 0600) and {cert}.")
        self.stdout.write(self.style.SUCCESS("Done. The folder is git-ignored: never commit these keys."))

    def _pairs(self, directory: Path | None) -> list[tuple[Path, Path]]:
        if directory is None and (pairs := configured_pairs()):
            return pairs
        paths = key_paths(directory or DEFAULT_DIR)
        return [
            (paths["key_file"], paths["cert_file"]),
            (paths["encryption_key_file"], paths["encryption_cert_file"]),
        ]
