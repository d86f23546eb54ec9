"""Property-based fuzzing: the token parser, the verifier and the Authorization header never fail
with anything but the library's own 401/400 answers, in process and over HTTP; hostile bodies and
arbitrary ids get a 4xx; schemathesis, driven by the test project's OpenAPI document with a valid
corporation token, finds no server error.

Budgets are small enough for CI (a few hundred examples per property); hypothesis keeps no example
database, so every run explores afresh.
"""

from __future__ import annotations

import contextlib
import json
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cobee_django.exceptions import TokenRejected
from cobee_django.jose import CompactParser, b64url_decode, b64url_encode, loads_json

from .conftest import READ

pytestmark = pytest.mark.adversarial

FAST = settings(
    max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
SLOW = settings(
    max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
B64 = string.ascii_letters + string.digits + "-_"
META = "https://auth.cobee.io/metadata"

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
segments = st.text(alphabet=B64, max_size=60)
compact = st.tuples(segments, segments, segments).map(".".join)
encoded_json = json_values.map(lambda value: b64url_encode(json.dumps(value).encode()))
structured = st.tuples(encoded_json, encoded_json, segments).map(".".join)


# --- in process -------------------------------------------------------------------------------------------


@FAST
@given(data=st.binary(max_size=200) | st.text(max_size=200))
def test_base64url_decoding_only_rejects(data, record):
    with contextlib.suppress(TokenRejected):
        assert isinstance(b64url_decode(data), bytes)
    record.case(True)


@FAST
@given(data=st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
def test_json_decoding_only_rejects(data, record):
    with contextlib.suppress(TokenRejected):
        assert isinstance(loads_json(data), dict)
    record.case(True)


@FAST
@given(token=st.text(max_size=300) | compact | structured)
def test_the_parser_only_rejects(token, record):
    parser = CompactParser(frozenset({"RS256"}), 16 * 1024)
    with contextlib.suppress(TokenRejected):
        parser.parse(token)
    record.case(True)


@pytest.fixture(scope="module")
def local_issuer():
    from cobee_django.testing import TokenIssuer

    return TokenIssuer(issuer="https://fuzz.example/", audience="https://api.cobee.io")


@pytest.fixture
def trusted(settings, local_issuer):
    from cobee_django.testing import install_key_set, uninstall_key_set

    settings.COBEE_DJANGO = {"ISSUER": local_issuer.issuer, "AUDIENCE": local_issuer.audience, "JWKS_CACHE_ALIAS": None}
    install_key_set(local_issuer.issuer, local_issuer.jwks())
    yield local_issuer
    uninstall_key_set(local_issuer.issuer)


claim_names = st.sampled_from(["iss", "aud", "exp", "nbf", "iat", "gty", "azp", "sub", "scope", "permissions", META])
header_names = st.sampled_from(["alg", "kid", "typ", "jwk", "crit", "x5c", "cty"])


@settings(FAST, max_examples=120)
@given(
    claims=st.dictionaries(claim_names | st.text(max_size=8), json_values, max_size=6),
    header=st.dictionaries(header_names, json_values, max_size=3),
    keep=st.booleans(),
)
def test_the_verifier_only_rejects_signed_garbage(trusted, claims, header, keep, record):
    """Properly signed tokens with arbitrary claims and header values: accepted or TokenRejected."""
    from cobee_django.tokens import verify_token

    if keep:  # start from a valid token so the deeper rules are reached too
        base = trusted.claims("5e9e9701-9883-447d-9884-46e75993e33b", scopes=READ)
        claims = {**base, **claims}
        header = {**trusted.default_header(), **{k: v for k, v in header.items() if k != "alg"}}
    token = trusted.sign(claims, {**trusted.default_header(), **header})
    with contextlib.suppress(TokenRejected):
        verify_token(token)
    record.case(True)


@FAST
@given(
    header=st.text(max_size=120)
    | st.builds(
        lambda s, t: f"{s} {t}", st.sampled_from(["Bearer", "bearer", "Basic", "BEARER"]), st.text(max_size=80)
    ),
    query=st.sampled_from(["", "?access_token=x", "?access_token", "?x=access_token"]),
)
def test_the_authorization_header_only_answers_400_or_401(trusted, header, query, record):
    from rest_framework.test import APIRequestFactory
    from rest_framework.views import APIView

    from cobee_django.authentication import JWTAuthentication
    from cobee_django.exceptions import AuthenticationUnavailable, InvalidRequest, InvalidToken

    request = APIView().initialize_request(APIRequestFactory().get("/" + query, HTTP_AUTHORIZATION=header))
    with contextlib.suppress(InvalidToken, InvalidRequest, AuthenticationUnavailable):
        JWTAuthentication().authenticate(request)
    record.case(True)


# --- over HTTP ------------------------------------------------------------------------------------------

header_bytes = st.binary(max_size=200).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"").replace(b"\0", b""))


@SLOW
@given(value=header_bytes | st.builds(lambda t: b"Bearer " + t, header_bytes) | structured.map(lambda t: f"Bearer {t}"))
def test_arbitrary_authorization_bytes_over_http(served, world, value, record):
    company = world.first_company()
    status, _, content, seconds = served.request(
        "GET", f"/api/v3/companies/{company}/employees", [("Authorization", value)]
    )
    record.timed(seconds)
    assert status in (400, 401), (status, content[:200])
    assert b"Traceback" not in content
    record.case(True)


@SLOW
@given(
    path=st.text(alphabet=string.ascii_letters + string.digits + "-_.%~", max_size=40),
    method=st.sampled_from(["GET", "POST", "PATCH", "DELETE", "PUT", "OPTIONS"]),
)
def test_arbitrary_ids_in_paths_over_http(served, world, issuer, path, method, record):
    """Any id in the company, employee or corporation position: a 4xx, never a 500."""
    company = world.first_company()
    token = issuer.make_token(company, world.corporation_of(company), scopes=("read:employees", "write:employees"))
    headers = [("Authorization", f"Bearer {token}"), ("Content-Type", "application/json")]
    for target in (
        f"/api/v3/companies/{path}/employees",
        f"/api/v3/companies/{company}/employees/{path}",
        f"/api/v3/companies/{company}/benefit-models/{path}",
        f"/api/v3/corporations/{path}/consumptions?payroll=2026-10",
    ):
        status, _, content, seconds = served.request(
            method, target, headers, b"{}" if method in ("POST", "PATCH") else None
        )
        record.timed(seconds)
        assert status < 500, (method, target, status, content[:200])
        # Nothing may be created or changed by a malformed id.
        assert status in (200, 204, 400, 403, 404, 405) and not (
            method not in ("GET", "OPTIONS") and status in (200, 204)
        ), (
            method,
            target,
            status,
        )
    record.case(True)


HOSTILE_BODIES = {
    "a list nested 100000 deep": b"[" * 100_000 + b"]" * 100_000,
    "an object nested 50000 deep": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "NaN": b'{"grossSalary": {"amountInCents": NaN}}',
    "an integer of 5000 digits": b'{"grossSalary": {"amountInCents": ' + b"9" * 5000 + b"}}",
    "1e999": b'{"grossSalary": {"amountInCents": 1e999}}',
    "invalid UTF-8": b'{"name": "\xff\xfe"}',
    "a NUL character": b'{"name": "a\\u0000b"}',
    "a lone surrogate": b'{"name": "\\ud800"}',
    "a top-level list": b"[]",
    "a top-level string": b'"x"',
    "nested metadata": b'{"metadata": {"a": {"b": 1}}}',
    "a five-digit year": b'{"birthDate": "99999-01-01"}',
    "an object as modelId": b'{"modelId": {"a": 1}}',
    "a list as state": b'{"state": ["active"]}',
    "three megabytes (over Django's upload limit)": b'{"name": "' + b"x" * 3_000_000 + b'"}',
}


@pytest.mark.parametrize("name", HOSTILE_BODIES)
def test_hostile_json_bodies_over_http(served, world, issuer, name, record):
    """Bodies no client should send: a 400 with field or parse errors, never a 500."""
    company = world.first_company()
    token = issuer.make_token(company, scopes=("read:employees", "write:employees"))
    employee = world.companies[company]["employees"][0]["id"]
    headers = [("Authorization", f"Bearer {token}"), ("Content-Type", "application/json")]
    for method, path in [
        ("POST", f"/api/v3/companies/{company}/employees"),
        ("PATCH", f"/api/v3/companies/{company}/employees/{employee}"),
    ]:
        status, _, content, seconds = served.request(method, path, headers, HOSTILE_BODIES[name])
        record.timed(seconds)
        assert status in (400, 413), (method, status, content[:300])
        assert b"Traceback" not in content
        record.case(True)
    assert "Traceback" not in served.log()


# --- schemathesis over the test project's OpenAPI document ------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_server(jwks_server, issuer, tmp_path_factory):
    """The project on a database of its own: schemathesis writes (valid employees get created)."""
    from .conftest import ServedProject, fresh_world, server_env

    world = fresh_world(jwks_server, tmp_path_factory.mktemp("schemathesis"), "schemathesis")
    server = ServedProject("wsgi", server_env(jwks_server, world.database, world.var_dir), world.var_dir / "wsgi.log")
    server.start()
    yield server, world
    server.stop()
    world.database.drop()


def test_schemathesis_finds_no_server_error(fuzz_server, issuer, record):
    import schemathesis

    server, world = fuzz_server
    status, _, _, _ = server.request("GET", "/api/schema/")
    assert status == 200, "the test project serves its OpenAPI document at /api/schema/"
    schema = schemathesis.openapi.from_url(f"{server.base_url}/api/schema/")
    company = world.first_company()
    corporation = world.corporation_of(company)
    token = issuer.make_token(company, corporation, scopes=("read:employees", "write:employees"))
    own = {
        "companyId": company,
        "corporationId": corporation,
        "employeeId": world.companies[company]["employees"][1]["id"],
        "benefitModelId": world.companies[company]["benefit_models"][0],
    }
    failures = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 6

    for operation in operations:
        if "oauth" in operation.path:
            continue

        @settings(max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(), aim=st.booleans())
        def run(case, aim):
            if aim:  # half the cases use the caller's own ids, so the deeper code is reached
                for name in case.path_parameters or {}:
                    if name in own:
                        case.path_parameters[name] = own[name]
            response = case.call(base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
            held = response.status_code < 500
            record.case(held)
            if not held:
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code}")

        run()
    assert not failures, "\n".join(failures[:10]) + "\n" + server.log()[-3000:]
    assert "Traceback" not in server.log()
