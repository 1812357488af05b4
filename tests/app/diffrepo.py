"""A small pipeline project in a real git repository, for ``eil-run diff``'s tests."""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

#: The moment both sides render as in the tests: 07:00 on 2026-11-28, Berlin.
AT = "2026-11-28T07:00"

SALES = """
# Sales: yesterday's sales by region.
title = "Sales"
description = "How much did we sell?"
[schedule]
cron = "0 7 * * *"
timezone = "Europe/Berlin"
period = "day"
[report]
template = "templates/sales.md.j2"
[queries.kpis]
file = "sql/kpis.sql"
[queries.by_region]
sql = "SELECT region, sum(v) AS revenue FROM 'data/s.csv' WHERE d < $period_end GROUP BY region ORDER BY region"
[[metrics]]
label = "Sales"
query = "kpis"
column = "v"
compare = "p"
format = "currency"
[[charts]]
name = "trend"
query = "by_region"
x = "region"
y = "revenue"
type = "bar"
"""

KPIS_SQL = """
SELECT
    sum(v) FILTER (WHERE d >= $period_start AND d < $period_end) AS v,
    sum(v) FILTER (WHERE d >= $prev_period_start AND d < $prev_period_end) AS p
FROM 'data/s.csv'
"""

TEMPLATE = """
# {{ pipeline.title }}

{% for m in metrics %}- {{ m.label }}: {{ m.text }} ({{ m.change_text }})
{% endfor %}

{{ charts.trend }}

{{ data.by_region | table }}
"""

OTHER = """
title = "Other"
[schedule]
cron = "0 8 * * MON"
timezone = "Europe/Berlin"
period = "week"
[queries.one]
sql = "SELECT count(*) AS n FROM 'data/s.csv'"
[[metrics]]
label = "Rows"
query = "one"
column = "n"
"""

DATA = (
    "d,region,v\n"
    "2026-11-25,north,10\n2026-11-25,south,4\n"
    "2026-11-26,north,12\n2026-11-26,south,5\n"
    "2026-11-27,north,15\n2026-11-27,south,7\n"
)

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}


class Repo:
    """A git repository holding the project at its top."""

    def __init__(self, root: Path):
        self.root = root
        self.pipelines = root / "pipelines"

    def git(self, *args: str) -> str:
        """Run git in the repository; raises on failure."""
        done = subprocess.run(
            ["git", *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, **GIT_ENV, "HOME": str(self.root)},
        )
        return done.stdout

    def write(self, relative: str, text: str) -> Path:
        """Write a file (dedented) under the repository's top."""
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    def edit(self, relative: str, old: str, new: str) -> None:
        """Replace ``old`` (which must be there) with ``new`` in a file."""
        path = self.root / relative
        text = path.read_text(encoding="utf-8")
        assert old in text, f"{old!r} not in {relative}"
        path.write_text(text.replace(old, new), encoding="utf-8")

    def commit(self, message: str) -> str:
        """Commit everything; the new commit's id."""
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD").strip()

    def worktrees(self) -> list[str]:
        """The work trees git knows of (the main one included)."""
        return [
            line
            for line in self.git("worktree", "list", "--porcelain").splitlines()
            if line.startswith("worktree ")
        ]


def make_repo(root: Path) -> Repo:
    """A repository with the sales and other pipelines committed once (tag ``base``)."""
    root.mkdir(parents=True, exist_ok=True)
    repo = Repo(root)
    repo.git("init", "-q", "-b", "main")
    repo.write("pipelines/sales.toml", SALES)
    repo.write("pipelines/other.toml", OTHER)
    repo.write("sql/kpis.sql", KPIS_SQL)
    repo.write("templates/sales.md.j2", TEMPLATE)
    repo.write("data/s.csv", DATA)
    repo.write("eil.toml", "# project settings\n")
    repo.write(".gitignore", "reports/\n")
    repo.commit("the first pipelines")
    repo.git("tag", "base")
    return repo
