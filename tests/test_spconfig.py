"""The cached pysaml2 SP configuration (saml_jit.saml.config)."""

from __future__ import annotations

import threading

import pytest
from django.conf import settings as django_settings
from django.test import RequestFactory, override_settings
from django.urls import reverse
from djangosaml2.conf import get_config
from saml2.client import Saml2Client
from saml2.config import SPConfig

from saml_jit.saml import config as spconfig
from saml_jit.saml.adapter import BACKEND_NAME
from saml_jit.saml.backend import XmlSecBackend
from tests.conftest import Browser, person
from tests.federation import ACS_URL, FRIENDLY_NAMES, IDP_A, IDP_B, SP_ENTITY_ID

LOADER = "saml_jit.saml.config.config_loader"
loader_calls: list[object] = []


def counting_loader(request=None):
    """A custom SAML_CONFIG_LOADER (as a site would write one), counting its calls."""
    loader_calls.append(request)
    return spconfig.build_sp_config(django_settings.SAML_CONFIG)


def other_loader(request=None):
    loader_calls.append(("other", request))
    return spconfig.build_sp_config(django_settings.SAML_CONFIG)


def legacy_loader(request=None):
    """A loader that knows nothing of saml_jit (plain pysaml2, default crypto_backend)."""
    loader_calls.append(request)
    conf = SPConfig()
    conf.load(dict(django_settings.SAML_CONFIG))
    return conf


def host_key(request):
    return request.get_host() if request is not None else None


def host_loader(request=None):
    loader_calls.append(request)
    config = dict(django_settings.SAML_CONFIG)
    if request is not None:
        config["entityid"] = f"http://{request.get_host()}/saml2/metadata/"
    return spconfig.build_sp_config(config)


@pytest.fixture(autouse=True)
def _clean():
    spconfig.refresh()
    loader_calls.clear()
    yield
    spconfig.refresh()
    loader_calls.clear()


@pytest.fixture
def clock(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(spconfig, "_clock", lambda: now[0])
    return now


rf = RequestFactory()


# --------------------------------------------------------------------------
# Reuse


def test_same_object_reused():
    first = spconfig.get_sp_config()
    assert spconfig.get_sp_config() is first
    assert spconfig.get_sp_config(rf.get("/")) is first
    assert spconfig.config_loader(rf.get("/")) is first
    assert isinstance(first, SPConfig)
    assert first.entityid == SP_ENTITY_ID


def test_djangosaml2_get_config_uses_the_cache(settings):
    settings.SAML_CONFIG_LOADER = LOADER
    first = get_config(None, rf.get("/"))
    assert get_config(None, rf.get("/other")) is first
    assert spconfig.get_sp_config() is first


def test_former_loader_path_still_works(settings):
    """Settings written for earlier releases name saml_jit.spconfig.config_loader (with a warning)."""
    import importlib
    import sys

    sys.modules.pop("saml_jit.spconfig", None)
    with pytest.deprecated_call(match="saml_jit.spconfig moved"):
        importlib.import_module("saml_jit.spconfig")
    import saml_jit.spconfig

    settings.SAML_CONFIG_LOADER = "saml_jit.spconfig.config_loader"
    first = get_config(None, rf.get("/"))
    assert first is spconfig.get_sp_config()
    assert saml_jit.spconfig.get_sp_config() is first
    assert saml_jit.spconfig.refresh is spconfig.refresh
    assert saml_jit.spconfig.CachedSPConfigMixin is spconfig.CachedSPConfigMixin
    assert saml_jit.spconfig.build_sp_config is spconfig.build_sp_config


def test_mixin_reads_the_cache():
    class View(spconfig.CachedSPConfigMixin):
        pass

    assert View().get_sp_config(rf.get("/")) is spconfig.get_sp_config()


def test_cached_config_uses_the_selected_backend(settings):
    conf = spconfig.get_sp_config()
    assert conf.crypto_backend == BACKEND_NAME
    assert isinstance(Saml2Client(conf).sec.crypto, XmlSecBackend)
    settings.SAML_JIT = {"CRYPTO_BACKEND": "xmlsec1"}
    conf = spconfig.get_sp_config()
    assert conf.crypto_backend == "xmlsec1"
    assert conf.xmlsec_binary == django_settings.SAML_CONFIG["xmlsec_binary"]


def test_settings_dict_not_modified():
    before = repr(django_settings.SAML_CONFIG)
    spconfig.get_sp_config()
    assert repr(django_settings.SAML_CONFIG) == before


@pytest.mark.django_db
def test_logins_share_one_config_and_leave_it_unchanged(client, settings, monkeypatch):
    """Two logins through the real views: one configuration object, not mutated by pysaml2."""
    settings.SAML_CONFIG_LOADER = LOADER
    import saml_jit.views

    seen = []

    class Spy(saml_jit.views.Saml2Client):
        def __init__(self, config, *args, **kwargs):
            seen.append(config)
            super().__init__(config, *args, **kwargs)

    monkeypatch.setattr(saml_jit.views, "Saml2Client", Spy)
    conf = spconfig.get_sp_config()
    before = dict(vars(conf))
    for name_id, email, idp in (
        ("subject-alice-0001", "alice@example.org", IDP_A),
        ("subject-bob-0002", "bob@example.net", IDP_B),
    ):
        browser = Browser(client)
        client.logout()
        response = browser.login(idp, name_id=name_id, attributes=person(email=email, given_name="B"))
        assert response.status_code == 302, response.content[:300]
    assert len(seen) == 2 and seen[0] is seen[1] is conf
    after = dict(vars(conf))
    assert after.keys() == before.keys()
    changed = [key for key in before if after[key] is not before[key] and after[key] != before[key]]
    assert changed == []


# --------------------------------------------------------------------------
# Several IdPs


def test_several_idps_resolved():
    conf = spconfig.get_sp_config()
    for idp in (IDP_A, IDP_B):
        assert conf.metadata.certs(idp.entity_id, "idpsso", use="signing")
        assert conf.metadata.single_sign_on_service(idp.entity_id)


@pytest.mark.parametrize("idp", [IDP_A, IDP_B], ids=["idp-a", "idp-b"])
def test_each_idp_verifies_with_the_cached_config(idp):
    import base64

    import saml2

    client = Saml2Client(spconfig.get_sp_config())
    xml = idp.make_response(
        sp_entity_id=SP_ENTITY_ID,
        acs_url=ACS_URL,
        name_id="subject-1",
        attributes=person(),
        friendly_names=FRIENDLY_NAMES,
        in_response_to="id-req",
    )
    data = base64.b64encode(xml.encode()).decode()
    response = client.parse_authn_request_response(data, saml2.BINDING_HTTP_POST, {"id-req": "/"})
    assert response.assertion.issuer.text == idp.entity_id
    # The other IdP's signature does not pass for this IdP's issuer.
    other = IDP_B if idp is IDP_A else IDP_A
    forged = idp.make_response(
        sp_entity_id=SP_ENTITY_ID,
        acs_url=ACS_URL,
        name_id="subject-1",
        in_response_to="id-req",
        signing_key_file=other.key_file,
        signing_cert_file=other.cert_file,
    )
    with pytest.raises(Exception):  # noqa: B017 - pysaml2 raises SignatureError subclasses
        result = client.parse_authn_request_response(
            base64.b64encode(forged.encode()).decode(), saml2.BINDING_HTTP_POST, {"id-req": "/"}
        )
        assert result is None or result.assertion is None
        raise AssertionError("refused without an exception")


# --------------------------------------------------------------------------
# Refresh


def test_refresh_rebuilds():
    first = spconfig.get_sp_config()
    spconfig.refresh()
    second = spconfig.get_sp_config()
    assert second is not first
    assert spconfig.get_sp_config() is second


def test_refresh_is_a_signal_receiver():
    from django.dispatch import Signal

    metadata_updated = Signal()
    metadata_updated.connect(spconfig.refresh)
    try:
        first = spconfig.get_sp_config()
        metadata_updated.send(sender=None)
        assert spconfig.get_sp_config() is not first
    finally:
        metadata_updated.disconnect(spconfig.refresh)


def test_override_settings_refreshes():
    first = spconfig.get_sp_config()
    config = dict(django_settings.SAML_CONFIG, entityid="https://other-sp.example/metadata/")
    with override_settings(SAML_CONFIG=config):
        inside = spconfig.get_sp_config()
        assert inside is not first
        assert inside.entityid == "https://other-sp.example/metadata/"
    assert spconfig.get_sp_config().entityid == SP_ENTITY_ID


def test_max_age_honoured(settings, clock):
    settings.SAML_JIT = {"CONFIG_MAX_AGE": 60}
    first = spconfig.get_sp_config()
    clock[0] += 59
    assert spconfig.get_sp_config() is first
    clock[0] += 2
    second = spconfig.get_sp_config()
    assert second is not first
    clock[0] += 30
    assert spconfig.get_sp_config() is second


def test_no_max_age_means_only_refresh(settings, clock):
    settings.SAML_JIT = {"CONFIG_MAX_AGE": None}
    first = spconfig.get_sp_config()
    clock[0] += 10 * 365 * 86400
    assert spconfig.get_sp_config() is first


def test_default_max_age_is_an_hour(clock):
    first = spconfig.get_sp_config()
    clock[0] += 3599
    assert spconfig.get_sp_config() is first
    clock[0] += 2
    assert spconfig.get_sp_config() is not first


def test_failed_rebuild_keeps_the_old_config_and_retries(settings, clock, monkeypatch, caplog):
    settings.SAML_JIT = {
        "CONFIG_MAX_AGE": 60,
        "CONFIG_RETRY": 10,
        "CONFIG_LOADER": "tests.test_spconfig.counting_loader",
    }
    first = spconfig.get_sp_config()
    assert len(loader_calls) == 1

    def broken(request=None):
        loader_calls.append("broken")
        raise OSError("metadata URL unreachable")

    monkeypatch.setattr("tests.test_spconfig.counting_loader", broken)
    clock[0] += 61
    assert spconfig.get_sp_config() is first  # rebuild failed: old one kept
    assert loader_calls[-1] == "broken" and "could not rebuild" in caplog.text
    calls = len(loader_calls)
    clock[0] += 5
    assert spconfig.get_sp_config() is first
    assert len(loader_calls) == calls  # no retry before CONFIG_RETRY
    clock[0] += 6
    assert spconfig.get_sp_config() is first
    assert len(loader_calls) == calls + 1  # retried


def test_first_build_failure_raises(settings, monkeypatch):
    settings.SAML_JIT = {"CONFIG_LOADER": "tests.test_spconfig.counting_loader"}

    def broken(request=None):
        raise OSError("no metadata")

    monkeypatch.setattr("tests.test_spconfig.counting_loader", broken)
    with pytest.raises(OSError):
        spconfig.get_sp_config()


# --------------------------------------------------------------------------
# Custom loaders


def test_custom_loader_called_once_without_request(settings):
    settings.SAML_JIT = {"CONFIG_LOADER": "tests.test_spconfig.counting_loader"}
    first = spconfig.get_sp_config(rf.get("/"))
    assert spconfig.get_sp_config(rf.get("/")) is first
    assert loader_calls == [None]  # cached result is request-independent by construction


def test_saml_config_loader_setting_is_wrapped(settings):
    """A site's own SAML_CONFIG_LOADER is the one cached when SAML_JIT names none."""
    settings.SAML_CONFIG_LOADER = "tests.test_spconfig.counting_loader"
    first = spconfig.get_sp_config()
    assert spconfig.get_sp_config() is first
    assert len(loader_calls) == 1


def test_cache_keyed_on_loader_path(settings):
    settings.SAML_JIT = {"CONFIG_LOADER": "tests.test_spconfig.counting_loader"}
    first = spconfig.get_sp_config()
    settings.SAML_JIT = {"CONFIG_LOADER": "tests.test_spconfig.other_loader"}
    second = spconfig.get_sp_config()
    assert second is not first
    assert loader_calls == [None, ("other", None)]
    spconfig.refresh(loader="tests.test_spconfig.other_loader")
    assert len(spconfig.cached_configs()) == 0  # settings change refreshed everything already
    assert spconfig.get_sp_config() is not second


def test_refresh_one_loader_only(settings):
    settings.SAML_JIT = {"CONFIG_LOADER": "tests.test_spconfig.counting_loader"}
    first = spconfig.get_sp_config()
    spconfig._cache[("other", "xmlsec", None)] = spconfig._Entry(first, 0.0)
    spconfig.refresh(loader="other")
    assert spconfig.get_sp_config() is first
    spconfig.refresh(loader="tests.test_spconfig.counting_loader")
    assert spconfig.get_sp_config() is not first


def test_legacy_loader_adopted(settings):
    """A plain pysaml2 loader still gets the in-process backend (and its metadata store too)."""
    settings.SAML_JIT = {"CONFIG_LOADER": "tests.test_spconfig.legacy_loader"}
    conf = spconfig.get_sp_config()
    assert conf.crypto_backend == BACKEND_NAME
    assert isinstance(conf.metadata.security.crypto, XmlSecBackend)
    assert isinstance(Saml2Client(conf).sec.crypto, XmlSecBackend)


def test_request_dependent_loader_with_cache_key(settings):
    settings.ALLOWED_HOSTS = ["a.example", "b.example"]
    settings.SAML_JIT = {
        "CONFIG_LOADER": "tests.test_spconfig.host_loader",
        "CONFIG_CACHE_KEY": "tests.test_spconfig.host_key",
    }
    a1 = spconfig.get_sp_config(rf.get("/", HTTP_HOST="a.example"))
    a2 = spconfig.get_sp_config(rf.get("/x", HTTP_HOST="a.example"))
    b = spconfig.get_sp_config(rf.get("/", HTTP_HOST="b.example"))
    assert a1 is a2 and b is not a1
    assert a1.entityid == "http://a.example/saml2/metadata/"
    assert b.entityid == "http://b.example/saml2/metadata/"
    assert len(loader_calls) == 2 and all(request is not None for request in loader_calls)


def test_cache_opt_out(settings):
    settings.ALLOWED_HOSTS = ["a.example"]
    settings.SAML_JIT = {"CONFIG_LOADER": "tests.test_spconfig.host_loader", "CONFIG_CACHE": False}
    request = rf.get("/", HTTP_HOST="a.example")
    first = spconfig.get_sp_config(request)
    second = spconfig.get_sp_config(request)
    assert first is not second
    assert loader_calls == [request, request]  # the loader sees the request, as with djangosaml2
    assert first.crypto_backend == BACKEND_NAME


def test_loader_cannot_wrap_itself(settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.SAML_JIT = {"CONFIG_LOADER": LOADER}
    with pytest.raises(ImproperlyConfigured):
        spconfig.get_sp_config()


def test_virtual_organisations_not_cached(settings, caplog):
    config = dict(django_settings.SAML_CONFIG)
    config["virtual_organization"] = {
        "urn:example:vo": {
            "nameid_format": "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
            "common_identifier": "eduPersonPrincipalName",
        }
    }
    settings.SAML_CONFIG = config
    first = spconfig.get_sp_config()
    assert spconfig.get_sp_config() is not first
    assert "does not cache" in caplog.text


# --------------------------------------------------------------------------
# Threads


def test_concurrent_first_use_builds_once(settings):
    settings.SAML_JIT = {"CONFIG_LOADER": "tests.test_spconfig.counting_loader"}
    results, barrier = [], threading.Barrier(8)

    def worker():
        barrier.wait()
        results.append(spconfig.get_sp_config())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loader_calls) == 1
    assert len(results) == 8 and all(result is results[0] for result in results)


def test_stale_config_served_while_one_thread_rebuilds(settings, clock, monkeypatch):
    settings.SAML_JIT = {"CONFIG_MAX_AGE": 60, "CONFIG_LOADER": "tests.test_spconfig.counting_loader"}
    first = spconfig.get_sp_config()
    building, release = threading.Event(), threading.Event()
    real = counting_loader

    def slow(request=None):
        building.set()
        assert release.wait(10)
        return real(request)

    monkeypatch.setattr("tests.test_spconfig.counting_loader", slow)
    clock[0] += 61
    rebuilt = []
    thread = threading.Thread(target=lambda: rebuilt.append(spconfig.get_sp_config()))
    thread.start()
    assert building.wait(10)
    assert spconfig.get_sp_config() is first  # not blocked, not a second build
    release.set()
    thread.join()
    assert rebuilt[0] is not first
    assert spconfig.get_sp_config() is rebuilt[0]


def test_refresh_during_build_does_not_cache_the_stale_result(settings, monkeypatch):
    settings.SAML_JIT = {"CONFIG_LOADER": "tests.test_spconfig.counting_loader"}
    building, release = threading.Event(), threading.Event()
    real = counting_loader

    def slow(request=None):
        building.set()
        assert release.wait(10)
        return real(request)

    monkeypatch.setattr("tests.test_spconfig.counting_loader", slow)
    results = []
    thread = threading.Thread(target=lambda: results.append(spconfig.get_sp_config()))
    thread.start()
    assert building.wait(10)
    spconfig.refresh()
    release.set()
    thread.join()
    assert spconfig.cached_configs() == []


# --------------------------------------------------------------------------
# Measurement (printed, never asserted)


def test_metadata_view_uses_cache(client, settings):
    settings.SAML_CONFIG_LOADER = LOADER
    conf = spconfig.get_sp_config()
    response = client.get(reverse("saml2_metadata"))
    assert response.status_code == 200
    assert SP_ENTITY_ID.encode() in response.content
    assert spconfig.get_sp_config() is conf
