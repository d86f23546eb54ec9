"""A realistic, deterministic data set for the demo: running it again changes nothing.

Every row has a fixed id (a UUID5 of a readable name), and is written with ``update_or_create``
while its company is bound, exactly as a user's import job would do it.
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass, field

from django.db import transaction

from cobee_django.models import Company, Corporation
from cobee_django.state import for_company

from .models import BenefitBagConfig, BenefitCategory, BenefitModel, Consumption, Employee, EmployeeState

NAMESPACE = uuid.UUID("8f0d6c1e-5b7a-4c39-9d59-0c4bde5e2a10")
PAYROLLS = ("2026-10", "2026-11")
DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def seed_id(*parts: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, ":".join(parts))


def dni(number: int) -> str:
    """A well-formed Spanish DNI (eight digits and their check letter)."""
    return f"{number:08d}{DNI_LETTERS[number % 23]}"


@dataclass(frozen=True)
class CompanySeed:
    slug: str
    name: str
    corporation: str | None
    domain: str
    people: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class CorporationSeed:
    slug: str
    name: str


CORPORATIONS = (
    CorporationSeed("grupo-norte", "Grupo Alimentos Norte"),
    CorporationSeed("iberia-tech", "Iberia Tech Holding"),
)

COMPANIES = (
    CompanySeed(
        "norte-distribucion",
        "Norte Distribución SL",
        "grupo-norte",
        "nortedistribucion.example",
        (
            ("Lucía", "García López"),
            ("Hugo", "Martínez Ruiz"),
            ("Martina", "Sánchez Gil"),
            ("Pablo", "Romero Díaz"),
            ("Sofía", "Navarro Torres"),
            ("Álvaro", "Domínguez Vázquez"),
        ),
    ),
    CompanySeed(
        "norte-logistica",
        "Norte Logística SL",
        "grupo-norte",
        "nortelogistica.example",
        (
            ("Daniel", "Moreno Muñoz"),
            ("Julia", "Jiménez Alonso"),
            ("Adrián", "Ruiz Castillo"),
            ("Paula", "Ortega Rubio"),
            ("Hugo", "Martínez Ruiz"),
        ),
    ),
    CompanySeed(
        "norte-retail",
        "Norte Retail SL",
        "grupo-norte",
        "norteretail.example",
        (("Carmen", "Serrano Molina"), ("Diego", "Blanco Suárez"), ("Elena", "Castro Ortiz"), ("Mario", "Rubio Marín")),
    ),
    CompanySeed(
        "iberia-software",
        "Iberia Software SL",
        "iberia-tech",
        "iberiasoftware.example",
        (
            ("Nerea", "Etxeberria Agirre"),
            ("Iker", "Goikoetxea Arana"),
            ("Laura", "Fernández Prieto"),
            ("Javier", "Herrera Cano"),
            ("Ainhoa", "Zubizarreta Urrutia"),
        ),
    ),
    CompanySeed(
        "iberia-cloud",
        "Iberia Cloud SL",
        "iberia-tech",
        "iberiacloud.example",
        (("Marta", "Iglesias Garrido"), ("Sergio", "Peña Vidal"), ("Irene", "Campos Fuentes"), ("Raúl", "León Méndez")),
    ),
    CompanySeed(
        "panaderia-sol",
        "Panadería Sol SL",
        None,
        "panaderiasol.example",
        (("Rosa", "Delgado Herrero"), ("Antonio", "Cabrera Flores"), ("Pilar", "Reyes Medina")),
    ),
)

#: The person who moved from Norte Distribución to Norte Logística: one row in each company.
MOVED = ("Hugo", "Martínez Ruiz")

BENEFIT_MODELS = (
    (
        "standard",
        "Standard",
        "Meal and transport for every employee.",
        (("Meal", [BenefitCategory.MEAL], 22_000), ("Transport", [BenefitCategory.TRANSPORT], 13_636)),
    ),
    (
        "premium",
        "Premium",
        "Standard plus nursery, health insurance and training.",
        (
            ("Meal", [BenefitCategory.MEAL], 22_000),
            ("Transport", [BenefitCategory.TRANSPORT], 13_636),
            ("Family", [BenefitCategory.NURSERY, BenefitCategory.HEALTH_INSURANCE], 50_000),
            ("Training", [BenefitCategory.TRAINING], 15_000),
        ),
    ),
)


@dataclass
class SeedSummary:
    corporations: int = 0
    companies: int = 0
    employees: int = 0
    benefit_models: int = 0
    consumptions: int = 0
    companies_by_slug: dict[str, Company] = field(default_factory=dict)
    corporations_by_slug: dict[str, Corporation] = field(default_factory=dict)


def _slug_email(first: str, last: str, domain: str) -> str:
    table = str.maketrans("áéíóúüñÁÉÍÓÚÜÑ", "aeiouunAEIOUUN")
    local = f"{first}.{last.split()[0]}".translate(table).lower()
    return f"{local}@{domain}"


@transaction.atomic
def seed() -> SeedSummary:
    """Create or refresh the demo data set; idempotent, and all or nothing."""
    summary = SeedSummary()
    for corp in CORPORATIONS:
        corporation, _ = Corporation.objects.update_or_create(
            id=seed_id("corporation", corp.slug), defaults={"name": corp.name}
        )
        summary.corporations_by_slug[corp.slug] = corporation
    for index, spec in enumerate(COMPANIES):
        corporation = summary.corporations_by_slug[spec.corporation] if spec.corporation else None
        company, _ = Company.objects.update_or_create(
            id=seed_id("company", spec.slug),
            defaults={"name": spec.name, "corporation": corporation, "membership_source": "import"},
        )
        summary.companies_by_slug[spec.slug] = company
        with for_company(company.id):
            _seed_company(company, spec, index)
    summary.corporations = len(CORPORATIONS)
    summary.companies = len(COMPANIES)
    summary.employees = sum(len(spec.people) for spec in COMPANIES)
    summary.benefit_models = len(COMPANIES) * len(BENEFIT_MODELS)
    summary.consumptions = _count_consumptions()
    return summary


def _count_consumptions() -> int:
    total = 0
    for spec in COMPANIES:
        with for_company(seed_id("company", spec.slug)):
            total += Consumption.objects.count()
    return total


def _seed_company(company: Company, spec: CompanySeed, company_index: int) -> None:
    models: dict[str, BenefitModel] = {}
    for slug, name, description, bags in BENEFIT_MODELS:
        model, _ = BenefitModel.objects.update_or_create(
            id=seed_id(spec.slug, "model", slug),
            defaults={"company": company, "name": name, "description": description},
        )
        models[slug] = model
        for bag_name, allowed_for, limit in bags:
            BenefitBagConfig.objects.update_or_create(
                id=seed_id(spec.slug, "model", slug, "bag", bag_name),
                defaults={
                    "company": company,
                    "benefit_model": model,
                    "name": bag_name,
                    "allowed_for": [str(category) for category in allowed_for],
                    "limit_amount_in_cents": limit,
                },
            )
    for person_index, (first, last) in enumerate(spec.people):
        number = 10_000_000 + company_index * 1000 + person_index * 37
        if (first, last) == MOVED:
            number = 48_123_456  # the same person, so the same legal id, in both companies
        state = EmployeeState.ACTIVE
        if (first, last) == MOVED:
            # Left Norte Distribución after the first payroll cycle, joined Norte Logística.
            state = EmployeeState.REMOVED if spec.slug == "norte-distribucion" else EmployeeState.ACTIVE
        elif person_index == len(spec.people) - 1 and len(spec.people) > 4:
            state = EmployeeState.NOT_ACTIVE
        elif spec.slug == "iberia-cloud" and person_index == 2:
            state = EmployeeState.BLOCKED  # card blocked during the second payroll cycle
        employee, _ = Employee.objects.update_or_create(
            id=seed_id(spec.slug, "employee", str(person_index)),
            defaults={
                "company": company,
                "email": _slug_email(first, last, spec.domain),
                "legal_id": dni(number),
                "name": first,
                "surname": last,
                "birth_date": datetime.date(1975 + (number % 25), 1 + number % 12, 1 + number % 28),
                "hiring_date": datetime.date(2015 + (number % 10), 1 + (number // 7) % 12, 1 + (number // 3) % 28),
                "state": state,
                "internal_id": f"EMP-{company_index + 1:02d}{person_index + 1:03d}",
                "cost_center": ("CC-OPS", "CC-SALES", "CC-IT")[person_index % 3],
                "payroll_company": spec.name,
                "gross_salary_in_cents": 2_400_000 + 150_000 * ((number + person_index) % 17),
                "model": models["premium" if person_index % 2 else "standard"],
                "workday_configuration": {"type": "full-time", "weeklyHours": 40},
                "metadata": {"team": ("operations", "sales", "engineering")[person_index % 3]},
            },
        )
        _seed_consumptions(company, employee, spec, person_index)


def _seed_consumptions(company: Company, employee: Employee, spec: CompanySeed, person_index: int) -> None:
    if employee.state == EmployeeState.NOT_ACTIVE:
        return
    categories = [BenefitCategory.MEAL, BenefitCategory.TRANSPORT]
    if person_index % 2:
        categories.append(BenefitCategory.NURSERY if person_index % 4 == 1 else BenefitCategory.TRAINING)
    for payroll in PAYROLLS:
        if employee.state in (EmployeeState.REMOVED, EmployeeState.BLOCKED) and payroll != PAYROLLS[0]:
            continue  # left the company, or was blocked, after the first cycle
        year, month = (int(part) for part in payroll.split("-"))
        for index, category in enumerate(categories):
            amount = {"meal-benefit": 16_500, "transport-benefit": 4_000, "nursery-benefit": 32_000}.get(
                category, 9_900
            )
            Consumption.objects.update_or_create(
                id=seed_id(spec.slug, "employee", str(person_index), "consumption", payroll, category),
                defaults={
                    "company": company,
                    "employee": employee,
                    "category": str(category),
                    "amount_in_cents": amount + 250 * ((person_index + index) % 5),
                    "currency": "EUR",
                    "payroll": payroll,
                    "date": datetime.date(year, month, 3 + 5 * index + person_index % 3),
                },
            )
