"""Issue 14, item 7: tests that need a tool from outside Python are marked
``external``, so ``pytest -m "not external"`` runs the rest."""

from __future__ import annotations

import sys

from deploykit import REPO, run


def collected(*args: str) -> set[str]:
    result = run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        REPO,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return {line.split("::")[0] for line in result.stdout.splitlines() if "::" in line}


def test_browser_checkers_and_database_servers_are_external_and_the_rest_not():
    files = [
        "tests/e2e/test_markdownlint.py",  # Node (through tests/e2e/toolchain.py)
        "tests/sources/test_postgres.py",  # the postgres_server fixture
        "tests/deploy/test_extras.py",  # Python only
    ]
    assert collected("-m", "external", *files) == set(files[:2])
    # test_postgres.py also has tests of its own code that need no server.
    assert collected("-m", "not external", *files) == set(files[1:])


def test_the_marker_is_registered_and_documented():
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert '"external: needs Chromium, Java, Node, PostgreSQL, MariaDB or systemd' in text
    testing = (REPO / "docs" / "testing.md").read_text(encoding="utf-8")
    assert 'pytest -m "not external"' in testing and "brew install" in testing
