"""Audit signals. Receivers run in the request's thread; exceptions they raise are logged, not raised.

Each event also writes one structured record on the ``cobee_django`` logger (see
:mod:`cobee_django.audit`). No signal ever carries the token or key material.

``token_accepted``
    ``sender``: the authentication class; ``request``: the DRF request; ``token``: the
    :class:`~cobee_django.tokens.ValidatedToken`; ``principal``: its
    :class:`~cobee_django.principal.ClientPrincipal`; ``request_id``. Sent for every authenticated request.

``token_rejected``
    ``sender``: the authentication class; ``request``: the DRF request; ``reason``: a stable reason code
    (see :class:`~cobee_django.exceptions.Reason`); ``client_id``: the client, when the token's signature
    was valid, else ``None``; ``request_id``: the request's ``X-Request-ID`` when it is well formed.

``tenant_bound``
    ``sender``: the middleware class; ``request``: the ``HttpRequest``; ``tenant``: the
    :class:`~cobee_django.state.Tenant` the request now sees; ``principal``: the user it was derived
    from (a ``ClientPrincipal`` or a staff user); ``request_id``. Sent once per request and user, the
    first time the tenant is needed.

``access_denied``
    ``sender``: the middleware class; ``request``: the ``HttpRequest``; ``reason``: a stable code
    (see :class:`~cobee_django.audit.Denial`); ``status``: 403 or 404; ``principal``: the user;
    ``tenant``: the tenant bound then, or ``None``; ``request_id``. Sent once per refused request,
    after the response is built, so permissions composed with ``|`` that end up allowing the request
    send nothing.

``database_unavailable``
    ``sender``: the middleware class; ``request``: the ``HttpRequest``; ``reason``: a stable code
    (see :class:`~cobee_django.db.faults.DatabaseFault`: ``database_unreachable``,
    ``database_timeout``, ``shard_moved``); ``error``: the database error (for logs: never send
    it to a client); ``principal``: the user, if any; ``request_id``. Sent once per request answered
    503 because the database could not be reached in time.
"""

from __future__ import annotations

from django.dispatch import Signal

__all__ = ["access_denied", "database_unavailable", "tenant_bound", "token_accepted", "token_rejected"]

token_accepted = Signal()
token_rejected = Signal()
tenant_bound = Signal()
access_denied = Signal()
database_unavailable = Signal()
