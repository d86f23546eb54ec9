"""Rate limits per client, company and corporation: counted only for verified tokens, shared through
Redis by every worker process, and answered 429 with Retry-After (503 when the counter is down)."""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.urls import path
from rest_framework.response import Response
from rest_framework.test import APIClient
from rest_framework.views import APIView

from cobee_django import throttling
from cobee_django.authentication import JWTAuthentication
from cobee_django.exceptions import ThrottleUnavailable
from cobee_django.principal import ClientPrincipal
from cobee_django.throttling import (
    ClientRateThrottle,
    CompanyRateThrottle,
    CompanyScopedRateThrottle,
    CorporationRateThrottle,
)

REDIS_URL = os.environ.get("COBEE_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
DAY = 86400


class Ping(APIView):
    authentication_classes = [JWTAuthentication]
    permission_classes = []
    throttle_classes = [ClientRateThrottle, CompanyRateThrottle, CorporationRateThrottle]

    def get(self, request):
        return Response({"ok": True})


class Payroll(APIView):
    authentication_classes = [JWTAuthentication]
    permission_classes = []
    throttle_classes = [CompanyScopedRateThrottle]
    throttle_scope = "payroll"

    def get(self, request):
        return Response({"ok": True})


class Unscoped(Payroll):
    throttle_scope = None


class LazyAuthentication(Ping):
    """Authenticates only when ``request.user`` is first read: by the throttles themselves."""

    def perform_authentication(self, request):
        pass


urlpatterns = [
    path("ping", Ping.as_view()),
    path("payroll", Payroll.as_view()),
    path("unscoped", Unscoped.as_view()),
    path("lazy", LazyAuthentication.as_view()),
]

pytestmark = pytest.mark.urls(__name__)


def require_redis() -> None:
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except Exception:
        if os.environ.get("COBEE_REQUIRE_REDIS"):
            pytest.fail(f"COBEE_REQUIRE_REDIS is set but Redis is not reachable at {REDIS_URL}")
        pytest.skip(f"needs Redis at {REDIS_URL}")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def throttle_cache(settings):
    """The throttle counts in Redis under a prefix of this test's own."""
    require_redis()
    settings.CACHES = {
        **settings.CACHES,
        "throttle": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": f"throttle-test-{uuid.uuid4().hex}",
        },
    }
    return "throttle"


@pytest.fixture
def throttled(settings, auth_settings, throttle_cache):
    """Trust the test issuer, count in Redis, and set ``rates`` (scope name to DRF rate)."""

    def configure(rates, **extra):
        settings.COBEE_DJANGO = {**auth_settings, "THROTTLE_CACHE_ALIAS": throttle_cache, **extra}
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}

    return configure


def fresh_window(scope: str, per: str, ident: str, duration: int = DAY, margin: float = 30) -> None:
    """Wait, if need be, until the window of this counter has ``margin`` seconds left (windows are
    fixed, so a burst straddling their end could be admitted twice)."""
    digest = hashlib.sha256(ident.encode()).hexdigest()[:32]
    _, end = throttling._window(f"{throttling.KEY_PREFIX}:{scope}:{per}:{digest}", duration, time.time())
    if end - time.time() < margin:
        time.sleep(end - time.time() + 0.5)


def get(token: str | None, url: str = "/ping"):
    client = APIClient()
    return client.get(url, **({"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}))


def statuses(token, n, url="/ping"):
    return [get(token, url).status_code for _ in range(n)]


def test_a_company_gets_its_rate_then_429_with_retry_after(throttled, token_issuer):
    throttled({"cobee_company": "3/day"})
    company, other = uuid.uuid4(), uuid.uuid4()
    fresh_window("cobee_company", "company", str(company))
    first = token_issuer.make_token(company, client_id="first-client")
    second = token_issuer.make_token(company, client_id="second-client")
    assert statuses(first, 2) + statuses(second, 1) == [200, 200, 200]
    refused = get(second)
    assert refused.status_code == 429
    retry_after = int(refused["Retry-After"])
    assert 1 <= retry_after <= DAY
    assert get(first).status_code == 429  # every client of the company shares its budget
    assert statuses(token_issuer.make_token(other), 3) == [200, 200, 200]  # another company is untouched


def test_each_client_has_its_own_budget(throttled, token_issuer):
    throttled({"cobee_client": "2/day"})
    company = uuid.uuid4()
    first = token_issuer.make_token(company, client_id="client-a")
    second = token_issuer.make_token(company, client_id="client-b")
    fresh_window("cobee_client", "client", f"{token_issuer.issuer}#client-a")
    fresh_window("cobee_client", "client", f"{token_issuer.issuer}#client-b")
    assert statuses(first, 3) == [200, 200, 429]
    assert statuses(second, 3) == [200, 200, 429]


def test_a_corporation_shares_one_budget_and_lone_companies_are_not_counted(throttled, token_issuer):
    throttled({"cobee_corporation": "2/day"})
    corporation = uuid.uuid4()
    fresh_window("cobee_corporation", "corporation", str(corporation))
    a = token_issuer.make_token(uuid.uuid4(), corporation)
    b = token_issuer.make_token(uuid.uuid4(), corporation)
    assert statuses(a, 1) + statuses(b, 2) == [200, 200, 429]
    assert statuses(token_issuer.make_token(uuid.uuid4()), 5) == [200] * 5


def test_scoped_rates_apply_to_the_views_of_that_scope(throttled, token_issuer):
    throttled({"payroll": "1/day"})
    company = uuid.uuid4()
    fresh_window("payroll", "company", str(company))
    token = token_issuer.make_token(company)
    assert statuses(token, 2, "/payroll") == [200, 429]
    assert statuses(token, 3, "/unscoped") == [200, 200, 200]


def test_no_rate_means_no_throttling(throttled, token_issuer):
    throttled({"cobee_client": None})
    assert statuses(token_issuer.make_token(uuid.uuid4()), 5) == [200] * 5


def test_unauthenticated_and_rejected_requests_never_spend_a_company_budget(throttled, token_issuer):
    throttled({"cobee_company": "2/day", "cobee_client": "2/day"})
    company = uuid.uuid4()
    fresh_window("cobee_company", "company", str(company))
    good = token_issuer.make_token(company, client_id="victim")
    fresh_window("cobee_client", "client", f"{token_issuer.issuer}#victim")
    expired = token_issuer.make_token(company, client_id="victim", exp=int(time.time()) - 3600)
    forged = good[: good.rindex(".") + 1] + ("A" if good[-1] != "A" else "B") * 20
    wrong_audience = token_issuer.make_token(company, client_id="victim", aud="https://elsewhere.example")
    for token, status in ((None, 200), (expired, 401), (forged, 401), (wrong_audience, 401), ("x y", 400)):
        for _ in range(4):
            assert get(token).status_code == status
    assert statuses(good, 3) == [200, 200, 429]


def test_a_view_that_authenticates_lazily_still_counts_only_verified_tokens(throttled, token_issuer):
    throttled({"cobee_company": "1/day"})
    company = uuid.uuid4()
    fresh_window("cobee_company", "company", str(company))
    expired = token_issuer.make_token(company, exp=int(time.time()) - 3600)
    assert statuses(expired, 3, "/lazy") == [401, 401, 401]
    assert statuses(token_issuer.make_token(company), 2, "/lazy") == [200, 429]


def test_only_a_verified_principal_is_counted():
    """A ClientPrincipal that JWTAuthentication did not return (no ValidatedToken beside it) is not."""
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    principal = ClientPrincipal(
        client_id="c", company_id=uuid.uuid4(), corporation_id=None, scopes=frozenset(), issuer="i", claims={}
    )
    request = Request(APIRequestFactory().get("/ping"))
    request.user, request.auth = principal, None
    assert throttling._verified_principal(request) is None
    assert CompanyRateThrottle().get_cache_key(request, None) is None


def test_windows_are_spread_per_key_and_contain_now():
    starts = set()
    now = time.time()
    for n in range(20):
        _, end = throttling._window(f"key-{n}", 3600, now)
        assert end - 3600 <= now < end
        starts.add(end % 3600)
    assert len(starts) > 1


@pytest.mark.parametrize("fail_open", [False, True])
def test_a_throttle_cache_that_is_down_answers_as_configured_never_500(
    settings, auth_settings, token_issuer, caplog, fail_open
):
    settings.CACHES = {
        **settings.CACHES,
        "down": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
        },
    }
    settings.COBEE_DJANGO = {**auth_settings, "THROTTLE_CACHE_ALIAS": "down", "THROTTLE_FAIL_OPEN": fail_open}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"cobee_company": "5/day"}}
    token = token_issuer.make_token(uuid.uuid4())
    with caplog.at_level(logging.ERROR, logger="cobee_django.throttling"):
        response = get(token)
    assert any("throttle cache 'down' failed" in r.getMessage() for r in caplog.records)
    assert token not in caplog.text
    if fail_open:
        assert response.status_code == 200
        return
    assert response.status_code == 503
    assert response.json() == {"detail": ThrottleUnavailable.default_detail}
    assert int(response["Retry-After"]) >= 1
    assert get(None).status_code == 200  # nothing to count, nothing to refuse


def test_concurrent_threads_never_exceed_the_rate(throttled, token_issuer):
    throttled({"cobee_company": "20/day"})
    company = uuid.uuid4()
    fresh_window("cobee_company", "company", str(company))
    token = token_issuer.make_token(company)
    get(token)  # the key set is fetched once, before the race
    barrier = threading.Barrier(8)

    def burst(_):
        barrier.wait()
        return statuses(token, 10)

    with ThreadPoolExecutor(8) as pool:
        results = [s for batch in pool.map(burst, range(8)) for s in batch]
    assert results.count(200) == 19
    assert results.count(429) == len(results) - 19


# --- several server processes sharing one Redis ------------------------------------------------------


@pytest.mark.adversarial
def test_two_server_processes_admit_at_most_the_rate_between_them(tmp_path, jwks_server, rsa_key):
    """A gunicorn and a uvicorn process of the test project count in one Redis; concurrent requests
    from threads to both are admitted exactly ``rate`` times in all (never more)."""
    require_redis()
    import redis

    from cobee_django.testing import TokenIssuer
    from tests.adversarial.conftest import AUDIENCE, ServedProject, fresh_world, server_env

    token_issuer = TokenIssuer(issuer=jwks_server.base_url, audience=AUDIENCE, key=rsa_key)
    jwks_server.serve(token_issuer)

    redis_url = os.environ.get("COBEE_TEST_THROTTLE_REDIS_URL", "redis://127.0.0.1:6379/10")
    world = fresh_world(jwks_server, tmp_path, suffix="throttle")
    rate = 25
    servers = []
    try:
        for kind in ("wsgi", "asgi"):  # gunicorn and uvicorn: two processes, two servers, one Redis
            env = server_env(jwks_server, world.database, world.var_dir)
            env.update(REDIS_URL=redis_url, COBEE_THROTTLE_COMPANY_RATE=f"{rate}/day", COBEE_THROTTLE_CLIENT_RATE="")
            servers.append(ServedProject(kind, env, tmp_path / f"server-{kind}.log").start())
        company = world.lone_company()
        fresh_window("cobee_company", "company", company)
        token = token_issuer.make_token(company, scopes=("read:employees",))
        client = redis.Redis.from_url(redis_url)
        digest = hashlib.sha256(company.encode()).hexdigest()[:32]
        for key in client.scan_iter(f"*{throttling.KEY_PREFIX}:cobee_company:company:{digest}*"):
            client.delete(key)  # a previous run of this same seeded company
        barrier = threading.Barrier(16)

        def burst(n):
            server = servers[n % 2]
            barrier.wait()
            answers = []
            for _ in range(6):
                status, headers, _, _ = server.request(
                    "GET", "/api/v3/employees", [("Authorization", f"Bearer {token}")]
                )
                answers.append((status, headers.get("Retry-After")))
            return answers

        with ThreadPoolExecutor(16) as pool:
            answers = [a for batch in pool.map(burst, range(16)) for a in batch]
        admitted = [a for a in answers if a[0] == 200]
        refused = [a for a in answers if a[0] == 429]
        assert len(admitted) + len(refused) == len(answers), sorted({a[0] for a in answers})
        assert len(admitted) == rate
        assert all(retry is not None and int(retry) >= 1 for _, retry in refused)
        for server in servers:
            assert "Traceback" not in server.log()
    finally:
        for server in servers:
            server.stop()
        world.database.drop()
