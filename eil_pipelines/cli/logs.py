"""Logging for the commands that log: text or JSON lines on stderr, the daemon's log file.

``--log-format json`` writes one JSON object per line (``ts``, ``level``,
``logger``, ``message``, and ``pipeline``/``run_id``/``scheduled_at``/``attempt``
when the line is about a run), which journald and container log drivers keep
as they are.  Every handler passes through a filter that replaces the
project's secrets (``eil.toml``'s passwords and connection URLs), so a secret
quoted by a driver's error never reaches a log line or file.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

#: Fields a run's log lines carry (``extra=`` of the logging call), copied into JSON.
RUN_FIELDS = ("pipeline", "run_id", "scheduled_at", "attempt", "status")

#: The text format of the console and the log file.
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
DAEMON_TEXT_FORMAT = "%(asctime)s %(levelname)s %(message)s"


def add_log_options(parser: argparse.ArgumentParser, *, log_file: bool = False) -> None:
    """``-v``, ``--log-format`` and (for the scheduler) ``--log-file``."""
    parser.add_argument("-v", "--verbose", action="store_true", help="log each step")
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="json: one JSON object per line on stderr (ts, level, logger, message, and the "
        "pipeline and run fields), for journald and containers (default: text)",
    )
    if log_file:
        parser.add_argument(
            "--log-file",
            metavar="FILE",
            help="scheduler: also log to FILE, rotated at 5 MB (default: REPORTS/.eil/"
            "scheduler.log); 'none' logs to stderr only",
        )


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line; UTC timestamps with milliseconds
    (and ``process``, a supervised scheduler process's number, on every line)."""

    def __init__(self, process: int | None = None) -> None:
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line (a traceback, if any, goes in ``exc``)."""
        moment = datetime.fromtimestamp(record.created, UTC)
        row: dict[str, object] = {
            "ts": moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self.process is not None:
            row["process"] = self.process
        for field in RUN_FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                row[field] = value
        if record.exc_info:
            row["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:  # redacted by RedactFilter
            row["exc"] = record.exc_text
        return json.dumps(row, ensure_ascii=False, default=str)


class RedactFilter(logging.Filter):
    """Replaces known secret values in a record's message (and drops its args)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        """Always keeps the record; rewrites it when it holds a secret."""
        if not self.secrets:
            return True
        message = record.getMessage()
        clean = message
        for secret in self.secrets:
            clean = clean.replace(secret, "[redacted]")
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            for secret in self.secrets:
                text = text.replace(secret, "[redacted]")
            record.exc_info, record.exc_text = None, text
        return True


def formatter(fmt: str, text_format: str = TEXT_FORMAT) -> logging.Formatter:
    """The formatter ``--log-format`` names."""
    return JsonFormatter() if fmt == "json" else logging.Formatter(text_format)


def configure_logging(verbose: bool, fmt: str = "text") -> None:
    """Log to stderr: warnings, or every step with ``--verbose``; text or JSON lines."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter(fmt))


def configure_daemon_logging(
    fmt: str, log_file: Path | None, secrets: Iterable[str], *, process: int | None = None
) -> None:
    """The scheduler's logging: INFO to stderr and to ``log_file`` (unless ``None``),
    in ``fmt``, every line through a :class:`RedactFilter` of ``secrets``; ``process``
    (a supervised process's number) marks each line, as processes share stderr."""
    mark = "" if process is None else f"[process {process}] "
    text_format = DAEMON_TEXT_FORMAT.replace("%(message)s", f"{mark}%(message)s")
    redact = RedactFilter(secrets)
    handlers = list(logging.getLogger().handlers)
    if log_file is not None:
        from logging.handlers import RotatingFileHandler

        log_file.parent.mkdir(parents=True, exist_ok=True)
        file_handler = RotatingFileHandler(
            log_file, maxBytes=5_000_000, backupCount=5, encoding="utf-8"
        )
        logging.getLogger("eil_pipelines").addHandler(file_handler)
        handlers.append(file_handler)
    for handler in handlers:
        handler.setLevel(logging.INFO)
        handler.setFormatter(
            JsonFormatter(process) if fmt == "json" else formatter(fmt, text_format)
        )
        handler.addFilter(redact)
    logging.getLogger("eil_pipelines").setLevel(logging.INFO)


def log_file_for(option: str | None, reports: Path, default: Path) -> Path | None:
    """``--log-file``: ``None`` for ``none``, the default under the reports folder when
    not given, else the path given (relative to the working folder)."""
    if option is None:
        return reports / default
    if option.strip().lower() == "none":
        return None
    return Path(option).resolve()
