"""Retention: ``keep = N`` keeps the newest N reports of a pipeline and deletes the rest.

A report is everything one stamp owns: ``<stamp>.md|html|pdf|json``, the PNGs
in ``<stamp>_charts/`` and the exports in ``<stamp>_data/``.  Only those
names are ever deleted (see :func:`~eil_pipelines.outputs.report_files.owned_files`);
a file the reports did not write stays, and so does the folder holding it.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from .report_files import report_stamps, stamp_files

log = logging.getLogger("eil_pipelines.outputs")


def apply_retention(pipeline_dir: Path, keep: int, *, protect: str | None = None) -> list[Path]:
    """Delete every report of ``pipeline_dir`` but the newest ``keep``, by stamp; return what went.

    Stamps sort in time order (``2026-11-27`` < ``2026-11-27T0700`` <
    ``2026-11-28``).  ``protect`` is the stamp the run just wrote: it is never
    deleted, even when it is older than the newest ``keep`` (a backfill with
    ``--at``), because it may be about to be delivered.  Runs only after a
    successful write; a file that cannot be deleted is logged and left.
    """
    if keep < 1:
        raise ValueError("keep must be at least 1")
    # One listing of the folder; only the reports that go are looked into.
    newest_first = report_stamps(pipeline_dir)[::-1]
    doomed = [stamp for stamp in newest_first[keep:] if stamp != protect]
    deleted: list[Path] = []
    for stamp in doomed:
        for path in stamp_files(pipeline_dir, stamp):
            try:
                path.unlink()
            except FileNotFoundError:
                continue  # another run's retention got there first
            except OSError as exc:
                log.warning("retention: cannot delete %s: %s", path, exc)
                continue
            deleted.append(path)
        for kind in ("charts", "data"):
            with contextlib.suppress(OSError):  # missing, or holds a file we did not write
                (pipeline_dir / f"{stamp}_{kind}").rmdir()
    return deleted
