"""The quick start's project, read from docs/quickstart.md itself (standard library only).

The page is the one copy of the project: every file is a fenced block whose info string carries
``title="PATH"``, and every shell step a fenced block between ``<!-- quickstart: NAME -->`` and
``<!-- /quickstart -->``. ``tests/test_quickstart.py`` and ``.ci/quickstart.sh`` build the project
from these blocks, so the code a reader copies from the page is the code CI runs.

    python tests/testapp/quickstart_page.py files docs/quickstart.md DEST   # write every file under DEST
    python tests/testapp/quickstart_page.py block docs/quickstart.md NAME   # print a shell block
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

_FILE = re.compile(r'^```\w* title="([^"]+)"\n(.*?)\n```$', re.DOTALL | re.MULTILINE)
_BLOCK = "<!-- quickstart: {name} -->\n```\n(.*?)\n```\n<!-- /quickstart -->"


def files(page: str) -> dict[str, str]:
    """Every file the page shows, by its relative path, with its whole text."""
    found: dict[str, str] = {}
    for path, body in _FILE.findall(page):
        if path in found or path.startswith("/") or ".." in Path(path).parts:
            raise ValueError(f"the page shows {path!r} twice or outside the project")
        found[path] = body + "\n"
    return found


def block(page: str, name: str) -> str:
    """The shell lines of the page's block ``name``."""
    match = re.search(_BLOCK.format(name=re.escape(name)), page, re.DOTALL)
    if match is None:
        raise LookupError(f"docs/quickstart.md has no block {name!r}")
    return match.group(1)


def write_files(page: str, destination: Path) -> list[str]:
    """Write every file of the page under ``destination``; return their paths."""
    written = []
    for path, text in files(page).items():
        target = destination / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        written.append(path)
    return written


def main(argv: list[str]) -> int:
    command, page_path, argument = argv
    page = Path(page_path).read_text()
    if command == "files":
        print("\n".join(write_files(page, Path(argument))))
    elif command == "block":
        print(block(page, argument))
    else:
        raise SystemExit(f"unknown command {command!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
