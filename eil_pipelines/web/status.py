"""The live status pages of ``eil-run serve``: ``/status/``, ``/status/<pipeline>/``,
``/api/status`` and "run now".

Read from the run ledger, opened read-only, and the pipelines folder (parsed
again only when a file changes).  The pages are the report site's style with
one script file of this server's (``/status/status.js``) that polls
``/api/status`` and updates them in place; no inline script, nothing from
elsewhere, so a strict Content-Security-Policy holds.

"Run now" (``POST /status/<pipeline>/run``) never runs anything here: it
stores a request in the ledger (:meth:`~eil_pipelines.ledger.base.LedgerBackend.request_run`)
for the running scheduler to take at its next heartbeat.  It is off unless
``serve --allow-run``, and then allowed

- from a loopback client, with the page's CSRF token (a per-server random
  secret, in each form) and an ``Origin`` (or ``Referer``) of this server,
  reached by a loopback name (``localhost``, ``127.0.0.1``, ``[::1]``); or
- from anywhere with ``Authorization: Bearer <token>``, the ``[serve]
  run_token`` of ``eil.toml`` (``${ENV}``; never logged or shown).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit
from zoneinfo import ZoneInfo

from markupsafe import Markup

from ..app.status import (
    DEFAULT_MAX_AGE,
    PipelineFolder,
    open_status_ledger,
    pipeline_history,
    status_report,
)
from ..errors import ConfigError, EilError
from ..ledger import LedgerBackend, LedgerError
from ..render.environment import render_page
from ..spec.overrides import parse_param_options, with_params

__all__ = ["STATUS_CSP", "Answer", "StatusSite"]

#: The status pages run this server's script and fetch its JSON; nothing else.
STATUS_CSP = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "style-src 'self' 'unsafe-inline'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
#: Longest request body accepted for "run now" (a CSRF token and little else).
MAX_BODY = 4096
#: The page's polling interval, in milliseconds.
DEFAULT_POLL_MS = 5000
#: Runs shown on a pipeline's page.
HISTORY_LIMIT = 100


@dataclass(frozen=True)
class Answer:
    """A response the handler sends as it is."""

    status: HTTPStatus
    content_type: str
    body: bytes
    location: str | None = None


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class StatusSite:
    """The status pages and API of one server: pipelines at ``pipelines``, the
    ledger under ``reports``.

    ``allow_run`` turns "run now" on; ``run_token`` (a secret) lets a client
    that is not on this machine ask, with ``Authorization: Bearer``.
    ``clock`` is what "now" means (tests inject one).
    """

    def __init__(
        self,
        pipelines: Path,
        reports: Path,
        *,
        allow_run: bool = False,
        run_token: str | None = None,
        clock: Callable[[], datetime] | None = None,
        max_age: timedelta = DEFAULT_MAX_AGE,
        poll_ms: int = DEFAULT_POLL_MS,
    ):
        self.pipelines = pipelines
        self.reports = reports
        self.allow_run = allow_run
        self._run_token = run_token or None
        self.clock = clock or (lambda: datetime.now(UTC))
        self.max_age = max_age
        self.poll_ms = poll_ms
        #: The CSRF token of this server's forms: random per start, never stored.
        self.csrf = secrets.token_urlsafe(32)
        # Edits show within a second; between, a request does not even stat the files.
        self.folder = PipelineFolder(pipelines, recheck=1.0)
        self._lock = threading.Lock()
        self._reader: LedgerBackend | None = None
        self._writer: LedgerBackend | None = None

    # -- the ledger ---------------------------------------------------------------------

    def _ledger(self) -> LedgerBackend | None:
        """The ledger opened read-only, once it exists (``None`` before the first run):
        ``[ledger] url`` of the project's ``eil.toml``, else the SQLite file."""
        with self._lock:
            if self._reader is None:
                self._reader = open_status_ledger(self.pipelines, self.reports)
            return self._reader

    def _drop_reader(self) -> None:
        # A ledger that could not be read (an old schema, a file replaced by a
        # restore) is opened afresh at the next request.
        with self._lock:
            reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()

    def close(self) -> None:
        """Close the ledger connections."""
        with self._lock:
            opened = [ledger for ledger in (self._reader, self._writer) if ledger is not None]
            self._reader = self._writer = None
        for ledger in opened:
            ledger.close()

    # -- pages --------------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        """The ``/api/status`` document (docs/status.md)."""
        ledger = None
        try:
            ledger = self._ledger()
        except LedgerError:
            self._drop_reader()
        report = status_report(
            self.pipelines,
            self.reports,
            now=self.clock(),
            max_age=self.max_age,
            ledger=ledger,
            folder=self.folder,
        )
        if report["ledger_error"]:
            self._drop_reader()
        report["run_now"] = self.allow_run
        return report

    def answer_get(self, parts: list[str]) -> Answer | None:
        """The answer to a GET under ``/status/`` or ``/api/``, or ``None`` (a file)."""
        if parts == ["api", "status"]:
            try:
                body = json.dumps(self.report(), separators=(",", ":")).encode("utf-8")
            except EilError as exc:
                return self._json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": str(exc)})
            return Answer(HTTPStatus.OK, "application/json", body)
        if not parts or parts[0] != "status":
            return None
        if parts == ["status", "status.js"]:
            script = resources.files("eil_pipelines.web").joinpath("static", "status.js")
            return Answer(HTTPStatus.OK, "text/javascript; charset=utf-8", script.read_bytes())
        if len(parts) == 1:
            return self._page(lambda report: ("site_status.html.j2", {"message": None}))
        if len(parts) == 2:
            return self._pipeline_page(parts[1])
        return self._not_found()

    def _render(self, template: str, values: dict[str, Any]) -> bytes:
        css = resources.files("eil_pipelines.render").joinpath("site.css").read_text("utf-8")
        html = render_page(
            template,
            {
                "css": Markup(css),
                "poll_ms": self.poll_ms,
                "run": {"allowed": self.allow_run, "csrf": self.csrf},
                **values,
            },
        )
        return html.encode("utf-8")

    def _page(self, choose: Callable[[dict[str, Any]], tuple[str, dict[str, Any]]]) -> Answer:
        try:
            report = self.report()
        except EilError as exc:
            return self._text(HTTPStatus.SERVICE_UNAVAILABLE, f"status: {exc}")
        template, values = choose(report)
        return Answer(
            HTTPStatus.OK,
            "text/html; charset=utf-8",
            self._render(template, {"report": report, **values}),
        )

    def _pipeline_page(self, name: str) -> Answer:
        try:
            report = self.report()
        except EilError as exc:
            return self._text(HTTPStatus.SERVICE_UNAVAILABLE, f"status: {exc}")
        found = next((p for p in report["pipelines"] if p["pipeline"] == name), None)
        if found is None:
            return self._not_found()
        ledger = None
        try:
            ledger = self._ledger()
            history = pipeline_history(self.reports, name, limit=HISTORY_LIMIT, ledger=ledger)
        except LedgerError:
            self._drop_reader()
            history = []
        zone = ZoneInfo(found["timezone"])
        for row in history:
            row["local"] = datetime.fromisoformat(row["scheduled_at"]).astimezone(zone).isoformat()
        body = self._render(
            "site_status_pipeline.html.j2",
            {"report": report, "p": found, "history": history, "params": self._declared(name)},
        )
        return Answer(HTTPStatus.OK, "text/html; charset=utf-8", body)

    # -- run now ------------------------------------------------------------------------

    def answer_post(self, parts: list[str], headers: Any, body: bytes, client: str) -> Answer:
        """``POST /status/<pipeline>/run``: store a run request, or refuse (403, 404)."""
        if len(parts) != 3 or parts[0] != "status" or parts[2] != "run":
            return self._not_found()
        name = parts[1]
        if not self.allow_run:
            return self._text(
                HTTPStatus.FORBIDDEN, "run now is off: start the server with --allow-run"
            )
        requested_by = self._who(headers, body, client)
        if requested_by is None:
            return self._text(
                HTTPStatus.FORBIDDEN,
                "run now refused: ask from this server's status page on this machine, "
                "or with the run token",
            )
        try:
            pipelines, _ = self.folder.load()
        except EilError as exc:
            return self._text(HTTPStatus.SERVICE_UNAVAILABLE, f"status: {exc}")
        found = next((p for p in pipelines if p.name == name), None)
        if found is None:
            return self._not_found()
        params = self._params(found, body)
        if isinstance(params, Answer):
            return params
        try:
            with self._lock:
                if self._writer is None:
                    self._writer = open_status_ledger(
                        self.pipelines, self.reports, write=True, clock=self.clock
                    )
                writer = self._writer
            if writer is None:  # write=True always opens one; this says so to the reader
                raise LedgerError("run now: no run ledger")
            request_id = writer.request_run(name, requested_by=requested_by, params=params)
        except EilError as exc:
            return self._text(HTTPStatus.SERVICE_UNAVAILABLE, f"run now: {exc}")
        if "application/json" in (headers.get("Accept") or ""):
            return self._json(HTTPStatus.ACCEPTED, {"request": request_id, "pipeline": name})
        # Post/redirect/get: back to the pipeline's page, which shows the run once it starts.
        return Answer(
            HTTPStatus.SEE_OTHER,
            "text/plain; charset=utf-8",
            b"run requested\n",
            location=f"/status/{quote(name, safe='')}/",
        )

    def _declared(self, name: str) -> list[tuple[str, str]]:
        """The pipeline's ``[params]`` as (name, the file's value as text), for the
        "run now with other values" form; none when run now is off."""
        if not self.allow_run:
            return []
        try:
            pipelines, _ = self.folder.load()
        except EilError:
            return []
        found = next((p for p in pipelines if p.name == name), None)
        if found is None:
            return []
        return [
            (key, str(value).lower() if isinstance(value, bool) else str(value))
            for key, value in found.spec.params.items()
        ]

    def _params(self, pipeline: Any, body: bytes) -> dict[str, str] | Answer:
        """The ``param=name=value`` fields of the form (as ``--param``), checked
        against the pipeline's ``[params]`` now, so a typo is refused here (400)
        rather than found by the scheduler later; or the refusal."""
        form = parse_qs(body.decode("utf-8", errors="replace"), max_num_fields=60)
        # The page's form has one field per parameter, "param.NAME"; an empty one
        # (dropped by parse_qs) keeps the file's value.
        options = list(form.get("param", []))
        options += [
            f"{key.removeprefix('param.')}={value}"
            for key, values in form.items()
            if key.startswith("param.")
            for value in values
        ]
        try:
            params = parse_param_options(options)
            with_params(pipeline, params)
        except ValueError as exc:
            return self._text(HTTPStatus.BAD_REQUEST, f"run now: {exc}")
        except ConfigError as exc:
            return self._text(HTTPStatus.BAD_REQUEST, f"run now: {exc}")
        return params

    def _who(self, headers: Any, body: bytes, client: str) -> str | None:
        """Who asks, for the ledger ("serve 127.0.0.1", "serve token"), or ``None``: refused."""
        authorization = headers.get("Authorization") or ""
        if authorization.startswith("Bearer ") and self._run_token is not None:
            given = authorization[len("Bearer ") :].strip().encode("utf-8")
            if hmac.compare_digest(given, self._run_token.encode("utf-8")):
                return "serve token"
            return None
        if not _is_loopback(client):
            return None
        form = parse_qs(body.decode("utf-8", errors="replace"), max_num_fields=10)
        token = (form.get("csrf") or [""])[0].encode("utf-8")
        if not hmac.compare_digest(token, self.csrf.encode("utf-8")):
            return None
        if not self._same_origin(headers):
            return None
        return f"serve {client}"

    @staticmethod
    def _same_origin(headers: Any) -> bool:
        """The request comes from a page of this server: its Origin (or, without one,
        its Referer) names the host the request was sent to."""
        host = (headers.get("Host") or "").strip().lower()
        origin = headers.get("Origin")
        source = origin if origin is not None else headers.get("Referer")
        if not host or not source or source == "null":
            return False
        # The page must be this machine's too: a DNS-rebound name (evil.example
        # resolving to 127.0.0.1) would otherwise be its own "same origin".
        name = urlsplit(f"//{host}").hostname or ""
        if name != "localhost" and not _is_loopback(name):
            return False
        parts = urlsplit(source)
        return parts.scheme in ("http", "https") and parts.netloc.lower() == host

    # -- plain answers ------------------------------------------------------------------

    @staticmethod
    def _text(status: HTTPStatus, text: str) -> Answer:
        return Answer(status, "text/plain; charset=utf-8", (text + "\n").encode("utf-8"))

    @staticmethod
    def _json(status: HTTPStatus, value: Any) -> Answer:
        return Answer(status, "application/json", json.dumps(value).encode("utf-8"))

    def _not_found(self) -> Answer:
        return self._text(HTTPStatus.NOT_FOUND, "not found")
