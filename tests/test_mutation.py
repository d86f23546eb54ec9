"""scripts/mutation.py: its judgements and recorded scores, and how it names and classifies mutants."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
TARGET = 95.0


@pytest.fixture(scope="module")
def mutation():
    spec = importlib.util.spec_from_file_location("mutation_script", ROOT / "scripts" / "mutation.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the script loads
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def mutant(mutation, name: str, before: str, after: str):
    diff = f"--- a\n+++ b\n@@ -1,3 +1,3 @@\n def f():\n-    {before}\n+    {after}\n     return x\n"
    return mutation.Mutant(name, "jose", "survived", diff)


def test_every_core_module_and_its_tests_exist(mutation):
    for module, tests in mutation.MODULES.items():
        assert (ROOT / "cobee_django" / f"{module}.py").is_file(), module
        assert tests and all((ROOT / test).is_file() for test in tests), module


def test_every_judgement_is_well_formed_and_unique(mutation):
    entries = json.loads(mutation.JUDGEMENTS.read_text())
    keys = [(entry["module"], entry["id"]) for entry in entries]
    assert len(keys) == len(set(keys))
    for entry in entries:
        assert set(entry) == {"module", "id", "verdict", "reason"}, entry
        assert entry["module"] in mutation.MODULES and entry["verdict"] in mutation.VERDICTS, entry
        assert entry["reason"].strip() and " => " in entry["id"], entry


def test_recorded_scores_meet_the_target(mutation):
    scores = json.loads(mutation.SCORES.read_text())
    assert scores and set(scores) <= set(mutation.MODULES)
    for module, figures in scores.items():
        assert figures["score_without_text"] >= TARGET, module
        assert 0 <= figures["killed"] <= figures["mutants"], module


def test_every_module_of_the_security_core_has_a_score_and_the_docs_show_it(mutation):
    scores = json.loads(mutation.SCORES.read_text())
    assert set(scores) == set(mutation.MODULES)
    page = (ROOT / "docs" / "contributing.md").read_text()
    rows = {}
    for line in page.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) == 7 and cells[0].startswith("`") and cells[0].strip("`") in scores:
            rows[cells[0].strip("`")] = cells[1:]
    assert set(rows) == set(scores)
    for module, figures in scores.items():
        shown = [str(figures[key]) for key in ("mutants", "killed", "equivalent", "message_texts")]
        shown += ["100%" if figures[key] == 100 else f"{figures[key]:.1f}%" for key in ("score", "score_without_text")]
        assert rows[module] == shown, module


def test_a_mutant_is_named_by_its_function_and_source_text(mutation):
    method = mutant(mutation, "cobee_django.jose.xǁCompactParserǁparse__mutmut_12", "if a > b:", "if a >= b:")
    assert method.function == "CompactParser.parse"
    assert method.key == "CompactParser.parse: if a > b: => if a >= b:"
    function = mutant(mutation, "cobee_django.jose.x_loads_json__mutmut_3", "if a > b:", "if a >= b:")
    assert function.key == "loads_json: if a > b: => if a >= b:"


@pytest.mark.parametrize(
    ("before", "after", "text"),
    [
        ('raise UnusableKey("kty is not RSA")', 'raise UnusableKey("XXkty is not RSAXX")', True),
        (
            'raise TokenRejected(reason, "not UTF-8") from None',
            'raise TokenRejected(reason, "NOT UTF-8") from None',
            True,
        ),
        ('logger.warning("key set %s unusable", url)', 'logger.warning("XXkey set %s unusableXX", url)', True),
        # A string that takes part in a decision is never a message text.
        (
            'raise TokenRejected(Reason.BAD_TIME_CLAIM if "exp" in claims else Reason.MISSING_EXP)',
            'raise TokenRejected(Reason.BAD_TIME_CLAIM if "XXexpXX" in claims else Reason.MISSING_EXP)',
            False,
        ),
        ('if entry.get("use", "sig") != "sig":', 'if entry.get("use", "XXsigXX") != "sig":', False),
        ('raise UnusableKey("entry is not an object")', "raise UnusableKey(None)", True),
        ('raise TokenRejected(reason, "byte order mark")', "raise TokenRejected(reason, )", True),
        ("raise TokenRejected(Reason.EXPIRED)", "raise TokenRejected(None)", False),
        ("raise TokenRejected(reason, detail)", "raise TokenRejected(reason, None)", False),
    ],
)
def test_message_texts_are_told_apart(mutation, before, after, text):
    assert mutant(mutation, "cobee_django.jose.x_f__mutmut_1", before, after).is_text is text
