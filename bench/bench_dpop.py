"""What DPoP adds to a request's authentication, against the proof's own signature verification.

    python -m bench.bench_dpop [--requests 300] [--rounds 30] [--algorithm ES256] [--redis URL]

Measures, interleaved in rounds over the same requests (CPU time of this thread; with ``--redis``,
wall-clock time, so the replay store's round trip counts):

- proof signature: ``cryptography``'s verify of each proof's signature with its public key already
  built, nothing else: the cost the issue compares against;
- Bearer, seen before / first sight: ``RequestAuthenticator.authenticate`` of a request with an
  unbound token, from the validated-token cache / with that cache emptied;
- DPoP, seen before / first sight: the same for a DPoP request (a token bound to the client's key
  and a fresh proof: a proof is always new, so its checks and signature always run). First sight
  also empties the cache of proof headers (the client's key is decoded again);
- DPoP seen before without the replay store: the same with ``check_replay`` skipped, to show the
  store's share apart (a local-memory cache here; Redis is a network round trip).

The replay store (``DPOP_REPLAY_CACHE_ALIAS``) is a local-memory cache, or Redis with ``--redis``;
it is emptied between rounds (the same proofs are sent each round).

Targets: DPoP minus Bearer <= 2x the proof signature (the signature itself, plus checks costing no
more than it), seen before and first sight.
"""

from __future__ import annotations

import argparse
import time
import uuid

from bench.common import figure, interleave, print_environment, ratio, report

ISSUER = "https://tenant.example/"
AUDIENCE = "https://api.example"
URL = "http://testserver/v1/orders"


def configure(redis_url: str | None, algorithm: str) -> None:
    import django
    from django.conf import settings

    cache = (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url}
        if redis_url
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
    settings.configure(
        INSTALLED_APPS=["cobee_django"],
        SECRET_KEY="bench-dpop-" + uuid.uuid4().hex,
        ALLOWED_HOSTS=["testserver"],
        CACHES={"default": cache},
        USE_TZ=True,
        COBEE_DJANGO={
            "ISSUER": ISSUER,
            "AUDIENCE": AUDIENCE,
            "JWKS_CACHE_ALIAS": None,
            "DPOP_MODE": "allowed",
            "DPOP_ALGORITHMS": [algorithm],
            "DPOP_PROOF_MAX_AGE": 3600,
        },
    )
    django.setup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300, help="distinct requests per round")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--algorithm", default="ES256", help="the proofs' algorithm (ES256, RS256, EdDSA, ...)")
    parser.add_argument("--redis", default=None, help="a Redis URL for the replay store (its database is flushed)")
    parser.add_argument("--no-environment", action="store_true", help="do not print the machine and versions")
    args = parser.parse_args(argv)
    configure(args.redis, args.algorithm)

    from django.core.cache import caches
    from django.test import RequestFactory

    from cobee_django import dpop, tokens
    from cobee_django.credentials import RequestAuthenticator
    from cobee_django.jose import b64url_decode
    from cobee_django.testing import DPoPKey, TokenIssuer, install_key_set

    if not args.no_environment:
        print_environment()
    clock = time.perf_counter if args.redis else time.thread_time
    issuer = TokenIssuer(issuer=ISSUER, audience=AUDIENCE)
    install_key_set(ISSUER, issuer.jwks())
    company = uuid.uuid4()
    factory = RequestFactory()
    count = args.requests
    keys = [DPoPKey(args.algorithm) for _ in range(min(count, 20))]  # a few clients, each many requests
    bearer_requests = []
    dpop_requests = []
    signatures = []
    for n in range(count):
        key = keys[n % len(keys)]
        plain = issuer.make_token(company, scopes=["read:orders"], jti=uuid.uuid4().hex)
        bearer_requests.append(factory.get("/v1/orders", HTTP_AUTHORIZATION=f"Bearer {plain}"))
        bound = key.bind(issuer, company, scopes=["read:orders"], jti=uuid.uuid4().hex)
        proof = key.proof("GET", URL, bound)
        dpop_requests.append(factory.get("/v1/orders", HTTP_AUTHORIZATION=f"DPoP {bound}", HTTP_DPOP=proof))
        header, payload, signature = proof.split(".")
        proof_key = dpop.get_proof_verifier()._header(header.encode())
        signatures.append((proof_key, f"{header}.{payload}".encode(), b64url_decode(signature)))
    authenticator = RequestAuthenticator()
    authenticate = authenticator.authenticate
    verifier = tokens.get_verifier()
    proof_verifier = dpop.get_proof_verifier()
    store = caches["default"]
    store.clear()
    for request in bearer_requests + dpop_requests:  # warm every per-process structure once
        authenticate(request)

    def proof_signature() -> float:
        start = clock()
        for key, signing_input, signature in signatures:
            key.verify(signing_input, signature)
        return (clock() - start) / count

    def run(requests: list, first_sight: bool) -> float:
        store.clear()
        if first_sight:
            verifier.clear_cache()
            proof_verifier._headers.clear()
        else:  # another measure's first sight emptied the caches: fill them again, untimed
            for request in requests:
                tokens.verify_token(request.META["HTTP_AUTHORIZATION"].partition(" ")[2])
            store.clear()
        start = clock()
        for request in requests:
            authenticate(request)
        return (clock() - start) / count

    def without_store(requests: list) -> float:
        proof_verifier.check_replay = lambda proof: None  # type: ignore[method-assign]
        try:
            return run(requests, False)
        finally:
            del proof_verifier.check_replay

    print(
        f"dpop: {count} requests per round ({len(keys)} client keys, {args.algorithm} proofs), {args.rounds} rounds, "
        f"replay store {'Redis' if args.redis else 'local memory'}, {'wall-clock' if args.redis else 'CPU'} time"
    )
    results = interleave(
        {
            "signature": proof_signature,
            "bearer seen": lambda: run(bearer_requests, False),
            "bearer first": lambda: run(bearer_requests, True),
            "dpop seen": lambda: run(dpop_requests, False),
            "dpop first": lambda: run(dpop_requests, True),
            "dpop seen, no store": lambda: without_store(dpop_requests),
        },
        args.rounds,
    )
    signature = results["signature"]
    for sight in ("seen", "first"):
        label = "seen before" if sight == "seen" else "first sight"
        bearer, dpop_time = results[f"bearer {sight}"], results[f"dpop {sight}"]
        added = [d - b for d, b in zip(dpop_time, bearer, strict=True)]
        report(f"DPoP / Bearer request, {label}", ratio(dpop_time, bearer), unit="us", scale=1e6)
        report(
            f"DPoP minus Bearer / proof signature, {label}", ratio(added, signature), unit="us", target=2.0, scale=1e6
        )
    store_cost = [d - n for d, n in zip(results["dpop seen"], results["dpop seen, no store"], strict=True)]
    no_store = [n - b for n, b in zip(results["dpop seen, no store"], results["bearer seen"], strict=True)]
    report(
        "DPoP minus Bearer without the replay store / proof signature, seen before",
        ratio(no_store, signature),
        unit="us",
        scale=1e6,
    )
    report("replay store (cache.add) / proof signature", ratio(store_cost, signature), unit="us", scale=1e6)
    figure("proof signature verification", f"{sorted(signature)[len(signature) // 2] * 1e6:.1f} us per proof")


if __name__ == "__main__":
    main()
