"""A development OAuth 2.0 issuer: Auth0-shaped client-credentials tokens for the test project.

It signs with :class:`cobee_django.testing.TokenIssuer`, so the API accepts its tokens exactly as it
accepts Auth0's. Never for production: it refuses to start with ``DEBUG`` off unless told otherwise.
"""
