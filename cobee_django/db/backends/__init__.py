"""Database backends (``ENGINE`` values) that cobee_django provides."""
