"""``eil-run diff`` end to end on a real git repository with real commits.

Each test builds the sales/other project (``diffrepo.py``), commits it (tag
``base``), changes something, commits or leaves it in the work tree, and
diffs.  Both sides render through the real ``--once`` path on real DuckDB
queries; nothing is mocked.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from diffrepo import AT, Repo, make_repo

from eil_pipelines.app.diff import diff_reports
from eil_pipelines.app.diff_render import render_diff
from eil_pipelines.errors import UsageError

REPO_ROOT = Path(__file__).resolve().parents[2]
WHEN = datetime.fromisoformat(AT)


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return make_repo(tmp_path / "project")


def eil(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "eil_pipelines", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def diff(repo: Repo, **kwargs):
    return diff_reports(repo.pipelines, base="base", at=WHEN, **kwargs)


def only(result, name):
    (entry,) = [p for p in result.pipelines if p.name == name]
    return entry


# --- what is touched, what is rendered ----------------------------------------------------


def test_a_comment_touches_the_pipeline_but_its_report_diffs_unchanged(repo):
    repo.edit("pipelines/sales.toml", "# Sales: yesterday's", "# Sales (reviewed): yesterday's")
    repo.commit("a comment")
    result = diff_reports(repo.pipelines, base="base", head="HEAD", at=WHEN)
    sales = only(result, "sales")
    assert sales.touched_by == ["pipelines/sales.toml"]
    assert sales.status == "unchanged"
    assert sales.documents_changed == []
    assert [c.changed for c in sales.charts] == [False]
    assert result.changed == []
    # Only the touched pipeline rendered, once per side: "other" never ran.
    assert sorted(result.rendered) == [("base", "sales"), ("head", "sales")]
    assert result.untouched == ["other"]
    out = eil("diff", "--base", "base", "--head", "HEAD", "--at", AT, cwd=repo.root)
    assert out.returncode == 0, out.stderr
    assert "sales: report unchanged" in out.stdout


def test_a_sql_change_shows_the_kpi_and_the_changed_cells(repo):
    repo.edit(
        "sql/kpis.sql",
        "sum(v) FILTER (WHERE d >= $period_start",
        "sum(v * 2) FILTER (WHERE d >= $period_start",
    )
    repo.commit("double the sales")
    result = diff(repo, head="HEAD")
    sales = only(result, "sales")
    assert sales.status == "changed"
    assert sales.touched_by == ["sql/kpis.sql"]
    (kpi,) = sales.metrics
    assert (kpi.before["text"], kpi.after["text"]) == ("$22.00", "$44.00")
    assert kpi.change == 22 and kpi.change_pct == 1.0
    kpis = {q.name: q for q in sales.queries}["kpis"]
    assert kpis.result_changed and kpis.cells_changed == 1
    assert [(c.row, c.column, c.before, c.after) for c in kpis.cells] == [
        ("row 1", "v", "22.0", "44.0")
    ]
    assert not {q.name: q for q in sales.queries}["by_region"].result_changed
    assert sorted(result.rendered) == [("base", "sales"), ("head", "sales")]
    assert set(sales.documents_changed) == {"md", "html"}


def test_eil_toml_touches_every_pipeline(repo):
    repo.edit("eil.toml", "# project settings", "# project settings, reviewed")
    repo.commit("settings comment")
    result = diff(repo, head="HEAD")
    assert [p.name for p in result.pipelines] == ["other", "sales"]
    assert all(p.status == "unchanged" for p in result.pipelines)
    assert len(result.rendered) == 4


def test_a_schedule_change_in_words_with_next_fire_times(repo):
    repo.edit("pipelines/sales.toml", 'cron = "0 7 * * *"', 'cron = "30 6 * * MON-FRI"')
    repo.commit("earlier, weekdays")
    sales = only(diff(repo, head="HEAD"), "sales")
    assert sales.status == "changed"
    assert sales.schedule.before != sales.schedule.after
    assert "06:30" in sales.schedule.after
    assert [f.strftime("%a %H:%M") for f in sales.schedule.next_before] == [
        "Sun 07:00",
        "Mon 07:00",
        "Tue 07:00",
    ]
    assert [f.strftime("%a %H:%M") for f in sales.schedule.next_after] == [
        "Mon 06:30",
        "Tue 06:30",
        "Wed 06:30",
    ]


def test_a_template_change_changes_the_documents_not_the_figures(repo):
    repo.edit("templates/sales.md.j2", "# {{ pipeline.title }}", "# {{ pipeline.title }} today")
    repo.commit("template")
    sales = only(diff(repo, head="HEAD"), "sales")
    assert sales.touched_by == ["templates/sales.md.j2"]
    assert sales.status == "changed"
    assert set(sales.documents_changed) == {"md", "html"}
    assert not any(m.changed for m in sales.metrics)
    assert not any(q.result_changed for q in sales.queries)


def test_a_chart_change_shows_both_images_side_by_side_in_html(repo):
    repo.edit("pipelines/sales.toml", 'type = "bar"', 'type = "line"')
    repo.commit("a line chart")
    result = diff(repo, head="HEAD")
    (chart,) = only(result, "sales").charts
    assert (
        chart.changed and chart.before.startswith(b"\x89PNG") and chart.after.startswith(b"\x89PNG")
    )
    page = render_diff(result, "html")
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 2
    assert 'class="pair"' in page
    assert "http://" not in page and "https://" not in page  # self-contained


def test_added_removed_and_renamed_pipelines(repo):
    repo.git("mv", "pipelines/other.toml", "pipelines/weekly.toml")
    repo.write("pipelines/fresh.toml", 'title = "Fresh"\n[queries.one]\nsql = "SELECT 1 AS x"\n')
    repo.commit("rename other, add fresh")
    result = diff(repo, head="HEAD")
    status = {p.name: (p.status, p.old_name) for p in result.pipelines}
    assert status == {"fresh": ("added", None), "weekly": ("renamed", "other")}
    assert sorted(result.rendered) == [("base", "other"), ("head", "fresh"), ("head", "weekly")]
    repo.git("rm", "-q", "pipelines/fresh.toml")
    repo.commit("drop fresh")
    removed = diff_reports(repo.pipelines, base="HEAD~1", head="HEAD", at=WHEN)
    assert [(p.name, p.status) for p in removed.pipelines] == [("fresh", "removed")]


def test_without_head_the_work_tree_is_compared_untracked_files_included(repo):
    repo.edit("templates/sales.md.j2", "# {{ pipeline.title }}", "# {{ pipeline.title }} draft")
    repo.write("pipelines/draft.toml", 'title = "Draft"\n[queries.one]\nsql = "SELECT 1 AS x"\n')
    result = diff(repo)
    assert result.head == "work tree"
    assert {p.name: p.status for p in result.pipelines} == {"draft": "added", "sales": "changed"}


def test_the_same_data_on_both_sides(repo):
    # The branch changes the data file only: no pipeline is touched, nothing renders.
    repo.edit("data/s.csv", "2026-11-27,north,15", "2026-11-27,north,150")
    repo.commit("new data")
    result = diff(repo, head="HEAD")
    assert result.pipelines == [] and result.rendered == []
    # With a definition change too, both sides read the work tree's data: the KPI
    # moves only by the change in the SQL.
    repo.edit("sql/kpis.sql", "AS p\n", "AS p, 1 AS one\n")
    sales = only(diff(repo), "sales")
    assert [m.changed for m in sales.metrics] == [False]
    kpis = {q.name: q for q in sales.queries}["kpis"]
    assert kpis.columns_added == ["one"]


# --- the ledger, the reports folder and the work trees are left alone ---------------------


def test_nothing_is_written_in_the_project_and_worktrees_are_removed(repo):
    repo.edit("sql/kpis.sql", "AS p\n", "AS p, 2 AS two\n")
    before = repo.git("status", "--porcelain")
    out = eil("diff", "--base", "base", "--at", AT, cwd=repo.root)
    assert out.returncode == 1, out.stderr
    assert not (repo.root / "reports").exists()  # no report, no ledger, no run row
    assert repo.git("status", "--porcelain") == before
    assert len(repo.worktrees()) == 1


def test_worktrees_are_removed_when_the_diff_fails(repo):
    repo.edit("sql/kpis.sql", "AS p\n", "AS p, 2 AS two\n")
    repo.commit("change")

    def broken_clock():
        raise RuntimeError("the clock broke")

    with pytest.raises(RuntimeError):
        diff_reports(repo.pipelines, base="base", head="HEAD", at=WHEN, clock=broken_clock)
    assert len(repo.worktrees()) == 1
    assert "eil-diff-" not in repo.git("worktree", "list")


# --- errors ---------------------------------------------------------------------------------


def test_an_unknown_revision_is_a_clear_error(repo):
    with pytest.raises(UsageError, match="--base: unknown revision 'nope'"):
        diff_reports(repo.pipelines, base="nope")
    out = eil("diff", "--base", "base", "--head", "no-such-branch", cwd=repo.root)
    assert out.returncode == 2
    assert "--head: unknown revision 'no-such-branch'" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_folder_outside_git_is_a_clear_error(tmp_path):
    folder = tmp_path / "plain" / "pipelines"
    folder.mkdir(parents=True)
    out = eil("diff", str(folder), "--base", "main", cwd=tmp_path)
    assert out.returncode == 2
    assert f"{folder} is not in a git repository" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_change_that_breaks_a_pipeline_exits_2_and_says_which(repo):
    repo.edit("sql/kpis.sql", "sum(v) FILTER", "sum(nope) FILTER")
    out = eil("diff", "--base", "base", "--at", AT, cwd=repo.root)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "sales: render failed" in out.stdout
    assert "head failed:" in out.stdout and "nope" in out.stdout
    assert "breaks a pipeline" in out.stderr


def test_an_invalid_file_at_head_is_listed_and_exits_2(repo):
    repo.edit("pipelines/sales.toml", 'period = "day"', 'period = "dya"')
    out = eil("diff", "--base", "base", "--at", AT, cwd=repo.root)
    assert out.returncode == 2
    assert "invalid files at head:" in out.stdout
    assert "pipelines/sales.toml: schedule.period" in out.stdout
    assert "sales: invalid at head" in out.stdout  # broken, not removed
    result = diff(repo)
    assert [(p.name, p.status) for p in result.pipelines] == [("sales", "invalid")]
    assert result.rendered == [] and result.failed


# --- every format -----------------------------------------------------------------------------


@pytest.fixture
def changed(repo):
    repo.edit(
        "sql/kpis.sql",
        "sum(v) FILTER (WHERE d >= $period_start",
        "sum(v * 2) FILTER (WHERE d >= $period_start",
    )
    repo.edit("pipelines/sales.toml", 'label = "Sales"', 'label = "Sales <b>&</b>"')
    repo.edit("pipelines/sales.toml", 'type = "bar"', 'type = "line"')
    repo.commit("change")
    return repo


def test_text_format(changed):
    out = eil("diff", "--base", "base", "--head", "HEAD", "--at", AT, cwd=changed.root)
    assert out.returncode == 1, out.stderr
    assert out.stdout.startswith("1 of 1 touched pipeline changed; 1 untouched, not rendered")
    assert "  KPI Sales: $22.00 → — (removed)" in out.stdout  # the label changed
    assert "  KPI Sales <b>&</b>: — → $44.00 (new)" in out.stdout
    assert "    row 1, v: 22.0 → 44.0" in out.stdout
    assert "  chart trend: changed" in out.stdout


def test_markdown_format_summary_first_and_under_its_limit(changed):
    out = eil(
        "diff",
        "--base",
        "base",
        "--head",
        "HEAD",
        "--at",
        AT,
        "--format",
        "markdown",
        cwd=changed.root,
    )
    assert out.returncode == 1, out.stderr
    text = out.stdout
    assert text.startswith("# Report diff\n\n1 of 1 touched pipeline changed")
    assert text.index("| sales | report changed |") < text.index("## sales")
    assert "| Sales \\<b\\>&\\</b\\> | — | $44.00 | new |" in text
    result = diff_reports(changed.pipelines, base="base", head="HEAD", at=WHEN)
    short = render_diff(result, "markdown", limit=400)
    assert len(short) <= 400
    assert "1 more pipelines left out" in short and "## sales" not in short


def test_markdown_format_passes_markdownlint(changed, tmp_path):
    import shutil

    cli = REPO_ROOT / "node_modules" / "markdownlint-cli2" / "markdownlint-cli2-bin.mjs"
    node = shutil.which("node")
    if node is None or not cli.is_file():
        message = "node or markdownlint-cli2 is missing: bash scripts/setup-test-env.sh"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    result = diff_reports(changed.pipelines, base="base", head="HEAD", at=WHEN)
    target = tmp_path / "diff.md"
    target.write_text(render_diff(result, "markdown"), encoding="utf-8")
    done = subprocess.run(
        [node, str(cli), "--config", str(REPO_ROOT / ".markdownlint-cli2.jsonc"), str(target)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
    )
    assert "Linting: 1 file" in done.stdout + done.stderr
    assert done.returncode == 0, done.stdout + done.stderr


def test_html_format_is_escaped_and_self_contained(changed):
    out = eil(
        "diff", "--base", "base", "--head", "HEAD", "--at", AT, "--format", "html", cwd=changed.root
    )
    assert out.returncode == 1, out.stderr
    page = out.stdout
    assert page.startswith("<!DOCTYPE html>")
    assert "<b>&</b>" not in page
    assert "Sales &lt;b&gt;&amp;&lt;/b&gt;" in page
    assert page.count("data:image/png;base64,") == 2
    assert "<script" not in page


def test_json_format(changed, tmp_path):
    target = tmp_path / "diff.json"
    out = eil(
        "diff",
        "--base",
        "base",
        "--head",
        "HEAD",
        "--at",
        AT,
        "--format",
        "json",
        "--output",
        str(target),
        cwd=changed.root,
    )
    assert out.returncode == 1, out.stderr
    assert out.stdout == ""
    data = json.loads(target.read_text(encoding="utf-8"))
    assert data["changed"] == ["sales"]
    assert data["renders"] == 2
    (sales,) = data["pipelines"]
    assert sales["status"] == "changed"
    assert {c["name"]: c["changed"] for c in sales["charts"]} == {"trend": True}
    assert [m["label"] for m in sales["metrics"]] == ["Sales", "Sales <b>&</b>"]
    kpis = {q["name"]: q for q in sales["queries"]}["kpis"]
    assert kpis["cells"] == [{"row": "row 1", "column": "v", "before": "22.0", "after": "44.0"}]


# --- the GitHub Actions example of docs/workflow.md -----------------------------------------


def workflow_diff_step() -> str:
    """The ``run: |`` script of the docs' "Diff the reports" step."""
    text = (REPO_ROOT / "docs" / "workflow.md").read_text(encoding="utf-8")
    (block,) = [
        b for b in re.findall(r"```yaml\n(.*?)```", text, flags=re.S) if "eil-run diff" in b
    ]
    lines = block.splitlines()
    start = next(i for i, line in enumerate(lines) if "id: diff" in line)
    run = next(i for i in range(start, len(lines)) if lines[i].strip() == "run: |")
    indent = len(lines[run + 1]) - len(lines[run + 1].lstrip())
    script = []
    for line in lines[run + 1 :]:
        if line.strip() and len(line) - len(line.lstrip()) < indent:
            break
        script.append(line[indent:])
    return "\n".join(script)


def test_the_documented_github_actions_step_runs(changed, tmp_path):
    script = workflow_diff_step()
    assert "eil-run diff --base origin/main --format markdown > diff.md" in script
    # As actions/checkout with fetch-depth 0 leaves it: the base branch as origin/main.
    changed.git("update-ref", "refs/remotes/origin/main", "base")
    outputs = tmp_path / "github_output"
    done = subprocess.run(
        ["bash", "-e", "-c", script],
        cwd=changed.root,
        capture_output=True,
        text=True,
        timeout=300,
        env={
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "GITHUB_OUTPUT": str(outputs),
        },
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert outputs.read_text().splitlines() == ["status=1"]
    assert (changed.root / "diff.md").read_text().startswith("# Report diff")
