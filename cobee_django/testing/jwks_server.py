"""A real JWKS server on 127.0.0.1 for tests: serves key sets, counts fetches, injects faults."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .issuer import TokenIssuer

__all__: list[str] = []

JWKS_PATH = "/.well-known/jwks.json"
OPENID_PATH = "/.well-known/openid-configuration"

#: Faults :attr:`JWKSServer.fault` can take.
FAULTS = frozenset(
    {
        "down",  # the connection is closed without an answer
        "slow",  # the answer comes after ``delay`` seconds
        "trickle",  # the body is sent one byte every ``delay`` seconds
        "html",  # 200 with an HTML page
        "huge",  # 200 with a body of ``huge_bytes`` and no Content-Length
        "huge_declared",  # the same with a Content-Length
        "malformed",  # 200 with a body that is not JSON
        "redirect",  # 302 to the real key set
        "error",  # 500
        "gzip",  # 200 with Content-Encoding: gzip
    }
)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # silence per-request logging
        pass

    def do_GET(self) -> None:
        owner = self.server.owner
        path = self.path.split("?", 1)[0]
        with owner._lock:
            owner.requests[path] += 1
            fault = owner.fault
            document = owner.documents.get(path)
        if path == OPENID_PATH and owner.openid_issuer is not None:
            return self._send(200, owner.openid_configuration())
        if path.startswith("/redirected") and path.removeprefix("/redirected") in owner.documents:
            return self._send(200, json.dumps(owner.documents[path.removeprefix("/redirected")]).encode())
        if document is None:
            return self._send(404, b'{"error": "not found"}')
        if fault == "down":
            self.close_connection = True
            self.connection.close()
            return None
        if fault == "slow":
            time.sleep(owner.delay)
        body = json.dumps(document).encode()
        if fault == "html":
            return self._send(200, b"<html><body>Service unavailable</body></html>", "text/html")
        if fault == "malformed":
            return self._send(200, b'{"keys": [', "application/json")
        if fault == "error":
            return self._send(500, b'{"error": "internal"}')
        if fault == "redirect":
            self.send_response(302)
            self.send_header("Location", "/redirected" + path)
            self.end_headers()
            return None
        if fault == "gzip":
            return self._send(200, body, headers={"Content-Encoding": "gzip"})
        if fault in ("huge", "huge_declared"):
            filler = b" " * owner.huge_bytes
            return self._send(200, body[:-1] + filler + b"}", length=fault == "huge_declared")
        if fault == "trickle":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            for byte in body:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(owner.delay)
            return None
        return self._send(200, body)

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        *,
        length: bool = True,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            if length:
                self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (size cap or timeout): that is what the test wanted


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    owner: JWKSServer


class JWKSServer:
    """A threaded HTTP server on ``127.0.0.1`` (ephemeral port) serving JWK sets.

    ``JWKSServer(issuer)`` serves ``issuer.jwks()`` at :data:`JWKS_PATH`; :meth:`serve` publishes
    more sets (another issuer, a rotated key) at any path. :attr:`fetches` counts requests for key
    sets; :attr:`fault` (one of :data:`FAULTS`, or ``None``) makes the server misbehave. Use it as a
    context manager, or call :meth:`start` and :meth:`stop`.

    With ``openid=True`` it also serves ``/.well-known/openid-configuration`` naming
    :attr:`base_url` as the issuer.
    """

    def __init__(self, *issuers: TokenIssuer | Mapping[str, Any], openid: bool = False) -> None:
        self._lock = threading.Lock()
        self.documents: dict[str, Any] = {}
        self.requests: Counter[str] = Counter()
        self.fault: str | None = None
        self.delay = 1.0
        self.huge_bytes = 2 * 1024 * 1024
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.openid_issuer: str | None = None
        self._openid = openid
        if issuers:
            self.serve(*issuers)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> JWKSServer:
        """Start listening (idempotent); returns ``self``."""
        if self._server is None:
            server = _Server(("127.0.0.1", 0), _Handler)
            server.owner = self
            self._server = server
            self._thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="jwks-server", daemon=True
            )
            self._thread.start()
            if self._openid:
                self.openid_issuer = self.base_url
        return self

    def stop(self) -> None:
        """Stop listening and free the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> JWKSServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- addresses -----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the JWKS server is not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/`` (ends with ``/``, like Auth0 issuers)."""
        return f"http://127.0.0.1:{self.port}/"

    def url(self, path: str = JWKS_PATH) -> str:
        """The absolute URL of ``path`` on this server."""
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def jwks_url(self) -> str:
        return self.url(JWKS_PATH)

    # -- content and faults -------------------------------------------------------------------

    def serve(self, *sources: TokenIssuer | Mapping[str, Any], path: str = JWKS_PATH) -> None:
        """Publish at ``path`` the union of the keys of ``sources`` (issuers or JWKS documents)."""
        keys: list[Any] = []
        for source in sources:
            document = source.jwks() if isinstance(source, TokenIssuer) else source
            keys.extend(document.get("keys", []) if isinstance(document, Mapping) else [document])
        document_out: Any = {"keys": keys}
        if len(sources) == 1 and not isinstance(sources[0], TokenIssuer):
            document_out = json.loads(json.dumps(sources[0]))  # served exactly as given
        with self._lock:
            self.documents[path] = document_out

    def rotate(self, *sources: TokenIssuer | Mapping[str, Any], path: str = JWKS_PATH) -> None:
        """Replace the keys served at ``path`` (key rotation)."""
        self.serve(*sources, path=path)

    def fetches(self, path: str = JWKS_PATH) -> int:
        """How many requests ``path`` received."""
        with self._lock:
            return self.requests[path]

    def reset_counts(self) -> None:
        with self._lock:
            self.requests.clear()

    def set_fault(self, fault: str | None, *, delay: float | None = None) -> None:
        """Make the server misbehave (see :data:`FAULTS`), or behave again with ``None``."""
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; choose from {sorted(FAULTS)}")
        with self._lock:
            self.fault = fault
            if delay is not None:
                self.delay = delay

    def openid_configuration(self) -> bytes:
        issuer = self.openid_issuer or self.base_url
        return json.dumps(
            {
                "issuer": issuer,
                "jwks_uri": self.jwks_url,
                "token_endpoint": self.url("/oauth/token"),
                "response_types_supported": ["token"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        ).encode()
