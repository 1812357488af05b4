"""Growth tables for the file watcher and ``validate``: costs that must not grow with the files.

Run from anywhere::

    python benchmarks/bench_watch_validate.py [--only watch,validate] [--seconds 20]
        [--sizes 10,100,1000] [--old SRC]

Sections:

* ``watch``: an idle scheduler (loop and watcher threads running, nothing
  due) over N pipelines, each with its own SQL file, for ``--seconds``
  seconds: the process's CPU time, printed per minute.  Then the watcher's
  poll alone, new (``FileWatcher.changed``, averaged over a minute of polls,
  so with inotify it includes the one full stat pass a minute) against the
  old snapshot (glob, ``resolve()`` and stat of every pipeline, SQL and
  template file, copied below as it was), per poll and per minute at one
  poll a second.  ``EIL_WATCH=poll`` measures the polling fallback.
* ``validate``: ``eil-run validate`` as a command, on N copies of the
  example pipelines (a third with a custom template, a third with SQL
  files): cold (no cache file) and warm (the cache file from the cold run),
  wall and CPU time.  With ``--old SRC`` (a source tree of an older version,
  for example ``git archive 01bf50a | tar -x -C /tmp/old``) it runs that
  version's ``validate`` too, and prints the ratios.  Target: 1,000 files
  in at most 1 s.

This is a benchmark, not a test: nothing imports it.  The machine's load
shows in every figure; compare ratios on a busy machine.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from eil_pipelines.app.service import SchedulerService  # noqa: E402
from eil_pipelines.app.watch import FULL_CHECK_EVERY  # noqa: E402
from eil_pipelines.spec.loader import pipeline_files  # noqa: E402

IDLE_PIPELINE = """title = "Idle {i}"
[schedule]
cron = "0 3 * * *"
timezone = "UTC"
[queries.q]
file = "sql/p{i:04d}.sql"
"""


def idle_project(root: Path, count: int) -> Path:
    """``count`` pipelines due at 03:00, each naming its own SQL file."""
    (root / "pipelines").mkdir(parents=True)
    (root / "sql").mkdir()
    for i in range(count):
        (root / "pipelines" / f"p{i:04d}.toml").write_text(IDLE_PIPELINE.format(i=i))
        (root / "sql" / f"p{i:04d}.sql").write_text(f"SELECT {i} AS x")
    age(root)
    return root / "pipelines"


def age(root: Path) -> None:
    """Date every file back an hour, as files are between edits: a file written
    within the last two seconds is racy (compared by content, never cached)."""
    then = time.time() - 3600
    for path in [root, *root.rglob("*")]:
        os.utime(path, (then, then))


def example_project(root: Path, count: int) -> Path:
    """``count`` copies of the example pipelines, with the examples' SQL, templates and data."""
    (root / "pipelines").mkdir(parents=True)
    for folder in ("sql", "templates", "data"):
        if (REPO / folder).is_dir():
            shutil.copytree(REPO / folder, root / folder)
    examples = sorted((REPO / "pipelines").glob("*.toml"))
    names = [e.stem for e in examples]
    for i in range(count):
        source = examples[i % len(examples)]
        text = source.read_text()
        base = i - i % len(examples)
        # A copy waits for the copies of its own group (`after` names pipelines).
        for k, name in enumerate(names):
            if base + k < count:
                text = text.replace(f'"{name}"', f'"p{base + k:04d}_{name}"')
        (root / "pipelines" / f"p{i:04d}_{source.name}").write_text(text)
    age(root)
    return root / "pipelines"


def old_snapshot(service: SchedulerService) -> dict[Path, tuple[int, int]]:
    """The watcher's poll before this change (service._take_snapshot at 01bf50a)."""
    files: set[Path] = set()
    with contextlib.suppress(Exception):
        files.update(pipeline_files(service.path))
    for loaded in service._loaded.values():
        pipeline = loaded.pipeline
        files.update(pipeline.resolve(q.file) for q in pipeline.spec.queries.values() if q.file)
        if pipeline.template_path is not None:
            files.add(pipeline.template_path)
    snapshot = {}
    for file in files:
        try:
            stat = file.stat()
        except OSError:
            continue
        snapshot[file] = (stat.st_mtime_ns, stat.st_size)
    return snapshot


def cpu() -> float:
    """This process's CPU time (every thread), in seconds."""
    return time.process_time()


def bench_watch(sizes: list[int], seconds: float) -> None:
    print(f"\n## Idle scheduler: CPU per minute (measured over {seconds:g} s, poll every 1 s)")
    print(
        f"{'pipelines':>9}  {'watcher':>7}  {'idle daemon':>12}  {'new poll':>10}  {'old poll':>10}  "
        f"{'new/min':>9}  {'old/min':>9}  {'old/new':>7}"
    )
    for count in sizes:
        with tempfile.TemporaryDirectory(prefix="eil-watch-") as temp:
            path = idle_project(Path(temp), count)
            service = SchedulerService(
                path, reports_dir=Path(temp) / "reports", chart_processes=0, reload_interval=1.0
            )
            service.start(watch=True, loop=True)
            try:
                time.sleep(1.5)  # past the first poll
                start = cpu()
                time.sleep(seconds)
                idle = (cpu() - start) / seconds * 60 * 1000
                assert not service.check_files(), "nothing changed, nothing may reload"
                mode = service._files.mode
                # A minute of polls: with inotify, one of them is the full stat pass.
                rounds = FULL_CHECK_EVERY
                start = cpu()
                for _ in range(rounds):
                    service._files.changed()
                new_poll = (cpu() - start) / rounds * 1000
                rounds = 10
                start = cpu()
                for _ in range(rounds):
                    old_snapshot(service)
                old_poll = (cpu() - start) / rounds * 1000
            finally:
                service.stop(grace=5)
        print(
            f"{count:>9}  {mode:>7}  {idle:>9.0f} ms  {new_poll:>7.2f} ms  {old_poll:>7.2f} ms  "
            f"{new_poll * 60:>6.0f} ms  {old_poll * 60:>6.0f} ms  {old_poll / new_poll:>6.1f}x"
        )


def run_validate(path: Path, cache: Path | None, source: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one ``validate`` of ``path`` with ``source``'s code."""
    env = dict(os.environ, PYTHONPATH=str(source))
    env["EIL_CACHE_DIR"] = str(cache) if cache is not None else ""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "eil_pipelines", "validate", str(path)],
        env=env,
        capture_output=True,
        text=True,
        cwd=path.parent,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"validate failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, used


def bench_validate(sizes: list[int], old: Path | None) -> None:
    print("\n## eil-run validate (a command, start-up included): wall / CPU seconds")
    header = f"{'files':>6}  {'cold':>13}  {'warm':>13}  {'warm ms/file':>12}"
    if old is not None:
        header += f"  {'old':>13}  {'old/warm':>8}"
    print(header)
    for count in sizes:
        with tempfile.TemporaryDirectory(prefix="eil-validate-") as temp:
            path = example_project(Path(temp), count)
            cache = Path(temp) / "cache"
            cold = run_validate(path, cache, REPO)
            warm = min((run_validate(path, cache, REPO) for _ in range(2)), key=lambda r: r[1])
            line = (
                f"{count:>6}  {cold[0]:>5.2f} / {cold[1]:>5.2f}  {warm[0]:>5.2f} / {warm[1]:>5.2f}"
                f"  {warm[1] / count * 1000:>12.2f}"
            )
            if old is not None:
                before = run_validate(path, None, old)
                line += f"  {before[0]:>5.2f} / {before[1]:>5.2f}  {before[1] / warm[1]:>7.1f}x"
        print(line)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="watch,validate", help="sections: watch,validate")
    parser.add_argument("--seconds", type=float, default=20.0, help="idle time measured per size")
    parser.add_argument("--sizes", default="10,100,1000", help="numbers of pipelines")
    parser.add_argument("--old", type=Path, help="a source tree of an older version to compare")
    options = parser.parse_args(argv)
    sizes = [int(s) for s in options.sizes.split(",")]
    sections = set(options.only.split(","))
    print(f"machine load: {os.getloadavg()[0]:.1f} (1 min average) on {os.cpu_count()} CPUs")
    if "watch" in sections:
        bench_watch(sizes, options.seconds)
    if "validate" in sections:
        bench_validate(sizes, options.old)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
