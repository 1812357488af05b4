"""Issue 14, item 6: the GitHub Actions workflow and the pre-commit configuration in
docs/workflow.md work as written. The workflow's ``run:`` steps run here, against a
git copy of this repository standing in for its URL, in a new virtual environment."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml
from deploykit import REPO, run

WORKFLOW_DOC = REPO / "docs" / "workflow.md"
#: The placeholder the docs use for the repository's URL.
REPO_URL = "https://github.com/your-org/eil-pipelines"


def yaml_blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", WORKFLOW_DOC.read_text(encoding="utf-8"), flags=re.S)


def workflows() -> list[dict]:
    return [yaml.safe_load(b) for b in yaml_blocks() if "# .github/workflows/" in b]


def workflow() -> dict:
    """The validate workflow (the other one posts the report diff)."""
    return next(w for w in workflows() if "validate" in w["jobs"])


def precommit_config() -> dict:
    block = next(b for b in yaml_blocks() if b.lstrip().startswith("repos:"))
    return yaml.safe_load(block)


def test_the_snippets_install_from_the_repository_url():
    steps = [s for w in workflows() for job in w["jobs"].values() for s in job["steps"]]
    install = [s["run"] for s in steps if "pip install" in s.get("run", "")]
    assert install == [f'pip install "eil-pipelines @ git+{REPO_URL}@main"'] * 2
    (repo,) = precommit_config()["repos"]
    assert repo["repo"] == REPO_URL and repo["rev"] == "main"


def test_the_pre_commit_hooks_named_in_the_docs_exist_and_run(example_project):
    hooks = {h["id"]: h for h in yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())}
    (repo,) = precommit_config()["repos"]
    named = [h["id"] for h in repo["hooks"]]
    text = next(b for b in yaml_blocks() if b.lstrip().startswith("repos:"))
    named += re.findall(r"# - id: ([\w-]+)", text)  # the commented, optional one
    assert named == ["eil-validate", "eil-validate-deep"]
    for name in named:
        hook = hooks[name]
        assert hook["language"] == "python" and hook["pass_filenames"] is False
        assert re.search(hook["files"], "pipelines/daily_sales.toml")
        # pre-commit runs the entry in the repository's root, which holds pipelines/.
        result = run(
            [str(Path(sys.executable).parent / "eil-run"), *hook["entry"].split()[1:]],
            example_project,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def git_copy(destination: Path) -> Path:
    """A git repository holding this working tree's files on a ``main`` branch."""
    files = (
        subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=REPO,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, files):
        source = REPO / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "copy"]):
        subprocess.run([*git, *args], cwd=destination, check=True, capture_output=True)
    return destination


def step_env(venv: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {
        **env,
        "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        "VIRTUAL_ENV": str(venv),
    }


def run_step(script: str, cwd: Path, venv: Path) -> subprocess.CompletedProcess:
    """A ``run:`` step as GitHub runs it on Linux: bash -eo pipefail."""
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        cwd=cwd,
        env=step_env(venv),
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.slow
def test_the_github_actions_workflow_runs_as_written(tmp_path, example_project):
    steps = [s for s in workflow()["jobs"]["validate"]["steps"] if "run" in s]
    assert [s.get("name") for s in steps] == [
        "Install eil-pipelines from its repository",
        "Validate the pipelines (deep)",
        "The editor schema is current",
    ]
    clone = git_copy(tmp_path / "eil-pipelines")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    # The dependencies come from this environment (a path entry: no .pth file in it
    # runs, so its editable eil-pipelines stays out); eil-pipelines itself is
    # installed from the git URL, as the step says.
    site = Path(sysconfig.get_paths(vars={"base": str(venv), "platbase": str(venv)})["purelib"])
    (site / "test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    # file://localhost/…: the pip of Python 3.11's venv refuses an empty host.
    install = steps[0]["run"].replace(REPO_URL, f"file://localhost{clone}")
    result = run_step(install, example_project, venv)
    assert result.returncode == 0, result.stdout + result.stderr
    where = run_step(
        "python -c 'import eil_pipelines; print(eil_pipelines.__file__)'", tmp_path, venv
    )
    assert where.stdout.startswith(str(venv)), where.stdout + where.stderr

    result = run_step(steps[1]["run"], example_project, venv)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "::error" not in result.stdout
    result = run_step(steps[2]["run"], example_project, venv)
    assert result.returncode == 0, result.stdout + result.stderr

    # A broken file: one annotation naming the file and key, and the job fails.
    (example_project / "pipelines" / "bad.toml").write_text(
        'title = 1\n[queries.q]\nsql = "SELECT 1"\n'
    )
    result = run_step(steps[1]["run"], example_project, venv)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "::error file=pipelines/bad.toml,title=eil-run validate::title: " in result.stdout
