"""Management commands that run for one company, one corporation, or deliberately unscoped."""

from __future__ import annotations

import uuid
from argparse import ArgumentParser, ArgumentTypeError
from contextlib import AbstractContextManager
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from .. import state

__all__ = ["TenantCommand"]


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ArgumentTypeError(f"{value!r} is not a UUID") from None


def _add_tenant_arguments(parser: ArgumentParser) -> None:
    """Add ``--company``, ``--corporation`` and ``--unscoped``; exactly one is required."""
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--company", type=_uuid, metavar="UUID", help="Run for this company only.")
    group.add_argument("--corporation", type=_uuid, metavar="UUID", help="Run for every company of this corporation.")
    group.add_argument(
        "--unscoped", action="store_true", help="Run over every company's rows, on purpose (no tenant scoping)."
    )


def _tenant_context(options: dict[str, Any]) -> AbstractContextManager[Any]:
    """The binding the parsed ``--company``/``--corporation``/``--unscoped`` options ask for."""
    if options.get("company"):
        return state.for_company(options["company"])
    if options.get("corporation"):
        return state.for_corporation(options["corporation"])
    if options.get("unscoped"):
        return state.unscoped()
    raise CommandError("Choose --company, --corporation or --unscoped.")


class TenantCommand(BaseCommand):
    """Base class of commands that touch tenant models: ``handle()`` runs inside the chosen binding.

    Every such command takes exactly one of ``--company UUID``, ``--corporation UUID`` or
    ``--unscoped``; there is no default, so nobody runs one over every company by accident.
    """

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> Any:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        _add_tenant_arguments(parser)
        return parser

    def execute(self, *args: Any, **options: Any) -> str | None:
        with _tenant_context(options):
            return super().execute(*args, **options)
