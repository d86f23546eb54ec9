"""Cobee's Partner API security model for Django REST framework services."""

__all__ = ["__version__"]

__version__ = "0.1.0"
