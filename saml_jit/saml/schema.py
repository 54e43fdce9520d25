"""SAML schema validation for pysaml2 on libxml2, with pysaml2's verdicts.

pysaml2 validates every signed element against the SAML schemas before it
checks the signature (its defence against signature wrapping), with
`xmlschema`, a pure-Python XSD validator: about 8 ms for a typical response,
the largest single cost of a login once signatures are checked in-process.
libxml2 (through lxml) validates the same document against the same schema
files in about 0.15 ms.

The two implementations do not agree on everything, so libxml2 may only
*accept*; it never refuses on its own:

* a document libxml2 refuses goes to pysaml2's validator, and that verdict
  stands (libxml2 is stricter about ``xs:anyURI`` values and about QName
  values whose prefix is not declared; pysaml2 accepts those, so saml_jit does);
* libxml2 does not check the lexical form of ``xs:base64Binary`` content
  (``DigestValue``, ``SignatureValue``, ``X509Certificate``, ``CipherValue``…)
  and xmlschema does: a document where xmlschema's own ``base64Binary`` type
  refuses such a value also goes to pysaml2's validator.

The libxml2 schema is built from the very files pysaml2's validator loaded,
one namespace each, with no network access (an import that does not resolve
to one of those files makes the build fail, and pysaml2's validator is then
used for everything). ``tests/test_schema.py`` holds :func:`validate` to
pysaml2's verdict on every response of the test corpus and on thousands of
mutated ones.
"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import saml2.xml.schema
from lxml import etree
from saml2.xml.schema import XMLSchemaError
from saml2.xml.schema import validate as pysaml2_validate
from xmlschema.names import XSD_BASE64_BINARY, XSD_NAMESPACE, XSI_NAMESPACE
from xmlschema.validators import XsdAttribute, XsdElement

logger = logging.getLogger(__name__)

__all__ = ["XMLSchemaError", "validate"]

_PARSER_OPTIONS = {"resolve_entities": False, "no_network": True, "load_dtd": False, "huge_tree": False}


def _local_path(url: str) -> Path:
    parsed = urlparse(url)
    return Path(unquote(parsed.path)) if parsed.scheme in ("", "file") else Path(url)


def _schema_files(xsd: Any) -> dict[str, Path]:
    """Namespace -> the file pysaml2's xmlschema validator loaded for it."""
    files = {}
    for namespace, schemas in xsd.maps.namespaces.items():
        if namespace in (XSD_NAMESPACE, XSI_NAMESPACE) or not schemas or not schemas[0].url:
            continue  # built into every XSD processor
        files[namespace] = _local_path(schemas[0].url)
    return files


def _base64_names(xsd: Any) -> frozenset[str]:
    """Elements and attributes whose content is ``xs:base64Binary`` (or derived) anywhere in the schemas."""
    base64 = xsd.maps.types[XSD_BASE64_BINARY]
    names = set()
    for component in xsd.maps.iter_components():
        if not isinstance(component, (XsdElement, XsdAttribute)) or component.name is None:
            continue
        xsd_type: Any = component.type  # Any: simple or complex, told apart below
        simple = xsd_type if xsd_type.is_simple() else (xsd_type.content if xsd_type.has_simple_content() else None)
        if simple is not None and (simple is base64 or simple.is_derived(base64)):
            names.add(component.name)
    return frozenset(names)


class _Resolver(etree.Resolver):
    """Every import resolves to one of pysaml2's schema files, by file name; nothing else loads."""

    def __init__(self, files: dict[str, Path]) -> None:
        super().__init__()
        self.by_name = {path.name: path for path in files.values()}

    def resolve(self, url: str | None, pubid: str | None, context: Any) -> Any:
        name = (url or "").rstrip("/").rpartition("/")[2]
        if name not in self.by_name:
            raise LookupError(f"schema import {url!r} is not one of pysaml2's schema files")
        return self.resolve_filename(str(self.by_name[name]), context)


def _build(xsd: Any) -> etree.XMLSchema:
    files = _schema_files(xsd)
    imports = "".join(
        f'<xs:import namespace="{namespace}" schemaLocation="{path.as_uri()}"/>' for namespace, path in files.items()
    )
    wrapper = f'<xs:schema xmlns:xs="{XSD_NAMESPACE}">{imports}</xs:schema>'
    parser = etree.XMLParser(**_PARSER_OPTIONS)
    parser.resolvers.add(_Resolver(files))
    return etree.XMLSchema(etree.fromstring(wrapper.encode(), parser))


class _Fast(threading.local):
    """One libxml2 schema and parser per thread (lxml validators are not shared across threads)."""

    def __init__(self) -> None:
        self.schema: etree.XMLSchema | None = None
        self.parser = etree.XMLParser(**_PARSER_OPTIONS)


#: XSD's ``base64Binary`` grammar once its whitespace is gone: groups of four, the last one padded with
#: unused bits zero (the ``[AEIMQUYcgkosw048]`` and ``[AQgw]`` of the XSD's own definition).
_CANONICAL_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=|[A-Za-z0-9+/][AQgw]==)?")
_XML_WHITESPACE = str.maketrans("", "", " \t\n\r")


def canonical_base64(value: str) -> bool:
    """Whether ``value`` is non-empty base64 that xmlschema's ``base64Binary`` accepts too, at a quarter of its cost.

    Only ever *accepts*: the XSD grammar itself, on the value with XML
    whitespace (space, tab, CR, LF — what the type's ``collapse`` facet
    handles) removed. Anything else — empty, other characters, bad padding —
    is left to xmlschema's verdict. ``tests/test_schema.py`` holds it to
    xmlschema's on generated values.
    """
    text = value.translate(_XML_WHITESPACE)
    return bool(text) and _CANONICAL_BASE64.fullmatch(text) is not None


class _Base64:
    """What libxml2 does not check: ``xs:base64Binary`` content, judged by xmlschema's own type."""

    #: Values known to be valid, kept (bounded): an IdP sends the same
    #: certificates in every response, and xmlschema's check of a 1 kB value
    #: is a regular expression run of about 0.1 ms.
    KEPT = 256

    def __init__(self, xsd: Any) -> None:
        self.names = _base64_names(xsd)
        self.type = xsd.maps.types[XSD_BASE64_BINARY]
        self._valid: set[str] = set()

    def is_valid(self, value: str) -> bool:
        """xmlschema's own verdict on ``value`` (only valid values are remembered)."""
        if value in self._valid or canonical_base64(value):
            return True
        if not self.type.is_valid(value):
            return False
        if len(self._valid) >= self.KEPT:
            self._valid = set()
        self._valid.add(value)
        return True

    def ok(self, root: etree._Element) -> bool:
        for element in root.iter():
            if element.tag in self.names and (len(element) or not self.is_valid(element.text or "")):
                return False  # (children: comments or the like, which lxml and xmlschema read differently)
            for name, value in element.attrib.items():
                if name in self.names and not self.is_valid(value):
                    return False
        return True


#: pysaml2's own validator (a private name of pysaml2 7.x: without it, no fast path).
_pysaml2_schema: Any = getattr(saml2.xml.schema, "_schema_validator_default", None)
_fast = _Fast()
_base64: _Base64 | None = None
_broken = _pysaml2_schema is None


def _schema() -> etree.XMLSchema | None:
    """This thread's libxml2 schema; None (for good) if it cannot be built."""
    global _broken, _base64
    if _fast.schema is None and not _broken:
        try:
            _base64 = _base64 or _Base64(_pysaml2_schema)
            _fast.schema = _build(_pysaml2_schema)
        except Exception:
            _broken = True
            logger.warning("saml_jit could not build the libxml2 SAML schema; using pysaml2's validator", exc_info=True)
    return _fast.schema


def accepts_fast(doc: str) -> bool:
    """Whether libxml2 alone may accept ``doc`` (False: ask pysaml2's validator)."""
    schema = _schema()
    if schema is None or _base64 is None:
        return False
    try:
        root = etree.fromstring(doc.encode("utf-8"), _fast.parser)
    except (etree.XMLSyntaxError, ValueError):
        return False
    return bool(schema.validate(root)) and _base64.ok(root)


def validate(doc: str, validator: Any = None) -> None:
    """pysaml2's ``saml2.xml.schema.validate``, answered by libxml2 when libxml2 accepts.

    Raises :class:`saml2.xml.schema.XMLSchemaError` exactly when pysaml2 would.
    A caller's own ``validator`` always goes to pysaml2.
    """
    if validator is None and accepts_fast(doc):
        return
    pysaml2_validate(doc, validator)
