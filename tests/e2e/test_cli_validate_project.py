"""`eil-run validate` checks the project settings (eil.toml) beside the pipelines too."""

from __future__ import annotations

from clirun import eil

PIPELINE = 'title = "Ok"\n[queries.q]\nsql = "SELECT 1 AS x"\n'


def test_a_bad_project_file_fails_validate_with_its_key_path(project):
    project.pipeline("ok", PIPELINE)
    project.write("eil.toml", '[smtp]\nhost = "mail.example.com"\nprot = 25\n')
    result = eil("validate", "pipelines", cwd=project.root)
    assert result.returncode == 2
    assert 'eil.toml: smtp.prot: unknown key "prot"; did you mean "port"?' in result.stderr
    assert "Traceback" not in result.stderr


def test_a_good_project_file_passes(project):
    project.pipeline("ok", PIPELINE)
    project.write(
        "eil.toml", '[smtp]\nhost = "mail.example.com"\nport = 25\nsender = "r@example.com"\n'
    )
    result = eil("validate", "pipelines", cwd=project.root)
    assert result.returncode == 0, result.stderr
    assert "1 pipeline valid." in result.stdout
