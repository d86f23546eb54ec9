"""The DPoP proof verifier (cobee_django.dpop) on its own: every rule of RFC 9449 section 4.3, the
htu normalisation, thumbprints, server nonces and the replay store (no HTTP here; see
test_dpop_requests.py for the answers a request gets)."""

from __future__ import annotations

import contextlib
import json
import random
import time

import pytest
from django.core.cache import caches
from django.test import override_settings

from cobee_django.conf import get_settings
from cobee_django.dpop import (
    MAX_PROOF_BYTES,
    NonceSource,
    ProofVerifier,
    access_token_hash,
    get_proof_verifier,
    jwk_thumbprint,
    normalize_htu,
)
from cobee_django.exceptions import NonceRequired, ProofRejected, Reason, ReplayStoreUnavailable, TokenRejected
from cobee_django.jose import b64url_decode, b64url_encode
from cobee_django.testing import MISSING, DPoPKey

URL = "https://api.example.com/v1/companies"
HTU = normalize_htu(URL)
TOKEN = "header.payload.signature"
ALL = ["ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA", "Ed25519"]


def verifier(**settings):
    with override_settings(COBEE_DJANGO={**get_settings().raw, **settings}):
        return ProofVerifier(get_settings(), b"s" * 32)


@pytest.fixture(scope="module")
def key():
    return DPoPKey("ES256")


@pytest.fixture(scope="module")
def keys():
    return {alg: DPoPKey(alg) for alg in ALL}


def check(proof, key, *, v=None, method="GET", htu=HTU, token=TOKEN, jkt=None, now=None):
    v = v or verifier(DPOP_ALGORITHMS=ALL)
    return v.verify(proof, method=method, htu=htu, access_token=token, jkt=jkt or key.jkt, now=now)


def rejected(reason, proof, key, **kwargs):
    with pytest.raises(ProofRejected) as info:
        check(proof, key, **kwargs)
    assert info.value.reason == reason, info.value.detail


def craft(key, header, claims):
    """A proof signed by ``key`` with exactly this header and these claims."""
    signing_input = b64url_encode(json.dumps(header).encode()) + "." + b64url_encode(json.dumps(claims).encode())
    return f"{signing_input}.{b64url_encode(key.sign(signing_input.encode()))}"


def claims(**overrides):
    now = int(time.time())
    return {"jti": "j1", "htm": "GET", "htu": URL, "iat": now, "ath": access_token_hash(TOKEN), **overrides}


# --- accepted --------------------------------------------------------------------------------------


def test_ed25519_and_eddsa_name_one_key_type_but_each_must_be_allowed(keys):
    """RFC 9864's ``Ed25519`` and the older ``EdDSA`` sign alike; configuration still picks the names."""
    key = keys["Ed25519"]
    only_eddsa = verifier(DPOP_ALGORITHMS=["EdDSA"])
    rejected(Reason.DPOP_ALG_NOT_ALLOWED, key.proof("GET", URL, TOKEN), key, v=only_eddsa)
    same_key_as_eddsa = DPoPKey("EdDSA", key=key.key)
    assert check(same_key_as_eddsa.proof("GET", URL, TOKEN), same_key_as_eddsa, v=only_eddsa).jkt == key.jkt
    # The header's algorithm must match the key type whatever its name: an EC key under Ed25519 is refused.
    header = {"typ": "dpop+jwt", "alg": "Ed25519", "jwk": keys["ES256"].public_jwk}
    rejected(Reason.DPOP_BAD_KEY, craft(keys["ES256"], header, claims()), keys["ES256"])


@pytest.mark.parametrize("alg", ALL)
def test_a_proof_of_each_configured_algorithm_is_accepted(keys, alg):
    key = keys[alg]
    proof = check(key.proof("GET", URL, TOKEN), key)
    assert proof.jkt == key.jkt
    assert proof.jti


def test_only_the_configured_algorithms_are_accepted(keys):
    v = verifier(DPOP_ALGORITHMS=["ES256"])
    check(keys["ES256"].proof("GET", URL, TOKEN), keys["ES256"], v=v)
    rejected(Reason.DPOP_ALG_NOT_ALLOWED, keys["RS256"].proof("GET", URL, TOKEN), keys["RS256"], v=v)


def test_the_rfc_7638_example_thumbprint():
    # RFC 7638 section 3.1.
    jwk = {
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRX"
        "jBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6q"
        "MQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert jwk_thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_ath_is_the_base64url_sha256_of_the_token():
    # RFC 9449 section 7.1's example token and ath.
    token = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"
    assert access_token_hash(token) == "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"


# --- htu -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "normal"),
    [
        ("https://api.example.com/v1/x", "https://api.example.com/v1/x"),
        ("HTTPS://API.Example.COM/v1/x", "https://api.example.com/v1/x"),
        ("https://api.example.com:443/v1/x", "https://api.example.com/v1/x"),
        ("http://api.example.com:80/v1/x", "http://api.example.com/v1/x"),
        ("https://api.example.com:8443/v1/x", "https://api.example.com:8443/v1/x"),
        ("https://api.example.com", "https://api.example.com/"),
        ("https://api.example.com/v1/x?a=1#f", "https://api.example.com/v1/x"),
        ("https://api.example.com/v1/./y/../x", "https://api.example.com/v1/x"),
        ("https://api.example.com/%7Euser/%c3%a9", "https://api.example.com/~user/%C3%A9"),
        ("https://api.example.com/a%2fb", "https://api.example.com/a%2Fb"),
        ("https://[::1]:8000/x", "https://[::1]:8000/x"),
        ("https://api.example.com/v1/x/.", "https://api.example.com/v1/x/"),
        ("https://api.example.com/v1/x/..", "https://api.example.com/v1/"),
        ("https://api.example.com/v1/./x", "https://api.example.com/v1/x"),
        ("https://api.example.com/../x", "https://api.example.com/x"),
    ],
)
def test_htu_is_normalised_as_rfc_3986_says(url, normal):
    assert normalize_htu(url) == normal


@pytest.mark.parametrize(
    "url",
    [
        "ftp://api.example.com/x",
        "/v1/x",
        "https://user@api.example.com/x",
        "https://api.example.com:99999/x",
        "https://api.example.com/%zz",
        "https://api.example.com/ x",
        "https://api.example.com/\u00e9",
        "https:///x",
        "",
    ],
)
def test_urls_that_are_not_absolute_http_match_nothing(url):
    assert normalize_htu(url) is None


def test_htu_compared_without_query_and_after_normalisation(key):
    check(key.proof("GET", "HTTPS://API.EXAMPLE.COM:443/v1/./companies?page=2#top", TOKEN), key)


@pytest.mark.parametrize(
    "url",
    [
        "https://api.example.com/v1/companies/other",
        "https://api.example.com/v1/companie",
        "http://api.example.com/v1/companies",
        "https://evil.example.com/v1/companies",
        "https://api.example.com:8443/v1/companies",
        "not a url",
    ],
)
def test_a_wrong_htu_is_refused(key, url):
    rejected(Reason.DPOP_HTU_MISMATCH, key.proof("GET", url, TOKEN), key)


def test_an_unknown_request_url_matches_no_proof(key):
    rejected(Reason.DPOP_HTU_MISMATCH, key.proof("GET", URL, TOKEN), key, htu=None)


@pytest.mark.parametrize("htu", [MISSING, 42, None, ["https://api.example.com/v1/companies"]])
def test_a_missing_or_mistyped_htu_is_refused(key, htu):
    rejected(Reason.DPOP_HTU_MISMATCH, key.proof("GET", URL, TOKEN, htu=htu), key)


# --- htm, iat, ath, jti, binding --------------------------------------------------------------------


@pytest.mark.parametrize("htm", ["POST", "get", MISSING, 1])
def test_a_wrong_htm_is_refused(key, htm):
    rejected(Reason.DPOP_HTM_MISMATCH, key.proof("GET", URL, TOKEN, htm=htm), key)


def test_the_iat_window_is_max_age_in_the_past_and_leeway_in_the_future(key):
    now = time.time()
    v = verifier(DPOP_PROOF_MAX_AGE=60, LEEWAY=5)
    check(key.proof("GET", URL, TOKEN, iat=now - 64), key, v=v, now=now)
    check(key.proof("GET", URL, TOKEN, iat=now + 4), key, v=v, now=now)
    rejected(Reason.DPOP_IAT_TOO_OLD, key.proof("GET", URL, TOKEN, iat=now - 66), key, v=v, now=now)
    rejected(Reason.DPOP_IAT_IN_FUTURE, key.proof("GET", URL, TOKEN, iat=now + 6), key, v=v, now=now)


@pytest.mark.parametrize("iat", [MISSING, "1700000000", True, [1], 1e400])
def test_a_missing_or_mistyped_iat_is_refused(key, iat):
    if iat == 1e400:
        # JSON has no infinity: the strict decoder refuses the number itself.
        header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.public_jwk}
        proof = craft(key, header, claims()).split(".")
        payload = json.dumps(claims()).replace(str(claims()["iat"]), "1e400")
        signing_input = f"{proof[0]}.{b64url_encode(payload.encode())}"
        bad = f"{signing_input}.{b64url_encode(key.sign(signing_input.encode()))}"
        rejected(Reason.DPOP_MALFORMED_PROOF, bad, key)
        return
    rejected(Reason.DPOP_BAD_CLAIM, key.proof("GET", URL, TOKEN, iat=iat), key)


def test_a_null_iat_is_refused(key):
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.public_jwk}
    rejected(Reason.DPOP_BAD_CLAIM, craft(key, header, claims(iat=None)), key)


def test_a_missing_or_wrong_ath_is_refused(key):
    rejected(Reason.DPOP_ATH_MISMATCH, key.proof("GET", URL), key)
    rejected(Reason.DPOP_ATH_MISMATCH, key.proof("GET", URL, "another.token.here"), key)
    rejected(Reason.DPOP_ATH_MISMATCH, key.proof("GET", URL, TOKEN, ath=7), key)


@pytest.mark.parametrize("jti", [MISSING, "", 12, "x" * 257, "tab\there"])
def test_a_missing_or_mistyped_jti_is_refused(key, jti):
    rejected(Reason.DPOP_BAD_CLAIM, key.proof("GET", URL, TOKEN, jti=jti), key)


def test_a_proof_signed_by_another_key_than_the_bound_one_is_refused(key):
    thief = DPoPKey("ES256")
    rejected(Reason.DPOP_KEY_MISMATCH, thief.proof("GET", URL, TOKEN), key, jkt=key.jkt)


def test_a_signature_that_does_not_match_the_header_key_is_refused(key):
    # The victim's public key in the header, the thief's signature: the binding matches, the signature not.
    thief = DPoPKey("ES256")
    proof = craft(thief, {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.public_jwk}, claims())
    rejected(Reason.DPOP_BAD_SIGNATURE, proof, key)


def test_a_tampered_payload_is_refused(key):
    header, _, signature = key.proof("GET", URL, TOKEN).split(".")
    payload = b64url_encode(json.dumps(claims(jti="other")).encode())
    rejected(Reason.DPOP_BAD_SIGNATURE, f"{header}.{payload}.{signature}", key)


# --- header ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("typ", [MISSING, "JWT", "at+jwt", "dpop", 1])
def test_typ_must_be_dpop_jwt(key, typ):
    rejected(Reason.DPOP_BAD_TYP, key.proof("GET", URL, TOKEN, headers={"typ": typ}), key)


def test_typ_is_compared_case_insensitively(key):
    check(key.proof("GET", URL, TOKEN, headers={"typ": "DPoP+JWT"}), key)


@pytest.mark.parametrize("alg", ["none", "HS256", "HS512", "ES256K", "", MISSING, None])
def test_none_hmac_and_unknown_algorithms_are_refused(key, alg):
    rejected(Reason.DPOP_ALG_NOT_ALLOWED, key.proof("GET", URL, TOKEN, headers={"alg": alg}), key)


def test_an_hmac_proof_keyed_with_a_symmetric_jwk_is_refused(key):
    import hashlib
    import hmac

    header = {"typ": "dpop+jwt", "alg": "HS256", "jwk": {"kty": "oct", "k": "c2VjcmV0"}}
    signing_input = b64url_encode(json.dumps(header).encode()) + "." + b64url_encode(json.dumps(claims()).encode())
    mac = hmac.new(b"secret", signing_input.encode(), hashlib.sha256).digest()
    rejected(Reason.DPOP_ALG_NOT_ALLOWED, f"{signing_input}.{b64url_encode(mac)}", key)


@pytest.mark.parametrize("alg", ["ES256", "RS256", "EdDSA"])
def test_a_private_key_in_the_header_is_refused(keys, alg):
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    key = keys[alg]
    private = key.key
    jwk = dict(key.public_jwk)
    if isinstance(private, ec.EllipticCurvePrivateKey):
        jwk["d"] = b64url_encode(private.private_numbers().private_value.to_bytes(32, "big"))
    elif isinstance(private, rsa.RSAPrivateKey):
        jwk["d"] = b64url_encode(private.private_numbers().d.to_bytes(256, "big"))
        jwk["p"] = b64url_encode(private.private_numbers().p.to_bytes(128, "big"))
    else:
        jwk["d"] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    rejected(Reason.DPOP_PRIVATE_KEY, key.proof("GET", URL, TOKEN, headers={"jwk": jwk}), key)


@pytest.mark.parametrize("name", ["jku", "x5u", "x5c", "crit", "x5t#S256"])
def test_keys_by_reference_and_crit_are_refused(key, name):
    rejected(Reason.DPOP_FORBIDDEN_HEADER, key.proof("GET", URL, TOKEN, headers={name: ["x"]}), key)


def bad_jwks(key):
    jwk = key.public_jwk
    y = int.from_bytes(b64url_decode(jwk["y"]), "big")
    off_curve = dict(jwk, y=b64url_encode((y ^ 1).to_bytes(32, "big")))
    return [
        MISSING,
        "a string",
        {},
        dict(jwk, kty="RSA"),
        dict(jwk, crv="P-384"),
        dict(jwk, alg="ES384"),
        {k: v for k, v in jwk.items() if k != "y"},
        dict(jwk, x=jwk["x"] + "A"),
        dict(jwk, x=jwk["x"][:-1] + "B" if jwk["x"][-1] != "B" else jwk["x"][:-1] + "C"),
        dict(jwk, x=7),
        off_curve,
    ]


def test_a_malformed_or_mismatched_header_key_is_refused(key):
    for jwk in bad_jwks(key):
        with pytest.raises(ProofRejected) as info:
            check(key.proof("GET", URL, TOKEN, headers={"jwk": jwk}), key)
        assert info.value.reason in (Reason.DPOP_BAD_KEY, Reason.DPOP_MALFORMED_PROOF), jwk


def test_a_short_rsa_key_is_refused():
    from cryptography.hazmat.primitives.asymmetric import rsa

    weak = DPoPKey("RS256", key=rsa.generate_private_key(public_exponent=65537, key_size=1024))
    rejected(Reason.DPOP_BAD_KEY, weak.proof("GET", URL, TOKEN), weak)


# --- structure -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "proof",
    [
        "",
        "a.b",
        "a.b.c.d",
        "a.b.c.d.e",
        "éé.b.c",
        "x" * 9000,
        "e30.e30",
        "!!.e30.AA",
        "eyJ0eXAiOiJkcG9wK2p3dCJ9=.e30.AA",
    ],
)
def test_malformed_proofs_are_refused(key, proof):
    rejected(Reason.DPOP_MALFORMED_PROOF, proof, key)


def test_no_input_raises_anything_but_proof_rejected(key):
    """A mutation fuzz: flipped, dropped and inserted characters never escape as another exception."""
    rng = random.Random(9449)
    good = key.proof("GET", URL, TOKEN)
    alphabet = 'ABCxyz019-_.=+/ {}"\\\x00é'
    v = verifier(DPOP_ALGORITHMS=ALL)
    for _ in range(600):
        chars = list(good)
        for _ in range(rng.randint(1, 4)):
            position = rng.randrange(len(chars))
            action = rng.randrange(3)
            if action == 0:
                chars[position] = rng.choice(alphabet)
            elif action == 1:
                del chars[position]
            else:
                chars.insert(position, rng.choice(alphabet))
        mutated = "".join(chars)
        with contextlib.suppress(ProofRejected):
            v.verify(mutated, method="GET", htu=HTU, access_token=TOKEN, jkt=key.jkt)


# --- nonces ----------------------------------------------------------------------------------------


def test_nonces_rotate_and_the_previous_one_stays_valid():
    source = NonceSource(60, b"k" * 32)
    first = source.current(now=1000)
    assert source.is_valid(first, now=1019)
    later = source.current(now=1050)
    assert later != first
    assert source.is_valid(first, now=1050)  # the period before
    assert not source.is_valid(first, now=1200)  # two periods on
    assert not NonceSource(60, b"o" * 32).is_valid(first, now=1000)  # another secret


def test_with_nonces_on_a_proof_needs_the_current_nonce(key):
    v = verifier(DPOP_NONCE_LIFETIME=60)
    with pytest.raises(NonceRequired) as info:
        check(key.proof("GET", URL, TOKEN), key, v=v)
    assert info.value.reason == Reason.DPOP_NONCE_REQUIRED
    nonce = info.value.nonce
    check(key.proof("GET", URL, TOKEN, nonce=nonce), key, v=v)
    with pytest.raises(NonceRequired):
        check(key.proof("GET", URL, TOKEN, nonce="stale"), key, v=v)
    later = time.time() + 200
    with pytest.raises(NonceRequired):
        check(key.proof("GET", URL, TOKEN, nonce=nonce, iat=later), key, v=v, now=later)


def test_a_bad_proof_is_invalid_before_a_nonce_is_asked_for(key):
    v = verifier(DPOP_NONCE_LIFETIME=60)
    rejected(Reason.DPOP_HTM_MISMATCH, key.proof("POST", URL, TOKEN), key, v=v)


def test_processes_with_the_same_secret_key_agree_on_nonces(key, settings):
    settings.SECRET_KEY = "one-secret-" + "x" * 40
    with override_settings(COBEE_DJANGO={**get_settings().raw, "DPOP_NONCE_LIFETIME": 60}):
        first = get_proof_verifier()
        nonce = first.nonces.current()
        import cobee_django.dpop as dpop

        dpop._verifier = None  # a second process: built afresh from the same settings
        assert get_proof_verifier() is not first
        assert get_proof_verifier().nonces.is_valid(nonce)


# --- replay ----------------------------------------------------------------------------------------


def test_a_proof_is_accepted_once(key):
    caches["default"].clear()
    v = verifier()
    proof = check(key.proof("GET", URL, TOKEN), key, v=v)
    v.check_replay(proof)
    with pytest.raises(ProofRejected) as info:
        v.check_replay(check(key.proof("GET", URL, TOKEN, jti=proof.jti), key, v=v))
    assert info.value.reason == Reason.DPOP_REPLAY


def test_the_same_jti_from_another_key_is_its_own(key):
    caches["default"].clear()
    v = verifier()
    other = DPoPKey()
    v.check_replay(check(key.proof("GET", URL, TOKEN, jti="shared"), key, v=v))
    v.check_replay(check(other.proof("GET", URL, TOKEN, jti="shared"), other, v=v))


def test_the_replay_window_covers_every_accepted_iat():
    v = verifier(DPOP_PROOF_MAX_AGE=60, LEEWAY=30)
    assert v.replay_window >= 60 + 2 * 30


BROKEN_CACHE = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "broken": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"},
}


def test_a_replay_store_outage_fails_closed(key):
    with override_settings(CACHES=BROKEN_CACHE):
        v = verifier(DPOP_REPLAY_CACHE_ALIAS="broken")
        proof = check(key.proof("GET", URL, TOKEN), key, v=v)
        with pytest.raises(ReplayStoreUnavailable):
            v.check_replay(proof)


def test_a_replay_store_outage_admits_when_the_project_opts_in(key):
    with override_settings(CACHES=BROKEN_CACHE):
        v = verifier(DPOP_REPLAY_CACHE_ALIAS="broken", DPOP_REPLAY_FAIL_OPEN=True)
        v.check_replay(check(key.proof("GET", URL, TOKEN), key, v=v))


# --- found by mutation testing ---------------------------------------------------------------------


def test_an_ec_signature_of_the_wrong_length_is_refused(key):
    header, payload, signature = key.proof("GET", URL, TOKEN).split(".")
    raw = b64url_decode(signature)
    for wrong in (raw[:-1], raw + b"\x00", b"\x00" + raw):
        rejected(Reason.DPOP_BAD_SIGNATURE, f"{header}.{payload}.{b64url_encode(wrong)}", key)


def test_a_missing_jwk_or_key_member_is_a_bad_key(key):
    rejected(Reason.DPOP_BAD_KEY, key.proof("GET", URL, TOKEN, headers={"jwk": MISSING}), key)
    for member in ("x", "y"):
        jwk = {name: value for name, value in key.public_jwk.items() if name != member}
        rejected(Reason.DPOP_BAD_KEY, key.proof("GET", URL, TOKEN, headers={"jwk": jwk}), key)


def test_a_jwk_naming_its_alg_must_name_the_headers(key):
    check(key.proof("GET", URL, TOKEN, headers={"jwk": {**key.public_jwk, "alg": "ES256"}}), key)
    other_alg = {**key.public_jwk, "alg": "ES384"}
    rejected(Reason.DPOP_BAD_KEY, key.proof("GET", URL, TOKEN, headers={"jwk": other_alg}), key)


def test_a_nonce_is_24_characters():
    assert len(NonceSource(60, b"k" * 32).current(now=1000)) == 24


def test_nonces_depend_on_the_secret_key(settings):
    nonces = []
    for secret in ("one-secret-" + "x" * 40, "another-secret-" + "y" * 40):
        settings.SECRET_KEY = secret
        with override_settings(COBEE_DJANGO={**get_settings().raw, "DPOP_NONCE_LIFETIME": 60}):
            nonces.append(get_proof_verifier().nonces.current(now=1000))
    assert nonces[0] != nonces[1]


def test_a_jti_is_remembered_for_the_replay_window(key, monkeypatch):
    caches["default"].clear()
    v = verifier()
    calls = []
    real_add = caches["default"].add

    def add(cache_key, value, timeout, *args, **kwargs):
        calls.append(timeout)
        return real_add(cache_key, value, timeout, *args, **kwargs)

    monkeypatch.setattr(caches["default"], "add", add)
    v.check_replay(check(key.proof("GET", URL, TOKEN), key, v=v))
    assert calls == [v.replay_window]


def test_the_nonce_header_is_added_once_and_only_when_noted():
    from django.http import HttpResponse
    from django.test import RequestFactory

    from cobee_django.dpop import add_nonce_header, remember_nonce

    request = RequestFactory().get("/")
    response = HttpResponse()
    add_nonce_header(request, response)
    assert not response.has_header("DPoP-Nonce") and not response.has_header("Vary")
    remember_nonce(request, "n-1")
    add_nonce_header(request, response)
    assert response["DPoP-Nonce"] == "n-1"
    assert [h.strip() for h in response["Vary"].split(",")] == ["DPoP"]
    kept = HttpResponse(headers={"DPoP-Nonce": "already"})
    add_nonce_header(request, kept)
    assert kept["DPoP-Nonce"] == "already"


def test_a_confirmation_claim_that_is_not_an_object_binds_nothing(key):
    from django.test import RequestFactory

    from cobee_django.dpop import DPOP, check_request

    request = RequestFactory().get("/")
    for cnf in ("jkt", ["jkt"], 7):
        check_request(request, "bearer", TOKEN, {"cnf": cnf}, "client")  # an unbound token as Bearer
        with pytest.raises(TokenRejected) as info:
            check_request(request, DPOP, TOKEN, {"cnf": cnf}, "client")
        assert info.value.reason == Reason.TOKEN_NOT_DPOP_BOUND


def test_a_proof_header_with_anything_around_the_proof_is_refused(key, settings):
    from django.test import RequestFactory

    from cobee_django.dpop import DPOP, check_request

    settings.COBEE_DJANGO = {**settings.COBEE_DJANGO, "DPOP_MODE": "allowed"}
    caches["default"].clear()
    url = "http://testserver/orders"
    for proof, reason in [
        ("X", Reason.DPOP_MALFORMED_PROOF),
        (key.proof("GET", url, TOKEN) + "X", None),
        (" \t" + key.proof("GET", url, TOKEN) + "\t ", "accepted"),
    ]:
        request = RequestFactory().get("/orders", HTTP_DPOP=proof)
        if reason == "accepted":
            check_request(request, DPOP, TOKEN, {"cnf": {"jkt": key.jkt}}, "client")
            continue
        with pytest.raises(ProofRejected) as info:
            check_request(request, DPOP, TOKEN, {"cnf": {"jkt": key.jkt}}, "client")
        if reason is not None:
            assert info.value.reason == reason


def test_the_error_goes_on_the_bearer_challenge_when_dpop_is_disabled(settings):
    from cobee_django.dpop import DPOP, www_authenticate

    settings.COBEE_DJANGO = {**settings.COBEE_DJANGO, "DPOP_MODE": "disabled"}
    assert www_authenticate("api", DPOP, "invalid_token", "d") == (
        'Bearer realm="api", error="invalid_token", error_description="d"'
    )


# --- exact bounds -------------------------------------------------------------------------------


def test_the_iat_window_includes_its_two_ends(key):
    now = float(int(time.time()))  # whole seconds: the bounds are exact sums
    v = verifier(DPOP_PROOF_MAX_AGE=60, LEEWAY=5)
    check(key.proof("GET", URL, TOKEN, iat=int(now) - 65), key, v=v, now=now)
    check(key.proof("GET", URL, TOKEN, iat=int(now) + 5), key, v=v, now=now)


@pytest.mark.parametrize("length", [1, 256])
def test_a_jti_of_one_to_256_characters_is_accepted(key, length):
    assert check(key.proof("GET", URL, TOKEN, jti="j" * length), key).jti == "j" * length


def _proof_of_length(key, length):
    """A valid proof exactly ``length`` characters long (padding in the header and the claims: base64url
    never yields every length from one segment alone)."""
    for header_pad in range(4):
        for pad in range(max(0, length * 3 // 4 - 1000), length):
            headers = {"x-pad": "h" * header_pad}
            proof = key.proof("GET", URL, TOKEN, headers=headers, pad="p" * pad)
            if len(proof) == length:
                return proof
            if len(proof) > length:
                break
    raise AssertionError(f"no proof of {length} characters")


def test_a_proof_of_exactly_the_size_cap_is_read_and_one_longer_is_not(key):
    check(_proof_of_length(key, MAX_PROOF_BYTES), key)
    with pytest.raises(ProofRejected) as info:
        check(_proof_of_length(key, MAX_PROOF_BYTES + 1), key)
    assert (info.value.reason, info.value.detail) == (Reason.DPOP_MALFORMED_PROOF, "too large")


def _rsa_jwk_members(key):
    numbers = key.key.public_key().public_numbers()
    n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
    e = numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")
    return n, e


def test_rsa_members_with_a_leading_zero_byte_are_refused(keys):
    key = keys["RS256"]
    n, e = _rsa_jwk_members(key)
    for members in ({"n": b64url_encode(b"\0" + n)}, {"e": b64url_encode(b"\0" + e)}):
        jwk = dict(key.public_jwk, **members)
        rejected(Reason.DPOP_BAD_KEY, key.proof("GET", URL, TOKEN, headers={"jwk": jwk}), key)


def test_an_rsa_key_with_the_exponent_3_is_accepted():
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = DPoPKey("RS256", key=rsa.generate_private_key(public_exponent=3, key_size=2048))
    assert check(key.proof("GET", URL, TOKEN), key).jkt == key.jkt


def test_an_ec_coordinate_written_short_is_refused_even_when_it_names_a_point_on_the_curve():
    """RFC 7518 section 6.2.1.2: each coordinate is the full size of the curve (32 bytes for P-256)."""
    from cryptography.hazmat.primitives.asymmetric import ec

    while True:  # a key whose x starts with a zero byte (one in 256): the short form is the same point
        key = DPoPKey("ES256", key=ec.generate_private_key(ec.SECP256R1()))
        x = b64url_decode(key.public_jwk["x"])
        if x[0] == 0:
            break
    short = dict(key.public_jwk, x=b64url_encode(x[1:]))
    rejected(Reason.DPOP_BAD_KEY, key.proof("GET", URL, TOKEN, headers={"jwk": short}), key)


def test_both_challenges_name_the_realm_given(settings):
    from cobee_django.dpop import www_authenticate

    settings.COBEE_DJANGO = {**settings.COBEE_DJANGO, "DPOP_MODE": "allowed", "REALM": "settings-realm"}
    value = www_authenticate("partners")
    assert value.startswith('Bearer realm="partners"') and 'DPoP realm="partners"' in value
    assert "settings-realm" not in value


def test_a_point_off_the_curve_is_a_bad_key(key):
    """Pinned to its reason: cryptography's refusal lands in the key parser's own catch-all."""
    jwk = key.public_jwk
    y = int.from_bytes(b64url_decode(jwk["y"]), "big")
    off_curve = dict(jwk, y=b64url_encode((y ^ 1).to_bytes(32, "big")))
    rejected(Reason.DPOP_BAD_KEY, key.proof("GET", URL, TOKEN, headers={"jwk": off_curve}), key)
