"""``manage.py with_tenant --company UUID -- <command> [args]``: run any command inside a binding."""

from __future__ import annotations

from argparse import REMAINDER, ArgumentParser
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from ..base import _add_tenant_arguments, _tenant_context

__all__: list[str] = []


class Command(BaseCommand):
    help = (
        "Run another management command for one company (--company), one corporation (--corporation) "
        "or deliberately over every company (--unscoped), e.g. `with_tenant --company UUID -- dumpdata app`."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        _add_tenant_arguments(parser)
        parser.add_argument("command", nargs=REMAINDER, help="The command to run and its arguments.")

    def handle(self, *args: Any, **options: Any) -> None:
        argv = list(options["command"])
        if argv[:1] == ["--"]:
            argv = argv[1:]
        if not argv:
            raise CommandError("Name the command to run, e.g. `with_tenant --company UUID -- dumpdata app`.")
        with _tenant_context(options):
            call_command(*argv, stdout=self.stdout._out, stderr=self.stderr._out)
