"""The request benchmark over real HTTP: two gunicorn servers, one with the app, one without.

    python -m bench.bench_server [--requests 50] [--rounds 20] [--clients 4] [--threads 4]

The same two endpoints as ``bench_request`` (the test project's employee list with the app, the
hand-written baseline without it), each served by its own gunicorn (one ``gthread`` worker with
``--threads`` threads, listening on an ephemeral port of 127.0.0.1), driven by ``--clients``
keep-alive HTTP clients. Rounds alternate between the servers; target: the app's requests per
second >= 0.95x the baseline's.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time

from bench.common import ROOT, interleave, print_environment, ratio, report


def start_server(jwks: dict[str, object], without_app: bool, threads: int) -> tuple[subprocess.Popen[bytes], int]:
    """A gunicorn serving ``bench.wsgi`` on a socket bound here to an ephemeral port."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "BENCH_JWKS": json.dumps(jwks),
        "BENCH_WITHOUT_APP": "1" if without_app else "",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "bench.wsgi:application",
            "--bind",
            f"fd://{listener.fileno()}",
            "--workers",
            "1",
            "--worker-class",
            "gthread",
            "--threads",
            str(threads),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        pass_fds=[listener.fileno()],
    )
    listener.close()
    return process, port


def wait_ready(port: int, path: str, headers: dict[str, str]) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            body = response.read()
            connection.close()
            if response.status != 200:
                raise SystemExit(f"{path} answered {response.status}: {body[:200]!r}")
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=50, help="requests per client per side per round")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per server")
    parser.add_argument("--no-environment", action="store_true")
    args = parser.parse_args(argv)

    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    import django

    django.setup()
    from django.conf import settings

    from bench import data
    from cobee_django.testing import TokenIssuer

    if not args.no_environment:
        print_environment()
    from bench.bench_request import COMPANIES, PER_COMPANY

    data.prepare("default", COMPANIES, PER_COMPANY)
    issuer = TokenIssuer(issuer=settings.ISSUER, audience=settings.AUDIENCE)
    company = data.company_id(7)
    sides = {
        "candidate": (
            f"/api/v3/companies/{company}/employees",
            {"Authorization": f"Bearer {issuer.make_token(company, scopes=['read:employees'])}"},
            False,
        ),
        "baseline": (f"/api/v3-baseline/companies/{company}/employees", {}, True),
    }
    servers = {}
    try:
        for name, (path, headers, without_app) in sides.items():
            process, port = start_server(issuer.jwks(), without_app, args.threads)
            servers[name] = (process, port)
            wait_ready(port, path, {"Accept": "application/json", **headers})
        print(
            f"server: gunicorn gthread, 1 worker x {args.threads} threads per side; {args.clients} keep-alive "
            f"clients x {args.requests} requests per side per round, {args.rounds} rounds",
            flush=True,
        )
        failures: list[int] = []

        def measure(name: str) -> float:
            path, headers, _ = sides[name]
            port = servers[name][1]
            all_headers = {"Accept": "application/json", **headers}

            def client() -> None:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                for _ in range(args.requests):
                    connection.request("GET", path, headers=all_headers)
                    response = connection.getresponse()
                    response.read()
                    if response.status != 200:
                        failures.append(response.status)
                connection.close()

            threads = [threading.Thread(target=client) for _ in range(args.clients)]
            start = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            # Requests per second of this side in this round.
            return args.clients * args.requests / (time.perf_counter() - start)

        results = interleave({name: lambda name=name: measure(name) for name in sides}, args.rounds)
        report(
            "server rps, app / hand-written baseline",
            ratio(results["candidate"], results["baseline"]),
            unit="req/s",
            target=0.95,
            higher_is_better=True,
        )
        if failures:
            raise SystemExit(f"{len(failures)} requests failed: {sorted(set(failures))}")
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
