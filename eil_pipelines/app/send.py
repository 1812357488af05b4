"""``eil-run send PIPELINE_FILE --to ADDRESS``: mail the latest report, for testing.

The message is the one the pipeline's first email ``[[deliver]]`` sends (its
subject and attachments; defaults without one), built from the newest report
on disk and sent at once through eil.toml's ``[smtp]`` server.  It does not go
through the outbox: nothing is recorded, retried or deduplicated, so it can
be repeated, which is the point of a test send.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..deliver.email import SendError, send_email
from ..deliver.messages import Composer, RunFacts
from ..deliver.redact import Redactor
from ..errors import EilError
from ..ledger import Ledger
from ..outputs.stamps import is_stamp, parse_stamp
from ..outputs.store import mirror
from ..run.context import make_context
from ..run.pipeline import utc_now
from ..spec.loader import Pipeline, load_pipeline
from ..spec.models import DeliverSpec
from ..spec.project import load_project_settings
from . import ledger_path
from .storage import report_store

__all__ = ["Sent", "latest_report", "send_latest"]


@dataclass(frozen=True)
class Sent:
    """What happened to one recipient."""

    recipient: str
    """The address."""
    report: Path | None
    """The report document sent (HTML, else Markdown, else PDF)."""
    error: str | None = None
    """Why it was not sent (redacted), or ``None`` when the server took it."""


def send_latest(path: Path, to: Sequence[str], reports: Path) -> list[Sent]:
    """Send the latest report of the pipeline file ``path`` to each address now.

    Raises :class:`EilError` when no SMTP server is configured or there is no
    report; a refused address is a :class:`Sent` with its error.
    """
    pipeline = load_pipeline(path)
    settings = load_project_settings(pipeline.root)
    if settings.smtp is None:
        raise EilError("no SMTP server is configured: add an [smtp] table to eil.toml")
    facts = latest_report(pipeline, reports)
    template = next((d for d in pipeline.spec.deliver if d.to), None)
    spec = DeliverSpec(
        to=list(to),
        subject=template.subject if template else DeliverSpec.model_fields["subject"].default,
        attach=[f for f in (template.attach if template else []) if facts.attachment_files(f)],
    )
    redact = Redactor(settings.secrets(), [d.webhook for d in pipeline.spec.deliver if d.webhook])
    rows = Composer(settings, redact, now=utc_now()).report(facts, 0, spec)
    report = facts.document("html") or facts.document("md") or facts.document("pdf")
    shown = Path(report) if report else None
    out = []
    for row in rows:
        if row.payload is None:
            out.append(Sent(row.recipient, shown, row.error or "could not be built"))
            continue
        try:
            send_email(settings.smtp, row.recipient, row.payload)
        except SendError as exc:
            out.append(Sent(row.recipient, shown, redact(str(exc))))
            continue
        out.append(Sent(row.recipient, shown))
    return out


def latest_report(pipeline: Pipeline, reports: Path) -> Any:
    """The newest report of ``pipeline`` as :class:`~eil_pipelines.deliver.RunFacts`.

    With an object store (``[storage] reports = "s3://..."``), the report its
    ``latest`` pointer names, brought into ``reports/<pipeline>/`` first.
    Else from the run ledger's newest succeeded run whose files still exist;
    else the newest dated report in ``reports/<pipeline>/``.  Raises
    :class:`EilError` when there is none.
    """
    store = report_store(pipeline.root)
    if store is not None:
        mirror(store, reports, pipeline=pipeline.name)
        pointer = store.latest(pipeline.name)
        if pointer is None:
            raise EilError(
                f'no report of pipeline "{pipeline.name}" in {store.url}: run it first '
                f"(eil-run --once {pipeline.display_path})"
            )
        return _facts_of(pipeline, reports / pipeline.name, str(pointer["stamp"]))
    ledger_file = ledger_path(reports)
    if ledger_file.exists():
        # Read-only: sending a report for testing records nothing in the ledger.
        with Ledger(ledger_file, read_only=True) as ledger:
            for record in ledger.history(pipeline=pipeline.name, limit=None):
                files = [Path(f) for f in record.files]
                if record.status == "succeeded" and files and all(f.exists() for f in files):
                    ctx = make_context(pipeline, record.scheduled_at)
                    metrics = (record.summary or {}).get("metrics", [])
                    return RunFacts(pipeline, ctx, "succeeded", files=files, metrics=metrics)
    folder = reports / pipeline.name
    documents = [
        p for p in folder.glob("*.*") if p.suffix in (".md", ".html", ".pdf") and is_stamp(p.stem)
    ]
    if not documents:
        raise EilError(
            f'no report of pipeline "{pipeline.name}" in {folder}: run it first '
            f"(eil-run --once {pipeline.display_path})"
        )
    newest = max(documents, key=lambda p: (p.stat().st_mtime_ns, p.stem))
    return _facts_of(pipeline, folder, newest.stem)


def _facts_of(pipeline: Pipeline, folder: Path, stamp: str) -> Any:
    """The report ``stamp`` of ``folder`` as :class:`~eil_pipelines.deliver.RunFacts`."""
    files = [p for p in folder.glob(f"{stamp}.*")]
    for sub in (f"{stamp}_charts", f"{stamp}_data"):
        files.extend(p for p in (folder / sub).glob("*") if p.is_file())
    if not any(p.suffix in (".md", ".html", ".pdf") for p in files):
        raise EilError(f'the report {stamp} of pipeline "{pipeline.name}" has no document')
    parsed = parse_stamp(stamp)
    if parsed is None:
        raise EilError(f'"{stamp}" is not a report stamp of pipeline "{pipeline.name}"')
    # The file's own stamp, even if the schedule (and so the stamp format) changed since.
    ctx = dataclasses.replace(make_context(pipeline, parsed.moment), stamp=stamp)
    return RunFacts(pipeline, ctx, "succeeded", files=files)
