"""The issuer misbehaves: rotation, kid floods, outages, slowness and junk key sets, over real HTTP.

Each test serves the test project (gunicorn) trusting its own :class:`~cobee_django.testing.JWKSServer`,
with a short cooldown, TTL and timeout so the faults show within seconds. Held means: valid tokens
keep working while a good key set is cached, a cold cache answers 503 with ``Retry-After`` (never
500), fetches stay within one per cooldown, and every answer comes within the fetch timeout plus
the safety bound.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from cobee_django.jose import b64url_encode
from cobee_django.testing import JWKSServer, TokenIssuer

from .conftest import AUDIENCE, READ, RESPONSE_BOUND, check_challenge

pytestmark = pytest.mark.adversarial

COOLDOWN = 0.75
TTL = 1.0
TIMEOUT = 0.5
RETRY_AFTER = 7
SETTINGS = {
    "JWKS_REFRESH_COOLDOWN": COOLDOWN,
    "JWKS_CACHE_TTL": TTL,
    "JWKS_TIMEOUT": TIMEOUT,
    "UNAVAILABLE_RETRY_AFTER": RETRY_AFTER,
}
#: A fetch can take the whole timeout; the answer must still come within the safety bound after it.
BOUND = TIMEOUT + RESPONSE_BOUND


@pytest.fixture
def keys() -> Iterator[JWKSServer]:
    with JWKSServer() as server:
        yield server


def issuer_on(keys: JWKSServer, **kwargs: Any) -> TokenIssuer:
    return TokenIssuer(issuer=keys.base_url, audience=AUDIENCE, **kwargs)


class Probe:
    """Requests to one served project, each timed against the bound and recorded as a case."""

    def __init__(self, served, company: str, record) -> None:
        self.served = served
        self.company = company
        self.record = record

    def get(self, token: str) -> tuple[int, Any]:
        status, headers, content, seconds = self.served.request(
            "GET", f"/api/v3/companies/{self.company}/employees", [("Authorization", f"Bearer {token}")]
        )
        self.record.timed(seconds)
        assert seconds < BOUND, f"took {seconds:.2f} s"
        assert b"Traceback" not in content
        return status, headers

    def expect(self, token: str, status: int, label: str) -> Any:
        got, headers = self.get(token)
        self.record.case(got == status)
        assert got == status, f"{label}: {got}, expected {status}"
        return headers


def wait_cooldown() -> None:
    time.sleep(COOLDOWN + 0.1)


def test_key_rotation(keys, start_server, world, record):
    old = issuer_on(keys)
    new = issuer_on(keys)
    keys.serve(old)
    probe = Probe(start_server("wsgi", SETTINGS, keys=keys), world.first_company(), record)
    old_token, new_token = old.make_token(probe.company, scopes=READ), new.make_token(probe.company, scopes=READ)
    probe.expect(old_token, 200, "the current key")

    # The issuer publishes the next key next to the current one: the new kid is fetched on first sight.
    keys.serve(old, new)
    wait_cooldown()
    probe.expect(new_token, 200, "a new kid after rotation")
    probe.expect(old_token, 200, "the old key while it is still published")

    # The old key is withdrawn: tokens it signed stop working once the set is refreshed.
    keys.serve(new)
    time.sleep(TTL + 0.1)
    probe.expect(new_token, 200, "the new key after the old one left")
    headers = probe.expect(old_token, 401, "a withdrawn key, even for a token verified before")
    check_challenge(headers, "invalid_token")


def test_a_flood_of_random_kids_costs_one_fetch_per_cooldown(keys, start_server, world, record):
    issuer = issuer_on(keys)
    keys.serve(issuer)
    probe = Probe(start_server("wsgi", {**SETTINGS, "JWKS_CACHE_TTL": 600}, keys=keys), world.first_company(), record)
    valid = issuer.make_token(probe.company, scopes=READ)
    probe.expect(valid, 200, "warm-up")
    keys.reset_counts()

    attacker = issuer_on(keys)
    stop = time.monotonic() + 2.0
    errors: list[str] = []
    sent = [0]
    lock = threading.Lock()

    def flood() -> None:
        while time.monotonic() < stop:
            token = attacker.make_token(probe.company, scopes=READ, headers={"kid": secrets.token_hex(8)})
            status, _ = probe.get(token)
            with lock:
                sent[0] += 1
                if status != 401:
                    errors.append(f"random kid answered {status}")

    started = time.monotonic()
    threads = [threading.Thread(target=flood) for _ in range(8)]
    for thread in threads:
        thread.start()
    probe.expect(valid, 200, "a valid token during the flood")
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    record.case(not errors, sent[0])
    assert not errors, errors[:5]
    allowed = math.ceil(elapsed / COOLDOWN) + 1
    fetches = keys.fetches()
    record.case(fetches <= allowed)
    assert fetches <= allowed, f"{sent[0]} random kids in {elapsed:.1f} s caused {fetches} fetches (at most {allowed})"
    assert sent[0] > fetches * 5, "the flood was big enough to show the cooldown"


#: The cold-cache test below goes through every fault; with a warm cache, one of each kind.
WARM_FAULTS = ["down", "slow", "html", "huge", "malformed", "error"]


def test_issuer_faults_with_a_warm_cache(keys, start_server, world, record):
    issuer = issuer_on(keys)
    keys.serve(issuer)
    probe = Probe(start_server("wsgi", SETTINGS, keys=keys), world.first_company(), record)
    valid = issuer.make_token(probe.company, scopes=READ)
    probe.expect(valid, 200, "warm-up")
    stranger = issuer_on(keys).make_token(probe.company, scopes=READ)
    for fault in WARM_FAULTS:
        keys.set_fault(fault, delay=3.0 if fault == "slow" else 0.2)
        keys.reset_counts()
        time.sleep(TTL + 0.1)  # the cached set is now due for a refresh, which fails
        for _ in range(3):
            probe.expect(valid, 200, f"a valid token while the issuer is {fault}")
            time.sleep(0.1)
        headers = probe.expect(stranger, 401, f"an unknown kid while the issuer is {fault}")
        check_challenge(headers, "invalid_token")
        record.case(keys.fetches() >= 1)
        assert keys.fetches() >= 1, f"no refresh was attempted while {fault}"
    keys.set_fault(None)


COLD_FAULTS = [
    ("down", None),
    ("error", None),
    ("slow", None),
    ("trickle", None),
    ("html", None),
    ("huge", None),
    ("huge_declared", None),
    ("malformed", None),
    ("redirect", None),
    ("gzip", None),
    (None, {"keys": []}),
    (None, {"keys": "not a list"}),
    (None, [1, 2, 3]),
    (None, {"keys": [{"kty": "oct", "k": b64url_encode(b"secret"), "kid": "hmac"}]}),
    (None, "1024-bit key"),
    (None, "private key published"),
    (None, "duplicate kid"),
    (None, "use enc"),
    (None, "alg RS512"),
    (None, {"keys": [{"kty": "RSA", "kid": "junk", "n": "AQAB", "e": "AQAB"}]}),
]


def junk_key_set(issuer: TokenIssuer, name: str) -> Any:
    jwk = issuer.public_jwk
    if name == "1024-bit key":
        weak = TokenIssuer(
            issuer=issuer.issuer, audience=AUDIENCE, kid=issuer.kid, key=rsa.generate_private_key(65537, 1024)
        )
        return weak.jwks()
    if name == "private key published":
        private = issuer.key.private_numbers()
        return {"keys": [{**jwk, "d": b64url_encode(private.d.to_bytes(256, "big"))}]}
    if name == "duplicate kid":
        return {"keys": [jwk, {**issuer_on_same(issuer).public_jwk}]}
    if name == "use enc":
        return {"keys": [{**jwk, "use": "enc"}]}
    if name == "alg RS512":
        return {"keys": [{**jwk, "alg": "RS512"}]}
    return name


def issuer_on_same(issuer: TokenIssuer) -> TokenIssuer:
    return TokenIssuer(issuer=issuer.issuer, audience=AUDIENCE, kid=issuer.kid)


def test_issuer_faults_with_a_cold_cache(keys, start_server, world, record):
    """Never a key set: every fault and every unusable set is a 503 with Retry-After, never a 500."""
    issuer = issuer_on(keys)
    keys.serve(issuer)
    keys.set_fault("down")
    probe = Probe(start_server("wsgi", SETTINGS, keys=keys), world.first_company(), record)
    valid = issuer.make_token(probe.company, scopes=READ)
    for fault, document in COLD_FAULTS:
        label = fault or (document if isinstance(document, str) else repr(document)[:40])
        if fault is not None:
            keys.serve(issuer)
            keys.set_fault(fault, delay=3.0 if fault == "slow" else 0.2)
        else:
            keys.set_fault(None)
            keys.rotate(junk_key_set(issuer, document) if isinstance(document, str) else document)
        wait_cooldown()
        keys.reset_counts()
        headers = probe.expect(valid, 503, f"a cold cache while the issuer is {label}")
        assert headers.get("Retry-After") == str(RETRY_AFTER)
        assert headers.get("WWW-Authenticate") is None
        record.case(keys.fetches() == 1)
        assert keys.fetches() == 1, f"{label}: {keys.fetches()} fetches"
        if fault not in ("slow", "trickle"):  # those spend the fetch timeout, close to the cooldown
            # Within the cooldown, the answer is the same without asking the issuer again.
            probe.expect(valid, 503, f"{label} again within the cooldown")
            assert keys.fetches() == 1

    # The issuer recovers, serving its key among junk entries: the junk is skipped, not fatal.
    keys.set_fault(None)
    keys.rotate(
        {"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "x"}, "junk", {"kty": "RSA", "kid": "y"}, issuer.public_jwk]}
    )
    wait_cooldown()
    probe.expect(valid, 200, "the issuer is back")
    assert "Traceback" not in probe.served.log()


def test_rotation_under_load(keys, start_server, world, record):
    """Threads keep calling with old-key and new-key tokens while the issuer rotates: only 200 or 401."""
    old, new = issuer_on(keys), issuer_on(keys)
    keys.serve(old)
    probe = Probe(start_server("wsgi", SETTINGS, keys=keys), world.first_company(), record)
    tokens = {"old": old.make_token(probe.company, scopes=READ), "new": new.make_token(probe.company, scopes=READ)}
    probe.expect(tokens["old"], 200, "warm-up")
    stop = threading.Event()
    seen: list[tuple[str, int]] = []
    lock = threading.Lock()

    def hammer(which: str) -> None:
        while not stop.is_set():
            # A fresh token each time as well, so both the validated-token cache and the verifier are hit.
            issuer = old if which == "old" else new
            for token in (tokens[which], issuer.make_token(probe.company, scopes=READ)):
                status, _ = probe.get(token)
                with lock:
                    seen.append((which, status))

    threads = [threading.Thread(target=hammer, args=(which,)) for which in ("old", "new") * 4]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.5)
        keys.serve(old, new)  # the next key is published
        time.sleep(TTL + COOLDOWN)
        keys.serve(new)  # the old key is withdrawn
        time.sleep(TTL + COOLDOWN)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    statuses = {status for _, status in seen}
    record.case(statuses <= {200, 401}, len(seen))
    assert statuses <= {200, 401}, statuses
    # Once the dust settles: the new key works, the old one does not, cached or not.
    wait_cooldown()
    probe.expect(tokens["new"], 200, "the new key after the rotation")
    probe.expect(tokens["old"], 401, "the withdrawn key after the rotation")
    probe.expect(old.make_token(probe.company, scopes=READ), 401, "a fresh token of the withdrawn key")
    assert "Traceback" not in probe.served.log()


def test_a_cold_cache_under_asgi_is_503_too(keys, start_server, world, record):
    issuer = issuer_on(keys)
    keys.serve(issuer)
    keys.set_fault("down")
    probe = Probe(start_server("asgi", SETTINGS, keys=keys), world.first_company(), record)
    valid = issuer.make_token(probe.company, scopes=READ)
    headers = probe.expect(valid, 503, "a cold cache under uvicorn")
    assert headers.get("Retry-After") == str(RETRY_AFTER)
    keys.set_fault(None)
    wait_cooldown()
    probe.expect(valid, 200, "the issuer is back")
