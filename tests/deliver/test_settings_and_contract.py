"""eil.toml and the delivery keys of a pipeline file: every problem at once, as
``file: key: message``, and never a secret in a message."""

from __future__ import annotations

from datetime import timedelta

import pytest

from eil_pipelines.errors import ConfigError
from eil_pipelines.spec import load_pipeline
from eil_pipelines.spec.project import ProjectSettings, load_project_settings


def settings_problems(project, text: str, env=None) -> list[str]:
    project.write("eil.toml", text)
    with pytest.raises(ConfigError) as info:
        load_project_settings(project.root, env=env or {})
    assert info.value.shown.endswith("eil.toml")
    return [f"{k}: {m}" if k else m for k, m in info.value.problems]


def test_no_eil_toml_means_defaults(project):
    settings = load_project_settings(project.root, env={})
    assert settings == ProjectSettings()
    assert settings.smtp is None
    assert settings.delivery.max_attempts == 8
    assert settings.delivery.retry_delay == timedelta(minutes=1)


def test_settings_with_env_and_defaults(project):
    project.write(
        "eil.toml",
        """
        [smtp]
        host = "${SMTP_HOST:-smtp.example.com}"
        sender = "Reports <reports@example.com>"
        username = "${SMTP_USER}"
        password = "${SMTP_PASSWORD}"
        [delivery]
        failure_recipient = "bi-team@example.com"
        report_base_url = "https://bi.example.com/reports/"
        max_attempts = 3
        retry_delay = "30s"
        """,
    )
    settings = load_project_settings(project.root, env={"SMTP_USER": "u1", "SMTP_PASSWORD": "pw"})
    smtp = settings.smtp
    assert (smtp.host, smtp.effective_port, smtp.use_starttls, smtp.tls) == (
        "smtp.example.com",
        587,
        True,
        False,
    )
    assert (smtp.username, smtp.password, smtp.sender_address) == (
        "u1",
        "pw",
        "reports@example.com",
    )
    assert settings.delivery.report_base_url == "https://bi.example.com/reports"
    assert settings.delivery.retry_delay == timedelta(seconds=30)
    assert settings.secrets() == ["u1", "pw"]


def test_implicit_tls_defaults_to_port_465(project):
    project.write("eil.toml", '[smtp]\nhost = "h"\nsender = "a@example.com"\ntls = true\n')
    smtp = load_project_settings(project.root, env={}).smtp
    assert (smtp.effective_port, smtp.use_starttls) == (465, False)


def test_every_settings_problem_at_once(project):
    assert settings_problems(
        project,
        """
        [smtp]
        hots = "smtp.example.com"
        port = "587"
        sender = "not an address"
        starttls = true
        tls = true
        [delivery]
        max_attempts = 0
        report_base_url = "bi.example.com"
        retry_delay = "soon"
        """,
    ) == [
        "smtp.host: required key is missing",
        'smtp.port: expected an integer, got string "587"',
        'smtp.sender: expected an address such as "reports@example.com" or '
        '"Reports <reports@example.com>"',
        'smtp.hots: unknown key "hots"; did you mean "host"?',
        "delivery.report_base_url: expected an http:// or https:// URL",
        "delivery.max_attempts: must be at least 1, got integer 0",
        'delivery.retry_delay: invalid duration "soon": expected a number and a unit, '
        'such as "90s", "15m", "2h", "1d" or "1h30m"',
    ]


def test_tls_and_starttls_together_are_refused(project):
    assert settings_problems(
        project, '[smtp]\nhost = "h"\nsender = "a@example.com"\ntls = true\nstarttls = true\n'
    ) == [
        'smtp: give "tls" (implicit TLS, usually port 465) or "starttls" (usually port 587), '
        "not both"
    ]


def test_a_literal_password_is_refused_without_echoing_it(project):
    problems = settings_problems(
        project,
        '[smtp]\nhost = "h"\nsender = "a@example.com"\nusername = "me"\npassword = "hunter2!"\n',
    )
    assert problems == [
        'smtp.password: write the password as "${ENV_VAR}" and set that variable: '
        "secrets are never kept in files"
    ]


def test_unset_variables_are_named_not_their_values(project):
    assert settings_problems(
        project,
        '[smtp]\nhost = "h"\nsender = "a@example.com"\n'
        'username = "${SMTP_USER}"\npassword = "${SMTP_PASSWORD}"\n',
    ) == [
        'smtp.username: environment variable "SMTP_USER" is not set',
        'smtp.password: environment variable "SMTP_PASSWORD" is not set',
    ]


def test_a_syntax_error_in_eil_toml(project):
    assert settings_problems(project, "[smtp\n") == [
        "TOML syntax error at line 1, column 6: expected ']' at the end of a table declaration"
    ]


# --- the pipeline file's [[deliver]] and [alert] ---------------------------------------

BASE = 'title = "x"\n[queries.q]\nsql = "SELECT 1 AS x"\n'


def pipeline_problems(project, text: str, env=None) -> list[str]:
    path = project.pipeline("p", text)
    with pytest.raises(ConfigError) as info:
        load_pipeline(path, root=project.root, env=env or {})
    return [f"{k}: {m}" if k else m for k, m in info.value.problems]


def test_deliver_and_alert_references_are_checked(project):
    text = (
        BASE
        + '[[deliver]]\nto = "a@example.com"\nsubject = "{{ run.date }"\nattach = ["pdf", "csv"]\n'
        + '[[deliver]]\nwebhook = "${HOOK}"\n'
        + '[[deliver]]\nwebhook = "ftp://files.example.com/secret-token"\n'
        + '[alert]\nquery = "qq"\nnotify = "ops@example.com"\nsubject = "{% if %}"\n'
    )
    assert pipeline_problems(project, text) == [
        'deliver[1].webhook: environment variable "HOOK" is not set',
        'alert.query: no query named "qq"; did you mean "q"? (queries defined: q)',
        "alert.subject: template syntax error: Expected an expression, got 'end of statement "
        "block'",
        "deliver[0].subject: template syntax error: unexpected '}'",
        'deliver[0].attach: "pdf" is not written by this pipeline: add it to report.formats',
        'deliver[0].attach: "csv" is not written by this pipeline: add it to report.exports',
        "deliver[2].webhook: expected an http:// or https:// URL",
    ]


def test_deliver_needs_exactly_one_target_and_valid_addresses(project):
    text = BASE + '[[deliver]]\nsubject = "s"\n[[deliver]]\nto = ["not-an-address"]\n'
    assert pipeline_problems(project, text) == [
        'deliver[0]: give exactly one of "to" or "webhook" (got neither)',
        'deliver[1].to[0]: expected an email address such as "name@example.com", '
        'got string "not-an-address"',
    ]


def test_webhook_from_the_environment(project):
    path = project.pipeline("p", BASE + '[[deliver]]\nwebhook = "${HOOK}"\n')
    pipeline = load_pipeline(path, root=project.root, env={"HOOK": "https://h.example.com/t/1"})
    assert pipeline.spec.deliver[0].webhook == "https://h.example.com/t/1"
