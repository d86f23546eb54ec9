"""DPoP proofs replayed in parallel to two server processes (gunicorn and uvicorn) sharing one Redis:
each proof is accepted exactly once across both, every other copy is a 401 ``invalid_dpop_proof``."""

from __future__ import annotations

import http.client
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from cobee_django.testing import DPoPKey

from .conftest import ServedProject, fresh_world, server_env

pytestmark = pytest.mark.adversarial

REDIS_URL = os.environ.get("COBEE_TEST_DPOP_REDIS_URL", "redis://127.0.0.1:6379/6")
#: Both servers are asked for the same URL (``Host: localhost``, allowed by the test project), so a
#: proof made for one is valid for the other but for its ``jti``.
HTU = "http://localhost/api/v3/employees"


def require_redis() -> None:
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except Exception:
        if os.environ.get("COBEE_REQUIRE_REDIS"):
            pytest.fail(f"COBEE_REQUIRE_REDIS is set but Redis is not reachable at {REDIS_URL}")
        pytest.skip(f"needs Redis at {REDIS_URL}")


def send(server: ServedProject, token: str, proof: str) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
    try:
        connection.putrequest("GET", "/api/v3/employees", skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", "localhost")
        connection.putheader("Authorization", f"DPoP {token}")
        connection.putheader("DPoP", proof)
        connection.endheaders()
        response = connection.getresponse()
        response.read()
        return response.status, response.headers.get("WWW-Authenticate", "")
    finally:
        connection.close()


def test_a_proof_replayed_in_parallel_to_two_processes_is_accepted_once(tmp_path, jwks_server, issuer):
    # The session's issuer: publishing another key set here would make the session's other served
    # projects refuse every token of the later suites.
    require_redis()
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    world = fresh_world(jwks_server, tmp_path, suffix="dpop")
    servers: list[ServedProject] = []
    try:
        for kind in ("wsgi", "asgi"):
            env = server_env(jwks_server, world.database, world.var_dir, {"DPOP_MODE": "required"})
            env["REDIS_URL"] = REDIS_URL
            servers.append(ServedProject(kind, env, tmp_path / f"dpop-{kind}.log").start())
        key = DPoPKey()
        token = key.bind(issuer, world.lone_company(), scopes=("read:employees",))
        copies = 8
        proofs = [key.proof("GET", HTU, token) for _ in range(12)]
        for proof in proofs:
            barrier = threading.Barrier(copies)

            def replay(n: int, proof: str = proof, barrier: threading.Barrier = barrier) -> tuple[int, str]:
                barrier.wait()
                return send(servers[n % 2], token, proof)

            with ThreadPoolExecutor(copies) as pool:
                answers = list(pool.map(replay, range(copies)))
            statuses = sorted(status for status, _ in answers)
            assert statuses == [200] + [401] * (copies - 1), answers
            assert all('error="invalid_dpop_proof"' in challenge for status, challenge in answers if status == 401)
        for server in servers:
            log = server.log()
            assert "Traceback" not in log
            assert "reason=dpop_replay" in log
    finally:
        for server in servers:
            server.stop()
        world.database.drop()
