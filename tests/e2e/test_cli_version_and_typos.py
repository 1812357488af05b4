"""``eil-run --version`` and a mistyped subcommand, as a user runs them."""

from __future__ import annotations

from importlib.metadata import version

from clirun import eil

MINIMAL = """
title = "Minimal"
[queries.one]
sql = "SELECT 1 AS x"
"""


def test_version_prints_the_installed_version(project):
    result = eil("--version", cwd=project.root)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"eil-run {version('eil-pipelines')}\n"
    assert result.stderr == ""


def test_a_mistyped_subcommand_suggests_the_right_one(project):
    result = eil("lsit", cwd=project.root)
    assert result.returncode == 2
    assert result.stderr == 'eil-run: unknown command "lsit"; did you mean "list"?\n'
    result = eil("valdiate", "pipelines", cwd=project.root)
    assert result.returncode == 2
    assert 'did you mean "validate"?' in result.stderr
    assert not project.reports.exists()


def test_a_folder_or_toml_file_named_like_a_command_is_still_a_path(project):
    folder = project.root / "lsit"
    folder.mkdir()
    (folder / "one.toml").write_text(MINIMAL)
    result = eil("lsit", "--once", cwd=project.root)
    assert result.returncode == 0, result.stderr
    assert "unknown command" not in result.stderr
    (project.root / "lsit.toml").write_text(MINIMAL)
    result = eil("validate", "lsit.toml", cwd=project.root)
    assert result.returncode == 0, result.stderr
    result = eil("lsit.toml", "--once", cwd=project.root)
    assert result.returncode == 0, result.stderr


def test_a_missing_path_unlike_any_command_is_still_a_missing_path(project):
    result = eil("--once", "nowhere-at-all", cwd=project.root)
    assert result.returncode == 2
    assert "unknown command" not in result.stderr
