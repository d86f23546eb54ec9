"""The key-set cache against a real JWKS server on 127.0.0.1: refresh, cooldown, faults, sharing."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import threading
import time
import uuid
from types import SimpleNamespace

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from josepy.jwk import JWKEC
from rest_framework.test import APIClient

from cobee_django import jwks
from cobee_django.conf import get_settings
from cobee_django.exceptions import CobeeDjangoError, FetchError, KeySetUnavailable, Reason, TokenRejected
from cobee_django.testing import JWKSServer, TokenIssuer

pytestmark = pytest.mark.urls("tests.testapp.authviews")

COMPANY = uuid.UUID("5e9e9701-9883-447d-9884-46e75993e33b")
REDIS_URL = os.environ.get("COBEE_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")


def status(token: str) -> int:
    return APIClient().get("/whoami", HTTP_AUTHORIZATION=f"Bearer {token}").status_code


def fresh(issuer: TokenIssuer, **kwargs) -> str:
    """A token never seen before (so the validated-token cache cannot answer for the key set)."""
    return issuer.make_token(COMPANY, jti=uuid.uuid4().hex, **kwargs)


def issuer_keys() -> jwks.IssuerKeys:
    return jwks.keys_for(get_settings().issuers[0])


def age_key_set(seconds: float) -> None:
    """Pretend the in-process key set was fetched ``seconds`` earlier (instead of sleeping)."""
    keys = issuer_keys()
    assert keys._set is not None
    keys._set = dataclasses.replace(keys._set, fetched_at=keys._set.fetched_at - seconds)
    keys._last_attempt -= seconds


@pytest.fixture
def jwks_settings(settings, token_issuer):
    def configure(**extra):
        settings.COBEE_DJANGO = {
            "ISSUER": token_issuer.issuer,
            "AUDIENCE": token_issuer.audience,
            "JWKS_CACHE_ALIAS": None,
            **extra,
        }

    configure()
    return configure


def test_key_set_is_fetched_once_and_reused(jwks_settings, token_issuer, jwks_server):
    for _ in range(5):
        assert status(fresh(token_issuer)) == 200
    assert jwks_server.fetches() == 1


def test_refreshed_after_ttl(jwks_settings, token_issuer, jwks_server):
    jwks_settings(JWKS_CACHE_TTL=60)
    assert status(fresh(token_issuer)) == 200
    age_key_set(59)
    assert status(fresh(token_issuer)) == 200
    assert jwks_server.fetches() == 1
    age_key_set(2)
    assert status(fresh(token_issuer)) == 200
    assert jwks_server.fetches() == 2


def test_rotation_is_picked_up_and_removed_keys_stop_working(jwks_settings, token_issuer, jwks_server):
    old_token = fresh(token_issuer)
    assert status(old_token) == 200
    age_key_set(31)  # past the cooldown
    rotated = TokenIssuer(issuer=token_issuer.issuer, audience=token_issuer.audience)
    jwks_server.rotate(rotated)
    # A token with the new kid triggers one refresh, and is accepted.
    assert status(fresh(rotated)) == 200
    assert jwks_server.fetches() == 2
    # The old key left the set: even the cached old token is verified again, and refused.
    assert status(old_token) == 401
    assert jwks_server.fetches() == 2


def test_a_withdrawn_key_stops_its_cached_tokens_after_the_ttl(jwks_settings, token_issuer, jwks_server):
    jwks_settings(JWKS_CACHE_TTL=60)
    old_token = fresh(token_issuer)
    assert status(old_token) == 200
    jwks_server.rotate(TokenIssuer(issuer=token_issuer.issuer, audience=token_issuer.audience))
    assert status(old_token) == 200  # the cached set is fresh: the withdrawal is not known yet
    age_key_set(61)
    # No new token comes along: the cached token itself refreshes the old set, and is refused.
    assert status(old_token) == 401
    assert jwks_server.fetches() == 2


def test_flood_of_unknown_kids_costs_at_most_one_fetch(jwks_settings, token_issuer, jwks_server):
    assert status(fresh(token_issuer)) == 200
    age_key_set(3600)  # the cooldown has passed: the first unknown kid may fetch
    jwks_server.reset_counts()
    for _ in range(200):
        assert status(fresh(token_issuer, headers={"kid": uuid.uuid4().hex})) == 401
    assert jwks_server.fetches() <= 1


def test_concurrent_misses_share_one_fetch(jwks_settings, token_issuer, jwks_server):
    assert status(fresh(token_issuer)) == 200
    age_key_set(31)  # past the cooldown, within the TTL
    rotated = TokenIssuer(issuer=token_issuer.issuer, audience=token_issuer.audience)
    jwks_server.rotate(token_issuer, rotated)
    jwks_server.set_fault("slow", delay=0.3)
    jwks_server.reset_counts()
    token = fresh(rotated)
    keys = issuer_keys()
    results: list[object] = []
    start = threading.Barrier(20)

    def miss() -> None:
        start.wait()
        try:
            results.append(keys.get_key(rotated.kid).kid)
        except Exception as exc:
            results.append(exc)

    threads = [threading.Thread(target=miss) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [rotated.kid] * 20
    assert jwks_server.fetches() == 1
    jwks_server.set_fault(None)
    assert status(token) == 200


def test_unknown_kid_flood_across_threads_costs_at_most_one_fetch(jwks_settings, token_issuer, jwks_server):
    assert status(fresh(token_issuer)) == 200
    age_key_set(3600)
    jwks_server.reset_counts()
    keys = issuer_keys()
    failures: list[str] = []

    def flood() -> None:
        for _ in range(25):
            try:
                keys.get_key(uuid.uuid4().hex)
            except Exception as exc:
                failures.append(getattr(exc, "reason", exc).value)

    threads = [threading.Thread(target=flood) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == ["unknown_kid"] * 200
    assert jwks_server.fetches() <= 1


def test_issuer_down_with_warm_cache_keeps_working(jwks_settings, token_issuer, jwks_server, caplog):
    jwks_settings(JWKS_CACHE_TTL=60)
    assert status(fresh(token_issuer)) == 200
    jwks_server.set_fault("down")
    age_key_set(120)  # stale: a refresh is due, and it fails
    with caplog.at_level(logging.WARNING, logger="cobee_django"):
        for _ in range(5):
            assert status(fresh(token_issuer)) == 200
    # One failed attempt, then the cooldown holds further attempts back.
    assert jwks_server.fetches() == 2
    assert "keeping the last good set" in caplog.text
    assert "Traceback" not in caplog.text


@pytest.mark.parametrize("fault", ["down", "html", "malformed", "error", "redirect", "gzip", "huge", "huge_declared"])
def test_cold_cache_with_a_broken_issuer_is_503(jwks_settings, token_issuer, jwks_server, fault, caplog):
    jwks_server.set_fault(fault)
    with caplog.at_level(logging.WARNING, logger="cobee_django"):
        response = APIClient().get("/whoami", HTTP_AUTHORIZATION=f"Bearer {fresh(token_issuer)}")
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert response.json() == {"detail": "Authentication is temporarily unavailable; retry later."}
    assert "no key set yet" in caplog.text
    # Within the cooldown the next request does not hammer the issuer again.
    assert status(fresh(token_issuer)) == 503
    assert jwks_server.fetches() == 1
    # Once the issuer recovers and the cooldown has passed, keys are fetched.
    jwks_server.set_fault(None)
    issuer_keys()._last_attempt -= 60
    assert status(fresh(token_issuer)) == 200


def test_redirect_is_not_followed(jwks_settings, token_issuer, jwks_server):
    jwks_server.set_fault("redirect")
    assert status(fresh(token_issuer)) == 503
    assert jwks_server.fetches() == 1
    assert jwks_server.fetches("/redirected/.well-known/jwks.json") == 0


@pytest.mark.parametrize("fault", ["slow", "trickle"])
def test_slow_issuer_is_bounded_by_the_timeout(jwks_settings, token_issuer, jwks_server, fault):
    jwks_settings(JWKS_TIMEOUT=0.3)
    jwks_server.set_fault(fault, delay=2.0)
    started = time.monotonic()
    assert status(fresh(token_issuer)) == 503
    # Not a benchmark: the answer came long before the server would have finished.
    assert time.monotonic() - started < 2.0


def test_size_cap_is_configurable(jwks_settings, token_issuer, jwks_server):
    jwks_settings(JWKS_MAX_BYTES=1024)
    padded = {**token_issuer.jwks(), "padding": "x" * 2000}
    jwks_server.serve(padded)
    assert status(fresh(token_issuer)) == 503
    jwks_settings(JWKS_MAX_BYTES=4096)
    assert status(fresh(token_issuer)) == 200


def _entry(key, kid: str, **extra) -> dict:
    issuer = TokenIssuer(issuer="https://x.example/", audience="a", key=key, kid=kid)
    return {**issuer.public_jwk, **extra}


def test_unusable_entries_are_skipped_not_fatal(jwks_settings, token_issuer, jwks_server, caplog, rsa_key):
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = JWKEC(key=ec.generate_private_key(ec.SECP256R1()).public_key()).to_json()
    private = TokenIssuer(issuer="https://x.example/", audience="a", key=other, kid="private")
    entries = [
        token_issuer.public_jwk,
        _entry(weak, "weak"),
        {**ec_key, "kid": "ec"},
        _entry(other, "enc", use="enc"),
        _entry(other, "hmac-alg", alg="HS256"),
        _entry(other, "no-verify", key_ops=["encrypt"]),
        _entry(other, "dup"),
        _entry(weak, "dup"),
        {**private.public_jwk, "d": "AQAB"},
        {"kty": "RSA", "kid": "bad-n", "n": "!!!", "e": "AQAB"},
        {"kty": "RSA", "kid": "padded-n", "n": private.public_jwk["n"] + "=", "e": "AQAB"},
        {"kty": "RSA", "kid": "even-e", "n": private.public_jwk["n"], "e": "Ag"},
        {"kty": "oct", "kid": "oct", "k": "c2VjcmV0"},
        {"kty": "RSA", "n": private.public_jwk["n"], "e": "AQAB"},
        "not an object",
        {"kty": "RSA", "kid": 5, "n": private.public_jwk["n"], "e": "AQAB"},
    ]
    jwks_server.serve({"keys": entries})
    with caplog.at_level(logging.WARNING, logger="cobee_django"):
        assert status(fresh(token_issuer)) == 200
    keys = issuer_keys().key_set
    assert keys is not None and set(keys.keys) == {token_issuer.kid}
    assert "Skipped unusable entries" in caplog.text
    assert "AQAB" not in caplog.text  # no key material in logs
    for kid, key in [("weak", weak), ("enc", other), ("hmac-alg", other), ("dup", other), ("private", other)]:
        forged = TokenIssuer(issuer=token_issuer.issuer, audience=token_issuer.audience, key=key, kid=kid)
        assert status(fresh(forged)) == 401


def test_a_set_without_any_usable_key_is_a_failed_fetch(jwks_settings, token_issuer, jwks_server):
    jwks_server.serve({"keys": [{"kty": "oct", "kid": "x", "k": "c2VjcmV0"}]})
    assert status(fresh(token_issuer)) == 503


def test_plain_http_to_another_host_is_never_fetched():
    with pytest.raises(FetchError, match="https"):
        jwks.fetch_jwks("http://keys.example/jwks.json", timeout=1, max_bytes=1024)
    with pytest.raises(FetchError, match="https"):
        jwks.fetch_jwks("file:///etc/passwd", timeout=1, max_bytes=1024)


def test_fetch_jwks_reads_a_real_server(token_issuer, jwks_server):
    assert jwks.fetch_jwks(jwks_server.jwks_url, timeout=2, max_bytes=65536) == token_issuer.jwks()


def test_openid_configuration_is_served(rsa_key):
    import requests

    with JWKSServer(openid=True) as server:
        config = requests.get(server.url("/.well-known/openid-configuration"), timeout=5).json()
        assert config["issuer"] == server.base_url
        assert config["jwks_uri"] == server.jwks_url


# --- the shared cache -----------------------------------------------------------------------------


def age_shared_entry(cache, seconds: float) -> None:
    from django.core.signing import Signer

    key = issuer_keys().cache_key
    entry = json.loads(Signer(salt="cobee_django.jwks.shared-key-set").unsign(cache.get(key)))
    entry["fetched_at"] -= seconds
    cache.set(key, sign(json.dumps(entry)))


@pytest.fixture
def redis_cache(settings):
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except Exception:
        if os.environ.get("COBEE_REQUIRE_REDIS"):
            pytest.fail(f"COBEE_REQUIRE_REDIS is set but Redis is not reachable at {REDIS_URL}")
        pytest.skip(f"needs Redis at {REDIS_URL}")
    # Several test runs may share this Redis database: a unique prefix keeps them apart, and
    # nothing here flushes the database.
    prefix = f"cobee-test-{uuid.uuid4().hex}"
    settings.CACHES = {
        **settings.CACHES,
        "jwks": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL, "KEY_PREFIX": prefix},
    }
    from django.core.cache import caches

    yield caches["jwks"]
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=f"{prefix}:*"):
        client.delete(key)


def test_workers_share_the_key_set_through_redis(jwks_settings, token_issuer, jwks_server, redis_cache):
    jwks_settings(JWKS_CACHE_ALIAS="jwks")
    assert status(fresh(token_issuer)) == 200
    assert jwks_server.fetches() == 1
    # Another worker starts with an empty process cache: it reads the set from Redis, no HTTP.
    jwks.reset()
    assert status(fresh(token_issuer)) == 200
    assert jwks_server.fetches() == 1
    # Even with the issuer down, a new worker starts from the shared last good set.
    jwks_server.set_fault("down")
    jwks.reset()
    assert status(fresh(token_issuer)) == 200


def test_a_rotation_seen_by_one_worker_reaches_the_others(jwks_settings, token_issuer, jwks_server, redis_cache):
    jwks_settings(JWKS_CACHE_ALIAS="jwks")
    assert status(fresh(token_issuer)) == 200
    first_worker = issuer_keys()
    rotated = TokenIssuer(issuer=token_issuer.issuer, audience=token_issuer.audience)
    jwks_server.rotate(token_issuer, rotated)
    jwks.reset()  # the second worker
    assert status(fresh(token_issuer)) == 200
    age_key_set(31)
    age_shared_entry(redis_cache, 31)
    assert status(fresh(rotated)) == 200  # the second worker fetched the rotated set
    assert jwks_server.fetches() == 2
    # The first worker, past its own cooldown, finds the new kid in Redis without fetching.
    first_worker._last_attempt -= 60
    assert first_worker.get_key(rotated.kid).kid == rotated.kid
    assert jwks_server.fetches() == 2


def sign(value: str) -> str:
    from django.core.signing import Signer

    return Signer(salt="cobee_django.jwks.shared-key-set").sign(value)


def test_poisoned_shared_entry_is_ignored(jwks_settings, token_issuer, jwks_server, redis_cache):
    jwks_settings(JWKS_CACHE_ALIAS="jwks")
    attacker = TokenIssuer(issuer=token_issuer.issuer, audience=token_issuer.audience)
    weak = TokenIssuer(
        issuer=token_issuer.issuer,
        audience=token_issuer.audience,
        key=rsa.generate_private_key(public_exponent=65537, key_size=1024),
    )
    key = issuer_keys().cache_key
    planted = [
        # An attacker's strong key, written without our signature.
        json.dumps({"fetched_at": time.time(), "keys": [attacker.public_jwk]}),
        # Signed, but claiming a fetch in the future (it would never be refreshed).
        sign(json.dumps({"fetched_at": 1e300, "keys": [attacker.public_jwk]})),
        # Signed, but holding a key no fetched set could hold.
        sign(json.dumps({"fetched_at": time.time(), "keys": [weak.public_jwk]})),
        sign(json.dumps({"fetched_at": time.time(), "keys": [{"kty": "RSA"}]})),
        sign("not json"),
    ]
    for value in planted:
        jwks.reset()
        redis_cache.set(key, value)
        assert status(fresh(attacker)) == 401
        assert status(fresh(weak)) == 401
        assert status(fresh(token_issuer)) == 200  # fetched over HTTP instead
    assert jwks_server.fetches() == len(planted)


def test_cache_outage_does_not_break_authentication(jwks_settings, token_issuer, jwks_server, settings):
    settings.CACHES = {
        **settings.CACHES,
        "broken": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"},
    }
    jwks_settings(JWKS_CACHE_ALIAS="broken")
    assert status(fresh(token_issuer)) == 200


# --- pinned key sets ------------------------------------------------------------------------------


def test_a_pinned_key_set_is_used_and_never_fetched(jwks_settings, token_issuer, jwks_server):
    assert status(fresh(token_issuer)) == 200  # the fetched set is in use ...
    pinned = TokenIssuer(issuer=token_issuer.issuer, audience=token_issuer.audience, kid="pinned")
    document = pinned.jwks()
    generation = jwks.key_generation
    jwks.pin_key_set(token_issuer.issuer, document)
    try:
        assert jwks.key_generation == generation + 1  # tokens verified with the old keys are verified again
        document["keys"].clear()  # the pin keeps its own copy
        assert jwks.pinned_key_set(token_issuer.issuer) == pinned.jwks()
        jwks.pinned_key_set(token_issuer.issuer)["keys"].clear()  # and hands out copies
        assert jwks.pinned_key_set(token_issuer.issuer) == pinned.jwks()
        # ... and replaced by the pinned one, which never expires and is never fetched, even for unknown kids.
        assert status(fresh(pinned)) == 200
        assert issuer_keys().key_set.fetched_at == math.inf
        age_key_set(3600)
        assert status(fresh(token_issuer)) == 401
        with pytest.raises(TokenRejected) as refused:
            issuer_keys().get_key("unknown")
        assert refused.value.reason is Reason.UNKNOWN_KID
        assert jwks_server.fetches() == 1
    finally:
        jwks.unpin_key_set(token_issuer.issuer)
    assert jwks.key_generation == generation + 2
    assert jwks.pinned_key_set(token_issuer.issuer) is None
    assert status(fresh(token_issuer)) == 200
    assert status(fresh(pinned)) == 401
    assert jwks_server.fetches() == 2


def test_pins_are_per_issuer_and_unpinned_one_or_all(jwks_settings, token_issuer):
    first, second = "https://first.example/", "https://second.example/"
    jwks.pin_key_set(first, token_issuer.jwks())  # never used before: nothing to drop from the registry
    jwks.pin_key_set(second, token_issuer.jwks())
    try:
        jwks.unpin_key_set(first)
        assert jwks.pinned_key_set(first) is None
        assert jwks.pinned_key_set(second) == token_issuer.jwks()
        jwks.pin_key_set(first, token_issuer.jwks())
        jwks.unpin_key_set()
        assert jwks.pinned_key_set(first) is None and jwks.pinned_key_set(second) is None
    finally:
        jwks.unpin_key_set()


def test_a_key_set_without_a_usable_key_cannot_be_pinned(jwks_settings, token_issuer):
    with pytest.raises(CobeeDjangoError, match="install_key_set"):
        jwks.pin_key_set(token_issuer.issuer, {"keys": [{"kty": "oct", "kid": "x", "k": "c2VjcmV0"}]})
    assert jwks.pinned_key_set(token_issuer.issuer) is None


# --- the key cache, driven directly: a frozen clock, a counted fetch, a local shared cache ----------


@pytest.fixture
def clock(monkeypatch):
    """``jwks``' wall clock, frozen at ``now[0]`` (monotonic time keeps running)."""
    now = [1_000_000.0]
    fake = SimpleNamespace(time=lambda: now[0], monotonic=time.monotonic, perf_counter=time.perf_counter)
    monkeypatch.setattr(jwks, "time", fake)
    return now


@pytest.fixture
def served(monkeypatch, token_issuer):
    """``fetch_jwks`` answering ``documents[-1]`` (or raising it), counting calls in ``calls``."""
    fetches = SimpleNamespace(documents=[token_issuer.jwks()], calls=0)

    def fetch(url, *, timeout, max_bytes):
        fetches.calls += 1
        document = fetches.documents[-1]
        if isinstance(document, Exception):
            raise document
        return document

    monkeypatch.setattr(jwks, "fetch_jwks", fetch)
    return fetches


@pytest.fixture
def shared_cache(settings):
    settings.CACHES = {
        **settings.CACHES,
        "jwks-local": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": uuid.uuid4().hex},
    }
    from django.core.cache import caches

    return caches["jwks-local"]


def direct_keys(jwks_settings, **extra) -> jwks.IssuerKeys:
    jwks_settings(JWKS_CACHE_TTL=600, JWKS_REFRESH_COOLDOWN=30, **extra)
    return jwks.IssuerKeys(get_settings().issuers[0], get_settings())


def key_set(*issuers: TokenIssuer, fetched_at: float) -> jwks.KeySet:
    document = {"keys": [issuer.public_jwk for issuer in issuers]}
    return jwks.build_key_set(document, frozenset({"RS256"}), fetched_at=fetched_at)[0]


def store_shared(cache, keys: jwks.IssuerKeys, *issuers: TokenIssuer, fetched_at: object) -> None:
    entry = {"fetched_at": fetched_at, "keys": [issuer.public_jwk for issuer in issuers]}
    cache.set(keys.cache_key, sign(json.dumps(entry)))


def test_a_key_set_is_refreshed_at_exactly_the_ttl(jwks_settings, token_issuer, clock, served):
    keys = direct_keys(jwks_settings)
    assert keys.get_key(token_issuer.kid).kid == token_issuer.kid
    assert served.calls == 1
    clock[0] += 600 - 0.5
    keys.get_key(token_issuer.kid)
    assert served.calls == 1
    clock[0] += 0.5
    keys.get_key(token_issuer.kid)
    assert served.calls == 2


def test_a_failed_refresh_is_retried_at_exactly_the_cooldown(jwks_settings, token_issuer, clock, served):
    keys = direct_keys(jwks_settings)
    keys.get_key(token_issuer.kid)
    clock[0] += 600
    served.documents.append(FetchError("down"))
    assert keys.get_key(token_issuer.kid).kid == token_issuer.kid  # the last good set keeps serving
    assert served.calls == 2
    clock[0] += 30 - 0.5
    keys.get_key(token_issuer.kid)
    assert served.calls == 2
    clock[0] += 0.5
    keys.get_key(token_issuer.kid)
    assert served.calls == 3


def test_an_unknown_kid_refreshes_at_exactly_the_cooldown(jwks_settings, token_issuer, clock, served):
    keys = direct_keys(jwks_settings)
    keys.get_key(token_issuer.kid)
    clock[0] += 30 - 0.5
    with pytest.raises(TokenRejected):
        keys.get_key("unknown")
    assert served.calls == 1
    clock[0] += 0.5
    with pytest.raises(TokenRejected):
        keys.get_key("unknown")
    assert served.calls == 2


def test_a_refresh_finding_a_fresh_set_or_a_known_kid_does_not_fetch(jwks_settings, token_issuer, clock, served):
    keys = direct_keys(jwks_settings)
    keys.get_key(token_issuer.kid)
    clock[0] += 3600  # past the cooldown: only the set itself can spare the fetch
    keys._set = dataclasses.replace(keys._set, fetched_at=clock[0] - 600 + 0.5)
    assert keys._refresh(kid=None) is keys._set  # another thread refreshed it in the meantime
    assert keys._refresh(kid=token_issuer.kid) is keys._set  # another thread found the kid in the meantime
    assert served.calls == 1


def test_the_no_key_set_error_names_the_issuer(jwks_settings, token_issuer, clock, served):
    keys = direct_keys(jwks_settings)
    served.documents.append(FetchError("down"))
    with pytest.raises(KeySetUnavailable) as unavailable:
        keys.get_key(token_issuer.kid)
    assert unavailable.value.issuer == token_issuer.issuer


def test_an_old_set_keeps_serving_while_another_thread_refreshes_it(jwks_settings, token_issuer, clock, served):
    keys = direct_keys(jwks_settings)
    keys.get_key(token_issuer.kid)
    clock[0] += 3600
    found: list[object] = []
    with keys._lock:  # another thread is refreshing
        reader = threading.Thread(target=lambda: found.append(keys.get_key(token_issuer.kid).kid), daemon=True)
        reader.start()
        reader.join(5)
        assert found == [token_issuer.kid]  # answered without waiting for the lock
    assert served.calls == 1


def test_a_miss_that_waited_for_another_threads_fetch_shares_its_result(jwks_settings, token_issuer, clock, served):
    keys = direct_keys(jwks_settings)
    keys.get_key(token_issuer.kid)
    clock[0] += 3600
    rotated = TokenIssuer(issuer=token_issuer.issuer, audience=token_issuer.audience)
    found: list[object] = []

    def miss():
        try:
            found.append(keys.get_key(rotated.kid).kid)
        except Exception as exc:
            found.append(exc)

    with keys._lock:  # another thread is fetching
        waiter = threading.Thread(target=miss, daemon=True)
        waiter.start()
        time.sleep(0.2)  # the waiter is now blocked on the lock
        keys._set = key_set(rotated, fetched_at=clock[0])
        keys._attempts += 1
    waiter.join(5)
    assert found == [rotated.kid]
    assert served.calls == 1


def test_key_generation_moves_only_when_a_key_is_dropped_or_replaced(jwks_settings, token_issuer, clock):
    keys = direct_keys(jwks_settings)
    jwks.unpin_key_set("https://nobody.example/")  # the generation is not 0 from here on
    rotated = TokenIssuer(issuer=token_issuer.issuer, audience=token_issuer.audience)
    generation = jwks.key_generation
    keys._install(key_set(token_issuer, fetched_at=clock[0]))
    assert jwks.key_generation == generation  # a first set replaces nothing
    keys._install(key_set(token_issuer, rotated, fetched_at=clock[0]))
    assert jwks.key_generation == generation  # a key added, none dropped
    keys._install(key_set(rotated, fetched_at=clock[0]))
    assert jwks.key_generation == generation + 1  # one dropped
    replaced = {**token_issuer.public_jwk, "kid": rotated.kid}
    keys._install(jwks.build_key_set({"keys": [replaced]}, frozenset({"RS256"}), fetched_at=clock[0])[0])
    assert jwks.key_generation == generation + 2  # the same kid, another key


def test_the_shared_cache_entry_is_kept_a_week_under_a_stable_key(
    jwks_settings, token_issuer, clock, served, shared_cache, monkeypatch
):
    stored: list[tuple] = []

    class Recorder:
        def get(self, key):
            return None

        def set(self, *args, **kwargs):
            stored.append((args, kwargs))

    monkeypatch.setattr(jwks, "caches", {"jwks-local": Recorder()})
    keys = direct_keys(jwks_settings, JWKS_CACHE_ALIAS="jwks-local")
    keys.get_key(token_issuer.kid)
    # Workers of two versions (a rolling deploy) share the entry only if its key stays the same.
    expected_key = "cobee_django:jwks:" + hashlib.sha256(get_settings().issuers[0].jwks_url.encode()).hexdigest()
    assert keys.cache_key == expected_key
    [(args, kwargs)] = stored
    assert args[0] == expected_key and args[2:] == (7 * 24 * 3600,) and not kwargs


def test_a_shared_set_from_the_near_future_is_accepted_the_far_future_refused(
    jwks_settings, token_issuer, clock, served, shared_cache
):
    for skew, fetches in [(60, 0), (60.5, 1), ("1", 1)]:
        served.calls = 0
        keys = direct_keys(jwks_settings, JWKS_CACHE_ALIAS="jwks-local")
        fetched_at = skew if isinstance(skew, str) else clock[0] + skew
        store_shared(shared_cache, keys, token_issuer, fetched_at=fetched_at)
        assert keys.get_key(token_issuer.kid).kid == token_issuer.kid
        assert served.calls == fetches, skew


def test_a_newer_shared_set_is_taken_only_while_it_answers(jwks_settings, token_issuer, clock, served, shared_cache):
    rotated = TokenIssuer(issuer=token_issuer.issuer, audience=token_issuer.audience)
    keys = direct_keys(jwks_settings, JWKS_CACHE_ALIAS="jwks-local")
    start = clock[0]
    keys.get_key(token_issuer.kid)
    assert served.calls == 1
    served.documents.append(rotated.jwks())
    # An old set, and a newer shared one that is old too: fetched, not taken.
    clock[0] = start + 2000
    store_shared(shared_cache, keys, token_issuer, fetched_at=start + 1000)
    with pytest.raises(TokenRejected):
        keys.get_key(token_issuer.kid)  # the fetched set is the rotated one
    assert served.calls == 2
    # An unknown kid, past the cooldown: a newer shared set without it, younger than the TTL but older than the
    # cooldown, does not answer for it (fetched); one holding it answers, however old.
    third = TokenIssuer(issuer=token_issuer.issuer, audience=token_issuer.audience)
    keys._set = key_set(rotated, fetched_at=clock[0] - 500)
    keys._last_attempt = clock[0] - 100
    store_shared(shared_cache, keys, rotated, fetched_at=clock[0] - 100)
    served.documents.append(third.jwks())
    assert keys.get_key(third.kid).kid == third.kid
    assert served.calls == 3
    keys._set = key_set(rotated, fetched_at=clock[0] - 500)
    keys._last_attempt = clock[0] - 100
    store_shared(shared_cache, keys, rotated, third, fetched_at=clock[0] - 100)
    assert keys.get_key(third.kid).kid == third.kid
    assert served.calls == 3


def test_shared_sets_are_taken_until_exactly_the_ttl_and_the_cooldown(
    jwks_settings, token_issuer, clock, served, shared_cache
):
    rotated = TokenIssuer(issuer=token_issuer.issuer, audience=token_issuer.audience)
    keys = direct_keys(jwks_settings, JWKS_CACHE_ALIAS="jwks-local")
    keys.get_key(token_issuer.kid)
    served.documents.append(rotated.jwks())
    for age, fetches in [(600 - 0.5, 1), (600, 2)]:
        served.calls = 1
        keys._set = key_set(token_issuer, fetched_at=clock[0] - 5000)
        store_shared(shared_cache, keys, token_issuer, fetched_at=clock[0] - age)
        if fetches == 1:
            keys.get_key(token_issuer.kid)  # the shared set answers
        else:
            with pytest.raises(TokenRejected):
                keys.get_key(token_issuer.kid)  # the fetched, rotated set answers
        assert served.calls == fetches, age
    for age, fetches in [(30 - 0.5, 1), (30, 2)]:
        served.calls = 1
        keys._set = key_set(token_issuer, fetched_at=clock[0] - 100)
        keys._last_attempt = clock[0] - 100
        store_shared(shared_cache, keys, token_issuer, fetched_at=clock[0] - age)
        with pytest.raises(TokenRejected):
            keys.get_key("unknown")
        assert served.calls == fetches, age


def test_a_shared_cache_outage_is_logged_with_the_alias_and_the_error(
    jwks_settings, token_issuer, clock, served, shared_cache, monkeypatch, caplog
):
    class Broken:
        def get(self, key):
            raise ConnectionError

        def set(self, *args, **kwargs):
            raise TimeoutError

    monkeypatch.setattr(jwks, "caches", {"jwks-local": Broken()})
    keys = direct_keys(jwks_settings, JWKS_CACHE_ALIAS="jwks-local")
    with caplog.at_level(logging.WARNING, logger="cobee_django.jwks"):
        assert keys.get_key(token_issuer.kid).kid == token_issuer.kid
    assert [record.args for record in caplog.records] == [
        ("jwks-local", "ConnectionError"),
        ("jwks-local", "TimeoutError"),
    ]


# --- the download, with requests.get replaced ------------------------------------------------------


class FakeResponse:
    def __init__(self, chunks=(b"{}",), status=200, headers=None, redirect=False):
        import requests

        self.chunks = list(chunks)
        self.status_code = status
        self.headers = requests.structures.CaseInsensitiveDict(headers or {})
        self.is_redirect = self.is_permanent_redirect = redirect
        self.chunk_sizes: list[object] = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def iter_content(self, chunk_size):
        self.chunk_sizes.append(chunk_size)
        yield from self.chunks


@pytest.fixture
def fake_get(monkeypatch):
    """``requests.get`` answering ``calls.response``; each call's arguments and thread in ``calls.seen``."""
    calls = SimpleNamespace(response=FakeResponse(), seen=[])

    def get(url, **kwargs):
        calls.seen.append((url, kwargs, threading.current_thread()))
        return calls.response

    monkeypatch.setattr(jwks.requests, "get", get)
    return calls


def test_the_download_streams_with_both_timeouts_no_redirects_and_plain_encoding(fake_get):
    from requests.structures import CaseInsensitiveDict

    from cobee_django import __version__

    url = "https://keys.example/jwks.json"
    fake_get.response = FakeResponse([b'{"keys":', b" []}"])
    assert jwks.fetch_jwks(url, timeout=2.5, max_bytes=1024) == {"keys": []}  # every chunk, in order
    [(seen_url, kwargs, thread)] = fake_get.seen
    assert seen_url == url
    assert kwargs["timeout"] == (2.5, 2.5) and kwargs["allow_redirects"] is False and kwargs["stream"] is True
    headers = CaseInsensitiveDict(kwargs["headers"])
    assert {name: value.lower() for name, value in headers.items()} == {
        "Accept": "application/json",
        "Accept-Encoding": "identity",  # a compressed body could expand far beyond the size cap
        "User-Agent": f"cobee-django/{__version__}",
    }
    # Read in bounded chunks, in a named daemon thread (a hung fetch never holds the process up).
    assert fake_get.response.chunk_sizes == [jwks._CHUNK]
    assert thread.name == "cobee-django-jwks-fetch" and thread.daemon


@pytest.mark.parametrize(
    ("response", "refused"),
    [
        (FakeResponse(headers={"Content-Encoding": "gzip"}), True),
        (FakeResponse(headers={"Content-Encoding": "Identity"}), False),
        (FakeResponse(status=302, headers={"Location": "https://elsewhere.example/"}, redirect=True), True),
        (FakeResponse(status=301, headers={"Location": "https://elsewhere.example/"}, redirect=True), True),
        (FakeResponse(status=404), True),
        # The declared length is refused before any byte is read; a missing one is no refusal.
        (FakeResponse(headers={"Content-Length": "1025"}), True),
        (FakeResponse([b"{" + b" " * 1022 + b"}"], headers={"Content-Length": "1024"}), False),
        (FakeResponse([b"{" + b" " * 1022 + b"}"]), False),
        (FakeResponse([b"{" + b" " * 1023 + b"}"]), True),
        (FakeResponse([b"{" + b" " * 1000, b" " * 22, b"}"]), False),
        (FakeResponse([b"{" + b" " * 1000, b" " * 23, b"}"]), True),
    ],
)
def test_what_the_download_refuses(fake_get, response, refused):
    fake_get.response = response
    if refused:
        with pytest.raises(FetchError):
            jwks.fetch_jwks("https://keys.example/jwks.json", timeout=2, max_bytes=1024)
    else:
        assert jwks.fetch_jwks("https://keys.example/jwks.json", timeout=2, max_bytes=1024) == {}


def test_the_download_stops_once_its_time_is_up(fake_get, monkeypatch):
    now = [100.0]
    monkeypatch.setattr(jwks, "time", SimpleNamespace(monotonic=lambda: now[0], time=time.time))
    fake_get.response = FakeResponse([b"{", b"}"])
    assert jwks._download("https://keys.example/jwks.json", 0, 1024) == b"{}"  # the deadline itself is in time

    def late_chunks(chunk_size):
        yield b"{"
        now[0] += 0.5
        yield b"}"

    fake_get.response.iter_content = late_chunks
    with pytest.raises(FetchError):
        jwks._download("https://keys.example/jwks.json", 0.25, 1024)


def test_the_caller_waits_no_longer_than_the_timeout(monkeypatch):
    release = threading.Event()

    def hung(url, **kwargs):
        release.wait(10)
        raise AssertionError("too late")

    monkeypatch.setattr(jwks.requests, "get", hung)
    started = time.monotonic()
    try:
        with pytest.raises(FetchError):
            jwks.fetch_jwks("https://keys.example/jwks.json", timeout=0.2, max_bytes=1024)
        assert time.monotonic() - started < 5
    finally:
        release.set()


# --- building a key set ----------------------------------------------------------------------------


@pytest.mark.parametrize("document", [None, [], "keys", {"keys": {}}, {"no": []}])
def test_a_document_that_is_not_a_key_set_is_a_failed_fetch(document):
    with pytest.raises(FetchError):
        jwks.build_key_set(document, frozenset({"RS256"}), fetched_at=0)


def test_entries_after_skipped_ones_are_kept_and_each_skip_says_why(token_issuer, rsa_key):
    from cobee_django.exceptions import UnusableKey
    from cobee_django.jose import key_from_jwk

    good = token_issuer.public_jwk
    duplicate = _entry(rsa_key, "dup")
    unusable = {"kty": "oct", "kid": "oct", "k": "c2VjcmV0"}
    nameless = {"kty": "oct", "kid": 5, "k": "c2VjcmV0"}
    key_set, skipped = jwks.build_key_set(
        {"keys": [duplicate, duplicate, unusable, nameless, good]}, frozenset({"RS256"}), fetched_at=7.0
    )
    assert set(key_set.keys) == {token_issuer.kid} and key_set.entries == (good,) and key_set.fetched_at == 7.0
    reasons = []
    for entry in (unusable, nameless):
        with pytest.raises(UnusableKey) as exc:
            key_from_jwk(entry, frozenset({"RS256"}))
        reasons.append(str(exc.value))
    assert skipped[2:] == [f"kid 'oct': {reasons[0]}", reasons[1]]
    assert len(skipped) == 4 and all(note.startswith("kid 'dup'") for note in skipped[:2])


def test_a_set_without_a_usable_key_says_what_was_skipped():
    unusable = [{"kty": "oct", "kid": "a", "k": "c2VjcmV0"}, {"kty": "oct", "kid": "b", "k": "c2VjcmV0"}]
    with pytest.raises(FetchError) as empty:
        jwks.build_key_set({"keys": []}, frozenset({"RS256"}), fetched_at=0)
    assert str(empty.value) == "no usable key in the set"
    with pytest.raises(FetchError) as none_usable:
        jwks.build_key_set({"keys": unusable}, frozenset({"RS256"}), fetched_at=0)
    _, notes = str(none_usable.value).split(" (", 1)
    assert str(none_usable.value).startswith("no usable key in the set (kid 'a': ")
    assert notes.count("; kid 'b': ") == 1 and notes.endswith(")")


def test_a_shared_set_no_newer_than_the_current_one_does_not_answer_for_an_unknown_kid(
    jwks_settings, token_issuer, clock, served, shared_cache
):
    rotated = TokenIssuer(issuer=token_issuer.issuer, audience=token_issuer.audience)
    keys = direct_keys(jwks_settings, JWKS_CACHE_ALIAS="jwks-local")
    # The current set came from the shared cache 15 s ago; this worker's last fetch was 35 s ago.
    keys._set = key_set(token_issuer, fetched_at=clock[0] - 15)
    keys._last_attempt = clock[0] - 35
    store_shared(shared_cache, keys, token_issuer, fetched_at=clock[0] - 15)
    served.documents.append(rotated.jwks())
    assert keys.get_key(rotated.kid).kid == rotated.kid  # fetched: the shared set is the one in use
    assert served.calls == 1


def test_two_threads_asking_for_an_issuers_keys_at_once_share_one_cache(jwks_settings, token_issuer):
    issuer = get_settings().issuers[0]
    jwks.reset()
    first = jwks.IssuerKeys(issuer, get_settings())
    found: list[object] = []
    with jwks._registry_lock:
        asker = threading.Thread(target=lambda: found.append(jwks.keys_for(issuer)), daemon=True)
        asker.start()
        time.sleep(0.2)  # the asker missed the registry and waits for the lock
        jwks._registry[issuer.issuer] = first  # another thread created it meanwhile
    asker.join(5)
    assert found == [first]
    assert jwks.keys_for(issuer) is first
