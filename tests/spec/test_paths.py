"""Pipeline input that cannot escape the project: template and SQL paths,
control characters in file names, a byte-order mark, terminal escapes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from eil_pipelines.errors import ConfigError, ConfigErrors
from eil_pipelines.spec.loader import load_pipeline, load_pipelines
from eil_pipelines.text import has_control_characters, printable

SECRET = "root:x:0:0:the secret content of the outside file"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A file beside the project, never inside it."""
    path = tmp_path / "outside.txt"
    path.write_text(SECRET, encoding="utf-8")
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "pipelines").mkdir(parents=True)
    (root / "templates").mkdir()
    (root / "sql").mkdir()
    return root


def problems(file: Path, root: Path) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        load_pipeline(file, root=root, env={})
    assert SECRET not in str(info.value)
    return info.value.problems


def write(path: Path, text: str) -> Path:
    if path.suffix == ".toml" and not text.startswith("title"):
        text = 'title = "Sales"\n' + text
    path.write_text(text, encoding="utf-8")
    return path


def test_an_absolute_template_outside_the_project_is_refused(root: Path):
    file = write(
        root / "pipelines" / "sales.toml",
        '[queries.one]\nsql = "SELECT 1"\n[report]\ntemplate = "/etc/passwd"\n',
    )
    assert problems(file, root) == [
        (
            "report.template",
            f'template "/etc/passwd" is outside the project folder {root.resolve()} '
            "(it resolves to /etc/passwd): templates must be inside the project folder",
        )
    ]


def test_a_relative_sql_file_climbing_out_of_the_project_is_refused(root: Path, outside: Path):
    relative = "../outside.txt"
    file = write(root / "pipelines" / "sales.toml", f'[queries.one]\nfile = "{relative}"\n')
    assert problems(file, root) == [
        (
            "queries.one.file",
            f'SQL file "{relative}" is outside the project folder {root.resolve()} '
            f"(it resolves to {outside.resolve()}): SQL files must be inside the project folder",
        )
    ]


def test_a_deep_relative_path_to_etc_passwd_is_refused(root: Path):
    file = write(
        root / "pipelines" / "sales.toml",
        '[queries.one]\nfile = "../../../../../../../../etc/passwd"\n',
    )
    [(key, message)] = problems(file, root)
    assert key == "queries.one.file"
    assert message.startswith('SQL file "../../../../../../../../etc/passwd" is outside')
    assert message.endswith("SQL files must be inside the project folder")


def test_a_symlink_inside_the_project_pointing_out_is_refused(root: Path, outside: Path):
    (root / "templates" / "report.md.j2").symlink_to(outside)
    (root / "sql" / "q.sql").symlink_to(outside)
    file = write(
        root / "pipelines" / "sales.toml",
        '[queries.one]\nfile = "sql/q.sql"\n[report]\ntemplate = "templates/report.md.j2"\n',
    )
    found = problems(file, root)
    assert [key for key, _ in found] == ["queries.one.file", "report.template"]
    assert found[0][1] == (
        f'SQL file "sql/q.sql" is outside the project folder {root.resolve()} '
        f"(it resolves to {outside.resolve()}): SQL files must be inside the project folder"
    )
    assert found[1][1].startswith('template "templates/report.md.j2" is outside')


def test_files_inside_the_project_still_load_through_dot_dot_and_symlinks(root: Path):
    write(root / "sql" / "real.sql", "SELECT 1 AS x")
    (root / "sql" / "alias.sql").symlink_to(root / "sql" / "real.sql")
    write(root / "templates" / "r.md.j2", "# {{ pipeline.title }}\n")
    file = write(
        root / "pipelines" / "sales.toml",
        '[queries.one]\nfile = "pipelines/../sql/alias.sql"\n'
        f'[report]\ntemplate = "{root / "templates" / "r.md.j2"}"\n',
    )
    pipeline = load_pipeline(file, root=root, env={})
    assert pipeline.sql["one"] == "SELECT 1 AS x"


def test_control_characters_in_template_and_sql_names_are_refused(root: Path):
    file = write(
        root / "pipelines" / "sales.toml",
        '[queries.one]\nfile = "sql/a\\nb.sql"\n[report]\ntemplate = "t\\u001b[2J.md.j2"\n',
    )
    assert problems(file, root) == [
        (
            "queries.one.file",
            'the SQL file name "sql/a\\x0ab.sql" holds a control character or a line break: '
            "rename the file",
        ),
        (
            "report.template",
            'the template name "t\\x1b[2J.md.j2" holds a control character or a line break: '
            "rename the file",
        ),
    ]


@pytest.mark.skipif(os.name != "posix", reason="only POSIX file names may hold a newline")
def test_a_pipeline_file_name_with_a_newline_is_refused(root: Path):
    file = write(
        root / "pipelines" / "sal\nes.toml", 'name = "sales"\n[queries.one]\nsql = "SELECT 1"\n'
    )
    with pytest.raises(ConfigErrors) as info:
        load_pipelines(root / "pipelines", env={})
    [error] = info.value.errors
    assert error.problems == [
        (
            "",
            'the file name "sal\\x0aes.toml" holds a control character or a line break: '
            "rename the file",
        )
    ]
    assert "\n" not in str(error)  # one line on the terminal
    assert file.exists()


def test_a_utf8_byte_order_mark_is_accepted(root: Path):
    file = root / "pipelines" / "sales.toml"
    file.write_bytes(b'\xef\xbb\xbftitle = "Sales"\n[queries.one]\nsql = "SELECT 1"\n')
    pipeline = load_pipeline(file, root=root, env={})
    assert pipeline.spec.title == "Sales"


def test_terminal_escapes_in_keys_and_messages_are_printed_escaped(root: Path):
    file = write(
        root / "pipelines" / "sales.toml",
        '[queries.one]\nsql = "SELECT 1"\n"\\u001b]52;c;aGk=\\u0007" = 1\n',
    )
    with pytest.raises(ConfigError) as info:
        load_pipeline(file, root=root, env={})
    text = str(info.value)
    assert "\x1b" not in text and "\x07" not in text
    assert "\\x1b]52;c;aGk=\\x07" in text


def test_printable_escapes_control_characters_only():
    assert printable("ok\ttab\nline") == "ok\ttab\nline"
    assert printable("a\x1b[31mred\x9b\u202eevil\r") == "a\\x1b[31mred\\x9b\\u202eevil\\x0d"
    assert printable("two\nlines", keep_newlines=False) == "two\\x0alines"
    assert printable("Umsätze – 日本") == "Umsätze – 日本"
    assert has_control_characters("a\tb") and not has_control_characters("a b")


def test_a_folder_load_resolves_shared_folders_and_links_like_one_file_at_a_time(
    root: Path, tmp_path: Path
):
    """Loading a folder resolves each SQL folder once; links are still followed each time."""
    away = tmp_path / "away"
    away.mkdir()
    write(away / "q.sql", "SELECT 2 AS x")
    (root / "linked").symlink_to(away)  # a folder that is a link out of the project
    write(root / "sql" / "real.sql", "SELECT 1 AS x")
    (root / "sql" / "out.sql").symlink_to(away / "q.sql")
    (root / "sql" / "sub").symlink_to(away)  # sub/.. is away's parent, not sql/
    names = {
        "a_inside": "sql/real.sql",
        "b_inside_too": "sql/real.sql",
        "c_file_link": "sql/out.sql",
        "d_folder_link": "linked/q.sql",
        "e_dot_dot_after_link": "sql/sub/../away/q.sql",
    }
    for name, relative in names.items():
        write(root / "pipelines" / f"{name}.toml", f'[queries.one]\nfile = "{relative}"\n')
    with pytest.raises(ConfigErrors) as info:
        load_pipelines(root / "pipelines", env={})
    refused = {error.file.stem: error.problems for error in info.value.errors}
    assert sorted(refused) == ["c_file_link", "d_folder_link", "e_dot_dot_after_link"]
    for name, found in refused.items():
        assert found == [
            (
                "queries.one.file",
                f'SQL file "{names[name]}" is outside the project folder {root.resolve()} '
                f"(it resolves to {(away / 'q.sql').resolve()}): "
                "SQL files must be inside the project folder",
            )
        ]
