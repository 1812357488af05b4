"""Validation is total: whatever ``eil-run validate`` accepts, every command can run.

Two slow tests, both in-process through :func:`eil_pipelines.cli.main` (the
commands as a user runs them, without a subprocess per call):

* a property test: schedule sections generated within and around the
  documented bounds (docs/pipeline-file.md); each one that validates is
  listed, explained, run once and given a next fire time, with no internal
  error;
* a bounded fuzz: the example pipelines (``pipelines/*.toml``) mutated line by
  line (deleted, duplicated, values replaced with random TOML values) with a
  fixed seed; every command exits 0-3 and never prints "internal error".
"""

from __future__ import annotations

import contextlib
import gc
import io
import random
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from eil_pipelines.cli import main

REPO = Path(__file__).resolve().parent.parent
ALLOWED_EXITS = {0, 1, 2, 3}


def run(*args: str) -> tuple[int, str]:
    """``eil-run ARGS`` in-process: the exit status and everything it printed."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue() + err.getvalue()


def assert_no_internal_error(code: int, output: str, what: str) -> None:
    assert code in ALLOWED_EXITS, f"{what}: exit {code}\n{output}"
    assert "internal error" not in output, f"{what}:\n{output}"
    assert "Traceback" not in output, f"{what}:\n{output}"


@pytest.fixture(autouse=True)
def _keep_gc_thresholds():
    """``--once`` raises the collector's thresholds for its short life; put them back."""
    thresholds = gc.get_threshold()
    yield
    gc.set_threshold(*thresholds)


# ------------------------------------------------------------------------ property test

DURATION_UNITS = ["ms", "s", "m", "h", "d", "w"]
# Values at each key's bounds (docs/pipeline-file.md), and just past them.
AT_BOUNDS = {
    "every": ["1s", "2s", "90s", "15m", "1h", "1d", "1w", "366d"],
    "retry_delay": ["1s", "5m", "1d"],
    "timeout": ["1s", "10m", "7d"],
    "jitter": ["1ms", "30s", "1d"],
}
PAST_BOUNDS = ["0s", "1ms", "999ms", "2d", "8d", "367d", "3000000d", "99999999999d"]


@st.composite
def durations(draw, key: str) -> str:
    """Mostly values within ``key``'s bounds, so most specs validate; else around them."""
    kind = draw(st.integers(0, 5))
    if kind <= 3:
        return draw(st.sampled_from(AT_BOUNDS[key]))
    if kind == 4:
        return draw(st.sampled_from(PAST_BOUNDS))
    return f"{draw(st.integers(0, 10_000))}{draw(st.sampled_from(DURATION_UNITS))}"


def sometimes(draw) -> bool:
    return draw(st.integers(0, 3)) == 0


ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Pacific/Chatham",
    "Mars/Olympus",
    "Europe",
    "../etc",
    "A" * 300,
]
CRONS = [
    "0 7 * * *",
    "*/5 * * * *",
    "0 0 29 2 *",
    "0 0 L * *",
    "0 9 * * 1#5",
    "@yearly",
    "0 25 * * *",
]
YEARS = [1, 1899, 1900, 1970, 2026, 9000, 9001, 9999]


@st.composite
def schedules(draw) -> str:
    """A ``[schedule]`` table: one kind of trigger, options within and around their bounds."""
    lines = []
    kind = draw(st.sampled_from(["cron", "every", "daily"]))
    if kind == "cron":
        lines.append(f'cron = "{draw(st.sampled_from(CRONS))}"')
    elif kind == "every":
        lines.append(f'every = "{draw(durations("every"))}"')
        if sometimes(draw):
            year = draw(st.sampled_from(YEARS))
            lines.append(f"start = {year:04d}-01-01T00:00:00")
    else:
        lines.append(f'daily = ["{draw(st.integers(0, 23)):02d}:{draw(st.integers(0, 59)):02d}"]')
    if draw(st.booleans()):
        lines.append(f'timezone = "{draw(st.sampled_from(ZONES))}"')
    for key in ("retry_delay", "timeout", "jitter"):
        if sometimes(draw):
            lines.append(f'{key} = "{draw(durations(key))}"')
    if sometimes(draw):
        lines.append(f"retries = {draw(st.integers(-1, 12))}")
    if sometimes(draw):
        lines.append('catch_up = "all"')
        lines.append(f"max_catch_up = {draw(st.integers(0, 1200))}")
    lines.append(f'period = "{draw(st.sampled_from(["interval", "day", "week", "month"]))}"')
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def prop_project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("prop")
    (root / "pipelines").mkdir()
    return root


@pytest.mark.slow
@settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    schedule=schedules(),
    at=st.sampled_from(["1900-01-01T00:00", "2026-03-29T02:30", "9000-12-31T23:59"]),
)
def test_any_spec_that_validates_can_be_scheduled_listed_explained_and_run(
    prop_project, schedule, at
):
    from eil_pipelines.run.context import pipeline_trigger
    from eil_pipelines.spec import load_pipeline

    file = prop_project / "pipelines" / "p.toml"
    file.write_text(
        f'title = "P"\n[schedule]\n{schedule}[queries.q]\nsql = "SELECT 1 AS x"\n',
        encoding="utf-8",
    )
    code, output = run("validate", str(file))
    assert_no_internal_error(code, output, "validate")
    if code != 0:
        event("invalid")  # --hypothesis-show-statistics shows the share
        assert code == 2 and "p.toml: schedule" in output, output
        return
    event("valid")
    trigger = pipeline_trigger(load_pipeline(file))
    now = datetime.now(UTC)
    assert trigger.next_fire(now) > now
    reports = str(prop_project / "reports")
    for args in (
        ("list", str(file), "--reports", reports),
        ("explain", str(file)),
        ("explain", str(file), "--from", at, "--format", "json"),
        ("--once", str(file), "--reports", reports, "--workers", "1"),
        ("--once", str(file), "--reports", reports, "--workers", "1", "--at", at),
    ):
        code, output = run(*args)
        assert_no_internal_error(code, output, " ".join(args))
        assert code == 0, f"{' '.join(args)}:\n{output}"


# ------------------------------------------------------------------------------ fuzzing

RANDOM_VALUES = [
    "0",
    "-1",
    "99999999999999999999",
    "1e308",
    "nan",
    "inf",
    "true",
    '""',
    '"x"',
    '"1ms"',
    '"3000000d"',
    '"99999999999d"',
    f'"{"A" * 300}"',
    '"Europe/Berlin"',
    '"0 25 * * *"',
    '"../../../etc/passwd"',
    '"{{ x"',
    "[]",
    "[1, 2]",
    '["08:00", "25:00"]',
    "{}",
    "{ a = 1 }",
    "0001-01-01T00:00:00",
    "9999-12-31",
    "23:59:59",
    '"\\u0000"',
    "'''\nmulti\n'''",
]


def mutate(text: str, rng: random.Random) -> str:
    """One to three line mutations: delete, duplicate, or replace a value."""
    lines = text.splitlines()
    for _ in range(rng.randint(1, 3)):
        if not lines:
            break
        index = rng.randrange(len(lines))
        action = rng.choice(["delete", "duplicate", "replace", "replace", "replace"])
        line = lines[index]
        if action == "delete":
            del lines[index]
        elif action == "duplicate":
            lines.insert(rng.randrange(len(lines) + 1), line)
        elif "=" in line and not line.lstrip().startswith("#"):
            key = line.split("=", 1)[0]
            lines[index] = f"{key}= {rng.choice(RANDOM_VALUES)}"
        else:
            lines[index] = (
                f"{rng.choice(['title', 'every', 'timezone', 'x'])} = {rng.choice(RANDOM_VALUES)}"
            )
    return "\n".join(lines) + "\n"


@pytest.mark.slow
def test_fuzzed_example_files_never_cause_an_internal_error(tmp_path):
    for folder in ("data", "sql", "templates"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    pipelines = tmp_path / "pipelines"
    pipelines.mkdir()
    examples = sorted((REPO / "pipelines").glob("*.toml"))
    texts = [(p.name, p.read_text(encoding="utf-8")) for p in examples]
    rng = random.Random(20261207)
    reports = str(tmp_path / "reports")
    failures: list[str] = []
    counts = {"mutants": 0, "valid": 0, "ran": 0}
    for number in range(300):
        name, text = rng.choice(texts)
        file = pipelines / name
        for other in pipelines.glob("*.toml"):
            other.unlink()
        file.write_text(mutate(text, rng), encoding="utf-8")
        counts["mutants"] += 1
        commands = [("validate", str(file))]
        code, output = run(*commands[0])
        if code == 0:
            counts["valid"] += 1
            commands = [("list", str(file), "--reports", reports), ("explain", str(file))]
            # Running a report costs up to a second: every fifth valid mutant runs once.
            if counts["valid"] % 5 == 1:
                counts["ran"] += 1
                commands.append(("--once", str(file), "--reports", reports, "--workers", "1"))
            results = [(c, *run(*c)) for c in commands]
        else:
            results = [(commands[0], code, output)]
        for args, code, output in results:
            if code not in ALLOWED_EXITS or "internal error" in output or "Traceback" in output:
                failures.append(
                    f"mutant {number} of {name}: {' '.join(args)}: exit {code}\n{output}"
                )
    assert not failures, f"{len(failures)} internal errors:\n" + "\n\n".join(failures[:5])
    # The fuzz must exercise the commands past validate, or it proves little.
    assert counts["valid"] >= 30 and counts["ran"] >= 6, counts
