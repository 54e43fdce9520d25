"""IdP metadata that lives: fetched over real HTTP, checked, kept, refreshed (saml_jit.saml.metadata).

The IdP's metadata is served by :class:`saml_jit.testing.metadata.MetadataServer`
on 127.0.0.1 (a free port, a thread); the SP knows IdP A *only* through
``SAML_JIT["METADATA"]``, so every login below proves which copy the SP
trusted. Keys are generated at run time. Time moves with a fake clock shared
by the metadata store (wall clock) and the SP configuration cache.
"""

from __future__ import annotations

import dataclasses
import io
import time

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import caches
from django.core.management import CommandError, call_command

from saml_jit.checks import Codes, check_metadata, check_values
from saml_jit.config import saml_config
from saml_jit.models import EventKind, EventSource, ProvisioningEvent
from saml_jit.saml import config as sp_config
from saml_jit.saml import metadata
from saml_jit.testing.idp import TestIdP, generate_keypair
from saml_jit.testing.metadata import MetadataServer, metadata_document
from tests.conftest import person
from tests.federation import BASE_URL, IDP_A, IDP_B, KEYS, SP_CERT, SP_ENTITY_ID, SP_KEY

pytestmark = pytest.mark.django_db

User = get_user_model()
HOUR = 3600
SIGNER_KEY, SIGNER_CERT = generate_keypair(KEYS, "metadata-signer", "saml_jit test federation signer")
ROGUE_SIGNER_KEY, ROGUE_SIGNER_CERT = generate_keypair(KEYS, "metadata-rogue", "saml_jit rogue metadata signer")
NEW_IDP_KEY, NEW_IDP_CERT = generate_keypair(KEYS, "idp-a-next", "saml_jit test IdP A (next key)")
#: IdP A after its key rollover: same entity, new signing key.
IDP_A_NEXT = TestIdP(IDP_A.entity_id, NEW_IDP_KEY, NEW_IDP_CERT, IDP_A.base_url)


class Clock:
    """One fake time for the metadata store (wall clock) and the configuration cache (monotonic)."""

    def __init__(self) -> None:
        self.now = time.time()

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(metadata, "_now", lambda: fake.now)
    monkeypatch.setattr(sp_config, "_clock", lambda: fake.now)
    return fake


@pytest.fixture
def server():
    with MetadataServer() as running:
        yield running


def signed(idp: TestIdP = IDP_A, **kwargs) -> bytes:
    kwargs.setdefault("signed_by", (SIGNER_KEY, SIGNER_CERT))
    return metadata_document(idp.metadata_xml(), **kwargs)


@pytest.fixture
def federation(settings, server, clock, tmp_path):
    """The SP trusts IdP B inline and IdP A through signed metadata at a URL."""
    url = server.serve("idp-a.xml", signed())
    settings.SAML_CONFIG = saml_config(
        entity_id=SP_ENTITY_ID,
        base_url=BASE_URL,
        idp_metadata_xml=[IDP_B.metadata_xml()],
        key_file=SP_KEY,
        cert_file=SP_CERT,
    )
    settings.SAML_JIT = {
        "METADATA": [{"url": url, "cert": str(SIGNER_CERT)}],
        "METADATA_DIR": str(tmp_path / "metadata"),
        "METADATA_RETRY": 60,
    }
    source = metadata.sources()[0]
    yield source
    metadata.Store().forget(source)


def refusals(code: str):
    return ProvisioningEvent.objects.filter(kind=EventKind.REJECTED, source=EventSource.SYSTEM, reason_code=code)


def signs_in(browser, idp: TestIdP = IDP_A, name_id: str = "subject-alice-0001") -> bool:
    response = browser.login(idp=idp, name_id=name_id, attributes=person(email=f"{name_id}@example.org"))
    browser.client.logout()
    return response.status_code == 302


def build() -> None:
    sp_config.get_sp_config()


# --------------------------------------------------------------------------
# Fetching and serving


def test_login_through_metadata_fetched_from_a_url(browser, crypto_backend, federation, server):
    assert signs_in(browser)
    assert User.objects.count() == 1
    assert server.requests["idp-a.xml"] == 1
    assert signs_in(browser, IDP_B, "subject-bob")  # inline metadata still served beside it
    assert server.requests["idp-a.xml"] == 1  # the cached configuration, no new fetch


def test_refreshed_on_schedule_and_rotation_honoured(browser, crypto_backend, federation, server, clock, settings):
    assert signs_in(browser)
    server.serve("idp-a.xml", signed(IDP_A_NEXT))  # the IdP rolled its key
    clock.advance(5 * HOUR)
    assert not signs_in(browser, IDP_A_NEXT)  # not due yet: the old key is still the trusted one
    assert server.requests["idp-a.xml"] == 1
    clock.advance(HOUR + 1)  # METADATA_REFRESH (6 h) has passed
    assert signs_in(browser, IDP_A_NEXT)
    assert server.requests["idp-a.xml"] == 2
    assert not signs_in(browser, IDP_A, "subject-old-key")  # the retired key no longer verifies
    assert refusals(metadata.FETCH_FAILED).count() == 0


def test_cache_duration_brings_the_refresh_forward(browser, federation, server, clock):
    server.serve("idp-a.xml", signed(cache_duration="PT10M"))
    metadata.Store().forget(federation)
    sp_config.refresh()
    build()
    assert server.requests["idp-a.xml"] == 1
    clock.advance(9 * 60)
    build()
    assert server.requests["idp-a.xml"] == 1
    clock.advance(61)
    build()
    assert server.requests["idp-a.xml"] == 2  # cacheDuration, not the 6-hour schedule


def test_valid_until_brings_the_refresh_forward(federation, server, clock):
    server.serve("idp-a.xml", signed(valid_until=HOUR))
    copy = metadata.refresh(federation)
    assert copy.due_at(6 * HOUR) == pytest.approx(clock.now + HOUR, abs=2)


# --------------------------------------------------------------------------
# Refusing, and the last good copy


def test_expired_metadata_refused_and_last_good_copy_serves_until_it_expires(
    browser, crypto_backend, federation, server, clock
):
    server.serve("idp-a.xml", signed(valid_until=8 * HOUR))
    metadata.Store().forget(federation)
    sp_config.refresh()
    assert signs_in(browser)
    server.serve("idp-a.xml", signed(valid_until=-60))  # the IdP publishes stale metadata
    clock.advance(6 * HOUR + 1)
    assert signs_in(browser, name_id="subject-2")  # refused, but the last good copy is still valid
    assert refusals(metadata.EXPIRED).count() == 1
    event = refusals(metadata.EXPIRED).get()
    assert event.idp_entity_id == IDP_A.entity_id
    assert server.url("idp-a.xml") in event.message  # no query: shown as configured
    request_id = browser.start_login(IDP_A)
    clock.advance(2 * HOUR)  # the last good copy's validUntil passes
    response = browser.post_response(IDP_A, name_id="subject-3", attributes={}, in_response_to=request_id)
    # IdP A is no longer trusted: nothing verifies its signature.
    assert response.status_code == 400
    assert ProvisioningEvent.objects.filter(source=EventSource.SAML).latest("pk").reason_code == "bad_signature"
    assert User.objects.count() == 2
    assert refusals(metadata.EXPIRED).count() >= 2


def test_expired_metadata_never_served(federation, server):
    server.serve("idp-a.xml", signed(valid_until=-1))
    metadata.Store().forget(federation)
    assert metadata.current(federation) is None
    assert refusals(metadata.EXPIRED).count() == 1
    with pytest.raises(metadata.MetadataRefused) as refused:
        metadata.refresh(federation)
    assert refused.value.code == metadata.EXPIRED


@pytest.mark.parametrize(
    "document",
    [
        lambda: signed(signed_by=(ROGUE_SIGNER_KEY, ROGUE_SIGNER_CERT)),
        lambda: signed(signed_by=None),  # unsigned, although a signer is configured
        lambda: signed().replace(b"idp-a.example.org/idp/sso", b"attacker.example/idp/sso"),  # altered after signing
    ],
    ids=["rogue-signer", "unsigned", "tampered"],
)
def test_bad_signature_refused_and_last_good_copy_kept(browser, crypto_backend, federation, server, clock, document):
    assert signs_in(browser)
    server.serve("idp-a.xml", document())
    clock.advance(6 * HOUR + 1)
    assert signs_in(browser, name_id="subject-2")
    assert server.requests["idp-a.xml"] == 2
    assert refusals(metadata.BAD_SIGNATURE).count() == 1
    assert b"attacker.example" not in metadata.Store().get(federation).xml


def test_unreachable_reported_once_per_retry(browser, crypto_backend, federation, server, clock, caplog):
    assert signs_in(browser)
    server.fail("idp-a.xml", 503)
    clock.advance(6 * HOUR + 1)
    assert signs_in(browser, name_id="subject-2")  # served from the last good copy
    assert refusals(metadata.FETCH_FAILED).get().message.endswith("HTTP 503")
    assert any("metadata_fetch_failed" in record.getMessage() for record in caplog.records)
    clock.advance(30)
    sp_config.refresh()
    build()
    assert server.requests["idp-a.xml"] == 2  # within METADATA_RETRY: nobody fetches again
    clock.advance(61)  # past the retry, and past the configuration's own next look
    build()
    assert server.requests["idp-a.xml"] == 3
    assert refusals(metadata.FETCH_FAILED).count() == 2  # one event per failed fetch


def test_nothing_listening(settings, federation):
    settings.SAML_JIT = {**settings.SAML_JIT, "METADATA": ["http://127.0.0.1:9/nothing-listens-here.xml"]}
    source = metadata.sources()[0]
    try:
        assert metadata.current(source) is None
        assert refusals(metadata.FETCH_FAILED).get().message.endswith("ConnectionError")
        build()  # the SP still works for its other IdPs
    finally:
        metadata.Store().forget(source)


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"<html>maintenance</html>", "not SAML metadata"),
        (b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'b'>]><x/>", "document type declaration"),
        (b"<EntityDescriptor", "not well-formed"),
    ],
)
def test_not_metadata_refused(federation, server, body, detail):
    server.serve("idp-a.xml", body)
    with pytest.raises(metadata.MetadataRefused) as refused:
        metadata.refresh(federation)
    assert refused.value.code == metadata.INVALID
    assert detail in refused.value.detail
    assert refusals(metadata.INVALID).count() == 1


# --------------------------------------------------------------------------
# Several nodes


def test_one_node_fetches_the_other_reads_the_shared_copy(federation, server, tmp_path):
    node_1 = metadata.Store(directory=str(tmp_path / "node-1"))
    node_2 = metadata.Store(directory=str(tmp_path / "node-2"))
    assert metadata.current(federation, node_1) is not None
    assert metadata.current(federation, node_2) is not None
    assert server.requests["idp-a.xml"] == 1


def test_a_fetch_in_progress_elsewhere_is_not_repeated(federation, server, clock):
    store = metadata.Store()
    metadata.refresh(federation, store)
    clock.advance(6 * HOUR + 1)
    assert store.lock(federation, 30)  # another node is fetching
    try:
        assert metadata.current(federation, store) is not None  # the last good copy, no second fetch
        assert server.requests["idp-a.xml"] == 1
    finally:
        store.unlock(federation)
    assert metadata.current(federation, store) is not None
    assert server.requests["idp-a.xml"] == 2


def test_per_node_copy_survives_a_cache_flush(federation, server, settings):
    store = metadata.Store()
    metadata.refresh(federation, store)
    caches[settings.SAML_JIT.get("METADATA_CACHE", "default")].delete(f"saml_jit:metadata:{federation.key}:copy")
    server.fail("idp-a.xml", 500)
    copy = metadata.Store().get(federation)
    assert copy is not None and copy.entity_ids == (IDP_A.entity_id,)
    assert server.requests["idp-a.xml"] == 1


# --------------------------------------------------------------------------
# Files


def test_metadata_from_a_file(browser, crypto_backend, settings, federation, tmp_path, clock):
    path = tmp_path / "idp-a.xml"
    path.write_bytes(signed())
    settings.SAML_JIT = {**settings.SAML_JIT, "METADATA": [{"file": str(path), "cert": str(SIGNER_CERT)}]}
    source = metadata.sources()[0]
    try:
        assert signs_in(browser)
        path.write_bytes(signed(valid_until=-1))
        clock.advance(6 * HOUR + 1)
        assert signs_in(browser, name_id="subject-2")  # the expired file is refused, the copy serves
        assert refusals(metadata.EXPIRED).count() == 1
    finally:
        metadata.Store().forget(source)


def test_missing_file_reported(settings, federation, tmp_path):
    settings.SAML_JIT = {**settings.SAML_JIT, "METADATA": [str(tmp_path / "absent.xml")]}
    source = metadata.sources()[0]
    assert metadata.current(source) is None
    assert "FileNotFoundError" in refusals(metadata.FETCH_FAILED).get().message


# --------------------------------------------------------------------------
# Pure parts


@pytest.mark.parametrize(
    ("value", "seconds"), [("PT6H", 6 * HOUR), ("P1D", 86400), ("PT1H30M", 5400), ("PT0.5S", 0.5), ("P1M", 30 * 86400)]
)
def test_parse_duration(value, seconds):
    assert metadata.parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["", "P", "PT", "6 hours", "P1DT", "-PT1H"])
def test_parse_duration_refuses(value):
    with pytest.raises(metadata.MetadataRefused):
        metadata.parse_duration(value)


def test_malformed_source_setting(settings):
    settings.SAML_JIT = {"METADATA": [{"cert": "x.pem"}]}
    with pytest.raises(Exception, match="METADATA"):
        metadata.sources()


# --------------------------------------------------------------------------
# saml_jit_metadata


def run_command(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("saml_jit_metadata", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_command_fetches_verifies_and_lists_certificates(federation, server):
    out, _ = run_command()
    assert server.requests["idp-a.xml"] == 1
    assert metadata.Store().get(federation) is not None
    assert f"{IDP_A.entity_id} idp signing: CN=saml_jit test IdP A, expires" in out
    assert f"{IDP_B.entity_id} idp signing: CN=saml_jit test IdP B" in out  # SAML_CONFIG's inline metadata
    assert "ok: 1 entities" in out


def test_command_shows_a_rollover_and_both_keys(federation, server):
    server.serve("idp-a.xml", signed(extra_signing_certs=[NEW_IDP_CERT]))
    out, _ = run_command()
    assert "CN=saml_jit test IdP A (next key)" in out
    assert "CN=saml_jit test IdP A," in out


def test_command_fails_on_a_bad_signature_and_keeps_the_last_good_copy(federation, server):
    run_command()
    good = metadata.Store().get(federation).xml
    server.serve("idp-a.xml", signed(signed_by=(ROGUE_SIGNER_KEY, ROGUE_SIGNER_CERT)))
    with pytest.raises(CommandError, match="metadata_bad_signature"):
        run_command()
    assert server.requests["idp-a.xml"] == 2
    assert refusals(metadata.BAD_SIGNATURE).count() == 1
    assert metadata.Store().get(federation).xml == good


def test_command_fails_when_unreachable_and_nothing_is_left(federation, server):
    server.fail("idp-a.xml", 500)
    with pytest.raises(CommandError, match="no valid copy is left"):
        run_command()
    assert refusals(metadata.FETCH_FAILED).count() == 1


def test_command_check_only_stores_nothing(federation, server):
    run_command("--check-only")
    assert server.requests["idp-a.xml"] == 1
    assert metadata.Store().get(federation) is None


def test_command_flags_expiring_certificates(federation, server, tmp_path):
    key, cert = generate_keypair(tmp_path, "short", "saml_jit short-lived IdP key", days=10)
    server.serve("idp-a.xml", signed(TestIdP(IDP_A.entity_id, key, cert, IDP_A.base_url)))
    out, _ = run_command()
    assert "CN=saml_jit short-lived IdP key" in out and "(within 30 days)" in out


# --------------------------------------------------------------------------
# System checks


def check_ids() -> list[str]:
    return [message.id for message in check_metadata()]


def test_check_quiet_when_all_is_well(federation):
    metadata.refresh(federation)
    assert check_ids() == []


def test_check_warns_before_the_first_fetch(federation):
    assert check_ids() == [Codes.METADATA_NOT_FETCHED]


def test_check_errors_on_an_expired_last_copy(federation):
    metadata.refresh(federation)
    store = metadata.Store()
    expired = dataclasses.replace(store.get(federation), valid_until=time.time() - 1)
    store.put(federation, expired)
    assert check_ids() == [Codes.METADATA_EXPIRED]


def test_check_warns_on_an_idp_signing_certificate_expiring_soon(federation, settings, tmp_path):
    key, cert = generate_keypair(tmp_path, "short", "saml_jit short-lived IdP key", days=20)
    settings.SAML_CONFIG = {
        **settings.SAML_CONFIG,
        "metadata": {
            "inline": [TestIdP("https://short.example/idp", key, cert, "https://short.example").metadata_xml()]
        },
    }
    metadata.refresh(federation)
    messages = check_metadata()
    assert [m.id for m in messages] == [Codes.IDP_CERT_EXPIRING]
    assert "https://short.example/idp" in messages[0].msg


def test_check_warns_on_an_expired_idp_signing_certificate_in_managed_metadata(federation, server, tmp_path):
    key, cert = generate_keypair(tmp_path, "old", "saml_jit expired IdP key", days=-5)
    server.serve("idp-a.xml", signed(TestIdP(IDP_A.entity_id, key, cert, IDP_A.base_url)))
    metadata.refresh(federation)
    messages = check_metadata()
    assert [m.id for m in messages] == [Codes.IDP_CERT_EXPIRING]
    assert "has expired" in messages[0].msg


def test_check_warning_window_is_a_setting(federation, settings, tmp_path):
    key, cert = generate_keypair(tmp_path, "short", "saml_jit short-lived IdP key", days=20)
    settings.SAML_JIT = {**settings.SAML_JIT, "METADATA_CERT_WARNING_DAYS": 10}
    settings.SAML_CONFIG = {
        **settings.SAML_CONFIG,
        "metadata": {
            "inline": [TestIdP("https://short.example/idp", key, cert, "https://short.example").metadata_xml()]
        },
    }
    metadata.refresh(federation)
    assert check_ids() == []


@pytest.mark.parametrize(
    "changes",
    [
        {"METADATA": [{"cert": "signer.pem"}]},
        {"METADATA": [{"url": "https://md.example/idp.xml", "cert": "/nonexistent/signer.pem"}]},
        {"METADATA_CACHE": "no-such-cache"},
    ],
    ids=["no-location", "missing-signer-cert", "unknown-cache"],
)
def test_check_errors_on_malformed_settings(settings, changes):
    settings.SAML_JIT = {"METADATA": ["https://md.example/idp.xml"], **changes}
    assert Codes.METADATA_SETTING_INVALID in check_ids()


def test_check_numbers(settings):
    settings.SAML_JIT = {"METADATA_REFRESH": 0}
    assert any(m.id == Codes.INVALID_SETTING and "METADATA_REFRESH" in m.msg for m in check_values())


def test_logs_and_events_never_show_url_credentials_or_query(settings, federation, caplog):
    url = "http://reader:s3cret@127.0.0.1:9/md.xml?token=s3cret"
    settings.SAML_JIT = {**settings.SAML_JIT, "METADATA": [url]}
    source = metadata.sources()[0]
    assert metadata.current(source) is None
    event = refusals(metadata.FETCH_FAILED).get()
    assert "s3cret" not in event.message and "127.0.0.1:9/md.xml" in event.message
    assert not any("s3cret" in record.getMessage() for record in caplog.records)
    metadata.Store().forget(source)


def test_check_survives_an_unreadable_store(federation, monkeypatch):
    def broken(self, source):
        raise ConnectionError("cache down")

    monkeypatch.setattr(metadata.Store, "get", broken)
    assert check_ids() == [Codes.METADATA_NOT_FETCHED]


def test_cold_start_waits_for_the_node_that_is_fetching(federation, server, monkeypatch):
    # Node 1 holds the lock and is fetching; node 2, with no copy at all, waits for its result
    # instead of starting without the IdP.
    store = metadata.Store()
    assert store.lock(federation, 30)
    good = metadata.check(metadata.read(federation), federation)
    monkeypatch.setattr(metadata, "_POLL", 0.01)
    calls = []

    def finish_on_first_poll(seconds):
        if not calls:
            store.put(federation, good)  # node 1 stores what it fetched
        calls.append(seconds)

    monkeypatch.setattr(metadata, "_sleep", finish_on_first_poll)
    try:
        assert metadata.current(federation, store) == good
    finally:
        store.unlock(federation)
    assert server.requests["idp-a.xml"] == 1  # node 2 fetched nothing itself


def test_cold_start_gives_up_after_the_timeout(federation, server, settings, monkeypatch):
    settings.SAML_JIT = {**settings.SAML_JIT, "METADATA_TIMEOUT": 1}
    store = metadata.Store()
    assert store.lock(federation, 30)
    monkeypatch.setattr(metadata, "_POLL", 0.05)
    try:
        started = time.monotonic()
        assert metadata.current(federation, store) is None
        assert 0.9 < time.monotonic() - started < 5
    finally:
        store.unlock(federation)
