"""Audit signals. Receivers run in the request's thread; exceptions they raise are logged, not raised.

``token_accepted``
    ``sender``: the authentication class; ``request``: the DRF request; ``token``: the
    :class:`~cobee_django.tokens.ValidatedToken`; ``principal``: its
    :class:`~cobee_django.principal.ClientPrincipal`. Sent for every authenticated request.

``token_rejected``
    ``sender``: the authentication class; ``request``: the DRF request; ``reason``: a stable reason code
    (see :class:`~cobee_django.reasons.Reason`); ``client_id``: the client, when the token's signature
    was valid, else ``None``; ``request_id``: the request's ``X-Request-ID`` when it is well formed.
    Never carries the token.
"""

from __future__ import annotations

from django.dispatch import Signal

token_accepted = Signal()
token_rejected = Signal()
