"""A development token issuer: add ``cobee_django.devissuer`` to a project's apps in development.

It serves what Auth0 serves a Partner API's clients: a key set, a discovery document, the
client-credentials token endpoint (Auth0-shaped ``/oauth/token`` and Cobee-shaped
``/api/v3/oauth/token``), and the authorization-code flow the admin's staff sign-in uses. Tokens are
signed with :class:`cobee_django.testing.TokenIssuer` and a key kept in a git-ignored folder, so the
API accepts them exactly as it accepts Auth0's. Never for production: with ``DEBUG`` off it is a
system-check error (and a startup error) unless ``COBEE_DEV_ISSUER["ALLOW_WITHOUT_DEBUG"]`` is set.
"""

__all__: list[str] = []
