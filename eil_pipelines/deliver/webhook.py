"""Webhooks: a short JSON summary POSTed with urllib.

Two payloads: ``slack`` (Slack's ``text`` plus Block Kit ``blocks``; Mattermost,
Rocket.Chat and Teams workflows accept the same ``text``) and ``json``, a
generic document for one's own endpoint.  Both carry the title, the headline
metrics with their changes, and a link when ``delivery.report_base_url`` is set.

The URL is a secret (its path is the token): it is never stored or logged,
only its host; see :mod:`eil_pipelines.deliver.redact`.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from .email import SendError
from .redact import redact_url

#: At most this many metrics in a Slack section (Slack's limit is 10 fields).
SLACK_MAX_FIELDS = 10


def _slack_escape(text: str) -> str:
    # Slack's mrkdwn treats &, < and > as control characters.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def metric_line(metric: Any) -> str:
    """``Revenue: $1.24M (▲ +12.4% vs $1.10M)``, from a metric result."""
    line = f"{metric.label}: {metric.text}"
    if getattr(metric, "previous", None) is not None and metric.change_text:
        line += f" ({metric.change_text} vs {metric.previous_text})"
    return line


def slack_payload(
    *, title: str, context: str, metrics: Sequence[Any], link: str | None
) -> dict[str, Any]:
    """A Slack message: a header, one field per metric, a context line with the link."""
    lines = [metric_line(m) for m in metrics]
    text = title + "".join(f"\n• {line}" for line in lines)
    if link:
        text += f"\n{link}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150], "emoji": True}}
    ]
    fields = []
    for metric in metrics[:SLACK_MAX_FIELDS]:
        value = f"*{_slack_escape(metric.label)}*\n{_slack_escape(metric.text)}"
        if getattr(metric, "previous", None) is not None and metric.change_text:
            value += f"  {_slack_escape(metric.change_text)}"
        fields.append({"type": "mrkdwn", "text": value})
    if fields:
        blocks.append({"type": "section", "fields": fields})
    footer = _slack_escape(context)
    if link:
        footer += f" · <{link}|Open the report>"
    if footer:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": footer}]})
    return {"text": text, "blocks": blocks}


def json_payload(
    *,
    event: str,
    pipeline: str,
    title: str,
    subject: str,
    scheduled_at: str,
    stamp: str,
    metrics: Sequence[Any],
    rows: dict[str, int],
    link: str | None,
    message_id: str,
) -> dict[str, Any]:
    """A generic JSON document describing the report (``format = "json"``)."""
    return {
        "id": message_id,
        "event": event,
        "pipeline": pipeline,
        "title": title,
        "subject": subject,
        "scheduled_at": scheduled_at,
        "stamp": stamp,
        "report_url": link,
        "metrics": [
            {
                "label": m.label,
                "value": m.value,
                "previous": m.previous,
                "change_pct": m.change_pct,
                "text": m.text,
                "change_text": m.change_text,
                "sentiment": m.sentiment,
            }
            for m in metrics
        ],
        "rows": dict(rows),
    }


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # urllib would follow a 301-303 as a GET without the body: the message would
    # be lost while the send looked fine.  A redirect is reported instead.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def post_json(url: str, body: bytes, *, timeout: float, idempotency_key: str) -> int:
    """POST ``body`` (JSON) to ``url``; return the 2xx status.

    Raises :class:`SendError` for any other status, a refused connection or
    no answer within ``timeout`` seconds; the message names the host only.
    ``Idempotency-Key`` lets a receiver drop a copy sent again after a crash.
    """
    shown = f"webhook {redact_url(url)}"
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "eil-pipelines",
            "Idempotency-Key": idempotency_key,
        },
    )
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            status = response.status
            response.read(65536)  # let the server finish; the answer itself is not used
    except urllib.error.HTTPError as exc:
        exc.close()
        raise SendError(f"{shown} answered HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, ConnectionRefusedError):
            raise SendError(f"{shown} refused the connection") from None
        if isinstance(reason, TimeoutError):
            raise SendError(f"{shown} did not answer within {timeout:g}s") from None
        raise SendError(f"{shown}: {getattr(reason, 'strerror', None) or reason}") from None
    except TimeoutError:
        raise SendError(f"{shown} did not answer within {timeout:g}s") from None
    except OSError as exc:
        raise SendError(f"{shown}: {exc.strerror or exc}") from None
    if not 200 <= status < 300:
        raise SendError(f"{shown} answered HTTP {status}")
    return status


def encode(payload: dict[str, Any]) -> bytes:
    """A payload as compact UTF-8 JSON."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
