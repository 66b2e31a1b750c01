#!/usr/bin/env bash
# A Python grpcio proxyless xDS client (Debian's python3-grpcio 1.51, xDS built in) finds echo
# servers through Roster with no Roster library: three Python servers that register themselves
# (roster.v1 stubs generated from proto/) get calls spread round robin; one that stops (and
# cancels) and one set OUT_OF_SERVICE get no more; a new one does. Stubs come from Debian's
# protoc and grpc_python_plugin (.ci/apt-packages).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=../lib.sh
source "$here/../lib.sh"
cd "$here"

python=/usr/bin/python3 # Debian's interpreter: the one that sees python3-grpcio
roster=(node "$ROSTER_REPO/bin/roster.js")
work="$(mktemp -d "${TMPDIR:-/tmp}/roster-xds-python.XXXX")"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  stop_rosters
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  for f in "$work"/*.out; do echo "--- $f" >&2; cat "$f" >&2; done
  exit 1
}

"$python" -c 'import grpc; print("grpcio", grpc.__version__)'
rm -rf gen && mkdir -p gen
protoc -Iproto -I"$ROSTER_REPO/proto" --python_out=gen --grpc_out=gen --plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin \
  proto/echo/v1/echo.proto "$ROSTER_REPO/proto/roster/v1/instance.proto" "$ROSTER_REPO/proto/roster/v1/registry_service.proto"

start_roster xds-python

declare -A servers
serve() {
  "$python" echo_server.py --roster "$ROSTER_GRPC" --name "$1" >"$work/server-$1.out" 2>&1 &
  pids+=($!)
  servers[$1]=$!
  wait_for_line "$work/server-$1.out" "^serving $1 " 20
}

expect_calls() {
  local deadline=$((SECONDS + 15))
  until GRPC_XDS_BOOTSTRAP="$work/bootstrap.json" "$python" client.py --expect "$1" >"$work/call.out" 2>&1; do
    ((SECONDS < deadline)) || fail "a grpcio xDS client did not reach exactly $1"
    sleep 0.5
  done
  echo "grpcio over xds:///echo: $(cat "$work/call.out")"
}

"${roster[@]}" xds bootstrap --server "$ROSTER_GRPC" --zone z1 --node-id xds-python-example >"$work/bootstrap.json"
for name in e1 e2 e3; do serve "$name"; done
expect_calls e1,e2,e3

kill -TERM "${servers[e2]}" && wait "${servers[e2]}" || fail "the e2 server did not exit cleanly on SIGTERM"
grep -q '^cancelled e2' "$work/server-e2.out" || fail "e2 did not cancel its registration"
expect_calls e1,e3

"${roster[@]}" status --server "$ROSTER_GRPC" echo e3 OUT_OF_SERVICE
expect_calls e1

serve e4
expect_calls e1,e4
echo "examples/xds-python: ok"
