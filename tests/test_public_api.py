"""The public API is small and fenced: every module of cobee_django declares ``__all__`` (the names users
write; empty for internal modules), and docs/api.md lists exactly those names, grouped by concept.

Regenerate the page after changing an ``__all__``: ``python -m tests.test_public_api`` (with the test
settings), then review the summaries it wrote.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import cobee_django

ROOT = Path(cobee_django.__file__).parent
PAGE = ROOT.parent / "docs" / "api.md"
#: Modules of another change in flight; they get ``__all__`` with it (then drop them from here).
PENDING: set[str] = set()
HEADING = re.compile(r"^### `(?P<module>[\w.]+)`$")
ENTRY = re.compile(r"^- `(?P<name>\w+)`")


def modules() -> dict[str, Path]:
    """Every module of the package: migrations and private modules (``_name``) left out."""
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if "migrations" in parts or any(part.startswith("_") and part != "__init__" for part in parts):
            continue
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def declared_all(path: Path) -> list[str] | None:
    """The module's ``__all__`` as written (a literal list), or ``None`` when it has none."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        )
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            assert node.value is not None
            return list(ast.literal_eval(node.value))
    return None


def page_names() -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in PAGE.read_text(encoding="utf-8").splitlines():
        if heading := HEADING.match(line):
            current = sections.setdefault(heading["module"], [])
        elif (entry := ENTRY.match(line)) and current is not None:
            current.append(entry["name"])
    return sections


def public_modules() -> dict[str, list[str]]:
    """Module -> its ``__all__``, for the modules that export something."""
    result = {}
    for module, path in modules().items():
        names = declared_all(path)
        if names:
            result[module] = names
    return result


def test_every_module_declares_all() -> None:
    missing = [m for m, path in modules().items() if m not in PENDING and declared_all(path) is None]
    assert missing == []


def test_every_exported_name_exists_once() -> None:
    for module, names in public_modules().items():
        imported = importlib.import_module(module)
        assert len(names) == len(set(names)), module
        assert [n for n in names if not hasattr(imported, n)] == [], module


#: Where each module with public names is documented, in the order of the page.
CONCEPTS: dict[str, list[str]] = {
    "Authentication": [
        "cobee_django.authentication",
        "cobee_django.credentials",
        "cobee_django.contrib.ninja",
        "cobee_django.principal",
        "cobee_django.tokens",
    ],
    "Tenancy": [
        "cobee_django.state",
        "cobee_django.models",
        "cobee_django.managers",
        "cobee_django.middleware",
        "cobee_django.views",
        "cobee_django.serializers",
        "cobee_django.tasks",
        "cobee_django.management.base",
        "cobee_django.contrib.celery",
    ],
    "Permissions": ["cobee_django.permissions", "cobee_django.throttling"],
    "Admin": ["cobee_django.admin", "cobee_django.staff.oidc", "cobee_django.templatetags.cobee_admin"],
    "Testing": ["cobee_django.testing"],
    "Operations": [
        "cobee_django",
        "cobee_django.exceptions",
        "cobee_django.signals",
        "cobee_django.audit",
        "cobee_django.db.operations",
        "cobee_django.db.citus",
        "cobee_django.db.faults",
        "cobee_django.contrib.drf_spectacular",
    ],
}


def test_every_module_with_public_names_has_a_concept() -> None:
    placed = [module for modules in CONCEPTS.values() for module in modules]
    assert sorted(placed) == sorted(public_modules())


def test_the_contract_is_small() -> None:
    """A guard against helpers drifting back into ``__all__``: grow it only on purpose."""
    assert sum(len(names) for names in public_modules().values()) <= 132


def test_the_page_lists_each_modules_all_and_nothing_else() -> None:
    expected = {module: sorted(names) for module, names in public_modules().items()}
    assert {module: sorted(names) for module, names in page_names().items()} == expected


def _summary(obj: object) -> str:
    """The first paragraph of the object's own docstring (not an inherited one), as Markdown."""
    if not (inspect.isclass(obj) or inspect.isroutine(obj)):
        return ""
    doc = inspect.cleandoc(obj.__dict__.get("__doc__") or "") if inspect.isclass(obj) else inspect.getdoc(obj)
    text = (doc or "").split("\n\n")[0].replace("\n", " ").strip()
    text = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", text)
    return re.sub(r"``([^`]+)``", r"`\1`", text)


def render() -> str:
    lines = [
        "# Public API",
        "",
        "The names you write, grouped by what they are for: each module's `__all__` (a test keeps this",
        "page and the code in step). Everything else is internal and may change in any release. Setting",
        "keys, check ids, reason codes and signal arguments are part of the contract too: see",
        "[settings](settings.md), [checks](checks.md) and [audit events](audit.md).",
    ]
    exported = public_modules()
    for concept, modules in CONCEPTS.items():
        lines += ["", f"## {concept}"]
        for module in modules:
            imported = importlib.import_module(module)
            lines += ["", f"### `{module}`", ""]
            for name in sorted(exported[module]):
                summary = _summary(getattr(imported, name))
                lines.append(f"- `{name}`" + (f": {summary}" if summary else ""))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import django

    django.setup()
    PAGE.write_text(render(), encoding="utf-8")
