"""Every package cobee_django imports is declared in pyproject.toml (optional ones in their extra)."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PACKAGE = ROOT / "cobee_django"
#: Modules loaded only with an extra installed, and the extra.
OPTIONAL = {
    "contrib/drf_spectacular.py": "openapi",
    "testing": "test",
    "contrib/celery.py": "celery",
    "contrib/opentelemetry.py": "otel",
    "contrib/ninja.py": "ninja",
}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _imported_distributions(path: Path, distributions: dict[str, list[str]]) -> set[frozenset[str]]:
    """For each imported top-level name, the distributions that provide it (any one of them will do)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top in sys.stdlib_module_names or top == "cobee_django" or top == "__future__":
                continue
            found.add(frozenset(dist.lower().replace("_", "-") for dist in distributions.get(top, [top])))
    return found


def test_every_imported_package_is_declared():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    required = {_name(r) for r in project["dependencies"]}
    extras = {extra: {_name(r) for r in reqs} for extra, reqs in project["optional-dependencies"].items()}
    distributions = packages_distributions()
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        extra = next((e for prefix, e in OPTIONAL.items() if relative.startswith(prefix)), None)
        allowed = required | (extras[extra] if extra else set())
        missing = [sorted(dists) for dists in _imported_distributions(path, distributions) if not dists & allowed]
        assert not missing, f"{relative} imports undeclared {sorted(missing)}"


def test_every_dependency_has_a_tested_minimum():
    tomllib = pytest.importorskip("tomllib")
    for requirement in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]:
        # .ci/run's lowest-versions job pins each ">=" to "=="; anything else it could not pin.
        assert re.fullmatch(r"[A-Za-z0-9_.-]+>=[0-9.]+", requirement), requirement
