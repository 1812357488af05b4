"""Issue 14's compose file with Postgres (``compose.postgres.yaml``), checked without a
container engine (CI has none): its services statically, then what it wires
together for real: the ``[ledger]`` line the docs give, the runner environment
the file sets, the image's entrypoint and its health check, two runners (the
file's ``replicas: 2``) on a real Postgres.

Skipped without PostgreSQL (and failed under ``CI``), like the source tests.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from multi_helpers import wait_for
from pg_ledger import MARKER, RUNNER_PASSWORD

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "deploy"))

from deploykit import ENTRYPOINT, REPO, health_checks, run, tool_env

_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _compose(name: str) -> dict[str, Any]:
    return yaml.safe_load((REPO / name).read_text(encoding="utf-8"))


def _ledger_snippet() -> str:
    """The ``[ledger]`` table docs/deploy.md tells a compose user to write."""
    text = (REPO / "docs" / "deploy.md").read_text(encoding="utf-8")
    found = re.search(r"```toml\n(\[ledger\]\n[^`]*?EIL_LEDGER_HOST[^`]*?)```", text)
    assert found, "docs/deploy.md gives no [ledger] table for compose.postgres.yaml"
    return found.group(1)


def _ledger(url: str) -> tuple[list[Any], list[Any]]:
    """The runners' heartbeats and every run row, read as the test's own client."""
    from eil_pipelines.ledger.postgres import PostgresLedger

    with PostgresLedger(url, create=False) as ledger:
        return ledger.nodes(), ledger.history(limit=None)


def test_compose_postgres_adds_a_healthy_private_ledger_to_both_services():
    base, over = _compose("compose.yaml"), _compose("compose.postgres.yaml")
    assert set(over["services"]) == {"postgres", "runner", "serve"}
    assert set(over["services"]) - {"postgres"} == set(base["services"])
    postgres = over["services"]["postgres"]
    assert "ports" not in postgres  # reached on compose's network only
    assert postgres["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert "ledger:/var/lib/postgresql/data" in postgres["volumes"]
    assert postgres["environment"]["POSTGRES_PASSWORD"].startswith("${EIL_LEDGER_PASSWORD:?")
    assert "ledger" in over["volumes"]
    for name in ("runner", "serve"):
        service = over["services"][name]
        assert service["depends_on"] == {"postgres": {"condition": "service_healthy"}}
        assert "postgres" in service["build"]["args"]["EXTRAS"].split(",")
        environment = service["environment"]
        # The password is never written here: compose takes it from .env.
        assert environment["EIL_LEDGER_PASSWORD"].startswith("${EIL_LEDGER_PASSWORD:?")
        # Every variable the docs' [ledger] url names is set for the service.
        assert set(_REF.findall(_ledger_snippet())) <= set(environment), environment
    assert over["services"]["runner"]["deploy"]["replicas"] >= 2
    # The file's own comment gives the same [ledger] url as the docs.
    url_line = next(line for line in _ledger_snippet().splitlines() if line.startswith("url"))
    assert f"#   {url_line}" in (REPO / "compose.postgres.yaml").read_text(encoding="utf-8")


def _check_the_status_page(
    project: Path, environment: dict[str, Any], server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ``serve`` service's status page reads the shared ledger, and its "run now"
    reaches a runner through it."""
    from eil_pipelines.web.status import StatusSite

    for key, value in environment.items():
        monkeypatch.setenv(key, str(value))
    site = StatusSite(project / "pipelines", project / "reports", allow_run=True)
    try:
        answer = site.answer_get(["api", "status"])
        assert answer is not None and answer.status == 200
        report = json.loads(answer.body)
        assert len([n for n in report["nodes"] if n["alive"]]) == 2, report["nodes"]
        assert report["pipelines"][0]["last"]["status"] == "succeeded"
        headers = {
            "Host": "127.0.0.1:8000",
            "Origin": "http://127.0.0.1:8000",
            "Accept": "application/json",
        }
        posted = site.answer_post(
            ["status", "tick", "run"], headers, f"csrf={site.csrf}".encode(), "127.0.0.1"
        )
        assert posted.status == 202, posted.body
        request = json.loads(posted.body)["request"]
    finally:
        site.close()

    def taken() -> bool:
        with server.admin() as conn:
            row = conn.execute(
                "SELECT taken_by FROM eil_run_requests WHERE id = %s", (request,)
            ).fetchone()
        assert row is not None, f"run request {request} is not in the ledger"
        return row[0] is not None

    wait_for(taken, "a runner taking the status page's run-now request")


@pytest.mark.slow
def test_two_compose_runners_share_the_postgres_ledger_and_pass_the_health_check(
    ledger_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    ledger_server.wipe()
    project = tmp_path / "project"
    (project / "pipelines").mkdir(parents=True)
    (project / "pipelines" / "tick.toml").write_text(
        'title = "Tick"\n[schedule]\nevery = "2s"\ntimezone = "UTC"\n'
        '[queries.q]\nsql = "SELECT 1 AS x"\n'
    )
    (project / "eil.toml").write_text(_ledger_snippet())
    # The runner's environment as compose.postgres.yaml sets it, with this test
    # server's role, password and address in place of the compose ones.
    environment = dict(_compose("compose.postgres.yaml")["services"]["runner"]["environment"])
    environment.update(
        EIL_LEDGER_USER="eil_runner",
        EIL_LEDGER_PASSWORD=RUNNER_PASSWORD,
        EIL_LEDGER_HOST=f"127.0.0.1:{ledger_server.pg.port}",
    )
    env = tool_env(**{k: str(v) for k, v in environment.items()})
    logs = [project / f"runner{n}.log" for n in (1, 2)]
    processes = []
    try:
        for log in logs:
            with log.open("w") as sink:
                processes.append(
                    subprocess.Popen(
                        ["sh", str(ENTRYPOINT)],
                        cwd=project,
                        env=env,
                        stdout=subprocess.DEVNULL,
                        stderr=sink,
                        stdin=subprocess.DEVNULL,
                        start_new_session=True,
                    )
                )

        def made() -> bool:
            for process, log in zip(processes, logs, strict=True):
                if process.poll() is not None:
                    raise AssertionError(f"a runner exited: {log.read_text()[-3000:]}")
            nodes, history = _ledger(ledger_server.url)
            return len(nodes) == 2 and sum(r.status == "succeeded" for r in history) >= 3

        wait_for(made, "two runners beating and three ticks made")
        # The image's health check (the entrypoint's status), with its defaults.
        health = run(health_checks()[0], project, env)
        assert health.returncode == 0, health.stdout + health.stderr
        # status, list and history read the shared ledger eil.toml names, not a file.
        shown = run(["sh", str(ENTRYPOINT), "status", "--format", "json"], project, env)
        report = json.loads(shown.stdout)
        assert len([n for n in report["nodes"] if n["alive"]]) == 2, report["nodes"]
        assert report["pipelines"][0]["last"]["status"] == "succeeded"
        listed = run(["eil-run", "list", "pipelines", "--format", "json"], project, env)
        # `list` shows the newest row: a tick every 2 s may be running at that moment.
        assert json.loads(listed.stdout)[0]["last_status"] in {"succeeded", "running"}, (
            listed.stdout
        )
        history = run(["eil-run", "history", "pipelines", "--format", "json"], project, env)
        assert {r["status"] for r in json.loads(history.stdout)} >= {"succeeded"}
        for result in (shown, listed, history):
            assert MARKER not in result.stdout + result.stderr
        _check_the_status_page(project, environment, ledger_server, monkeypatch)
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        codes = [process.wait(120) for process in processes]
    assert codes == [0, 0], [log.read_text()[-2000:] for log in logs]
    nodes, final = _ledger(ledger_server.url)
    assert len(nodes) == 2 and all(node.stopped for node in nodes)  # both said goodbye
    keys = Counter((r.pipeline, r.scheduled_at) for r in final)
    assert keys and max(keys.values()) == 1
    assert {r.status for r in final} <= {"succeeded", "skipped"}
    for log in logs:
        text = log.read_text()
        assert MARKER not in text  # the ledger password never reaches the logs
        assert all(json.loads(line) for line in text.splitlines())
