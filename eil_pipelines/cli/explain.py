"""``eil-run explain PIPELINE_FILE``: a schedule in words, its next fire times and periods."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from ..errors import UsageError
from .common import Parser as _Parser
from .common import load_one
from .exitcodes import EXIT_OK
from .moments import parse_moment

PERIOD_WORDS = {
    "interval": "interval: each run covers the time since the previous fire time",
    "day": "day: each run covers the previous calendar day",
    "week": "week: each run covers the previous ISO week (Monday to Monday)",
    "month": "month: each run covers the previous calendar month",
}


def build_explain_parser() -> argparse.ArgumentParser:
    """The parser for ``eil-run explain PIPELINE_FILE``."""
    parser = _Parser(
        prog="eil-run explain",
        description="Say what a pipeline's schedule does: the schedule in words, the next fire "
        "times in the pipeline's zone and in UTC, the period each run covers, and a warning "
        "where daylight saving moves or merges a run.",
    )
    parser.add_argument("file", metavar="PIPELINE_FILE", help="one pipeline file (.toml)")
    parser.add_argument(
        "--next", type=int, default=5, metavar="N", help="how many fire times (default: 5)"
    )
    parser.add_argument(
        "--from",
        dest="start",
        metavar="DATETIME",
        help="list fire times strictly after this time (default: now); a naive value "
        "(2026-03-29T00:00 or 2026-03-29) is read in the pipeline's zone",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    return parser


def cmd_explain(options: argparse.Namespace) -> int:
    """Print what the schedule does next."""
    from ..run.context import pipeline_trigger, pipeline_zone
    from ..run.explain import next_fire_times

    if options.next < 1:
        raise UsageError("eil-run explain: --next must be at least 1")
    pipeline = load_one(options.file, "explain")
    zone = pipeline_zone(pipeline)
    after = (
        parse_moment(options.start, "--from", "explain", zone)
        if options.start
        else datetime.now(UTC)
    )
    trigger = pipeline_trigger(pipeline)
    schedule = pipeline.spec.schedule
    fires = next_fire_times(pipeline, after, options.next)
    if options.format == "json":
        print(
            json.dumps(
                {
                    "pipeline": pipeline.name,
                    "file": pipeline.display_path,
                    "title": pipeline.spec.title,
                    "enabled": pipeline.spec.enabled,
                    "schedule": trigger.describe() if trigger else None,
                    "timezone": zone.key,
                    "period": schedule.period if schedule else None,
                    "from": after.astimezone(zone).isoformat(),
                    "fires": [
                        {
                            "local": f.at.isoformat(),
                            "utc": f.at.astimezone(UTC).isoformat(),
                            "period_start": f.period_start.isoformat(),
                            "period_end": f.period_end.isoformat(),
                            "warnings": [{"kind": n.kind, "message": n.message} for n in f.notes],
                        }
                        for f in fires
                    ],
                },
                indent=2,
                ensure_ascii=False,
            )
        )
        return EXIT_OK
    state = "" if pipeline.spec.enabled else "  (disabled: the scheduler does not run it)"
    print(f"{pipeline.name}: {pipeline.spec.title}{state}")
    if trigger is None or schedule is None:
        print("  schedule: none: it runs only on demand (eil-run --once)")
        return EXIT_OK
    print(f"  schedule: {trigger.describe()}")
    print(f"  zone:     {zone.key}")
    print(f"  period:   {PERIOD_WORDS[schedule.period]}")
    print()
    print(
        f"Next {len(fires)} fire time{'s' if len(fires) != 1 else ''} after {_local(after, zone)}:"
    )
    for fire in fires:
        utc = fire.at.astimezone(UTC)
        print(
            f"  {_local(fire.at, zone)}   = {utc:%Y-%m-%d %H:%M} UTC"
            f"   covers {_period(fire.period_start, fire.period_end)}"
        )
        for note in fire.notes:
            word = "note" if note.kind == "holiday" else "warning"
            print(f"      {word} ({note.kind}): {note.message}")
    return EXIT_OK


def _local(moment: datetime, zone: ZoneInfo) -> str:
    """``Sun 2026-03-29 03:00 +02:00``: the wall clock and the offset that makes it exact."""
    from ..run.explain import format_offset

    local = moment.astimezone(zone)
    clock = "%H:%M:%S" if local.second else "%H:%M"
    return f"{local:%a %Y-%m-%d} {local.strftime(clock)} {format_offset(local)}"


def _period(start: datetime, end: datetime) -> str:
    """``2026-03-28 00:00 to 2026-03-29 00:00``; with offsets when they differ, since
    the same wall-clock reading can then name two instants."""
    if start.utcoffset() == end.utcoffset():
        return f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M}"
    from ..run.explain import format_offset

    return f"{start:%Y-%m-%d %H:%M} {format_offset(start)} to {end:%Y-%m-%d %H:%M} {format_offset(end)}"
