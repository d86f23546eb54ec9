#!/usr/bin/env python3
"""Mutation testing of the security core with mutmut (``pip install -e '.[mutation]'``).

Each module of :data:`MODULES` is mutated on its own, in a scratch copy of the repository under
``var/mutation/<module>/``, against only the test files listed for it (mutmut then runs, for each
mutant, just the tests that reach the mutated function). Survivors are compared with the judgements
kept beside this script (``mutation-judgements.json``): only a survivor nobody has judged yet is
reported as new, and any new survivor fails the run.

    python scripts/mutation.py                    # every module (slow: see docs/contributing.md)
    python scripts/mutation.py jose tokens        # some modules
    python scripts/mutation.py --changed-since HEAD~1 --time-cap 300   # CI: the functions a change touched
    python scripts/mutation.py jose --record      # also write the module's score to the ratchet file
    python scripts/mutation.py jose --show-all    # print every survivor, judged or not

A full run of a module also checks the score ratchet (``mutation-scores.json``): the share of
non-equivalent, non-text mutants killed may not drop below the recorded one.

mutmut 3 runs each mutant in a process forked from a fork server (``process_isolation =
"forkserver"``): its default, forking from the process that ran the whole suite, hangs here (the
hangs count as timeouts).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
JUDGEMENTS = Path(__file__).with_name("mutation-judgements.json")
SCORES = Path(__file__).with_name("mutation-scores.json")
WORK = ROOT / "var" / "mutation"

#: The security core: each module (under cobee_django/) and the test files that exercise it. To add a
#: module, add a line here, run it once, judge its survivors and ``--record`` its score.
MODULES: dict[str, list[str]] = {
    "jose": ["tests/test_jose.py"],
    "tokens": ["tests/test_tokens.py", "tests/test_tenant_claims.py"],
    "jwks": ["tests/test_jwks.py"],
    "bearer": ["tests/test_bearer.py", "tests/test_authentication.py", "tests/test_permissions.py"],
    "authentication": ["tests/test_authentication.py", "tests/test_request_errors.py"],
    "permissions": [
        "tests/test_permissions.py",
        "tests/test_api.py",
        "tests/test_audit.py",
        "tests/test_request_errors.py",
    ],
    "guards": [
        "tests/test_guards.py",
        "tests/test_guards_moves_and_fixtures.py",
        "tests/test_guards_zoo.py",
        "tests/test_chosen_primary_keys.py",
        "tests/test_managers.py",
    ],
    "managers": [
        "tests/test_managers.py",
        "tests/test_guards.py",
        "tests/test_rebuilt_querysets.py",
        "tests/test_extra_sql.py",
        "tests/test_managers_pinned.py",
        "tests/test_tenant_managers.py",
        "tests/test_queryset_passthrough.py",
        "tests/test_inheritance.py",
    ],
    "state": ["tests/test_state.py", "tests/test_state_names.py", "tests/test_middleware.py"],
    "credentials": [
        "tests/test_credentials.py",
        "tests/test_authentication.py",
        "tests/test_dpop_requests.py",
        "tests/test_mtls.py",
    ],
    "dpop": ["tests/test_dpop.py", "tests/test_dpop_requests.py", "tests/test_credentials.py"],
}

#: What a scratch copy needs besides the package and the tests (some tests read the docs).
_ALSO_COPY = ("testproject", "manage.py", "docs")
#: Verdicts a judgement may give; a "test gap" is never judged: it gets a test instead.
VERDICTS = ("equivalent", "unimportant")

#: mutmut's statuses that count as a detected mutant (a timeout is a mutant that made the code hang).
DETECTED = ("killed", "timeout", "caught by type check")
#: Statuses of mutants a run did not get to (stopped by the time cap, or interrupted).
NOT_RUN = ("not checked", "check was interrupted by user")
# A mutant whose only change is a string literal on a line that raises or logs: the text of a message.
_MESSAGE_LINE = re.compile(r"^\s*(raise\b|.*\b(logger|log|warnings)\.\w+\(|.*Error\(|.*Rejected\(|.*Key\(\")")
_ARGUMENT = re.compile(r"""([(,]\s*)([rbfu]*"(?:[^"\\]|\\.)*"|[rbfu]*'(?:[^'\\]|\\.)*'|None)(\s*(?:[,)]))""", re.I)


@dataclass
class Mutant:
    name: str  # mutmut's name (its number shifts when the function changes)
    module: str
    status: str
    diff: str = ""

    @property
    def function(self) -> str:
        """``function`` or ``Class.method``, from mutmut's mangled name."""
        mangled = self.name.partition("__mutmut_")[0].rpartition(".")[2]
        if "ǁ" in mangled:
            _, cls, method = mangled.split("ǁ")[:3]
            return f"{cls}.{method}"
        return mangled.removeprefix("x_")

    def changed_lines(self) -> tuple[list[str], list[str]]:
        body = [line for line in self.diff.splitlines() if not line.startswith(("---", "+++", "@@"))]
        removed = [line[1:].strip() for line in body if line.startswith("-")]
        added = [line[1:].strip() for line in body if line.startswith("+")]
        return removed, added

    @property
    def key(self) -> str:
        """A stable identifier: the function and the mutated source text (survives line shifts)."""
        removed, added = self.changed_lines()
        return f"{self.function}: {' ⏎ '.join(removed)} => {' ⏎ '.join(added)}"

    @property
    def is_text(self) -> bool:
        """Only the text of a message changed: a string argument of a call that raises or logs.

        The argument's text may have changed, or the argument become ``None`` or gone.
        """
        removed, added = self.changed_lines()
        if len(removed) != 1 or len(added) != 1 or not _MESSAGE_LINE.match(removed[0]):
            return False
        return removed[0] != added[0] and _without_messages(removed[0]) == _without_messages(added[0])


def _without_messages(line: str) -> str:
    """``line`` without its string (or ``None``) call arguments."""
    line = _ARGUMENT.sub(lambda match: match[1] + match[3], line)
    return re.sub(r",\s*\)", ")", line)


def load_judgements() -> dict[tuple[str, str], dict[str, str]]:
    entries = json.loads(JUDGEMENTS.read_text()) if JUDGEMENTS.exists() else []
    judged: dict[tuple[str, str], dict[str, str]] = {}
    for entry in entries:
        if entry["verdict"] not in VERDICTS or not entry.get("reason"):
            sys.exit(f"{JUDGEMENTS.name}: {entry['id']!r} needs a verdict in {VERDICTS} and a reason")
        judged[(entry["module"], entry["id"])] = entry
    return judged


def prepare(module: str, tests: list[str], *, keep_results: bool = False) -> Path:
    """A scratch copy of the repository whose pyproject tells mutmut what to mutate and test.

    With ``keep_results`` the last run's mutants and results stay: mutmut then mutates again only the
    functions that changed (their results are reset), and keeps the others' results.
    """
    work = WORK / module
    if keep_results and (work / "mutants").is_dir():
        for name in ("cobee_django", "tests", *_ALSO_COPY):
            target = work / name
            shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
        shutil.rmtree(work / "mutants" / "tests", ignore_errors=True)
        # Which tests reach which function is learnt again: a changed test may reach new functions.
        (work / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
    else:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "var", "mutants")
    for name in ("cobee_django", "tests", *_ALSO_COPY):
        source = ROOT / name
        # Copied with a new modification time: mutmut mutates a file again when its source is newer.
        if source.is_dir():
            shutil.copytree(source, work / name, ignore=ignore, copy_function=shutil.copy)
        else:
            shutil.copy(source, work / name)
    pyproject = (ROOT / "pyproject.toml").read_text()
    pyproject += "\n[tool.mutmut]\n" + "\n".join(
        [
            'source_paths = ["cobee_django"]',
            f'only_mutate = ["cobee_django/{module}.py"]',
            f"also_copy = {json.dumps(list(_ALSO_COPY))}",
            f"pytest_add_cli_args_test_selection = {json.dumps([t for t in tests if (ROOT / t).exists()])}",
            'pytest_add_cli_args = ["-p", "no:cacheprovider", "-W", "ignore::pytest.PytestUnraisableExceptionWarning"]',
            'process_isolation = "forkserver"',
            "use_git_change_detection = false",
        ]
    )
    (work / "pyproject.toml").write_text(pyproject + "\n")
    return work


def run_mutmut(work: Path, names: list[str], jobs: int, time_cap: float | None) -> bool:
    """Run mutmut in ``work``; False when the time cap stopped it."""
    command = [sys.executable, "-m", "mutmut", "run", "--max-children", str(jobs), *names]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    with open(work / "mutmut.log", "w") as log:
        process = subprocess.Popen(command, cwd=work, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            process.wait(timeout=time_cap)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            return False
    if process.returncode != 0:
        sys.stdout.write((work / "mutmut.log").read_text()[-4000:])
        sys.exit(f"mutmut failed in {work} (exit {process.returncode})")
    return True


_GENERATE = """
from os import makedirs
from pathlib import Path
from mutmut.__main__ import copy_also_copy_files, copy_src_dir, create_mutants, setup_source_paths
from mutmut.mutation.trampoline import set_mutant_under_test
set_mutant_under_test("mutant_generation")
makedirs(Path("mutants"), exist_ok=True)
copy_src_dir()
copy_also_copy_files()
setup_source_paths()
create_mutants(1)
"""


def generate(work: Path) -> None:
    """Create the mutants in ``work`` without testing them (to choose which ones to run)."""
    subprocess.run([sys.executable, "-c", _GENERATE], cwd=work, capture_output=True, check=True)


_READ_RESULTS = """
import json, sys
from pathlib import Path
from mutmut.mutation.data import SourceFileMutationData
from mutmut.mutation.diff_apply import get_diff_for_mutant
from mutmut.stats import status_by_exit_code
path = Path(sys.argv[1])
data = SourceFileMutationData(path=path)
data.load()
out = {}
for name, code in data.exit_code_by_key.items():
    status = status_by_exit_code[code]
    diff = "" if status == "killed" and sys.argv[2] == "survivors" else get_diff_for_mutant(name, path=path)
    out[name] = [status, diff]
print(json.dumps(out))
"""


def read_results(work: Path, module: str, diffs: str = "all") -> list[Mutant]:
    """Every mutant of ``module`` in ``work``, with its diff (for killed ones only if ``diffs="all"``)."""
    done = subprocess.run(
        [sys.executable, "-c", _READ_RESULTS, f"cobee_django/{module}.py", diffs],
        cwd=work,
        capture_output=True,
        text=True,
        check=True,
    )
    results = json.loads(done.stdout)
    return [Mutant(name, module, status, diff) for name, (status, diff) in results.items()]


def _has_words(line: str) -> bool:
    return any(char.isalnum() for char in line)


def changed_lines(since: str) -> dict[str, set[str]]:
    """For each core module a change touched, the text (stripped) of its added or changed lines."""
    files = [f"cobee_django/{module}.py" for module in MODULES]
    diff = subprocess.run(
        ["git", "diff", "--unified=0", since, "--", *files], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    changed: dict[str, set[str]] = {}
    module = None
    for line in diff.splitlines():
        if line.startswith("+++ "):
            module = Path(line[6:]).stem if line.startswith("+++ b/") else None
        # A line of brackets alone (the end of a call, say) would match every mutant spanning one.
        elif module and line.startswith("+") and not line[1:].lstrip().startswith("#") and _has_words(line):
            changed.setdefault(module, set()).add(line[1:].strip())
    return changed


@dataclass
class Score:
    mutants: int
    killed: int
    equivalent: int
    text: int
    text_killed: int

    def as_dict(self) -> dict[str, float | int]:
        return {
            "mutants": self.mutants,
            "killed": self.killed,
            "equivalent": self.equivalent,
            "message_texts": self.text,
            "score": round(100 * self.killed / self.mutants, 1) if self.mutants else 100.0,
            "score_without_text": self.core,
        }

    @property
    def core(self) -> float:
        """Killed share of the mutants that are neither equivalent nor message texts (the target)."""
        counted = self.mutants - self.equivalent - self.text
        return round(100 * (self.killed - self.text_killed) / counted, 1) if counted else 100.0


def summarise(module: str, mutants: list[Mutant], judged: dict[tuple[str, str], dict[str, str]]) -> Score:
    killed = [m for m in mutants if m.status in DETECTED]
    text = [m for m in mutants if m.diff and m.is_text]
    equivalent = [
        m for m in mutants if m.status == "survived" and judged.get((module, m.key), {}).get("verdict") == "equivalent"
    ]
    text_killed = [m for m in text if m in killed]
    return Score(len(mutants), len(killed), len(equivalent), len(text), len(text_killed))


def report(module: str, mutants: list[Mutant], judged: dict[tuple[str, str], dict[str, str]], show_all: bool) -> int:
    """Print the survivors nobody has judged (every survivor with ``show_all``); the count of new ones."""
    new = 0
    seen: set[str] = set()
    for mutant in sorted(mutants, key=lambda m: (m.function, m.name)):
        if mutant.status in DETECTED or mutant.status in NOT_RUN:
            continue
        seen.add(mutant.key)
        judgement = judged.get((module, mutant.key))
        is_new = judgement is None and not mutant.is_text
        new += is_new
        if is_new or show_all:
            label = "NEW" if is_new else ("text" if judgement is None else judgement["verdict"])
            print(f"\n--- {label} {mutant.status}: {module} {mutant.key}\n    ({mutant.name})")
            if is_new or show_all:
                print("\n".join("    " + line for line in mutant.diff.splitlines()))
    return new


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("modules", nargs="*", help=f"modules to mutate (default: all of {', '.join(MODULES)})")
    parser.add_argument("--changed-since", metavar="REF", help="mutate only the lines changed since REF")
    parser.add_argument("--time-cap", type=float, help="stop after this many seconds in all (mutants left unrun)")
    parser.add_argument("--jobs", type=int, default=max(1, min(2, os.cpu_count() or 1)), help="parallel mutants")
    parser.add_argument("--record", action="store_true", help="write the scores of full runs to the ratchet file")
    parser.add_argument("--show-all", action="store_true", help="print judged and text survivors too")
    parser.add_argument("--reuse", action="store_true", help="report on the last run's results without running")
    parser.add_argument(
        "--survivors", action="store_true", help="run the last run's unjudged survivors again, with the current tests"
    )
    args = parser.parse_args()

    unknown = set(args.modules) - set(MODULES)
    if unknown:
        parser.error(f"not in MODULES: {', '.join(sorted(unknown))}")
    judged = load_judgements()
    scores = json.loads(SCORES.read_text()) if SCORES.exists() else {}
    modules = args.modules or list(MODULES)
    changed: dict[str, set[str]] = {}
    if args.changed_since:
        changed = changed_lines(args.changed_since)
        # A module without a recorded score has never been judged: its first full run comes first.
        for module in sorted(set(changed) - set(scores)):
            print(f"mutation: {module} changed but has no recorded score yet: not mutated (run it whole first)")
        modules = [module for module in modules if module in changed and module in scores]
        if not modules:
            print(f"mutation: no security-core line changed since {args.changed_since}")
            return 0
    elif not args.record and (missing := [module for module in MODULES if module not in scores]):
        print(f"mutation: no recorded score for {', '.join(missing)} (run with --record)")

    deadline = time.monotonic() + args.time_cap if args.time_cap else None
    failed = False
    for module in modules:
        started = time.monotonic()
        work = WORK / module
        names: list[str] = []
        completed = True
        if args.survivors:
            work = prepare(module, MODULES[module], keep_results=True)
            generate(work)
            names = [
                m.name
                for m in read_results(work, module)
                if m.status in NOT_RUN or (m.status not in DETECTED and not m.is_text and (module, m.key) not in judged)
            ]
            print(f"=== {module}: {len(names)} unjudged survivors and changed mutants", flush=True)
            if not names:
                continue
        elif not args.reuse:
            work = prepare(module, MODULES[module])
        if args.changed_since:
            if not args.reuse:
                generate(work)
            lines = changed[module]
            names = [m.name for m in read_results(work, module, "all") if set(m.changed_lines()[0]) & lines]
            print(f"=== {module}: {len(names)} mutants on {len(lines)} changed lines", flush=True)
            if not names:
                continue
        elif not args.survivors:
            print(f"=== {module}", flush=True)
        if not args.reuse:
            left = None if deadline is None else deadline - time.monotonic()
            completed = (left is None or left > 0) and run_mutmut(work, names, args.jobs, left)
        mutants = read_results(work, module)
        if args.changed_since:
            mutants = [m for m in mutants if m.name in set(names)]
        new = report(module, mutants, judged, args.show_all)
        score = summarise(module, mutants, judged)
        unchecked = sum(m.status in NOT_RUN for m in mutants)
        # A timeout counts as killed; many of them usually mean tests mutmut could not run (see contributing.md).
        timeouts = sum(m.status == "timeout" for m in mutants)
        figures = score.as_dict()
        print(
            f"{module}: {figures['mutants']} mutants, {figures['killed']} killed, {score.equivalent} judged"
            f" equivalent, {score.text} message texts; score {figures['score']}%,"
            f" without texts and equivalents {figures['score_without_text']}%; {new} new survivors"
            + (f"; {timeouts} of the killed timed out" if timeouts else "")
            + (f"; {unchecked} not run (time cap)" if unchecked or not completed else "")
            + f" ({time.monotonic() - started:.0f}s)",
            flush=True,
        )
        failed |= new > 0
        if not args.changed_since and completed and not unchecked:
            recorded = scores.get(module, {}).get("score_without_text")
            if recorded is not None and score.core < recorded:
                print(f"{module}: score {score.core}% fell below the recorded {recorded}% ({SCORES.name})")
                failed = True
            if args.record:
                scores[module] = figures
                SCORES.write_text(json.dumps(scores, indent=2, sort_keys=True) + "\n")
    if failed:
        print(
            f"\nmutation: each NEW survivor is a check the tests do not notice: add a test that kills it, or judge it"
            f" in {JUDGEMENTS.name} (docs/contributing.md, Mutation testing)"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
