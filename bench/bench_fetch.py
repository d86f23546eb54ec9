"""Key fetches under a flood of unknown ``kid`` values, counted on a real JWKS server.

    python -m bench.bench_fetch [--requests 10000] [--threads 8] [--cooldown 1]

An attacker who sends tokens naming random ``kid`` values must not turn them into a flood of
key-set fetches against the issuer. This sends ``--requests`` requests through
``JWTAuthentication`` from ``--threads`` threads, every hundredth one with a valid token and the
others with random kids, against a :class:`~cobee_django.testing.JWKSServer` on 127.0.0.1, twice:

- with the default cooldown (30 s): the whole flood fits in one cooldown period;
- with a short cooldown (``--cooldown`` seconds) and the flood spread over several periods.

Target: at most one fetch per cooldown period (plus the first fetch of a cold key set), every
random kid refused with 401 and every valid token accepted.
"""

from __future__ import annotations

import argparse
import json
import math
import threading
import time
import uuid

from bench.common import figure, print_environment

AUDIENCE = "https://api.example"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--cooldown", type=float, default=1.0, help="the short cooldown, in seconds")
    parser.add_argument("--periods", type=int, default=4, help="cooldown periods the second flood spans")
    parser.add_argument("--no-environment", action="store_true")
    args = parser.parse_args(argv)

    from cobee_django.testing import JWKSServer, TokenIssuer

    server = JWKSServer().start()
    issuer_url = server.base_url
    issuer = TokenIssuer(issuer=issuer_url, audience=AUDIENCE)
    server.serve(issuer)

    from bench.common import configure_without_database

    configure_without_database(ISSUER=issuer_url, AUDIENCE=AUDIENCE, JWKS_CACHE_ALIAS=None, LEEWAY=30)
    from django.test import RequestFactory, override_settings
    from rest_framework.exceptions import APIException
    from rest_framework.request import Request

    from cobee_django.authentication import JWTAuthentication
    from cobee_django.jose import b64url_encode
    from cobee_django.tokens import get_verifier

    if not args.no_environment:
        print_environment()
    company = uuid.uuid4()
    valid = issuer.make_token(company, scopes=["read:employees"])
    _, payload, signature = valid.split(".")

    def random_kid_token() -> str:
        header = {"alg": "RS256", "typ": "JWT", "kid": uuid.uuid4().hex}
        return f"{b64url_encode(json.dumps(header).encode())}.{payload}.{signature}"

    factory = RequestFactory()
    authentication = JWTAuthentication()

    def flood(total: int, duration: float) -> tuple[int, int, int, float]:
        """Send ``total`` requests spread over about ``duration`` seconds; (refused, accepted, errors, elapsed)."""
        tokens = [valid if index % 100 == 0 else random_kid_token() for index in range(total)]
        counts = {"refused": 0, "accepted": 0, "errors": 0}
        lock = threading.Lock()
        start = time.monotonic()

        def worker(offset: int) -> None:
            local = {"refused": 0, "accepted": 0, "errors": 0}
            for index in range(offset, total, args.threads):
                if duration:
                    # Pace the flood so it spans the requested number of cooldown periods.
                    delay = start + duration * index / total - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                request = Request(factory.get("/", HTTP_AUTHORIZATION=f"Bearer {tokens[index]}"))
                try:
                    result = authentication.authenticate(request)
                    local["accepted" if result is not None else "errors"] += 1
                except APIException as exc:
                    local["refused" if exc.status_code == 401 else "errors"] += 1
            with lock:
                for key, value in local.items():
                    counts[key] += value

        threads = [threading.Thread(target=worker, args=(offset,)) for offset in range(args.threads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return counts["refused"], counts["accepted"], counts["errors"], time.monotonic() - start

    for label, cooldown, duration in (
        ("default cooldown 30 s", 30.0, 0.0),
        (f"cooldown {args.cooldown:g} s", args.cooldown, args.cooldown * args.periods),
    ):
        with override_settings(
            COBEE_DJANGO={
                "ISSUER": issuer_url,
                "AUDIENCE": AUDIENCE,
                "JWKS_CACHE_ALIAS": None,
                "JWKS_REFRESH_COOLDOWN": cooldown,
            }
        ):
            get_verifier().clear_cache()
            server.reset_counts()
            refused, accepted, errors, elapsed = flood(args.requests, duration)
            fetches = server.fetches()
            allowed = 1 + math.ceil(elapsed / cooldown)
            verdict = "met" if fetches <= allowed and errors == 0 else "MISSED"
            figure(
                f"key fetches, {label}",
                f"{fetches} fetches for {args.requests} requests ({refused} refused, {accepted} accepted, "
                f"{errors} errors) in {elapsed:.2f} s from {args.threads} threads; "
                f"target <= {allowed} (1 cold + 1 per started cooldown): {verdict}",
            )
    server.stop()


if __name__ == "__main__":
    main()
