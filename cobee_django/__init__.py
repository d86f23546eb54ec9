"""Cobee's Partner API security model for Django REST framework services."""

__version__ = "0.1.0"
