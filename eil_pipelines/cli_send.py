"""``eil-run send PIPELINE_FILE --to ADDRESS``: mail the latest report, for testing.

The message is the one the pipeline's first email ``[[deliver]]`` sends (its
subject and attachments; defaults without one), built from the newest report
on disk and sent at once through eil.toml's ``[smtp]`` server.  It does not go
through the outbox: nothing is recorded, retried or deduplicated, so it can
be repeated, which is the point of a test send.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from .cli import EXIT_FAILED, EXIT_OK, UsageError, _Parser
from .errors import EilError

_STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{4}(\d{2})?)?$")


def build_send_parser() -> argparse.ArgumentParser:
    """The parser for ``eil-run send PIPELINE_FILE --to ADDRESS``."""
    parser = _Parser(
        prog="eil-run send",
        description="Send the latest report of one pipeline to ADDRESS now, as its first "
        "email [[deliver]] would (subject, attachments), through the [smtp] server of eil.toml. "
        "For testing: nothing is recorded in the outbox, so it can be repeated.",
    )
    parser.add_argument("path", metavar="PIPELINE_FILE", help="the pipeline file")
    parser.add_argument(
        "--to",
        action="append",
        required=True,
        metavar="ADDRESS",
        help="recipient address (repeatable)",
    )
    parser.add_argument("--reports", metavar="DIR", help="reports folder (default: reports/)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    return parser


def cmd_send(options: argparse.Namespace) -> int:
    """Send the latest report; exit 0 when every address took it, 1 otherwise."""
    from .deliver.email import SendError, send_email
    from .deliver.messages import Composer
    from .deliver.redact import Redactor
    from .spec.loader import load_pipeline, project_root_for
    from .spec.models import EMAIL_PATTERN, DeliverSpec
    from .spec.project import load_project_settings

    path = Path(options.path)
    if not path.is_file():
        raise UsageError(f"eil-run send: {path}: not a pipeline file")
    bad = [a for a in options.to if not re.match(EMAIL_PATTERN, a)]
    if bad:
        raise UsageError(f'eil-run send: --to: "{bad[0]}" is not an email address')
    pipeline = load_pipeline(path)
    settings = load_project_settings(pipeline.root)
    if settings.smtp is None:
        raise EilError("no SMTP server is configured: add an [smtp] table to eil.toml")
    reports = (
        Path(options.reports).resolve() if options.reports else project_root_for(path) / "reports"
    )
    facts = latest_report(pipeline, reports)
    template = next((d for d in pipeline.spec.deliver if d.to), None)
    spec = DeliverSpec(
        to=list(options.to),
        subject=template.subject if template else DeliverSpec.model_fields["subject"].default,
        attach=[f for f in (template.attach if template else []) if facts.attachment_files(f)],
    )
    redact = Redactor(settings.secrets(), [d.webhook for d in pipeline.spec.deliver if d.webhook])
    from .run.pipeline import utc_now

    rows = Composer(settings, redact, now=utc_now()).report(facts, 0, spec)
    report = facts.document("html") or facts.document("md") or facts.document("pdf")
    failed = 0
    for row in rows:
        if row.payload is None:
            print(f"eil-run send: {row.recipient}: {row.error}", file=sys.stderr)
            failed += 1
            continue
        try:
            send_email(settings.smtp, row.recipient, row.payload)
        except SendError as exc:
            print(f"eil-run send: {row.recipient}: {redact(str(exc))}", file=sys.stderr)
            failed += 1
            continue
        print(f"sent {_shown(report)} to {row.recipient}")
    return EXIT_FAILED if failed else EXIT_OK


def _shown(path: Any) -> str:
    from .spec.loader import display_path

    return display_path(Path(path)) if path else "the report"


def latest_report(pipeline: Any, reports: Path) -> Any:
    """The newest report of ``pipeline`` as :class:`~eil_pipelines.deliver.RunFacts`.

    From the run ledger's newest succeeded run whose files still exist; else
    the newest dated report in ``reports/<pipeline>/``.  Raises
    :class:`EilError` when there is none.
    """
    from .deliver.messages import RunFacts
    from .ledger import Ledger
    from .run.context import make_context
    from .run.service import ledger_path

    ledger_file = ledger_path(reports)
    if ledger_file.exists():
        with Ledger(ledger_file) as ledger:
            for record in ledger.history(pipeline=pipeline.name, limit=None):
                files = [Path(f) for f in record.files]
                if record.status == "succeeded" and files and all(f.exists() for f in files):
                    ctx = make_context(pipeline, record.scheduled_at)
                    metrics = (record.summary or {}).get("metrics", [])
                    return RunFacts(pipeline, ctx, "succeeded", files=files, metrics=metrics)
    folder = reports / pipeline.name
    documents = [
        p
        for p in folder.glob("*.*")
        if p.suffix in (".md", ".html", ".pdf") and _STAMP.match(p.stem)
    ]
    if not documents:
        raise EilError(
            f'no report of pipeline "{pipeline.name}" in {folder}: run it first '
            f"(eil-run --once {pipeline.display_path})"
        )
    newest = max(documents, key=lambda p: (p.stat().st_mtime_ns, p.stem))
    stamp = newest.stem
    files = [p for p in folder.glob(f"{stamp}.*")]
    for sub in (f"{stamp}_charts", f"{stamp}_data"):
        files.extend(p for p in (folder / sub).glob("*") if p.is_file())
    moment = datetime.strptime(stamp, _stamp_format(stamp))
    # The file's own stamp, even if the schedule (and so the stamp format) changed since.
    ctx = dataclasses.replace(make_context(pipeline, moment), stamp=stamp)
    return RunFacts(pipeline, ctx, "succeeded", files=files)


def _stamp_format(stamp: str) -> str:
    if len(stamp) == 10:
        return "%Y-%m-%d"
    return "%Y-%m-%dT%H%M" if len(stamp) == 15 else "%Y-%m-%dT%H%M%S"
