"""Hostile documents: CPU time of one refused response against a normal login, with and without the work bounds.

``python -m bench hostile``. For each crypto backend: the median CPU time
(``time.process_time``: this process only, so the ``xmlsec1`` children of the
subprocess backend are not counted) of a normal first login, then of each
hostile response posted through the real ACS view, and the ratio. "without
bounds" lifts :data:`saml_jit.saml.bounds.DEFAULT_BOUNDS` for the same
documents: what the ACS cost before the bounds. Documents are minted before
timing.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.test import Client, override_settings

from saml_jit.saml import bounds
from saml_jit.saml import config as spconfig
from saml_jit.testing import Encryption
from saml_jit.testing.hostile import as_plaintext, nested, with_attribute_values, with_attributes
from tests.conftest import Browser
from tests.federation import SP_CERT

#: Not a bound at all.
UNBOUNDED = bounds.Bounds(elements=10**9, depth=10**9, attribute_values=10**9, attributes=10**9)

LIMITS = bounds.DEFAULT_BOUNDS
#: Room the minted response itself takes (~70 elements, 4 values).
_OWN = 100
_VALUES = LIMITS.attribute_values - 10
_ATTRIBUTES = LIMITS.elements - _OWN - _VALUES


def _values_and_attributes(xml: str) -> str:
    return with_attributes(with_attribute_values(xml, _VALUES), _ATTRIBUTES, xml_attributes=2)


#: name -> options for ``Browser.answered_login`` (unsigned Response: anyone can send one).
CASES: dict[str, dict[str, Any]] = {
    "512 KB, 8,000 unsigned AttributeValues": {"tamper": lambda xml: with_attribute_values(xml, 8000)},
    f"within bounds: {_VALUES:,} values + {_ATTRIBUTES} Attributes": {"tamper": _values_and_attributes},
    f"within bounds: {LIMITS.elements - _OWN:,} empty Attributes": {
        "tamper": lambda xml: with_attributes(xml, LIMITS.elements - _OWN, xml_attributes=2)
    },
    f"within bounds: nesting {LIMITS.depth - 3} deep": {"tamper": lambda xml: nested(xml, LIMITS.depth - 8)},
    "encrypted for the SP: 5,000 AttributeValues": {
        "encrypt_for_cert": SP_CERT,
        "encryption": Encryption(plaintext=as_plaintext(lambda xml: with_attribute_values(xml, 5000))),
    },
}


@contextmanager
def lifted_bounds(lift: bool) -> Iterator[None]:
    saved = bounds.DEFAULT_BOUNDS
    bounds.DEFAULT_BOUNDS = UNBOUNDED if lift else saved
    try:
        yield
    finally:
        bounds.DEFAULT_BOUNDS = saved


def cpu_ms(mint: Callable[[Browser, str], dict[str, str]], rounds: int, label: str) -> tuple[float, int]:
    """Median CPU milliseconds of posting ``rounds`` freshly minted responses; the last status."""
    minted = []
    for i in range(rounds):
        browser = Browser(Client())
        minted.append((browser, mint(browser, f"{label}-{i}-{time.monotonic_ns()}")))
    times, status = [], 0
    for browser, data in minted:
        start = time.process_time()
        status = browser.client.post("/saml2/acs/", data).status_code
        times.append((time.process_time() - start) * 1000)
    return statistics.median(times), status


def _case(options: dict[str, Any]) -> Callable[[Browser, str], dict[str, str]]:
    return lambda browser, name: browser.answered_login(name, sign_response=False, **options)


def bench_backend(backend: str, rounds: int) -> list[str]:
    with override_settings(SAML_JIT={"CRYPTO_BACKEND": backend}):
        spconfig.refresh()
        normal, status = cpu_ms(lambda browser, name: browser.answered_login(name), rounds * 2, "normal")
        if status != 302:
            raise SystemExit(f"{backend}: the normal login failed ({status})")
        lines = [f"{backend}: normal first login {normal:8.1f} ms CPU"]
        for name, options in CASES.items():
            row = []
            for lift in (True, False):
                with lifted_bounds(lift):
                    ms, status = cpu_ms(_case(options), rounds, name[:8])
                row.append(f"{ms:8.1f} ms {ms / normal:5.1f}x ({status})")
            lines.append(f"  {name:46} without bounds {row[0]}   with bounds {row[1]}")
            print(f"  done: {backend} / {name}", file=sys.stderr)
    spconfig.refresh()
    return lines


def run(rounds: int) -> None:
    lines = []
    for backend in ("xmlsec", "xmlsec1"):
        lines += bench_backend(backend, rounds)
    print(f"\nHostile responses through the ACS view (CPU time, median of {rounds}; ratio to a normal login):\n")
    print("\n".join(lines))
