"""``manage.py load_directory FILE``: import which companies belong to which corporation.

The file is a directory export, JSON or CSV (chosen by extension, or ``--format``):

- JSON: ``{"corporations": [{"id": ..., "name": ...}], "companies": [{"id": ..., "name": ...,
  "corporationId": ... or null}]}`` (``corporations`` is optional);
- CSV: a header ``companyId,companyName,corporationId,corporationName`` (names may be empty,
  an empty ``corporationId`` means the company belongs to no corporation).

Every listed company is created or updated, and linked to exactly the corporation the file names
(``null`` unlinks it). Companies the file does not list are left alone. The whole file is checked
first and loaded in one transaction: one bad line, and nothing is written.
"""

from __future__ import annotations

import csv
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from ...models import Company, Corporation, _MembershipSource

__all__: list[str] = []

CSV_COLUMNS = ("companyId", "companyName", "corporationId", "corporationName")
MAX_REPORTED_ERRORS = 20


@dataclass
class Entry:
    company_id: uuid.UUID
    company_name: str | None
    corporation_id: uuid.UUID | None
    corporation_name: str | None
    where: str


class _DirectoryError(Exception):
    pass


def _id(value: Any, what: str, where: str, errors: list[str], *, required: bool) -> uuid.UUID | None:
    if value is None or value == "":
        if required:
            errors.append(f"{where}: {what} is missing.")
        return None
    if not isinstance(value, str):
        errors.append(f"{where}: {what} must be a string holding a UUID.")
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        errors.append(f"{where}: {what} {value!r} is not a UUID.")
        return None


def _name(value: Any, what: str, where: str, errors: list[str]) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 200:
        errors.append(f"{where}: {what} must be a string of at most 200 characters.")
        return None
    return value


def parse_json(text: str, errors: list[str]) -> tuple[list[Entry], dict[uuid.UUID, str | None]]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise _DirectoryError(f"The file is not valid JSON: {exc}.") from None
    if not isinstance(data, dict) or not isinstance(data.get("companies"), list):
        raise _DirectoryError('The JSON file must be an object with a "companies" list.')
    unknown = set(data) - {"companies", "corporations"}
    if unknown:
        errors.append(f"Unknown top-level keys: {', '.join(sorted(unknown))}.")
    corporations: dict[uuid.UUID, str | None] = {}
    raw_corporations = data.get("corporations", [])
    if not isinstance(raw_corporations, list):
        errors.append('"corporations" must be a list.')
        raw_corporations = []
    for i, item in enumerate(raw_corporations):
        where = f"corporations[{i}]"
        if not isinstance(item, dict):
            errors.append(f"{where}: must be an object.")
            continue
        if set(item) - {"id", "name"}:
            errors.append(f"{where}: unknown keys {', '.join(sorted(set(item) - {'id', 'name'}))}.")
        cid = _id(item.get("id"), "id", where, errors, required=True)
        if cid is not None:
            corporations[cid] = _name(item.get("name"), "name", where, errors)
    entries = []
    allowed = {"id", "name", "corporationId"}
    for i, item in enumerate(data["companies"]):
        where = f"companies[{i}]"
        if not isinstance(item, dict):
            errors.append(f"{where}: must be an object.")
            continue
        if set(item) - allowed:
            errors.append(f"{where}: unknown keys {', '.join(sorted(set(item) - allowed))}.")
        company_id = _id(item.get("id"), "id", where, errors, required=True)
        corporation_id = _id(item.get("corporationId"), "corporationId", where, errors, required=False)
        name = _name(item.get("name"), "name", where, errors)
        if company_id is not None:
            entries.append(Entry(company_id, name, corporation_id, None, where))
    return entries, corporations


def parse_csv(text: str, errors: list[str]) -> tuple[list[Entry], dict[uuid.UUID, str | None]]:
    reader = csv.DictReader(text.splitlines())
    if reader.fieldnames is None or set(reader.fieldnames) != set(CSV_COLUMNS):
        raise _DirectoryError(f"The CSV header must be exactly: {','.join(CSV_COLUMNS)}.")
    entries = []
    corporations: dict[uuid.UUID, str | None] = {}
    for row in reader:
        where = f"line {reader.line_num}"
        if None in row:
            errors.append(f"{where}: more cells than columns.")
            continue
        company_id = _id(row["companyId"], "companyId", where, errors, required=True)
        corporation_id = _id(row["corporationId"], "corporationId", where, errors, required=False)
        company_name = _name(row["companyName"], "companyName", where, errors)
        corporation_name = _name(row["corporationName"], "corporationName", where, errors)
        if corporation_id is not None and corporation_name is not None:
            if corporations.get(corporation_id, corporation_name) != corporation_name:
                errors.append(f"{where}: corporation {corporation_id} has two different names in the file.")
            corporations[corporation_id] = corporation_name
        elif corporation_id is not None:
            corporations.setdefault(corporation_id, None)
        if company_id is not None:
            entries.append(Entry(company_id, company_name, corporation_id, corporation_name, where))
    return entries, corporations


class Command(BaseCommand):
    help = "Load which companies belong to which corporation from a JSON or CSV directory export."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="The JSON or CSV file.")
        parser.add_argument("--format", choices=["json", "csv"], help="Default: from the file's extension.")
        parser.add_argument("--dry-run", action="store_true", help="Check the file and report, write nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["path"])
        fmt = options["format"] or path.suffix.lower().lstrip(".")
        if fmt not in ("json", "csv"):
            raise CommandError("Cannot tell the format from the file name; pass --format json or --format csv.")
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"Cannot read {path}: {exc}") from None
        errors: list[str] = []
        try:
            entries, corporations = (parse_json if fmt == "json" else parse_csv)(text, errors)
        except _DirectoryError as exc:
            raise CommandError(str(exc)) from None
        seen: dict[uuid.UUID, Entry] = {}
        for entry in entries:
            if entry.corporation_id is not None:
                corporations.setdefault(entry.corporation_id, None)
            previous = seen.get(entry.company_id)
            if previous is not None and previous.corporation_id != entry.corporation_id:
                errors.append(f"{entry.where}: company {entry.company_id} is also listed at {previous.where}.")
            seen[entry.company_id] = entry
        if errors:
            shown = errors[:MAX_REPORTED_ERRORS]
            more = f"\n... and {len(errors) - len(shown)} more." if len(errors) > len(shown) else ""
            raise CommandError("Nothing was loaded; the file has errors:\n" + "\n".join(shown) + more)
        moved = self.load(list(seen.values()), corporations, dry_run=options["dry_run"])
        verb = "Would load" if options["dry_run"] else "Loaded"
        counts = f"{len(corporations)} corporations and {len(seen)} companies ({moved} changed corporation)"
        self.stdout.write(f"{verb} {counts}.")

    def load(self, entries: list[Entry], corporations: dict[uuid.UUID, str | None], *, dry_run: bool) -> int:
        """Write everything in one transaction; answer how many companies changed corporation."""
        now = timezone.now()
        moved = 0
        with transaction.atomic():
            for corporation_id, name in corporations.items():
                corporation, created = Corporation.objects.get_or_create(
                    pk=corporation_id, defaults={"name": name or ""}
                )
                if not created and name is not None and corporation.name != name:
                    corporation.name = name
                    corporation.save(update_fields=["name"])
            for entry in entries:
                company = Company.objects.filter(pk=entry.company_id).first()
                if company is None:
                    company = Company(pk=entry.company_id, name=entry.company_name or "")
                    moved += entry.corporation_id is not None
                elif company.corporation_id != entry.corporation_id:
                    moved += 1
                if entry.company_name is not None:
                    company.name = entry.company_name
                company.corporation_id = entry.corporation_id
                company.membership_source = _MembershipSource.IMPORT
                company.membership_asserted_at = now
                company.save()
            if dry_run:
                transaction.set_rollback(True)
        return moved
