#!/bin/sh
# The container's entry point; it runs the same way outside a container
# (tests/deploy runs it so). Run from the project folder (/srv/eil in the image).
#
#   eil-entrypoint [scheduler [ARGS]]  the scheduler in the foreground (the default;
#                                ARGS: --processes N to use N CPUs, --workers ...)
#   eil-entrypoint serve         the report site on 0.0.0.0:$EIL_PORT (put a proxy in front)
#   eil-entrypoint once [ARGS]   every pipeline once, now (ARGS: --at, --only ...)
#   eil-entrypoint validate      check every pipeline file; exit 2 on any problem
#   eil-entrypoint status [ARGS] the scheduler's health (the image's HEALTHCHECK):
#                                exit 1 when its heartbeat is old (ARGS: --max-age ...)
#   eil-entrypoint COMMAND ...   any other eil-run command (status, list, history ...)
#
# Environment (all optional):
#   EIL_PIPELINES   the pipelines folder (default: pipelines)
#   EIL_REPORTS     the reports folder (default: reports)
#   EIL_PORT        serve's port (default: 8000)
#   EIL_LOG_FORMAT  json (default, one JSON object per line on stderr) or text
#   EIL_LOG_FILE    the scheduler's log file (default: none; the container's log
#                   is stderr)
set -eu

pipelines="${EIL_PIPELINES:-pipelines}"
reports="${EIL_REPORTS:-reports}"
log_format="${EIL_LOG_FORMAT:-json}"

command="${1:-scheduler}"
[ "$#" -gt 0 ] && shift

case "$command" in
scheduler)
    exec eil-run "$pipelines" --reports "$reports" --log-format "$log_format" \
        --log-file "${EIL_LOG_FILE:-none}" "$@"
    ;;
serve)
    exec eil-run serve "$pipelines" --reports "$reports" --host 0.0.0.0 \
        --port "${EIL_PORT:-8000}" "$@"
    ;;
once)
    exec eil-run --once "$pipelines" --reports "$reports" --log-format "$log_format" "$@"
    ;;
validate)
    exec eil-run validate "$pipelines" "$@"
    ;;
status)
    exec eil-run status "$pipelines" --reports "$reports" "$@"
    ;;
-*)
    echo "eil-entrypoint: unknown option $command; try: scheduler, serve, once, validate" >&2
    exit 2
    ;;
*)
    exec eil-run "$command" "$@"
    ;;
esac
