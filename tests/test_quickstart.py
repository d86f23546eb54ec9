"""The quick start runs as written, and the package a user installs is one they can trust.

``docs/quickstart.md`` is the one copy of the project (its code blocks, read by
``tests/testapp/quickstart_page.py``), so the page cannot drift from what runs; here the project is
created from the page's blocks and its own commands and tests run.
``.ci/quickstart.sh`` does the same against the built wheel in a clean virtual environment, then
serves it and calls it over HTTP.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cobee_django import __version__, conf
from cobee_django.checks import admin_template_warnings

from .testapp import quickstart_page

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "quickstart.md"
REPOSITORY = "https://github.com/cobee-io/cobee-django"


def page_files() -> dict[str, str]:
    return quickstart_page.files(PAGE.read_text())


def block(name: str) -> str:
    return quickstart_page.block(PAGE.read_text(), name)


def example_settings() -> dict:
    namespace: dict = {"__file__": "mysite/settings.py"}
    exec(compile(page_files()["mysite/settings.py"], "settings.py", "exec"), namespace)
    return namespace


def test_the_page_holds_the_whole_project_as_code_it_shows():
    """Code is written in the page (it reads the same on GitHub), never included from elsewhere."""
    text = PAGE.read_text()
    assert "--8<--" not in text
    assert sorted(page_files()) == [
        "conftest.py",
        "mysite/settings.py",
        "mysite/urls.py",
        "payroll/admin.py",
        "payroll/models.py",
        "payroll/serializers.py",
        "payroll/tests.py",
        "payroll/views.py",
        "pytest.ini",
    ]
    for path, source in page_files().items():
        if path.endswith(".py"):
            compile(source, path, "exec")


def test_the_example_settings_are_clean_for_the_package():
    settings = example_settings()
    apps = settings["INSTALLED_APPS"]
    # The issue: the quick start's own INSTALLED_APPS used to trigger cobee_django.W001.
    assert admin_template_warnings(apps) == []
    assert conf.validate(settings["COBEE_DJANGO"]) == []
    assert "cobee_django.devissuer" in apps
    middleware = settings["MIDDLEWARE"]
    assert middleware.index("cobee_django.middleware.TenantMiddleware") > middleware.index(
        "django.contrib.auth.middleware.AuthenticationMiddleware"
    )


def test_the_serializers_never_take_the_company_from_the_body():
    source = page_files()["payroll/serializers.py"]
    assert source.count('read_only_fields = ["company"]') == 2


def test_the_pages_name_the_wheel_of_this_version():
    for page in ("quickstart.md", "install.md"):
        wheels = set(re.findall(r"cobee_django-([\w.]+)-py3-none-any\.whl", (ROOT / "docs" / page).read_text()))
        assert wheels == {__version__}, page


@pytest.mark.slow  # the page's commands: a new project, its checks and tests in subprocesses
def test_the_quickstart_project_passes_its_own_checks_and_tests(tmp_path):
    """The page's commands, in a fresh folder, with this checkout's cobee_django installed."""
    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "django-admin").exists():
        pytest.skip("django-admin is not beside this Python (not a virtual environment)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COBEE_", "DJANGO_")) and k != "PYTHONPATH"}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"

    def run(script: str) -> str:
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    run(block("create"))
    quickstart_page.write_files(PAGE.read_text(), tmp_path)
    output = run(block("test").replace("\npytest", "\npytest -p no:cacheprovider"))
    assert "System check identified no issues (0 silenced)." in output
    assert re.search(r" 8 passed", output), output


def test_the_calls_use_the_packaged_dev_issuer_and_show_each_answer():
    calls = block("curl") + "\n" + block("client")
    assert "manage.py dev_token --company $ACME" in calls
    assert "/oauth/token" in calls
    assert "$GLOBEX/departments/" in calls


# Packaging


def test_the_license_is_mit_and_names_the_authors():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n\nCopyright (c) 2026 the cobee_django authors\n")


def test_the_metadata_links_the_repository_and_ships_the_license():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]
    assert {"Homepage", "Documentation", "Source", "Issues", "Changelog"} <= set(project["urls"])
    assert all(url.startswith(REPOSITORY) for url in project["urls"].values())


def test_the_readme_links_work_on_the_package_index():
    links = re.findall(r"\]\(([^)]+)\)", (ROOT / "README.md").read_text())
    assert links
    assert [link for link in links if not link.startswith(REPOSITORY)] == []
    for link in links:
        if "/blob/main/" in link:
            assert (ROOT / link.split("/blob/main/", 1)[1]).exists(), link


def test_no_page_tells_users_to_install_a_release_that_does_not_exist():
    pages = [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
    released = re.compile(r"pip install ['\"]?cobee-django(\[[^\]]*\])?['\"]?\s*$", re.MULTILINE)
    offenders = [page.name for page in pages if released.search(page.read_text())]
    assert offenders == []


def test_the_sdist_leaves_out_what_only_runs_in_the_repository():
    manifest = (ROOT / "MANIFEST.in").read_text().splitlines()
    for folder in ("tests", "testproject", "bench", "examples", "docs"):
        assert f"prune {folder}" in manifest, folder
