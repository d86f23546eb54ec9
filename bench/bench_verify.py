"""Token verification cost, as ratios to a bare RSA-SHA256 verify of the same tokens in the same run.

    python -m bench.bench_verify [--tokens 500] [--rounds 40]

Measures (interleaved rounds, each over the same set of distinct tokens, warm key set):

- baseline: ``cryptography``'s RSA PKCS#1 v1.5 SHA-256 verify of each token's signing input, with
  the signature already decoded: the physical floor of verifying an RS256 token;
- first sight: ``cobee_django.tokens.verify_token`` on tokens not in the validated-token cache
  (strict parsing, header rules, key lookup, signature, every claim rule, the principal);
- cached: ``verify_token`` on tokens it has verified before (the validated-token cache);
- josepy reference: josepy's own ``JWS.from_compact(...).verify(jwk)`` (parse and signature only,
  none of the checks), what a naive josepy verifier would pay;
- ``authenticate()`` first sight and seen before: ``JWTAuthentication().authenticate(request)`` on a
  DRF request carrying each token (the header parsed, the token verified, the audit hooks and the
  span hook run), telemetry off and no audit receiver connected: what every API request pays.

Then checks the cache's two promises: it never holds more entries than ``TOKEN_CACHE_SIZE``, and
it never serves a token past its ``exp``.

Targets: verify first sight <= 1.3x the baseline, cached <= 0.1x; ``authenticate()`` first sight
<= 2.0x, seen before <= 0.1x.
"""

from __future__ import annotations

import argparse
import binascii
import json
import time
import uuid

from bench.common import configure_without_database, figure, interleave, print_environment, ratio, report

ISSUER = "https://tenant.example/"
AUDIENCE = "https://api.example"
#: CPU time of this thread: other processes on a busy machine do not count against either side.
clock = time.thread_time


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=500, help="distinct tokens per round")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--cache-size", type=int, default=1000, help="TOKEN_CACHE_SIZE for this run")
    parser.add_argument("--no-environment", action="store_true", help="do not print the machine and versions")
    args = parser.parse_args(argv)

    configure_without_database(
        ISSUER=ISSUER, AUDIENCE=AUDIENCE, JWKS_CACHE_ALIAS=None, TOKEN_CACHE_SIZE=args.cache_size
    )

    import josepy
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from django.test import RequestFactory
    from rest_framework.request import Request

    from cobee_django import tokens
    from cobee_django.authentication import JWTAuthentication
    from cobee_django.jose import b64url_decode
    from cobee_django.testing import TokenIssuer, install_key_set

    if not args.no_environment:
        print_environment()
    issuer = TokenIssuer(issuer=ISSUER, audience=AUDIENCE)
    install_key_set(ISSUER, issuer.jwks())
    company = uuid.uuid4()
    cache_size = args.cache_size
    count = min(args.tokens, cache_size)
    batch = [
        issuer.make_token(company, scopes=["read:employees", "write:employees"], jti=uuid.uuid4().hex)
        for _ in range(count)
    ]
    encoded = [token.encode("ascii") for token in batch]
    split = [(token.rpartition(".")[0].encode(), b64url_decode(token.rpartition(".")[2])) for token in batch]
    public_key = issuer.key.public_key()
    jwk = josepy.JWKRSA(key=public_key)
    pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()
    verifier = tokens.get_verifier()
    verify_token = tokens.verify_token
    for token in batch:  # warm every per-process structure once (key set, header and id caches)
        verify_token(token)
    factory = RequestFactory()
    requests = [Request(factory.get("/", HTTP_AUTHORIZATION=f"Bearer {token}")) for token in batch]
    authenticate = JWTAuthentication().authenticate

    def bare() -> float:
        verify = public_key.verify
        start = clock()
        for signing_input, signature in split:
            verify(signature, signing_input, pkcs1, sha256)
        return (clock() - start) / count

    def first_sight() -> float:
        verifier.clear_cache()
        start = clock()
        for token in batch:
            verify_token(token)
        return (clock() - start) / count

    def cached() -> float:
        for token in batch:  # make sure every token is in the cache, whatever ran before
            verify_token(token)
        start = clock()
        for token in batch:
            verify_token(token)
        return (clock() - start) / count

    def authenticate_first_sight() -> float:
        verifier.clear_cache()
        start = clock()
        for request in requests:
            authenticate(request)
        return (clock() - start) / count

    def authenticate_seen_before() -> float:
        for request in requests:
            authenticate(request)
        start = clock()
        for request in requests:
            authenticate(request)
        return (clock() - start) / count

    def josepy_reference() -> float:
        from_compact = josepy.JWS.from_compact
        start = clock()
        for token in encoded:
            from_compact(token).verify(jwk)
        return (clock() - start) / count

    to_standard = bytes.maketrans(b"-_", b"+/")
    loads = json.loads

    def floor() -> float:
        # What no verifier can avoid: split, decode payload and signature, parse JSON, verify.
        # No check at all (not even strict base64), so a lower bound, not a usable verifier.
        a2b = binascii.a2b_base64
        verify = public_key.verify
        start = clock()
        for token in encoded:
            header, payload, signature = token.split(b".")
            loads(a2b(payload.translate(to_standard) + b"=="))
            verify(
                a2b(signature.translate(to_standard) + b"=="), token[: len(header) + 1 + len(payload)], pkcs1, sha256
            )
        return (clock() - start) / count

    print(f"verify: {count} distinct RS256 tokens ({len(batch[0])} characters) per round, {args.rounds} rounds")
    results = interleave(
        {
            "bare": bare,
            "first sight": first_sight,
            "cached": cached,
            "authenticate first sight": authenticate_first_sight,
            "authenticate seen before": authenticate_seen_before,
            "josepy": josepy_reference,
            "floor": floor,
        },
        args.rounds,
    )
    base = results["bare"]
    report(
        "verify first sight / bare RSA verify", ratio(results["first sight"], base), unit="us", target=1.3, scale=1e6
    )
    report("verify cached / bare RSA verify", ratio(results["cached"], base), unit="us", target=0.1, scale=1e6)
    report(
        "authenticate() first sight / bare RSA verify",
        ratio(results["authenticate first sight"], base),
        unit="us",
        target=2.0,
        scale=1e6,
    )
    report(
        "authenticate() seen before / bare RSA verify",
        ratio(results["authenticate seen before"], base),
        unit="us",
        target=0.1,
        scale=1e6,
    )
    report("josepy from_compact+verify / bare RSA verify", ratio(results["josepy"], base), unit="us", scale=1e6)
    report("unchecked split+decode+json+verify / bare RSA verify", ratio(results["floor"], base), unit="us", scale=1e6)

    # The cache's promises, shown rather than timed.
    verifier.clear_cache()
    extra = 2 * cache_size
    for _ in range(extra):
        verify_token(issuer.make_token(company, jti=uuid.uuid4().hex))
    held = verifier.cached_tokens
    figure(
        "token cache bound",
        f"{held} entries held after {extra} distinct tokens (bound {cache_size}): "
        f"{'met' if held <= cache_size else 'MISSED'}",
    )
    short = issuer.make_token(company, exp=time.time() + 0.5)
    first = verify_token(short)
    served_before = verify_token(short) is first
    time.sleep(max(0.0, first.expires_at - time.time()) + 0.05)
    served_after = verify_token(short) is first
    figure(
        "token cache and exp",
        f"served from cache before exp: {served_before}; served from cache after exp: {served_after}: "
        f"{'met' if served_before and not served_after else 'MISSED'}",
    )


if __name__ == "__main__":
    main()
