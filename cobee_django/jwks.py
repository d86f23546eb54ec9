"""The key-set cache: each trusted issuer's JWKS, fetched safely, kept warm and shared between workers.

How a key is found for a token's ``kid`` (:meth:`IssuerKeys.get_key`):

1. The in-process key set answers while it is younger than ``JWKS_CACHE_TTL``. Keys are built once
   per fetch (:class:`~cobee_django.jose.VerificationKey`), never per request.
2. An old set is refreshed by one thread while the others keep using it. A refresh first looks at the
   shared Django cache (``JWKS_CACHE_ALIAS``), so a worker rarely fetches what another one already has.
3. An unknown ``kid`` (key rotation) triggers at most one refresh per ``JWKS_REFRESH_COOLDOWN``;
   concurrent misses wait for the same fetch instead of starting their own. A flood of random kids
   therefore costs at most one fetch per cooldown.
4. When the issuer is unreachable, the last good set keeps serving. With no set at all,
   :class:`KeySetUnavailable` is raised (the API answers 503 with ``Retry-After``).

Fetching is defensive: https only (plain http on loopback for development), redirects refused, a
total time budget, a streamed size cap, strict JSON, and every unusable entry skipped rather than fatal.

A key set can be pinned in code (:func:`pin_key_set`): the testing helpers
(:func:`cobee_django.testing.install_key_set`, :func:`~cobee_django.testing.trust`) use it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests
from django.core.cache import caches
from django.core.signals import setting_changed
from django.core.signing import BadSignature, Signer
from django.dispatch import receiver

from . import __version__, instrumentation
from .conf import IssuerSettings, Settings, get_settings, is_reloading, is_secure_url
from .exceptions import CobeeDjangoError, FetchError, KeySetUnavailable, Reason, TokenRejected, UnusableKey
from .jose import VerificationKey, key_from_jwk, loads_json

__all__: list[str] = []

logger = logging.getLogger("cobee_django.jwks")

#: Shared-cache entries outlive the TTL so a new worker can start from the last good set while the
#: issuer is down; freshness is decided by the ``fetched_at`` stored with the keys.
SHARED_CACHE_TIMEOUT = 7 * 24 * 3600
_CHUNK = 8192

#: Incremented whenever a refresh drops or replaces a key; cached tokens signed before are re-verified.
key_generation = 0


@dataclass(frozen=True)
class KeySet:
    """The usable keys of one fetched JWKS, by ``kid``, and when they were fetched (epoch seconds)."""

    keys: Mapping[str, VerificationKey]
    entries: tuple[dict[str, Any], ...]
    fetched_at: float


def build_key_set(document: Any, algorithms: frozenset[str], fetched_at: float) -> tuple[KeySet, list[str]]:
    """Keep the usable entries of a JWKS document; returns the set and why each other entry was skipped.

    Entries sharing a ``kid`` are all skipped: choosing one of them would be a guess.
    Raises :class:`FetchError` when the document is not a key set or no entry is usable.
    """
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise FetchError("the document is not a JWK set")
    skipped: list[str] = []
    kids = [entry.get("kid") for entry in entries if isinstance(entry, dict)]
    shared = {kid for kid in kids if isinstance(kid, str) and kids.count(kid) > 1}
    keys: dict[str, VerificationKey] = {}
    kept: list[dict[str, Any]] = []
    for entry in entries:
        kid = entry.get("kid") if isinstance(entry, dict) else None
        if kid in shared:
            skipped.append(f"kid {kid!r}: used by several entries")
            continue
        try:
            key = key_from_jwk(entry, algorithms)
        except UnusableKey as exc:
            skipped.append(f"kid {kid!r}: {exc}" if isinstance(kid, str) else str(exc))
            continue
        keys[key.kid] = key
        kept.append(entry)
    if not keys:
        raise FetchError("no usable key in the set" + (f" ({'; '.join(skipped)})" if skipped else ""))
    return KeySet(keys=keys, entries=tuple(kept), fetched_at=fetched_at), skipped


def _download(url: str, timeout: float, max_bytes: int) -> bytes:
    deadline = time.monotonic() + timeout
    with requests.get(
        url,
        timeout=(timeout, timeout),
        allow_redirects=False,
        stream=True,
        headers={
            "Accept": "application/json",
            # Compressed bodies could expand far beyond the size cap before we see them.
            "Accept-Encoding": "identity",
            "User-Agent": f"cobee-django/{__version__}",
        },
    ) as response:
        if response.is_redirect or response.is_permanent_redirect:
            raise FetchError(f"HTTP {response.status_code}: redirects are not followed")
        if response.status_code != 200:
            raise FetchError(f"HTTP {response.status_code}")
        if response.headers.get("Content-Encoding", "identity").lower() != "identity":
            raise FetchError("compressed responses are refused")
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise FetchError(f"larger than {max_bytes} bytes")
        body = bytearray()
        for chunk in response.iter_content(_CHUNK):
            body += chunk
            if len(body) > max_bytes:
                raise FetchError(f"larger than {max_bytes} bytes")
            if time.monotonic() > deadline:
                raise FetchError(f"took longer than {timeout} s")
        return bytes(body)


def fetch_jwks(url: str, *, timeout: float, max_bytes: int) -> dict[str, Any]:
    """GET a JWKS document within ``timeout`` seconds in all and ``max_bytes``; raise :class:`FetchError`.

    The download runs in a helper thread so the caller's wait is bounded even when a server trickles
    bytes slowly enough to defeat per-read socket timeouts.
    """
    if not is_secure_url(url):  # the same rule as the settings check (conf.is_secure_url)
        raise FetchError("key sets are only fetched over https (or http on loopback)")
    outcome: list[bytes | BaseException] = []

    def run() -> None:
        try:
            outcome.append(_download(url, timeout, max_bytes))
        except BaseException as exc:  # handed to the caller below
            outcome.append(exc)

    worker = threading.Thread(target=run, name="cobee-django-jwks-fetch", daemon=True)
    worker.start()
    worker.join(timeout)
    if not outcome:
        raise FetchError(f"took longer than {timeout} s")
    result = outcome[0]
    if isinstance(result, FetchError):
        raise result
    if isinstance(result, requests.RequestException):
        raise FetchError(f"request failed ({type(result).__name__})")
    if isinstance(result, BaseException):
        raise FetchError(f"request failed ({type(result).__name__})")
    try:
        return loads_json(result)
    except TokenRejected:
        raise FetchError("the response is not a JSON object") from None


class IssuerKeys:
    """The key set of one issuer, in process and in the shared cache. Thread-safe."""

    def __init__(self, issuer: IssuerSettings, settings: Settings, installed: Mapping[str, Any] | None = None) -> None:
        self.issuer = issuer.issuer
        self.url = issuer.jwks_url
        self.algorithms = settings.algorithms
        self.ttl = settings.jwks_cache_ttl
        self.cooldown = settings.jwks_refresh_cooldown
        self.timeout = settings.jwks_timeout
        self.max_bytes = settings.jwks_max_bytes
        self.cache_alias = settings.jwks_cache_alias
        self.cache_key = "cobee_django:jwks:" + hashlib.sha256(self.url.encode()).hexdigest()
        self._lock = threading.Lock()
        self._attempts = 0
        self._last_attempt = -math.inf
        self._last_failed = False
        self._pinned = installed is not None
        self._set: KeySet | None = None
        if installed is not None:
            self._set, _ = build_key_set(installed, self.algorithms, fetched_at=math.inf)

    @property
    def key_set(self) -> KeySet | None:
        """The key set in use now, if any."""
        return self._set

    def get_key(self, kid: str) -> VerificationKey:
        """The trusted key named ``kid``; raises ``TokenRejected(unknown_kid)`` or :class:`KeySetUnavailable`."""
        key_set = self._set
        if key_set is None or time.time() - key_set.fetched_at >= self.ttl:
            key_set = self._refresh(kid=None)
        key = key_set.keys.get(kid)
        if key is None:
            key = self._refresh(kid=kid).keys.get(kid)
            if key is None:
                raise TokenRejected(Reason.UNKNOWN_KID)
        return key

    def _refresh(self, kid: str | None) -> KeySet:
        """Refresh for an old set (``kid`` None) or an unknown kid; returns the set to use now."""
        if self._pinned:
            return self._require(self._set)
        seen = self._attempts
        current = self._set
        # An old set keeps serving while one thread refreshes it; a missing set or kid waits for it.
        if not self._lock.acquire(blocking=current is None or kid is not None):
            return self._require(current)
        try:
            current = self._set
            if self._attempts != seen:
                return self._require(current)  # another thread fetched while we waited: share its result
            now = time.time()
            if kid is None:
                if current is not None and now - current.fetched_at < self.ttl:
                    return current
                if self._last_failed and now - self._last_attempt < self.cooldown:
                    return self._require(current)
            elif (current is not None and kid in current.keys) or now - self._last_attempt < self.cooldown:
                return self._require(current)
            shared = self._load_shared()
            if shared is not None and (current is None or shared.fetched_at > current.fetched_at):
                self._install(shared)
                age = now - shared.fetched_at
                if (kid is None and age < self.ttl) or (
                    kid is not None and (kid in shared.keys or age < self.cooldown)
                ):
                    return shared
            self._fetch()
            return self._require(self._set)
        finally:
            self._lock.release()

    def _require(self, key_set: KeySet | None) -> KeySet:
        if key_set is None:
            raise KeySetUnavailable(self.issuer)
        return key_set

    @instrumentation.traced("cobee_django.jwks.fetch")
    def _fetch(self) -> None:
        self._attempts += 1
        self._last_attempt = time.time()
        started = time.perf_counter()
        try:
            document = fetch_jwks(self.url, timeout=self.timeout, max_bytes=self.max_bytes)
            key_set, skipped = build_key_set(document, self.algorithms, fetched_at=time.time())
        except FetchError as exc:
            instrumentation.key_set_fetched(self.issuer, "failure", time.perf_counter() - started)
            self._last_failed = True
            state = "keeping the last good set" if self._set is not None else "no key set yet"
            logger.warning("Could not fetch the key set of %s: %s; %s.", self.issuer, exc, state)
            return
        instrumentation.key_set_fetched(self.issuer, "success", time.perf_counter() - started)
        self._last_failed = False
        if skipped:
            logger.warning("Skipped unusable entries in the key set of %s: %s.", self.issuer, "; ".join(skipped))
        self._install(key_set)
        self._store_shared(key_set)

    def _install(self, key_set: KeySet) -> None:
        global key_generation
        old = self._set
        if old is not None and any(
            kid not in key_set.keys or key_set.keys[kid].jwk != key.jwk for kid, key in old.keys.items()
        ):
            key_generation += 1
        self._set = key_set

    def _load_shared(self) -> KeySet | None:
        if self.cache_alias is None:
            return None
        try:
            raw = caches[self.cache_alias].get(self.cache_key)
        except Exception as exc:  # a cache outage must not turn into failed requests
            logger.warning("The shared key-set cache %r failed: %s.", self.cache_alias, type(exc).__name__)
            return None
        if not isinstance(raw, str):
            return None
        try:
            # Signed with SECRET_KEY, and then held to the same rules as fetched entries: a value
            # planted in the cache by someone else, or a weak or private key, is never trusted.
            document = loads_json(_signer().unsign(raw).encode("utf-8"))
            fetched_at = document["fetched_at"]
            if type(fetched_at) not in (int, float) or not math.isfinite(fetched_at) or fetched_at > time.time() + 60:
                return None
            key_set, _ = build_key_set(document, self.algorithms, fetched_at=float(fetched_at))
        except (BadSignature, TokenRejected, FetchError, KeyError, UnicodeEncodeError):
            return None
        return key_set

    def _store_shared(self, key_set: KeySet) -> None:
        if self.cache_alias is None:
            return
        value = _signer().sign(json.dumps({"fetched_at": key_set.fetched_at, "keys": list(key_set.entries)}))
        try:
            caches[self.cache_alias].set(self.cache_key, value, SHARED_CACHE_TIMEOUT)
        except Exception as exc:  # a cache outage must not turn into failed requests
            logger.warning("The shared key-set cache %r failed: %s.", self.cache_alias, type(exc).__name__)


def _signer() -> Signer:
    return Signer(salt="cobee_django.jwks.shared-key-set")


_registry: dict[str, IssuerKeys] = {}
_registry_lock = threading.Lock()
#: Key sets given in code for an issuer, trusted as they are and never fetched (see :func:`pin_key_set`).
_pinned: dict[str, dict[str, Any]] = {}


def keys_for(issuer: IssuerSettings) -> IssuerKeys:
    """The (process-wide) key cache of a configured issuer."""
    keys = _registry.get(issuer.issuer)
    if keys is None:
        with _registry_lock:
            keys = _registry.get(issuer.issuer)
            if keys is None:
                keys = IssuerKeys(issuer, get_settings(), installed=_pinned.get(issuer.issuer))
                _registry[issuer.issuer] = keys
    return keys


def pin_key_set(issuer: str, document: Mapping[str, Any]) -> None:
    """Use ``document`` as ``issuer``'s key set, never fetched nor expired, until :func:`unpin_key_set`.

    Its entries pass the same rules as fetched ones; a set with no usable key raises
    :class:`~cobee_django.exceptions.CobeeDjangoError`. Pins survive settings changes. The testing
    helpers (``cobee_django.testing.install_key_set``, ``trust``) are this.
    """
    copy: dict[str, Any] = json.loads(json.dumps(dict(document)))
    try:
        build_key_set(copy, frozenset(get_settings().algorithms), fetched_at=math.inf)
    except FetchError as exc:
        raise CobeeDjangoError(f"install_key_set: {exc}") from None
    _replace_pins(issuer, copy)


def unpin_key_set(issuer: str | None = None) -> None:
    """Fetch ``issuer``'s keys again (every pinned issuer's when ``None``)."""
    _replace_pins(issuer, None)


def pinned_key_set(issuer: str) -> dict[str, Any] | None:
    """A copy of the key set pinned for ``issuer``, if any."""
    with _registry_lock:
        document = _pinned.get(issuer)
    return json.loads(json.dumps(document)) if document is not None else None


def _replace_pins(issuer: str | None, document: dict[str, Any] | None) -> None:
    global key_generation
    with _registry_lock:
        for name in list(_pinned) if issuer is None else [issuer]:
            _pinned.pop(name, None)
            _registry.pop(name, None)
        if issuer is not None and document is not None:
            _pinned[issuer] = document
        # Tokens verified with the keys being replaced must be verified again.
        key_generation += 1


# Deprecated names (the testing helpers' names, importable from cobee_django.testing).


def reset() -> None:
    """Drop every in-process key set (installed ones stay); the shared cache is left alone."""
    with _registry_lock:
        _registry.clear()


@receiver(setting_changed)
def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if is_reloading(setting):
        reset()
