"""Certificate-bound access tokens (RFC 8705 section 3): ``cnf["x5t#S256"]`` checked against the client
certificate a trusted TLS-terminating proxy forwards.

Django never sees the TLS handshake: the proxy (nginx, HAProxy, a load balancer) verifies the client
certificate and passes it on in a request header. That header is believed only when both are
configured:

- ``MTLS_CLIENT_CERT_HEADER``: the ``request.META`` key of the header (for example
  ``HTTP_X_SSL_CLIENT_CERT`` for nginx's ``proxy_set_header X-SSL-Client-Cert
  $ssl_client_escaped_cert;``), holding the certificate as URL-encoded PEM, PEM, or base64 DER;
- ``MTLS_TRUSTED_PROXIES``: the addresses (``REMOTE_ADDR``) the proxies connect from.

The header from any other address is ignored, as if absent: anyone can send any header, so only
the proxy's word counts. A token with ``cnf["x5t#S256"]`` is accepted only when the believed
certificate's SHA-256 thumbprint is that value; a token without it is unaffected.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import ipaddress
import re
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from django.http import HttpRequest

from .conf import Settings, get_settings
from .exceptions import Reason, TokenRejected
from .jose import b64url_encode

__all__: list[str] = []

#: The confirmation member of a certificate-bound token (RFC 8705 section 3.1).
X5T_S256 = "x5t#S256"
_MAX_HEADER = 16 * 1024
_CACHE_SIZE = 256
_PEM_BEGIN = "-----BEGIN CERTIFICATE-----"
_PEM_END = "-----END CERTIFICATE-----"
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_thumbprints: dict[str, str | None] = {}
_lock = threading.Lock()


def certificate_thumbprint(value: str) -> str | None:
    """The base64url SHA-256 thumbprint of the DER certificate in a proxy header, ``None`` if none.

    ``value`` is URL-encoded PEM (nginx's ``$ssl_client_escaped_cert``), PEM, or base64 DER
    (HAProxy's ``%[ssl_c_der,base64]``). The certificate is parsed, so junk never has a thumbprint.
    """
    cached = _thumbprints.get(value)
    if cached is not None or value in _thumbprints:
        return cached
    thumbprint = _thumbprint(value)
    with _lock:
        if len(_thumbprints) >= _CACHE_SIZE:
            _thumbprints.clear()
        _thumbprints[value] = thumbprint
    return thumbprint


def _thumbprint(value: str) -> str | None:
    if len(value) > _MAX_HEADER or not value.isascii():
        return None
    text = unquote(value).strip() if "%" in value else value.strip()
    try:
        if text.startswith(_PEM_BEGIN):
            if text.count(_PEM_BEGIN) != 1 or not text.endswith(_PEM_END):
                return None  # one certificate, not a chain (the client's is the one bound)
            der = x509.load_pem_x509_certificate(text.encode("ascii")).public_bytes(Encoding.DER)
        else:
            if len(text) % 4 or not _BASE64.fullmatch(text):
                return None
            der = binascii.a2b_base64(text.encode("ascii"))
            x509.load_der_x509_certificate(der)
    except (ValueError, binascii.Error, TypeError):
        return None
    return b64url_encode(hashlib.sha256(der).digest())


def _is_trusted(remote: Any, settings: Settings) -> bool:
    if not isinstance(remote, str) or not settings.mtls_trusted_proxies:
        return False
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        return False
    return any(address in network for network in settings.mtls_trusted_proxies)


def client_certificate_thumbprint(request: HttpRequest, settings: Settings | None = None) -> str | None:
    """The thumbprint of the client certificate the trusted proxy forwarded for ``request``, if any.

    Threat: a certificate header sent by anyone but a trusted proxy is a claim the client makes about
    itself; it is ignored (``None``), never believed.
    """
    settings = settings or get_settings()
    header = settings.mtls_client_cert_header
    if header is None:
        return None
    value = request.META.get(header)
    if not isinstance(value, str) or not value or not _is_trusted(request.META.get("REMOTE_ADDR"), settings):
        return None
    return certificate_thumbprint(value)


def check_certificate_binding(request: HttpRequest, claims: Mapping[str, Any]) -> None:
    """Refuse a certificate-bound token unless the trusted proxy forwarded that certificate.

    A token without ``cnf["x5t#S256"]`` passes untouched. Raises ``TokenRejected(certificate_mismatch)``.
    """
    cnf = claims.get("cnf")
    if cnf is None:  # most tokens: no binding, nothing else to read
        return
    expected = cnf.get(X5T_S256) if isinstance(cnf, Mapping) else None
    if expected is None:
        return
    presented = client_certificate_thumbprint(request)
    # Threat: a certificate-bound token stolen from logs, replayed without the client's private key.
    if presented is None or type(expected) is not str or not hmac.compare_digest(presented, expected):
        raise TokenRejected(Reason.CERTIFICATE_MISMATCH)
