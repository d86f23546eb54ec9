"""Test settings: the test project plus apps of tenant models used only by the tests."""

from testproject.settings import *  # noqa: F403
from testproject.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.testapp", "tests.rlsapp"]
