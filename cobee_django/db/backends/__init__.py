"""Database backends (``ENGINE`` values) that cobee_django provides."""

__all__: list[str] = []
