"""Chart processes: real child processes, real pipes, real signals.

Each pool here starts real child interpreters (about a second each to load
matplotlib), so the tests share a module-wide pool where they can.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from eil_pipelines.charts.processes import ChartProcesses, default_chart_processes
from eil_pipelines.charts.work import ChartJob, render_job
from eil_pipelines.errors import ChartError
from eil_pipelines.spec.models import ChartSpec

DAYS = pd.date_range("2026-11-01", periods=30, freq="D")
LONG = pd.DataFrame(
    {
        "day": np.repeat(DAYS, 3),
        "region": ["EMEA", "APAC", "AMER"] * len(DAYS),
        "revenue": np.arange(3 * len(DAYS), dtype=float) * 1234.5,
    }
)
REGIONS = pd.DataFrame({"region": ["EMEA", "APAC", "AMER"], "revenue": [30.0, 50.0, -10.0]})


def job(name: str, **kw) -> ChartJob:
    data = kw.pop("data", REGIONS)
    options = {k: kw.pop(k) for k in ("svg", "png", "currency") if k in kw}
    spec = ChartSpec(name=name, query="q", **kw)
    return ChartJob(spec, data, **options)


JOBS = [
    job("trend", type="line", x="day", y="revenue", series="region", data=LONG, format="currency"),
    job("regions", type="bar", x="region", y="revenue", sort="desc", target=25),
    job("share", type="pie", x="region", y="revenue", png=False),
    job("spread", type="barh", x="region", y="revenue", svg=False, currency="€"),
]


@pytest.fixture(scope="module")
def pool():
    with ChartProcesses(2) as processes:
        yield processes


def wait_until(predicate, timeout: float = 120.0) -> bool:
    """Poll ``predicate`` until it holds; the deadline is only reached when a test fails."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting for its parent counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def test_processes_render_the_same_bytes_as_the_runs_thread(pool):
    here = [render_job(j) for j in JOBS]
    there = pool.render(JOBS)
    assert [r.summary for r in there] == [r.summary for r in here]
    for j, a, b in zip(JOBS, here, there, strict=True):
        assert a.svg == b.svg, f"{j.spec.name}: svg differs"
        assert a.png == b.png, f"{j.spec.name}: png differs"
    assert there[0].svg.startswith(b"<svg") and there[0].png.startswith(b"\x89PNG")
    assert there[2].png == b"" and there[3].svg == b""  # only the formats asked for
    assert len(pool.pids) == 2
    assert os.getpid() not in pool.pids


def test_a_bad_chart_raises_its_chart_error_and_the_pool_carries_on(pool):
    bad = job("broken", type="bar", x="store", y="revenue")
    with pytest.raises(ChartError) as caught:
        pool.render([JOBS[1], bad, JOBS[0]])
    assert caught.value.chart == "broken"
    assert 'column "store" (x) is not in' in caught.value.detail
    assert "available columns: region, revenue" in caught.value.detail
    assert pool.render([JOBS[1]])[0] == render_job(JOBS[1])


def test_a_bug_inside_a_chart_process_fails_that_chart_with_its_message(pool):
    nonsense = ChartJob(JOBS[1].spec, data="not a data frame")  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match=r"in a chart process: AttributeError: .*columns"):
        pool.render([nonsense])
    assert len(pool.pids) == 2  # the process lives on


class _CannotBeReceived(pd.DataFrame):
    """A data frame whose pickle fails to load in the chart process."""

    def __reduce__(self):
        return (int, ("not a number",))


def test_a_job_the_process_cannot_receive_fails_that_chart_and_the_process_lives(pool):
    before = pool.pids
    unreadable = ChartJob(JOBS[1].spec, _CannotBeReceived(REGIONS))
    with pytest.raises(RuntimeError, match="in a chart process: ValueError: invalid literal"):
        pool.render([unreadable])
    assert pool.render([JOBS[1]]) == [render_job(JOBS[1])]
    assert pool.pids == before


def test_chart_processes_ignore_interrupts_meant_for_the_terminal(pool):
    before = pool.pids
    for pid in before:
        os.kill(pid, signal.SIGINT)
        os.kill(pid, signal.SIGTERM)
        os.kill(pid, signal.SIGHUP)
    assert pool.render(JOBS[:2]) == [render_job(j) for j in JOBS[:2]]
    assert pool.pids == before


class _DiesWhenUnpickled(pd.DataFrame):
    """A data frame that a chart process cannot receive: unpickling it ends the process."""

    def __reduce__(self):
        return (os._exit, (3,))


def test_a_process_that_dies_mid_chart_is_replaced_and_the_chart_drawn_here(caplog):
    caplog.set_level(logging.WARNING, logger="eil_pipelines")
    deadly = ChartJob(JOBS[1].spec, _DiesWhenUnpickled(REGIONS))
    with ChartProcesses(1) as processes:
        (first,) = processes.render([JOBS[0]])
        (lost_pid,) = processes.pids
        (result,) = processes.render([deadly])
        assert result == render_job(JOBS[1])  # drawn in this thread, nothing lost
        assert f"chart process {lost_pid} stopped (exit status 3)" in caplog.text
        assert 'drawing chart "regions" in the run\'s thread' in caplog.text
        assert processes.render([JOBS[0]]) == [first]
        (new_pid,) = processes.pids
        assert new_pid != lost_pid
        assert not alive(lost_pid)


def test_when_processes_cannot_start_charts_are_drawn_in_the_runs_thread(
    tmp_path, monkeypatch, caplog
):
    # A broken environment: Python exits while starting, before the child says it is ready.
    (tmp_path / "sitecustomize.py").write_text("import os\nos._exit(7)\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    caplog.set_level(logging.WARNING, logger="eil_pipelines")
    with ChartProcesses(2) as processes:
        assert processes.render(JOBS[:3]) == [render_job(j) for j in JOBS[:3]]
        assert processes.render(JOBS[:1]) == [render_job(JOBS[0])]
        assert processes.pids == []
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1, warnings  # said once, not per chart
    assert "a chart process could not start" in warnings[0]
    assert "exit status 7" in warnings[0]
    assert "charts are drawn in the runs' threads instead" in warnings[0]


def test_close_ends_every_process_and_later_charts_are_drawn_here():
    processes = ChartProcesses(2)
    processes.render(JOBS[:2])
    pids = processes.pids
    assert len(pids) == 2
    processes.close()
    assert not any(alive(pid) for pid in pids)
    assert processes.render(JOBS[:1]) == [render_job(JOBS[0])]
    assert processes.pids == []
    processes.close()  # twice is harmless


PARENT = textwrap.dedent(
    """
    import os, signal, sys
    import pandas as pd
    from eil_pipelines.charts.processes import ChartProcesses
    from eil_pipelines.charts.work import ChartJob
    from eil_pipelines.spec.models import ChartSpec

    processes = ChartProcesses(2)
    spec = ChartSpec(name="c", query="q", type="bar", x="k", y="v")
    processes.render([ChartJob(spec, pd.DataFrame({"k": ["a", "b"], "v": [1.0, 2.0]}))] * 2)
    print(*processes.pids, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


@pytest.mark.slow
def test_chart_processes_end_when_their_parent_is_killed():
    parent = subprocess.run(
        [sys.executable, "-c", PARENT], capture_output=True, text=True, timeout=600
    )
    assert parent.returncode == -signal.SIGKILL, parent.stderr
    pids = [int(p) for p in parent.stdout.split()]
    assert len(pids) == 2
    # Each child's watchdog notices within half a second; a loaded machine may take longer.
    assert wait_until(lambda: not any(alive(pid) for pid in pids)), (
        "a chart process outlived its parent"
    )


def test_default_count_is_one_per_cpu_up_to_four_and_none_on_one_cpu():
    assert default_chart_processes(1) == 0
    assert default_chart_processes(2) == 2
    assert default_chart_processes(3) == 3
    assert default_chart_processes(64) == 4
    with pytest.raises(ValueError, match="at least 1, not 0"):
        ChartProcesses(0)


def test_charts_waiting_for_a_process_when_the_pool_closes_are_drawn_here():
    import threading

    slow = job(
        "slow",
        type="scatter",
        x="x",
        y="y",
        data=pd.DataFrame({"x": np.arange(3000.0), "y": np.sin(np.arange(3000.0) / 50)}),
    )
    jobs = [slow, JOBS[1], JOBS[2]]
    processes = ChartProcesses(1)
    out: dict = {}
    worker = threading.Thread(target=lambda: out.update(result=processes.render(jobs)))
    worker.start()
    # Once the one process is up it is drawing the first chart; the others still wait.
    assert wait_until(lambda: bool(processes.pids))
    processes.close()
    worker.join(600)
    assert not worker.is_alive()
    assert out["result"] == [render_job(j) for j in jobs]
    assert processes.pids == []
