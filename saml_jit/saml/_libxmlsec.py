"""The ``xmlsec`` package, with a clear message when it cannot be loaded.

Imported by the modules of this package that use libxmlsec1, so that a broken
installation fails with the fix in the message wherever it is noticed first.
"""

from __future__ import annotations

try:
    import xmlsec
except Exception as exc:  # xmlsec.InternalError at import: "lxml & xmlsec libxml2 library version mismatch"
    raise ImportError(
        "saml_jit.saml needs the 'xmlsec' package, built against the same libxml2 as lxml "
        f"({exc}). Install matching wheels (see requirements.txt), or build both from source: "
        "pip install --no-binary lxml,xmlsec lxml xmlsec"
    ) from exc

__all__ = ["xmlsec"]
