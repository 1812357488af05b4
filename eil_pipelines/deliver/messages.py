"""Rendering the messages of one run: reports, alerts, failure and recovery notices.

Everything here turns what a run produced (its files, metrics, row counts)
into :class:`~eil_pipelines.ledger.NewDelivery` rows whose payload is the
message exactly as it will go on the wire.  Nothing is sent and nothing is
read from the clock: the time comes in as ``now``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote
from zoneinfo import ZoneInfo

from jinja2.exceptions import SecurityError, TemplateError, UndefinedError

from ..errors import RenderError
from ..ledger import NewDelivery
from ..render import create_environment
from ..spec.loader import Pipeline
from ..spec.models import AlertSpec, DeliverSpec
from ..spec.project import ProjectSettings
from .email import ATTACHMENT_TYPES, Attachment, build_message, message_id
from .html import email_document, html_text, markdown_text, report_fragment, swap_charts
from .redact import Redactor, redact_url, webhook_target
from .webhook import encode, json_payload, metric_line, slack_payload

#: Rows of an alert's findings shown in its message.
ALERT_MAX_ROWS = 50


class RunContextLike(Protocol):
    """What messages read of a run's context: a :class:`~eil_pipelines.run.context.RunContext`
    (``deliver`` sits beside ``run``, not above it, so it names the shape, not the class)."""

    @property
    def scheduled_at(self) -> datetime:
        """The fire time (aware)."""

    @property
    def zone(self) -> ZoneInfo:
        """The pipeline's zone."""

    @property
    def stamp(self) -> str:
        """The report's file stamp."""

    @property
    def attempt(self) -> int:
        """The attempt this run is."""

    def template_run(self) -> dict[str, Any]:
        """The ``run`` variable templates see."""


class RunResultLike(Protocol):
    """What messages read of a finished run: a :class:`~eil_pipelines.run.pipeline.RunResult`."""

    @property
    def status(self) -> str:
        """``succeeded``, ``failed`` …"""

    @property
    def error(self) -> str | None:
        """The failure message."""

    @property
    def files(self) -> Sequence[Path]:
        """Every file the run wrote."""

    @property
    def metrics(self) -> Sequence[Any]:
        """The run's metric results."""


@dataclass(frozen=True)
class RunFacts:
    """What the messages of one run are made from."""

    pipeline: Pipeline
    """The pipeline as it ran."""
    ctx: RunContextLike
    """Its :class:`~eil_pipelines.run.context.RunContext`."""
    status: str
    """``succeeded``, ``failed``, ``timed_out`` …"""
    error: str | None = None
    """The failure message (redacted before use)."""
    files: Sequence[Path] = ()
    """Every file the run wrote."""
    metrics: Sequence[Any] = ()
    """The run's metric results."""
    row_counts: dict[str, int] = field(default_factory=dict)
    """Rows per query."""
    alert_data: Any = None
    """The alert query's DataFrame, when the pipeline has an ``[alert]``."""
    attempt: int = 1
    """The attempt that produced this outcome."""

    @classmethod
    def from_result(
        cls,
        pipeline: Pipeline,
        ctx: RunContextLike,
        result: RunResultLike,
        *,
        status: str | None = None,
        error: str | None = None,
    ) -> RunFacts:
        """From a :class:`~eil_pipelines.run.pipeline.RunResult`; ``status`` and
        ``error`` override the result's (the scheduler turns a stopped run into
        ``timed_out``)."""
        return cls(
            pipeline=pipeline,
            ctx=ctx,
            status=status or result.status,
            error=error if error is not None else result.error,
            files=list(result.files),
            metrics=list(result.metrics),
            row_counts=dict(getattr(result, "row_counts", {}) or {}),
            alert_data=getattr(result, "alert_data", None),
            attempt=ctx.attempt,
        )

    @property
    def stamp(self) -> str:
        """The report's file stamp."""
        return self.ctx.stamp

    @property
    def scheduled_text(self) -> str:
        """The scheduled time in the pipeline's zone, for people."""
        local = self.ctx.scheduled_at.astimezone(self.ctx.zone)
        return f"{local:%Y-%m-%d %H:%M} {self.ctx.zone.key}"

    def document(self, fmt: str) -> Path | None:
        """The dated report file of format ``fmt`` that the run wrote, if any."""
        name = f"{self.stamp}.{fmt}"
        return next((f for f in self.files if Path(f).name == name), None)

    def charts(self) -> dict[str, bytes]:
        """Chart PNGs the run wrote, by chart name."""
        folder = f"{self.stamp}_charts"
        out = {}
        for file in self.files:
            path = Path(file)
            if path.parent.name == folder and path.suffix == ".png" and path.exists():
                out[path.stem] = path.read_bytes()
        return out

    def attachment_files(self, fmt: str) -> list[Path]:
        """Files to attach for an ``attach`` entry: the dated report, or every export of ``fmt``."""
        if fmt in ("md", "html", "pdf"):
            found = self.document(fmt)
            return [Path(found)] if found else []
        return [
            Path(f)
            for f in self.files
            if Path(f).suffix == f".{fmt}" and not Path(f).name.startswith("latest.")
        ]

    def template_context(self) -> dict[str, Any]:
        """What a ``subject`` template sees."""
        spec = self.pipeline.spec
        return {
            "pipeline": {
                "name": self.pipeline.name,
                "title": spec.title,
                "description": spec.description,
            },
            "run": self.ctx.template_run(),
            "params": dict(spec.params),
            "metrics": list(self.metrics),
            "rows": dict(self.row_counts),
            "status": self.status,
        }


def render_subject(text: str, context: dict[str, Any], *, name: str) -> str:
    """Render a ``subject`` template in the report sandbox; one line of text.

    Raises :class:`RenderError` naming ``name`` (``deliver[0].subject``).
    """

    env = create_environment("md")
    try:
        rendered = env.from_string(text).render(context)
    except UndefinedError as exc:
        raise RenderError(name, f"undefined template variable: {exc.message}") from None
    except SecurityError as exc:
        raise RenderError(name, f"sandbox violation: {exc.message}") from None
    except TemplateError as exc:
        raise RenderError(name, f"template error: {exc.message}") from None
    except Exception as exc:
        raise RenderError(name, f"error while rendering: {type(exc).__name__}: {exc}") from None
    return " ".join(rendered.split())


def data_hash(facts: RunFacts) -> str | None:
    """SHA-256 of what the run computed, for ``when = "changed"``: each query's result
    hash and the parameters, from the run's manifest; ``None`` without a manifest.

    Dates printed in the report do not enter it, so a report whose data did not
    change counts as unchanged even though its text did.
    """
    name = f"{facts.stamp}.json"
    path = next((Path(f) for f in facts.files if Path(f).name == name), None)
    if path is None or not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        queries = {q: r.get("result_sha256") for q, r in manifest["queries"].items()}
    except (OSError, ValueError, KeyError, AttributeError):
        return None
    basis = {"queries": queries, "params": manifest.get("params", {})}
    text = json.dumps(basis, sort_keys=True, separators=(",", ":"))
    # "data:" keeps a data hash from ever equalling a text hash stored before.
    return "data:" + hashlib.sha256(text.encode()).hexdigest()


def content_hash(facts: RunFacts, when: str = "changed_text") -> str | None:
    """The hash ``when = "changed"`` compares: of the data (:func:`data_hash`) for
    ``changed``, else SHA-256 of the report (the Markdown, else the HTML)."""
    if when == "changed":
        digest = data_hash(facts)
        if digest is not None:
            return digest
    for fmt in ("md", "html"):
        path = facts.document(fmt)
        if path is not None and Path(path).exists():
            return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return None


def report_link(settings: ProjectSettings, facts: RunFacts) -> str | None:
    """``<report_base_url>/<pipeline>/<stamp>.html`` (or .pdf, .md), when a base URL is set."""
    base = settings.delivery.report_base_url
    if not base:
        return None
    for fmt in ("html", "pdf", "md"):
        if facts.document(fmt) is not None:
            return f"{base}/{quote(facts.pipeline.name)}/{quote(facts.stamp)}.{fmt}"
    return None


def outbox_key(pipeline: str, scheduled_at: datetime, kind: str, target: str) -> str:
    """The idempotency key as text (for Message-IDs and ``Idempotency-Key``)."""
    return f"{pipeline}|{scheduled_at.isoformat()}|{kind}|{target}"


class Composer:
    """Renders a run's messages into outbox rows."""

    def __init__(self, settings: ProjectSettings, redactor: Redactor, *, now: datetime):
        self.settings = settings
        self.redact = redactor
        self.now = now

    @property
    def max_attempts(self) -> int:
        """Attempts each new row gets."""
        return self.settings.delivery.max_attempts

    # -- reports ---------------------------------------------------------------------

    def report(self, facts: RunFacts, index: int, spec: DeliverSpec) -> list[NewDelivery]:
        """The rows of ``[[deliver]]`` number ``index``: one per email recipient, or
        one for the webhook.  ``when = "not_empty"`` gives skipped rows when every
        query returned nothing; ``changed`` is decided when they are queued."""
        targets = self._targets(spec)
        if spec.when == "not_empty" and facts.row_counts and not any(facts.row_counts.values()):
            return [
                self._row(
                    "report", channel, target, shown, None, None, status="skipped", error=NOT_EMPTY
                )
                for channel, target, shown, _ in targets
            ]
        key = f"deliver[{index}].subject"
        try:
            subject = render_subject(spec.subject, facts.template_context(), name=key)
        except RenderError as exc:
            return [
                self._row(
                    "report",
                    channel,
                    target,
                    shown,
                    None,
                    None,
                    status="gave_up",
                    error=self.redact(f"not sent: {exc}"),
                )
                for channel, target, shown, _ in targets
            ]
        digest = content_hash(facts, spec.when)
        if spec.webhook is not None:
            (channel, target, shown, _url) = targets[0]
            body = self._webhook_body(facts, spec, subject, target)
            return [self._row("report", channel, target, shown, subject, body, digest=digest)]
        return self._report_emails(facts, spec, subject, digest, targets)

    def _targets(self, spec: DeliverSpec) -> list[tuple[str, str, str, str]]:
        if spec.webhook is not None:
            url = spec.webhook
            return [("webhook", webhook_target(url), redact_url(url), url)]
        return [("email", a.lower(), a, a) for a in dict.fromkeys(spec.to or [])]

    def _webhook_body(self, facts: RunFacts, spec: DeliverSpec, subject: str, target: str) -> bytes:
        link = report_link(self.settings, facts)
        if spec.format == "json":
            return encode(
                json_payload(
                    event="report",
                    pipeline=facts.pipeline.name,
                    title=facts.pipeline.spec.title,
                    subject=subject,
                    scheduled_at=facts.ctx.scheduled_at.isoformat(),
                    stamp=facts.stamp,
                    metrics=facts.metrics,
                    rows=facts.row_counts,
                    link=link,
                    message_id=outbox_key(
                        facts.pipeline.name, facts.ctx.scheduled_at, "report", target
                    ),
                )
            )
        return encode(
            slack_payload(
                title=subject,
                context=f"{facts.pipeline.name} · {facts.scheduled_text}",
                metrics=facts.metrics,
                link=link,
            )
        )

    def _report_emails(
        self,
        facts: RunFacts,
        spec: DeliverSpec,
        subject: str,
        digest: str | None,
        targets: list[tuple[str, str, str, str]],
    ) -> list[NewDelivery]:
        smtp = self.settings.smtp
        if smtp is None:
            return [
                self._row(
                    "report", "email", target, shown, subject, None, status="gave_up", error=NO_SMTP
                )
                for _, target, shown, _ in targets
            ]
        html, text, images = self.report_body(facts)
        attachments = self.attachments(facts, spec.attach)
        rows = []
        for _, target, shown, address in targets:
            payload = build_message(
                sender=smtp.sender,
                recipient=address,
                subject=subject,
                text=text,
                html=html,
                images=images,
                attachments=attachments,
                msg_id=message_id(
                    outbox_key(facts.pipeline.name, facts.ctx.scheduled_at, "report", target),
                    smtp.sender_address,
                ),
                date=self.now,
                pipeline=facts.pipeline.name,
            )
            rows.append(
                self._row("report", "email", target, shown, subject, payload, digest=digest)
            )
        return rows

    def report_body(self, facts: RunFacts) -> tuple[str, str, list[Any]]:
        """The report as (HTML email body, plain text, inline chart images)."""
        html_path, md_path = facts.document("html"), facts.document("md")
        html_doc = Path(html_path).read_text(encoding="utf-8") if html_path else None
        md = Path(md_path).read_text(encoding="utf-8") if md_path else None
        link = report_link(self.settings, facts)
        footer = (
            f"{facts.pipeline.spec.title} · pipeline {facts.pipeline.name} · "
            f"run scheduled {facts.scheduled_text} · sent by eil-pipelines"
        )
        if html_doc is None and md is None:
            # A PDF-only pipeline: the body is the headline figures, the PDF is attached.
            fragment = self._summary_fragment(facts)
            images: list[Any] = []
        else:
            fragment = report_fragment(html_document=html_doc, markdown=md)
            fragment, images = swap_charts(fragment, facts.charts(), stamp=facts.stamp)
        html = email_document(
            title=facts.pipeline.spec.title, fragment=fragment, link=link, footer=footer
        )
        text = markdown_text(md) if md is not None else html_text(fragment)
        if link:
            text += f"\nView this report online: {link}\n"
        text += f"\n-- \n{footer}\n"
        return html, text, images

    def _summary_fragment(self, facts: RunFacts) -> str:
        items = "".join(f"<li>{escape(metric_line(m))}</li>" for m in facts.metrics)
        return (
            f"<h1>{escape(facts.pipeline.spec.title)}</h1>\n"
            + (f"<ul>{items}</ul>\n" if items else "")
            + "<p>The report is attached.</p>"
        )

    def attachments(self, facts: RunFacts, formats: Sequence[str]) -> list[Attachment]:
        """The files ``attach`` names, read now (a later run may replace them)."""
        out = []
        for fmt in formats:
            maintype, subtype = ATTACHMENT_TYPES[fmt]
            for path in facts.attachment_files(fmt):
                if fmt in ("md", "html", "pdf"):
                    filename = f"{facts.pipeline.name}-{facts.stamp}.{fmt}"
                else:
                    filename = f"{facts.pipeline.name}-{facts.stamp}-{path.name}"
                out.append(Attachment(filename, path.read_bytes(), maintype, subtype))
        return out

    # -- alerts and notices ---------------------------------------------------------

    def alert(
        self, facts: RunFacts, spec: AlertSpec, *, cleared: bool, since: str | None = None
    ) -> list[NewDelivery]:
        """The alert message to each ``notify`` address: it fires, or it cleared."""
        frame = facts.alert_data
        count = len(frame) if frame is not None else 0
        context = {**facts.template_context(), "findings": count}
        try:
            subject = render_subject(spec.subject, context, name="alert.subject")
        except RenderError as exc:
            subject = f"Alert: {facts.pipeline.spec.title}"
            problem = self.redact(str(exc))
        else:
            problem = None
        kind = "alert_cleared" if cleared else "alert"
        title = f"{subject} – cleared" if cleared else subject
        if cleared:
            body = (
                f"<h1>{escape(title)}</h1>\n<p>The query <code>{escape(spec.query)}</code> "
                f"returned no rows in the run scheduled {escape(facts.scheduled_text)}: the alert "
                "has cleared"
                + (f" (it started with the run scheduled {escape(since)})" if since else "")
                + ".</p>"
            )
        else:
            noun = "finding" if count == 1 else "findings"
            table_html = frame_table_html(frame, ALERT_MAX_ROWS) if frame is not None else ""
            body = (
                f"<h1>{escape(title)}</h1>\n<p>{count} {noun} from the query "
                f"<code>{escape(spec.query)}</code> in the run scheduled "
                f"{escape(facts.scheduled_text)}.</p>\n{table_html}"
            )
            if spec.mode == "on_change":
                body += "\n<p>You will get one message when it clears, none while it lasts.</p>"
        if problem:
            body += f"\n<p>(The configured subject could not be rendered: {escape(problem)})</p>"
        return self._notice(facts, kind, spec.notify, title, body)

    def failure(self, facts: RunFacts, recipient: str) -> list[NewDelivery]:
        """The one message that says a pipeline failed (after its retries)."""
        title = f"Failed: {facts.pipeline.spec.title}"
        attempts = f"{facts.attempt} attempt{'s' if facts.attempt != 1 else ''}"
        status = facts.status.replace("_", " ")
        error = self.redact(facts.error or "no error message") or ""
        body = (
            f"<h1>{escape(title)}</h1>\n<p>The run of pipeline <code>{escape(facts.pipeline.name)}"
            f"</code> scheduled {escape(facts.scheduled_text)} {escape(status)} after "
            f"{attempts}:</p>\n<pre>{escape(error)}</pre>\n"
            "<p>No further message comes while it keeps failing; one comes when it succeeds "
            "again.  Its runs: <code>eil-run history "
            f"{escape(facts.pipeline.display_path)}</code></p>"
        )
        return self._notice(facts, "failure", [recipient], title, body)

    def recovery(self, facts: RunFacts, recipient: str, since: str | None) -> list[NewDelivery]:
        """The one message that says a failing pipeline succeeded again."""
        title = f"Recovered: {facts.pipeline.spec.title}"
        body = (
            f"<h1>{escape(title)}</h1>\n<p>The run of pipeline <code>"
            f"{escape(facts.pipeline.name)}</code> scheduled {escape(facts.scheduled_text)} "
            "succeeded"
            + (f"; it had been failing since the run scheduled {escape(since)}" if since else "")
            + ".</p>"
        )
        return self._notice(facts, "recovery", [recipient], title, body)

    def _notice(
        self, facts: RunFacts, kind: str, recipients: Sequence[str], title: str, body: str
    ) -> list[NewDelivery]:
        smtp = self.settings.smtp
        link = report_link(self.settings, facts) if kind != "failure" else None
        footer = f"pipeline {facts.pipeline.name} · sent by eil-pipelines"
        html = email_document(title=title, fragment=body, link=link, footer=footer)
        text = html_text(body) + (f"\n{link}\n" if link else "") + f"\n-- \n{footer}\n"
        rows = []
        for address in dict.fromkeys(recipients):
            target = address.lower()
            if smtp is None:
                rows.append(
                    self._row(
                        kind, "email", target, address, title, None, status="gave_up", error=NO_SMTP
                    )
                )
                continue
            payload = build_message(
                sender=smtp.sender,
                recipient=address,
                subject=title,
                text=text,
                html=html,
                msg_id=message_id(
                    outbox_key(facts.pipeline.name, facts.ctx.scheduled_at, kind, target),
                    smtp.sender_address,
                ),
                date=self.now,
                pipeline=facts.pipeline.name,
            )
            rows.append(self._row(kind, "email", target, address, title, payload))
        return rows

    def _row(
        self,
        kind: str,
        channel: str,
        target: str,
        recipient: str,
        subject: str | None,
        payload: bytes | None,
        *,
        digest: str | None = None,
        status: str = "pending",
        error: str | None = None,
    ) -> NewDelivery:
        return NewDelivery(
            kind=kind,
            channel=channel,
            target=target,
            recipient=recipient,
            subject=subject,
            payload=payload,
            content_hash=digest,
            status=status,
            error=error,
            max_attempts=self.max_attempts,
        )


#: Why a ``when = "not_empty"`` delivery was skipped.
NOT_EMPTY = 'not sent: every query returned no rows (when = "not_empty")'

#: The error of an email row when eil.toml has no [smtp].
NO_SMTP = "not sent: no SMTP server is configured (add an [smtp] table to eil.toml)"


def frame_table_html(frame: Any, max_rows: int) -> str:
    """The first ``max_rows`` rows of a DataFrame as an escaped HTML table."""
    columns = [str(c) for c in frame.columns]
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = []
    for row in frame.head(max_rows).itertuples(index=False):
        cells = "".join(f"<td>{escape(_cell(v))}</td>" for v in row)
        body.append(f"<tr>{cells}</tr>")
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    if len(frame) > max_rows:
        table += f'\n<p class="table-note">{len(frame) - max_rows} more rows not shown.</p>'
    return table


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    try:
        import pandas as pd

        if value is pd.NaT or (not isinstance(value, str) and bool(pd.isna(value))):
            return ""
    except (TypeError, ValueError):
        pass
    return str(value)
