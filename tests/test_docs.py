"""The manual cannot drift from the code: settings, checks, pages, and examples that run.

A fenced ``python`` block preceded by ``<!-- run: MODE -->`` is executed by this suite:

- ``pytest``: the block's ``test_*`` functions are called with the fixtures they name (``company``,
  ``other_company`` and ``myapp.models`` stand for the reader's own project);
- ``settings``: the block is a settings module: ``COBEE_DJANGO`` must validate, and every dotted path
  in ``INSTALLED_APPS``, ``MIDDLEWARE`` and ``REST_FRAMEWORK`` must import;
- ``python``: the block runs as is.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
import types
from pathlib import Path

import pytest
from django.utils.module_loading import import_string

from cobee_django import conf
from cobee_django.models import Company, Corporation

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
MARKED = re.compile(r"<!-- run: (\w+) -->\s*\n```python\n(.*?)\n```", re.DOTALL)


def examples():
    for page in sorted(DOCS.glob("*.md")):
        for number, match in enumerate(MARKED.finditer(page.read_text()), start=1):
            yield pytest.param(match.group(1), match.group(2), id=f"{page.stem}-{number}")


EXAMPLES = list(examples())


@pytest.fixture
def company(db):
    corporation = Corporation.objects.create(name="Reader's group")
    return Company.objects.create(name="Reader's company", corporation=corporation)


@pytest.fixture
def other_company(db):
    return Company.objects.create(name="Someone else")


@pytest.fixture
def myapp(monkeypatch):
    """``myapp.models`` in the examples is the reader's app: here, the test app's models."""
    package = types.ModuleType("myapp")
    models = importlib.import_module("tests.testapp.models")
    package.models = models
    monkeypatch.setitem(sys.modules, "myapp", package)
    monkeypatch.setitem(sys.modules, "myapp.models", models)


def _run_tests(code, request):
    namespace: dict = {"__name__": "docs_example"}
    exec(compile(code, "<docs example>", "exec"), namespace)
    tests = [value for name, value in namespace.items() if name.startswith("test_") and callable(value)]
    assert tests, "a pytest example must define a test function"
    for test in tests:
        test(**{name: request.getfixturevalue(name) for name in inspect.signature(test).parameters})


def _check_settings(code):
    namespace: dict = {}
    exec(compile(code, "<docs example>", "exec"), namespace)
    if "COBEE_DJANGO" in namespace:
        raw = namespace["COBEE_DJANGO"]
        assert conf.validate(raw) == [], conf.validate(raw)
    for app in namespace.get("INSTALLED_APPS", []):
        if app != "...":
            importlib.import_module(app)
    for path in namespace.get("MIDDLEWARE", []):
        if path != "...":
            import_string(path)
    for key, value in namespace.get("REST_FRAMEWORK", {}).items():
        for path in value if isinstance(value, list) else [value]:
            if isinstance(path, str) and key.endswith(("_CLASSES", "_CLASS")):
                import_string(path)


@pytest.mark.urls("tests.testapp.apiviews")
@pytest.mark.parametrize(("mode", "code"), EXAMPLES)
def test_example_runs(mode, code, request, myapp, db):
    if mode == "pytest":
        _run_tests(code, request)
    elif mode == "settings":
        _check_settings(code)
    elif mode == "python":
        exec(compile(code, "<docs example>", "exec"), {"__name__": "docs_example"})
    else:
        pytest.fail(f"unknown example mode {mode!r}")


def test_the_required_examples_are_marked():
    ids = {param.id.rsplit("-", 1)[0] for param in EXAMPLES}
    # The quick start's project is the page's own code blocks, run by tests/test_quickstart.py.
    assert {"testing", "settings"} <= ids
    three_lines = (DOCS / "testing.md").read_text()
    assert "cobee_api_client(company=company.pk" in MARKED.search(three_lines).group(2)


def test_every_setting_is_documented():
    page = (DOCS / "settings.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z0-9_]+)` \|", page, flags=re.MULTILINE))
    assert sorted(set(conf.DEFAULTS) - documented) == []
    assert sorted(documented - set(conf.DEFAULTS)) == []


def test_every_check_id_is_documented():
    emitted = set()
    for path in (ROOT / "cobee_django").rglob("*.py"):
        emitted |= set(re.findall(r"cobee_django\.[EW]\d{3}", path.read_text()))
    page = (DOCS / "checks.md").read_text()
    documented = set(re.findall(r"^\| `(cobee_django\.[EW]\d{3})` \|", page, flags=re.MULTILINE))
    assert emitted, "no check id found in the package"
    assert sorted(emitted - documented) == []
    assert sorted(documented - emitted) == []


def test_every_page_is_in_the_navigation():
    nav = (ROOT / "mkdocs.yml").read_text()
    listed = set(re.findall(r":\s*([\w./-]+\.md)\s*$", nav, flags=re.MULTILINE))
    pages = {path.relative_to(DOCS).as_posix() for path in DOCS.rglob("*.md")}
    assert sorted(pages - listed) == []


def test_the_install_page_lists_every_extra():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    optional = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    # The project's own development extras are the README's business, not a user's.
    users = set(optional) - {"demo", "test", "lint", "docs", "release", "dev", "mutation"}
    listed = set(re.findall(r"^\| `([a-z0-9-]+)` \|", (DOCS / "install.md").read_text(), flags=re.MULTILINE))
    assert sorted(users ^ listed) == []


def test_the_index_reaches_every_page():
    linked = set(re.findall(r"\]\(([\w./-]+\.md)(?:#[\w-]+)?\)", (DOCS / "index.md").read_text()))
    pages = {path.relative_to(DOCS).as_posix() for path in DOCS.rglob("*.md")} - {"index.md"}
    assert sorted(pages - linked) == []


def test_the_navigation_is_in_sections():
    nav = (ROOT / "mkdocs.yml").read_text().split("\nnav:\n", 1)[1]
    sections = re.findall(r"^  - ([\w -]+):\s*$", nav, flags=re.MULTILINE)
    assert sections == ["Tutorial", "How-to guides", "Reference", "Explanation", "Contributing"]


def test_pages_read_the_same_on_github():
    """No snippet includes or other build-time text: a page's code is written in the page."""
    for page in DOCS.rglob("*.md"):
        assert "--8<--" not in page.read_text(), page.name


def test_the_changelog_names_the_current_version():
    from cobee_django import __version__

    assert f"## {__version__}" in (DOCS / "changelog.md").read_text()
