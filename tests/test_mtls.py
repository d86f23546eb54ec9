"""Certificate-bound tokens (RFC 8705, cobee_django.mtls): the forwarded certificate is believed only
from a trusted proxy, and a bound token needs that certificate. First on Django requests, then behind
a real nginx terminating TLS with client certificates made at test time."""

from __future__ import annotations

import datetime
import hashlib
import os
import shutil
import socket
import subprocess
import time
import urllib.parse
import uuid
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.test import RequestFactory
from django.urls import path
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from cobee_django.authentication import JWTAuthentication
from cobee_django.credentials import RequestAuthenticator
from cobee_django.exceptions import InvalidToken, Reason
from cobee_django.jose import b64url_encode
from cobee_django.mtls import certificate_thumbprint

COMPANY = uuid.UUID("0b9a3c1e-2d4f-4e6a-8b7c-9d0e1f2a3b4c")
HEADER = "HTTP_X_SSL_CLIENT_CERT"


class Whoami(APIView):
    authentication_classes = [JWTAuthentication]
    permission_classes = [IsAuthenticated]

    def get(self, request):
        return Response({"client": request.user.client_id})


urlpatterns = [path("whoami", Whoami.as_view())]


# --- certificates -----------------------------------------------------------------------------------


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_certificate(common_name, issuer_key=None, issuer_name=None, *, ca=False, server=False, san=None):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(issuer_name or _name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        # Key identifiers: Python 3.13's default verification (VERIFY_X509_STRICT) requires them.
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key((issuer_key or key).public_key()), critical=False
        )
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    if not ca:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    certificate = builder.sign(issuer_key or key, hashes.SHA256())
    return key, certificate


def pem(certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def thumbprint(certificate) -> str:
    return b64url_encode(hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).digest())


@pytest.fixture(scope="module")
def certificates():
    ca_key, ca = make_certificate("test CA", ca=True)
    client_key, client = make_certificate("partner client", ca_key, ca.subject)
    other_key, other = make_certificate("another client", ca_key, ca.subject)
    return {"ca": (ca_key, ca), "client": (client_key, client), "other": (other_key, other)}


# --- on Django requests -----------------------------------------------------------------------------


@pytest.fixture
def mtls(settings):
    settings.COBEE_DJANGO = {
        **settings.COBEE_DJANGO,
        "MTLS_CLIENT_CERT_HEADER": HEADER,
        "MTLS_TRUSTED_PROXIES": ["10.0.0.0/24", "::1"],
    }


def request(token, cert_value=None, remote="10.0.0.7"):
    meta = {"HTTP_AUTHORIZATION": f"Bearer {token}", "REMOTE_ADDR": remote}
    if cert_value is not None:
        meta[HEADER] = cert_value
    return RequestFactory().get("/whoami", **meta)


def refused(req, reason):
    with pytest.raises(InvalidToken) as caught:
        RequestAuthenticator().authenticate(req)
    assert caught.value.reason is reason


def test_the_bound_certificate_from_a_trusted_proxy_is_accepted_in_each_encoding(cobee_issuer, mtls, certificates):
    _, client = certificates["client"]
    token = cobee_issuer.make_token(COMPANY, cnf={"x5t#S256": thumbprint(client)})
    der_base64 = __import__("base64").b64encode(client.public_bytes(serialization.Encoding.DER)).decode()
    for value in (urllib.parse.quote(pem(client)), pem(client), der_base64):
        assert RequestAuthenticator().authenticate(request(token, value)).principal.company_id == COMPANY
    assert RequestAuthenticator().authenticate(request(token, pem(client), remote="::1")) is not None


def test_another_certificate_is_refused(cobee_issuer, mtls, certificates):
    _, client = certificates["client"]
    _, other = certificates["other"]
    token = cobee_issuer.make_token(COMPANY, cnf={"x5t#S256": thumbprint(client)})
    refused(request(token, pem(other)), Reason.CERTIFICATE_MISMATCH)


def test_the_header_from_an_untrusted_address_is_ignored(cobee_issuer, mtls, certificates):
    _, client = certificates["client"]
    token = cobee_issuer.make_token(COMPANY, cnf={"x5t#S256": thumbprint(client)})
    refused(request(token, pem(client), remote="203.0.113.9"), Reason.CERTIFICATE_MISMATCH)
    refused(request(token, pem(client), remote="not an address"), Reason.CERTIFICATE_MISMATCH)


def test_without_the_setting_a_certificate_bound_token_is_always_refused(cobee_issuer, certificates):
    _, client = certificates["client"]
    token = cobee_issuer.make_token(COMPANY, cnf={"x5t#S256": thumbprint(client)})
    refused(request(token, pem(client)), Reason.CERTIFICATE_MISMATCH)


@pytest.mark.parametrize(
    "value",
    ["", "junk", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----", "%ZZ", "QUJD", "é"],
)
def test_a_malformed_certificate_header_matches_nothing(cobee_issuer, mtls, certificates, value):
    _, client = certificates["client"]
    token = cobee_issuer.make_token(COMPANY, cnf={"x5t#S256": thumbprint(client)})
    refused(request(token, value), Reason.CERTIFICATE_MISMATCH)
    assert certificate_thumbprint(value) is None


def test_a_chain_in_the_header_is_not_the_client_certificate(certificates):
    _, client = certificates["client"]
    _, ca = certificates["ca"]
    assert certificate_thumbprint(pem(client) + pem(ca)) is None
    assert certificate_thumbprint(pem(client)) == thumbprint(client)


def test_an_unbound_token_ignores_the_certificate(cobee_issuer, mtls, certificates):
    _, other = certificates["other"]
    token = cobee_issuer.make_token(COMPANY)
    assert RequestAuthenticator().authenticate(request(token, pem(other))) is not None
    assert RequestAuthenticator().authenticate(request(token)) is not None


@pytest.mark.parametrize(
    "cnf",
    [
        "x",
        {},
        {"x5t": "abc"},
        {"x5t#S256": 5},
        {"x5t#S256": "short"},
        {"jkt": "A" * 43, "other": "B" * 43},
        None,
    ],
)
def test_a_confirmation_claim_we_cannot_check_refuses_the_token(cobee_issuer, mtls, cnf):
    token = cobee_issuer.make_token(COMPANY, cnf=cnf)
    refused(request(token), Reason.BAD_CONFIRMATION)


# --- behind nginx -----------------------------------------------------------------------------------


def nginx_binary() -> str:
    found = shutil.which("nginx") or (Path("/usr/sbin/nginx").is_file() and "/usr/sbin/nginx")
    if not found:
        if os.environ.get("COBEE_REQUIRE_NGINX"):
            pytest.fail("COBEE_REQUIRE_NGINX is set but nginx is not installed (apt-get install nginx-light)")
        pytest.skip("needs nginx (apt-get install nginx-light)")
    return str(found)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_key(path: Path, key) -> None:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


@pytest.fixture
def nginx(tmp_path, live_server, certificates):
    """nginx on a free port: TLS with an optional client certificate, proxying to the live server
    with the (URL-encoded PEM) client certificate in X-SSL-Client-Cert, whatever the client sent."""
    binary = nginx_binary()
    import ipaddress

    ca_key, ca = certificates["ca"]
    server_key, server = make_certificate(
        "127.0.0.1", ca_key, ca.subject, server=True, san=[x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    (tmp_path / "ca.pem").write_text(pem(ca))
    (tmp_path / "server.pem").write_text(pem(server))
    write_key(tmp_path / "server.key", server_key)
    for name in ("client", "other"):
        key, certificate = certificates[name]
        (tmp_path / f"{name}.pem").write_text(pem(certificate))
        write_key(tmp_path / f"{name}.key", key)
    port = free_port()
    upstream = live_server.url.removeprefix("http://")
    (tmp_path / "nginx.conf").write_text(
        f"""
daemon off;
master_process off;
worker_processes 1;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp_path}/body;
    proxy_temp_path {tmp_path}/proxy;
    fastcgi_temp_path {tmp_path}/fastcgi;
    uwsgi_temp_path {tmp_path}/uwsgi;
    scgi_temp_path {tmp_path}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {tmp_path}/server.pem;
        ssl_certificate_key {tmp_path}/server.key;
        ssl_client_certificate {tmp_path}/ca.pem;
        ssl_verify_client optional;
        location / {{
            proxy_pass http://{upstream};
            proxy_set_header Host 127.0.0.1;
            proxy_set_header X-SSL-Client-Cert $ssl_client_escaped_cert;
        }}
    }}
}}
"""
    )
    process = subprocess.Popen(
        [binary, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-e", str(tmp_path / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if process.poll() is not None:
                pytest.fail("nginx exited:\n" + (tmp_path / "error.log").read_text(errors="replace"))
            time.sleep(0.05)
    try:
        yield f"https://127.0.0.1:{port}", tmp_path
    finally:
        process.terminate()
        process.wait(10)


@pytest.mark.urls(__name__)
def test_behind_nginx_only_the_bound_client_certificate_passes(settings, cobee_issuer, certificates, nginx):
    import requests

    base, files = nginx
    settings.COBEE_DJANGO = {
        **settings.COBEE_DJANGO,
        "MTLS_CLIENT_CERT_HEADER": HEADER,
        "MTLS_TRUSTED_PROXIES": ["127.0.0.1"],
    }
    _, client = certificates["client"]
    token = cobee_issuer.make_token(COMPANY, cnf={"x5t#S256": thumbprint(client)})
    auth = {"Authorization": f"Bearer {token}"}
    ca = str(files / "ca.pem")

    def get(cert=None, headers=None):
        return requests.get(f"{base}/whoami", headers={**auth, **(headers or {})}, cert=cert, verify=ca, timeout=10)

    good = get(cert=(str(files / "client.pem"), str(files / "client.key")))
    assert good.status_code == 200, good.text
    other = get(cert=(str(files / "other.pem"), str(files / "other.key")))
    assert other.status_code == 401
    assert 'error="invalid_token"' in other.headers["WWW-Authenticate"]
    assert get().status_code == 401
    # The victim's certificate in the header, no certificate in the handshake: nginx overwrites it.
    forged = get(headers={"X-SSL-Client-Cert": urllib.parse.quote(pem(client))})
    assert forged.status_code == 401
    unbound = requests.get(
        f"{base}/whoami", headers={"Authorization": cobee_issuer.bearer(COMPANY)}, verify=ca, timeout=10
    )
    assert unbound.status_code == 200
