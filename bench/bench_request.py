"""A whole API request with the app against the same view without it, on PostgreSQL.

    python -m bench.bench_request [--requests 200] [--rounds 20]

Candidate: ``GET /api/v3/companies/{companyId}/employees`` of the test project (20 employees):
``JWTAuthentication`` with a real RS256 token (verified once, then from the validated-token
cache, as a client reusing its token), ``TenantMiddleware`` binding the tenant, the scoped
default manager, and ``HasTenant``, ``CanAccessCompany`` and ``HasScopes``.

Baseline: the same serializer, pagination and filters with no authentication, no permission
classes, no tenant middleware, and a hand-written ``.filter(company_id=...)`` on a plain, unscoped
``QuerySet(model=Employee)`` (``bench/urls.py``).

Both are called in process through Django's WSGI handler (one handler each, the baseline's built
without ``TenantMiddleware``), interleaved in rounds, wall-clock time (the database's time is
part of a request). Target: candidate requests per second >= 0.95x the baseline's.
"""

from __future__ import annotations

import argparse
import io
import os
import time

from bench.common import interleave, print_environment, ratio, report

COMPANIES = 50
PER_COMPANY = 20


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=25, help="requests per side per round")
    parser.add_argument("--rounds", type=int, default=80)
    parser.add_argument("--no-environment", action="store_true")
    parser.add_argument("--profile", choices=["candidate", "baseline"], help="profile one side instead (cProfile)")
    args = parser.parse_args(argv)

    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    import django

    django.setup()
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.test.utils import override_settings

    from bench import data
    from cobee_django.testing import TokenIssuer, install_key_set

    if not args.no_environment:
        print_environment()
    data.prepare("default", COMPANIES, PER_COMPANY)
    issuer = TokenIssuer(issuer=settings.ISSUER, audience=settings.AUDIENCE)
    install_key_set(issuer.issuer, issuer.jwks())
    company = data.company_id(7)
    token = issuer.make_token(company, scopes=["read:employees"])

    candidate_handler = WSGIHandler()
    without_app = [name for name in settings.MIDDLEWARE if not name.startswith("cobee_django.")]
    with override_settings(MIDDLEWARE=without_app):
        baseline_handler = WSGIHandler()

    def environ(path: str, authorization: str | None) -> dict[str, object]:
        env: dict[str, object] = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1",
            "HTTP_ACCEPT": "application/json",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.errors": io.StringIO(),
            "wsgi.multithread": False,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        if authorization:
            env["HTTP_AUTHORIZATION"] = authorization
        return env

    statuses: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> None:
        statuses.append(status)

    def call(handler: WSGIHandler, path: str, authorization: str | None) -> bytes:
        env = environ(path, authorization)
        env["wsgi.input"] = io.BytesIO(b"")
        response = handler(env, start_response)
        try:
            return b"".join(response)
        finally:
            response.close()

    candidate_path = f"/api/v3/companies/{company}/employees"
    baseline_path = f"/api/v3-baseline/companies/{company}/employees"
    bearer = f"Bearer {token}"
    first = call(candidate_handler, candidate_path, bearer)
    second = call(baseline_handler, baseline_path, None)
    if statuses[-2:] != ["200 OK", "200 OK"] or first != second:
        raise SystemExit(f"the two endpoints do not answer the same: {statuses[-2:]}")
    import json

    print(
        f"request: {len(json.loads(first)['employees'])} employees per response, {len(first)} bytes; "
        f"{args.requests} requests per side per round, {args.rounds} rounds"
    )

    cpu: dict[str | None, list[float]] = {bearer: [], None: []}

    def measure(handler: WSGIHandler, path: str, authorization: str | None) -> float:
        start, start_cpu = time.perf_counter(), time.process_time()
        for _ in range(args.requests):
            call(handler, path, authorization)
        cpu[authorization].append((time.process_time() - start_cpu) / args.requests)
        return (time.perf_counter() - start) / args.requests

    if args.profile:
        import cProfile
        import pstats

        side = (candidate_handler, candidate_path, bearer) if args.profile == "candidate" else None
        side = side or (baseline_handler, baseline_path, None)
        profiler = cProfile.Profile()
        profiler.runcall(measure, *side)
        if os.environ.get("BENCH_PROFILE_OUT"):
            profiler.dump_stats(os.environ["BENCH_PROFILE_OUT"])
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(os.environ.get("BENCH_PROFILE_FILTER", ""), 40)
        return

    results = interleave(
        {
            "candidate": lambda: measure(candidate_handler, candidate_path, bearer),
            "baseline": lambda: measure(baseline_handler, baseline_path, None),
        },
        args.rounds,
    )
    # Requests per second is the inverse of the time per request.
    rps = ratio([1 / t for t in results["candidate"]], [1 / t for t in results["baseline"]])
    report("request rps, app / hand-written baseline", rps, unit="req/s", target=0.95, higher_is_better=True)
    # The same, counting only this process's CPU time (the database's work is identical on both sides).
    cpu_rps = ratio([1 / t for t in cpu[bearer]], [1 / t for t in cpu[None]])
    report("request rps by CPU time, app / hand-written baseline", cpu_rps, unit="req/s of CPU")
    if set(statuses) != {"200 OK"}:
        raise SystemExit(f"unexpected statuses: {sorted(set(statuses))}")


if __name__ == "__main__":
    main()
