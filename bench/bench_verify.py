"""Token verification cost, as ratios to a bare RSA-SHA256 verify measured in the same run.

    python bench/bench_verify.py [--tokens 2000] [--rounds 5]

Prints, per token (median of rounds, each round over the same set of distinct tokens):

- baseline: ``cryptography``'s RSA PKCS#1 v1.5 SHA-256 verify of the token's signing input, with the
  signature already decoded (the physical floor);
- first sight: ``cobee_django.tokens.verify_token`` on a token it has never seen (warm key set):
  strict parsing, header rules, key lookup, signature, every claim rule, the principal;
- cached: ``verify_token`` on a token it has seen (the validated-token cache);
- josepy reference: ``JWS.from_compact(...).verify(jwk)`` (parse and verify only, no claim checks).

Targets: first sight <= 1.3x the baseline, cached <= 0.1x.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import django
from django.conf import settings

ISSUER = "https://tenant.example/"
AUDIENCE = "https://api.example"

settings.configure(
    INSTALLED_APPS=["cobee_django"],
    COBEE_DJANGO={"ISSUER": ISSUER, "AUDIENCE": AUDIENCE, "JWKS_CACHE_ALIAS": None, "TOKEN_CACHE_SIZE": 100_000},
    CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
)
django.setup()

import cryptography  # noqa: E402
import josepy  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding  # noqa: E402

from cobee_django import tokens  # noqa: E402
from cobee_django.jose import b64url_decode  # noqa: E402
from cobee_django.testing import TokenIssuer, install_key_set  # noqa: E402


def per_call(fn, items) -> float:
    start = time.perf_counter()
    for item in items:
        fn(item)
    return (time.perf_counter() - start) / len(items)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    issuer = TokenIssuer(issuer=ISSUER, audience=AUDIENCE)
    install_key_set(ISSUER, issuer.jwks())
    company = uuid.uuid4()
    public_key = issuer.key.public_key()
    jwk = josepy.JWKRSA(key=public_key)
    pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()

    rounds: dict[str, list[float]] = {"baseline": [], "first sight": [], "cached": [], "josepy": []}
    for _ in range(args.rounds):
        batch = [
            issuer.make_token(company, scopes=["read:employees", "write:employees"], jti=uuid.uuid4().hex)
            for _ in range(args.tokens)
        ]
        split = [(t.rpartition(".")[0].encode(), b64url_decode(t.rpartition(".")[2])) for t in batch]
        verifier = tokens.get_verifier()
        verifier.clear_cache()
        rounds["baseline"].append(per_call(lambda p: public_key.verify(p[1], p[0], pkcs1, sha256), split))
        rounds["first sight"].append(per_call(tokens.verify_token, batch))
        rounds["cached"].append(per_call(tokens.verify_token, batch))
        rounds["josepy"].append(per_call(lambda t: josepy.JWS.from_compact(t.encode()).verify(jwk), batch))

    median = {name: statistics.median(values) for name, values in rounds.items()}
    base = median["baseline"]
    print(f"machine: {platform.machine()} {platform.processor() or ''} {platform.system()} {platform.release()}")
    print(
        f"versions: Python {platform.python_version()}, cryptography {cryptography.__version__}, "
        f"josepy {getattr(josepy, '__version__', '?')}, Django {django.get_version()}"
    )
    print(f"tokens per round: {args.tokens}, rounds: {args.rounds} (median shown)")
    print(f"{'measure':<16}{'us/token':>10}{'ratio':>9}  target")
    targets = {"first sight": "<= 1.30", "cached": "<= 0.10"}
    for name in ("baseline", "first sight", "cached", "josepy"):
        value = median[name]
        print(f"{name:<16}{value * 1e6:>10.2f}{value / base:>9.3f}  {targets.get(name, '')}")


if __name__ == "__main__":
    main()
