"""The package's modules import each other in one direction only: no cycle, function-local imports included."""

from __future__ import annotations

import ast
import functools
import json
import os
import re
import subprocess
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import cobee_django

ROOT = Path(cobee_django.__file__).parent
PACKAGE = ROOT.name


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node that can run: ``if TYPE_CHECKING:`` bodies are left out (they never do)."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
            if name == "TYPE_CHECKING":
                skipped.update(id(sub) for child in node.body for sub in ast.walk(child))
    return [node for node in ast.walk(tree) if id(node) not in skipped]


def _imported_names(module: str, is_package: bool, node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level == 0:
        base = node.module or ""
    else:
        parts = module.split(".") if is_package else module.split(".")[:-1]
        parts = parts[: len(parts) - node.level + 1]
        base = ".".join([*parts, *([node.module] if node.module else [])])
    return [base, *(f"{base}.{alias.name}" for alias in node.names)]


@functools.cache
def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports (at module level or inside functions).

    Built in a subprocess: CPython 3.11.7's ``ast.parse`` can fail with "AST constructor recursion
    depth mismatch" in a process where an earlier test caught a ``RecursionError``.
    """
    script = "import json; from tests.test_layers import _import_graph; "
    script += "print(json.dumps({k: sorted(v) for k, v in _import_graph().items()}))"
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT.parent, capture_output=True, text=True, check=True, timeout=120
    )
    return {module: set(targets) for module, targets in json.loads(result.stdout).items()}


def _import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in _runtime_nodes(tree):
            for target in _imported_names(name, path.name == "__init__.py", node):
                while target and target not in modules:
                    target = target.rpartition(".")[0]  # the deepest module of ours it names
                # A module importing its own package's __init__ (or the top package) is no layer arrow.
                if target and target != name and not name.startswith(f"{target}.") and target != PACKAGE:
                    graph[name].add(target)
    return graph


def test_the_graph_sees_function_local_imports_and_skips_type_checking_blocks():
    graph = import_graph()
    # apps.ready() imports checks inside a function; managers imports state only under TYPE_CHECKING too.
    assert "cobee_django.checks" in graph["cobee_django.apps"]
    assert "cobee_django._django" in graph["cobee_django.apps"]
    assert "cobee_django.contrib.opentelemetry" in graph["cobee_django.apps"]


def test_there_is_no_import_cycle_inside_the_package():
    try:
        order = list(TopologicalSorter(import_graph()).static_order())
    except CycleError as exc:
        raise AssertionError(f"import cycle: {' -> '.join(exc.args[1])}") from None
    assert f"{PACKAGE}.state" in order


def test_the_tenancy_layers_point_down():
    graph = import_graph()
    assert graph[f"{PACKAGE}.company_field"] == set()
    assert graph[f"{PACKAGE}.state"] <= {f"{PACKAGE}.exceptions"}  # the ContextVar never reaches the ORM
    below = {
        "guards": {"managers", "models", "membership"},
        "managers": {"models", "membership"},
        "models": {"membership"},
    }
    for module, above in below.items():
        assert not graph[f"{PACKAGE}.{module}"] & {f"{PACKAGE}.{name}" for name in above}, module


def documented_layers() -> dict[str, tuple[int, int]]:
    """The package docstring's numbered list: module -> (its layer, its place in the layer)."""
    ranks: dict[str, tuple[int, int]] = {}
    for line_number, line in enumerate(re.findall(r"^\d+\. [^:]+: (.*(?:\n   .*)*)", cobee_django.__doc__ or "", re.M)):
        for place, name in enumerate(re.findall(r"``([\w.]+)``", line)):
            ranks.setdefault(f"{PACKAGE}.{name}", (line_number, place))
    return ranks


def _listed(module: str, ranks: dict[str, tuple[int, int]]) -> str | None:
    while module and module not in ranks:
        module = module.rpartition(".")[0]
    return module or None


def test_every_import_points_up_the_documented_layers():
    """The layers a reviewer reads in ``cobee_django/__init__.py`` are the ones the code has."""
    ranks = documented_layers()
    assert len(ranks) > 30 and f"{PACKAGE}.state" in ranks
    wrong = []
    for module, targets in import_graph().items():
        own = _listed(module, ranks)
        for target in targets:
            other = _listed(target, ranks)
            if own and other and other != own and ranks[other] > ranks[own]:
                wrong.append(f"{module} imports {target}, listed after it")
    assert wrong == []


def test_only_the_app_config_loads_the_optional_integrations():
    """``cobee_django.contrib`` is the edge: the core never imports it, the app config does when configured."""
    importers = sorted(
        module
        for module, targets in import_graph().items()
        if not module.startswith(f"{PACKAGE}.contrib")
        and any(target.startswith(f"{PACKAGE}.contrib") for target in targets)
    )
    assert importers == [f"{PACKAGE}.apps"]


def test_the_core_asks_the_backend_not_the_citus_module():
    graph = import_graph()
    citus = {f"{PACKAGE}.db.citus", f"{PACKAGE}.db.backends.citus"}
    reaching = sorted(module for module, targets in graph.items() if targets & citus)
    # Only the database walls and the Citus backend itself reach the Citus module.
    assert all(module.startswith(f"{PACKAGE}.db.") for module in reaching), reaching


_LOADED = """
import sys

import django
from django.conf import settings

import tests.settings

tests.settings.COBEE_DJANGO["TELEMETRY"] = False
tests.settings.ALLOWED_HOSTS = ["testserver"]
tests.settings.DATABASES["default"] = {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}
django.setup()
from django.test import Client

Client().get("/")  # a request through the middleware and the URLs too
print(" ".join(sorted(name for name in sys.modules if name.startswith(("cobee_django", "opentelemetry", "celery")))))
"""


def test_a_project_without_citus_or_telemetry_loads_neither():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-c", _LOADED], cwd=ROOT.parent, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    loaded = set(result.stdout.split())
    assert f"{PACKAGE}.models" in loaded and f"{PACKAGE}.db.rls" in loaded  # the probe sees the app loaded
    assert not {name for name in loaded if name.startswith(("opentelemetry", f"{PACKAGE}.contrib.opentelemetry"))}
    assert not {name for name in loaded if name.startswith((f"{PACKAGE}.db.citus", f"{PACKAGE}.db.backends"))}
    assert not {name for name in loaded if name.startswith(("celery", f"{PACKAGE}.contrib.celery"))}
