"""Memory held by the validated-token cache after many distinct valid tokens.

    python -m bench.bench_memory [--tokens 100000]

A client that sends a new token on every request (or an attacker replaying many valid tokens)
must not grow the process without bound. This verifies ``--tokens`` distinct valid tokens (signed
beforehand, in worker processes) with the default ``TOKEN_CACHE_SIZE`` and reports, at
checkpoints, the entries held, the memory traced by ``tracemalloc`` since the first token and the
process's resident set size (RSS).

Target: memory stops growing once the cache is full; the cache's bound in MB is its entry bound
times the measured size of one entry.
"""

from __future__ import annotations

import argparse
import os
import time
import tracemalloc
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from bench.common import figure, print_environment

ISSUER = "https://tenant.example/"
AUDIENCE = "https://api.example"
MB = 1024 * 1024


def _sign(pem: bytes, company: str, count: int) -> list[str]:
    from cobee_django.testing.issuer import TokenIssuer

    issuer = TokenIssuer.from_pem(pem, issuer=ISSUER, audience=AUDIENCE)
    return [
        issuer.make_token(company, scopes=["read:employees", "write:employees"], jti=uuid.uuid4().hex)
        for _ in range(count)
    ]


def rss() -> int:
    """Resident set size of this process, in bytes."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=100_000)
    parser.add_argument("--no-environment", action="store_true")
    args = parser.parse_args(argv)

    from bench.common import configure_without_database

    configure_without_database(ISSUER=ISSUER, AUDIENCE=AUDIENCE, JWKS_CACHE_ALIAS=None)
    from cobee_django.conf import get_settings
    from cobee_django.testing import TokenIssuer, install_key_set
    from cobee_django.tokens import get_verifier, verify_token

    if not args.no_environment:
        print_environment()
    bound = get_settings().token_cache_size
    issuer = TokenIssuer(issuer=ISSUER, audience=AUDIENCE)
    install_key_set(ISSUER, issuer.jwks())
    company = str(uuid.uuid4())

    started = time.monotonic()
    workers = max(1, os.cpu_count() or 1)
    chunk = max(1, min(2000, args.tokens // workers or 1))
    sizes = [chunk] * (args.tokens // chunk) + ([args.tokens % chunk] if args.tokens % chunk else [])
    pem = issuer.private_key_pem()
    with ProcessPoolExecutor(workers) as pool:
        tokens = [
            token for part in pool.map(_sign, [pem] * len(sizes), [company] * len(sizes), sizes) for token in part
        ]
    print(
        f"memory: signed {len(tokens)} distinct tokens in {time.monotonic() - started:.1f} s;"
        f" cache bound {bound} entries"
    )

    verifier = get_verifier()
    verify_token(tokens[0])  # key set, parser and id caches: not the cache under test
    verifier.clear_cache()
    checkpoints = sorted({min(n, len(tokens)) for n in (bound // 10, bound, 2 * bound, len(tokens) // 2, len(tokens))})
    rss_start = rss()
    tracemalloc.start()
    traced_start, _ = tracemalloc.get_traced_memory()
    per_entry = 0.0
    done = 0
    for checkpoint in checkpoints:
        for token in tokens[done:checkpoint]:
            verify_token(token)
        done = checkpoint
        traced, peak = tracemalloc.get_traced_memory()
        held = verifier.cached_tokens
        if held:
            per_entry = max(per_entry, (traced - traced_start) / held)
        print(
            f"  after {done:>7} tokens: {held:>6} cached, traced {(traced - traced_start) / MB:7.1f} MB "
            f"(peak {(peak - traced_start) / MB:.1f}), RSS +{(rss() - rss_start) / MB:.1f} MB",
            flush=True,
        )
    traced, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    limit = per_entry * bound
    held = verifier.cached_tokens
    growth = traced - traced_start
    verdict = "met" if held <= bound and growth <= limit * 1.05 else "MISSED"
    figure(
        "token cache memory",
        f"{len(tokens)} distinct tokens leave {held} cached entries, {growth / MB:.1f} MB traced "
        f"(one entry {per_entry / 1024:.2f} KiB, bound {bound} entries = {limit / MB:.1f} MB), "
        f"RSS +{(rss() - rss_start) / MB:.1f} MB; target within the bound: {verdict}",
    )


if __name__ == "__main__":
    main()
