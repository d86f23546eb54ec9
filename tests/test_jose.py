"""Strict compact JWS parsing, header rules and JWKS entry checks, unit by unit."""

from __future__ import annotations

import base64
import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cobee_django.exceptions import Reason, TokenRejected
from cobee_django.jose import (
    CompactParser,
    UnusableKey,
    b64url_decode,
    b64url_encode,
    check_header,
    key_from_jwk,
    loads_json,
)
from cobee_django.testing import TokenIssuer

RS256 = frozenset({"RS256"})


def reason(fn, *args) -> str:
    with pytest.raises(TokenRejected) as info:
        fn(*args)
    return info.value.reason.value


# --- base64url --------------------------------------------------------------------------------------


@given(st.binary(max_size=300))
def test_b64url_round_trips_and_matches_the_standard_library(data):
    encoded = b64url_encode(data)
    assert encoded == base64.urlsafe_b64encode(data).decode().rstrip("=")
    assert b64url_decode(encoded) == data


@given(st.binary(min_size=1, max_size=64))
def test_every_other_spelling_of_the_same_bytes_is_refused(data):
    encoded = b64url_encode(data)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    if len(encoded) % 4:
        # Changing the unused trailing bits decodes to the same bytes with a lenient decoder.
        last = alphabet.index(encoded[-1])
        for variant in range(last + 1, min(last + 4, 64)):
            candidate = encoded[:-1] + alphabet[variant]
            lenient = base64.urlsafe_b64decode(candidate + "==")
            if lenient == data:
                assert reason(b64url_decode, candidate) == "bad_encoding"
        assert reason(b64url_decode, encoded + "=" * (-len(encoded) % 4)) == "bad_encoding"


@pytest.mark.parametrize(
    "segment",
    # "YE", "YB": trailing bits set where the last character carries four unused bits; "YWF": two.
    ["YQ=", "YQ==", "Y Q", "YQ\n", "+/8", "YQ!", "Y", "YWJjZ", "éé", "YR", "YE", "YB", "YWJ", "YWF", "\x00A"],
)
def test_non_canonical_base64url_is_refused(segment):
    assert reason(b64url_decode, segment) == "bad_encoding"


def test_canonical_values_decode():
    assert b64url_decode("") == b""
    assert b64url_decode("YQ") == b"a"
    assert b64url_decode("YWI") == b"ab"
    assert b64url_decode("-_8") == b"\xfb\xff"
    # An encoding that ends in "X" (no padding to strip) keeps it.
    assert b64url_encode(b"\x00\x00\x17") == "AAAX" and b64url_decode("AAAX") == b"\x00\x00\x17"


# --- JSON -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b'{"a":1,"a":2}',
        b'{"a":{"b":1,"b":1}}',
        b'{"a":NaN}',
        b'{"a":Infinity}',
        b'{"a":-Infinity}',
        b'{"a":1e400}',
        b"\xef\xbb\xbf{}",
        b'{"a":"\xff"}',
        b'{"a":"\xc3"}',
        '{"a":1}'.encode("utf-16"),
        b"[]",
        b'"x"',
        b"1",
        b"null",
        b"",
        b"{",
        b"{}x",
        b"{} {}",
        b"\x0c{}",  # form feed and no-break space are not JSON whitespace
        b"{}\x0c",
        b"\xc2\xa0{}",
        b" \t\r\n",
        b'{"a":' + b"[" * 17 + b"]" * 17 + b"}",
        b"[" * 100000,
    ],
)
def test_strict_json_refuses(data):
    assert reason(loads_json, data) == "bad_json"


def test_strict_json_accepts_and_counts_depth_outside_strings():
    assert loads_json(b' {"a": [1, 2.5, {"b": null}], "c": "[[[[[[[[[[[[[[[[[[[[[["}\n') == {
        "a": [1, 2.5, {"b": None}],
        "c": "[[[[[[[[[[[[[[[[[[[[[[",
    }
    assert loads_json(b'{"a":' + b"[" * 15 + b"]" * 15 + b"}")


def _objects(levels: int) -> bytes:
    """A JSON object nested ``levels`` deep (the top-level object counts as one)."""
    return b'{"a":' * (levels - 1) + b"{}" + b"}" * (levels - 1)


@pytest.mark.parametrize(
    "data",
    [
        _objects(17),
        b'{"a":' + b'{"b":[' * 8 + b"1" + b"]}" * 8 + b"}",  # objects and arrays together: 17 levels
        _objects(17) + b" " * 10,
        # A closed sibling before the deep branch: the count must go down by exactly one per bracket.
        b'{"x":{},"y":[[]],"a":' + _objects(16) + b"}",
        b'{"a":{"b":{},"c":' + _objects(15) + b"}}",
    ],
)
def test_objects_nested_past_the_limit_are_refused(data):
    # Without the bound, deep documents cost the parser's recursion (and a RecursionError further down).
    assert reason(loads_json, data) == Reason.BAD_JSON.value


def test_exactly_the_depth_limit_passes():
    assert loads_json(_objects(16))
    # More brackets than the bound, so the exact depth is computed: 16 is still accepted.
    assert loads_json(b'{"x":{},"a":' + _objects(15) + b"}")
    assert loads_json(b'{"a":{"b":{},"c":' + _objects(14) + b"}}")
    assert loads_json(b'{"a":' + b"[" * 15 + b"]" * 15 + b"}")
    assert loads_json(b'{"a":' + b'{"b":[' * 7 + b"{}" + b"]}" * 7 + b"}")


@pytest.mark.parametrize(
    "data",
    [
        b'{"a":[' + b"[]," * 100 + b"[]]}",
        b'{"a":[' + b"{}," * 100 + b"{}]}",
        b'{"a":[' + b'{"b":[1]},' * 40 + b"{}]," + b'"c":{"d":{}}}',
        # Brackets and escaped quotes inside strings are not structure.
        b'{"a":"\\\\","b":"\\"' + b"[[[[{{{{" * 3 + b'\\"","c":"]]]]}}}}' + b"[" * 20 + b'"}',
    ],
)
def test_wide_but_shallow_documents_pass(data):
    # Many brackets side by side are not depth: only the exact count decides past the cheap pre-check.
    assert type(loads_json(data)) is dict


def test_the_depth_limit_is_a_parameter():
    assert loads_json(_objects(3), max_depth=3)
    assert reason(lambda: loads_json(_objects(4), max_depth=3)) == Reason.BAD_JSON.value
    with pytest.raises(TokenRejected) as info:
        loads_json(_objects(17), reason=Reason.BAD_ENCODING)
    assert info.value.reason is Reason.BAD_ENCODING


# --- header rules -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ({"alg": "none", "kid": "k"}, "alg_not_allowed"),
        ({"alg": "HS256", "kid": "k"}, "alg_not_allowed"),
        ({"alg": "RS384", "kid": "k"}, "alg_not_allowed"),
        ({"alg": "ES256", "kid": "k"}, "alg_not_allowed"),
        ({"kid": "k"}, "alg_not_allowed"),
        ({"alg": True, "kid": "k"}, "alg_not_allowed"),
        ({"alg": "RS256", "kid": "k", "jwk": {}}, "embedded_key"),
        ({"alg": "RS256", "kid": "k", "jku": "https://x"}, "embedded_key"),
        ({"alg": "RS256", "kid": "k", "x5u": "https://x"}, "embedded_key"),
        ({"alg": "RS256", "kid": "k", "x5c": []}, "embedded_key"),
        ({"alg": "RS256", "kid": "k", "crit": []}, "forbidden_header"),
        ({"alg": "RS256", "kid": "k", "zip": "DEF"}, "forbidden_header"),
        ({"alg": "RS256", "kid": "k", "typ": "JWS"}, "bad_typ"),
        ({"alg": "RS256", "kid": "k", "typ": None}, "bad_typ"),
        ({"alg": "RS256", "kid": "k", "typ": ["JWT"]}, "bad_typ"),
        ({"alg": "RS256"}, "missing_kid"),
        ({"alg": "RS256", "kid": ""}, "missing_kid"),
        ({"alg": "RS256", "kid": 1}, "missing_kid"),
        ({"alg": "RS256", "kid": "k" * 257}, "missing_kid"),
    ],
)
def test_header_rules(header, expected):
    assert reason(check_header, header, RS256) == expected


def test_a_kid_of_exactly_the_longest_length_is_accepted():
    assert check_header({"alg": "RS256", "kid": "k" * 256}, RS256).kid == "k" * 256


@pytest.mark.parametrize("typ", ["JWT", "jwt", "at+jwt", "AT+JWT", "application/at+jwt"])
def test_accepted_types(typ):
    assert check_header({"alg": "RS256", "kid": "k", "typ": typ}, RS256).kid == "k"


def test_the_checked_header_keeps_every_field():
    fields = {"alg": "RS256", "kid": "k", "typ": "JWT", "x-extra": [1]}
    header = check_header(fields, RS256)
    assert header.fields == fields and (header.alg, header.kid) == ("RS256", "k")


def test_other_algorithms_can_be_allowed():
    assert check_header({"alg": "PS256", "kid": "k"}, frozenset({"RS256", "PS256"})).alg == "PS256"


# --- the compact parser -----------------------------------------------------------------------------


def test_parser_splits_and_remembers_headers(rsa_key):
    issuer = TokenIssuer(issuer="https://t.example/", audience="a", key=rsa_key)
    parser = CompactParser(RS256, 16384)
    token = issuer.make_token("5e9e9701-9883-447d-9884-46e75993e33b")
    jws = parser.parse(token)
    assert jws.header.kid == issuer.kid and jws.header.alg == "RS256"
    assert jws.payload["iss"] == "https://t.example/"
    assert jws.signing_input == token.rpartition(".")[0].encode()
    assert b64url_encode(jws.signature) == token.rpartition(".")[2]
    assert parser.parse(token).header is jws.header  # the checked header is reused


def test_parser_remembers_a_bounded_number_of_headers():
    parser = CompactParser(RS256, 16384)
    payload, signature = b64url_encode(b"{}"), b64url_encode(b"sig")
    for n in range(300):
        header = b64url_encode(json.dumps({"alg": "RS256", "kid": f"k{n}"}).encode())
        assert parser.parse(f"{header}.{payload}.{signature}").header.kid == f"k{n}"
        assert len(parser._headers) <= 256
    assert len(parser._headers) == 300 - 256


@pytest.mark.parametrize("token", ["é.e30.c2ln", "e30.e30.c2ln\u0301", "\x00.e30.c2ln"])
def test_parser_refuses_non_ascii_tokens(token):
    assert reason(CompactParser(RS256, 16384).parse, token) == Reason.MALFORMED_TOKEN.value


def test_parser_size_cap(rsa_key):
    issuer = TokenIssuer(issuer="https://t.example/", audience="a", key=rsa_key)
    token = issuer.make_token("5e9e9701-9883-447d-9884-46e75993e33b")
    assert reason(CompactParser(RS256, len(token) - 1).parse, token) == "too_large"
    assert CompactParser(RS256, len(token)).parse(token)


@given(st.text(max_size=200))
def test_parser_never_raises_anything_but_token_rejected(text):
    parser = CompactParser(RS256, 16384)
    with contextlib.suppress(TokenRejected):
        parser.parse(text)


@given(st.lists(st.binary(max_size=60), min_size=3, max_size=3))
def test_parser_on_random_segments(segments):
    parser = CompactParser(RS256, 16384)
    token = ".".join(b64url_encode(s) for s in segments)
    with contextlib.suppress(TokenRejected):
        parser.parse(token)


# --- JWKS entries -----------------------------------------------------------------------------------


def test_key_from_jwk_builds_a_josepy_key(rsa_key):
    issuer = TokenIssuer(issuer="https://t.example/", audience="a", key=rsa_key)
    key = key_from_jwk(issuer.public_jwk, RS256)
    assert key.kid == issuer.kid and key.alg == "RS256" and key.bits == 2048
    assert key.public_key.public_numbers() == rsa_key.public_key().public_numbers()
    assert key.jwk.key.public_numbers() == rsa_key.public_key().public_numbers()  # compared on key rotation
    entry = {k: v for k, v in issuer.public_jwk.items() if k not in ("alg", "use")}
    assert key_from_jwk(entry, RS256).alg is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kty": "EC"}, "kty"),
        ({"kid": None}, "kid"),
        ({"kid": ""}, "kid"),
        ({"use": "enc"}, "use"),
        ({"alg": "RS512"}, "alg"),
        ({"alg": "HS256"}, "alg"),
        ({"key_ops": ["sign"]}, "key_ops"),
        ({"key_ops": "verify"}, "key_ops"),
        ({"d": "AQAB"}, "private"),
        ({"n": 5}, "strings"),
        ({"e": None}, "strings"),
        ({"e": "AQAB="}, "canonical"),
        ({"e": "Ag"}, "exponent"),
        ({"e": "AQ"}, "exponent"),
        ({"n": "AAEC"}, "leading zeros"),
        ({"n": b64url_encode((2**1023 + 1).to_bytes(128, "big"))}, "2048"),
    ],
)
def test_unusable_entries(rsa_key, change, message):
    issuer = TokenIssuer(issuer="https://t.example/", audience="a", key=rsa_key)
    with pytest.raises(UnusableKey, match=message):
        key_from_jwk({**issuer.public_jwk, **change}, RS256)


@pytest.mark.parametrize("e", ["BA", "AQAC", "AQAA"])
def test_an_even_public_exponent_is_refused(rsa_key, e):
    # An even e is no RSA key (e must be a unit modulo lambda(n)); refused here, before any library sees it.
    issuer = TokenIssuer(issuer="https://t.example/", audience="a", key=rsa_key)
    with pytest.raises(UnusableKey, match="bad public exponent") as info:
        key_from_jwk({**issuer.public_jwk, "e": e}, RS256)
    assert info.value.__cause__ is None


@pytest.mark.parametrize(
    "change",
    [
        {"e": "Aw"},  # e = 3, the smallest exponent allowed
        {"key_ops": ["verify"]},
        {"key_ops": ["sign", "verify"]},
        {"use": "sig"},
        {"kid": "k" * 256},
    ],
)
def test_usable_entries_at_the_edges(rsa_key, change):
    issuer = TokenIssuer(issuer="https://t.example/", audience="a", key=rsa_key)
    key = key_from_jwk({**issuer.public_jwk, **change}, RS256)
    assert key.kid == change.get("kid", issuer.kid) and key.bits == 2048
    assert key.public_key.public_numbers().e == (3 if change.get("e") == "Aw" else 65537)


def test_a_kid_one_past_the_longest_length_is_refused(rsa_key):
    issuer = TokenIssuer(issuer="https://t.example/", audience="a", key=rsa_key)
    with pytest.raises(UnusableKey, match="kid"):
        key_from_jwk({**issuer.public_jwk, "kid": "k" * 257}, RS256)


def test_non_object_entry():
    with pytest.raises(UnusableKey):
        key_from_jwk(["RSA"], RS256)


def test_signature_rules(rsa_key):
    issuer = TokenIssuer(issuer="https://t.example/", audience="a", key=rsa_key)
    key = key_from_jwk(issuer.public_jwk, frozenset({"RS256", "PS256"}))
    parser = CompactParser(frozenset({"RS256", "PS256"}), 16384)
    key.verify(parser.parse(issuer.make_token("5e9e9701-9883-447d-9884-46e75993e33b")))
    # The key was published for RS256: a PS256 signature by the same key is refused.
    ps256 = issuer.make_token("5e9e9701-9883-447d-9884-46e75993e33b", headers={"alg": "PS256"})
    assert reason(key.verify, parser.parse(ps256)) == Reason.KEY_ALG_MISMATCH.value
    tampered = issuer.make_token("5e9e9701-9883-447d-9884-46e75993e33b")[:-8] + "AAAAAAAA"
    assert reason(key.verify, parser.parse(tampered)) == "bad_signature"


def test_josepy_is_not_trusted_for_compact_parsing(rsa_key):
    """A reminder of why the strict parser exists: josepy accepts a padded signature."""
    import josepy

    issuer = TokenIssuer(issuer="https://t.example/", audience="a", key=rsa_key)
    token = issuer.make_token("5e9e9701-9883-447d-9884-46e75993e33b")
    padded = token + "=" * (-len(token.rpartition(".")[2]) % 4)
    jwk = josepy.JWKRSA(key=rsa_key.public_key())
    assert josepy.JWS.from_compact(padded.encode()).verify(jwk)
    assert reason(CompactParser(RS256, 16384).parse, padded) == "malformed_token"
    assert json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))["alg"] == "RS256"


# --- RSASSA-PSS salt length (RFC 7518 section 3.5) ---------------------------------------------------


_PSS_HASHES = {"PS256": "SHA256", "PS384": "SHA384", "PS512": "SHA512"}


def _pss_token(issuer: TokenIssuer, alg: str, salt_length: int) -> str:
    """A token for ``alg`` signed by ``issuer``'s key with an explicit PSS salt length."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    digest = getattr(hashes, _PSS_HASHES[alg])
    header = b64url_encode(json.dumps({"alg": alg, "kid": issuer.kid}).encode())
    payload = b64url_encode(json.dumps({"sub": "x"}).encode())
    signing_input = f"{header}.{payload}".encode()
    signature = issuer.key.sign(
        signing_input, padding.PSS(mgf=padding.MGF1(digest()), salt_length=salt_length), digest()
    )
    return f"{header}.{payload}.{b64url_encode(signature)}"


@pytest.mark.parametrize("alg", sorted(_PSS_HASHES))
def test_pss_verifies_only_the_digest_length_salt(rsa_key, alg):
    from cryptography.hazmat.primitives import hashes

    issuer = TokenIssuer(issuer="https://t.example/", audience="a", key=rsa_key, algorithm=alg)
    key = key_from_jwk(issuer.public_jwk, frozenset({alg}))
    parser = CompactParser(frozenset({alg}), 16384)
    digest_size = getattr(hashes, _PSS_HASHES[alg]).digest_size
    key.verify(parser.parse(_pss_token(issuer, alg, digest_size)))
    # The maximum salt (what josepy signs with, and accepts) and any other length are refused.
    maximum = (rsa_key.key_size + 7) // 8 - digest_size - 2
    for salt_length in (maximum, 0, digest_size - 1, digest_size + 1):
        assert reason(key.verify, parser.parse(_pss_token(issuer, alg, salt_length))) == "bad_signature"


@pytest.mark.parametrize("alg", sorted(_PSS_HASHES))
def test_the_test_issuer_signs_pss_with_the_digest_length_salt(rsa_key, alg):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    issuer = TokenIssuer(issuer="https://t.example/", audience="a", key=rsa_key, algorithm=alg)
    token = issuer.make_token("5e9e9701-9883-447d-9884-46e75993e33b")
    signing_input, _, signature = token.rpartition(".")
    digest = getattr(hashes, _PSS_HASHES[alg])
    # Verified with cryptography alone and the RFC's salt length (an exact-length check in OpenSSL).
    rsa_key.public_key().verify(
        b64url_decode(signature),
        signing_input.encode(),
        padding.PSS(mgf=padding.MGF1(digest()), salt_length=digest.digest_size),
        digest(),
    )


def test_josepy_records_without_a_signature_failure_are_kept(caplog):
    import logging

    with caplog.at_level(logging.DEBUG, logger="josepy.jwa"):
        logging.getLogger("josepy.jwa").debug("plain record")
        try:
            raise ValueError("another failure")
        except ValueError:
            logging.getLogger("josepy.jwa").debug("with a traceback", exc_info=True)
    assert [record.getMessage() for record in caplog.records] == ["plain record", "with a traceback"]


def test_a_bad_signature_leaves_no_josepy_traceback_in_the_logs(rsa_key, caplog):
    import logging

    issuer = TokenIssuer(issuer="https://t.example/", audience="a", key=rsa_key)
    key = key_from_jwk(issuer.public_jwk, RS256)
    tampered = issuer.make_token("5e9e9701-9883-447d-9884-46e75993e33b")[:-8] + "AAAAAAAA"
    with caplog.at_level(logging.DEBUG, logger="josepy"):
        assert reason(key.verify, CompactParser(RS256, 16384).parse(tampered)) == "bad_signature"
    assert not [record for record in caplog.records if record.exc_info]
