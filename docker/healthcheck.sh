#!/usr/bin/env bash
# Container health check without curl or wget (the runtime image has neither): one HTTP/1.0 request
# to /health/live over bash's /dev/tcp. Healthy = the status line says 200.
# /health/live, not /health/ready: ready answers 503 while a kind has no default model, and a
# container without models is healthy — it serves the API that imports them.
set -u
port="${ASPNETCORE_HTTP_PORTS:-8080}"
port="${port%%[,;]*}"
exec 3<>"/dev/tcp/127.0.0.1/${port}" || exit 1
printf 'GET /health/live HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
IFS= read -r -t 5 status <&3 || exit 1
exec 3<&-
case "$status" in
  "HTTP/"*" 200 "*) exit 0 ;;
  *) exit 1 ;;
esac
