#!/usr/bin/env bash
# A grpc-go proxyless xDS client (google.golang.org/grpc/xds, pinned in go.mod) finds echo
# servers through Roster with no Roster library: three instances registered with the roster
# CLI get calls spread round robin; a cancelled one and an OUT_OF_SERVICE one get no more; a
# new one does. Stubs come from proto/ by buf with go.mod's pinned protoc-gen-go plugins. Go
# modules and builds are cached in Go's default places (go env GOMODCACHE GOCACHE).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=../lib.sh
source "$here/../lib.sh"
cd "$here"

roster=(node "$ROSTER_REPO/bin/roster.js")
work="$(mktemp -d "${TMPDIR:-/tmp}/roster-xds-go.XXXX")"
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

go version
build_start=$SECONDS
go generate ./...
go vet ./...
go build -o xds-example .
echo "built examples/xds-go in $((SECONDS - build_start)) s"

start_roster xds-go

./xds-example serve e1 e2 e3 e4 >"$work/serve.out" 2>&1 &
pids+=($!)
wait_for_line "$work/serve.out" '^serving e4 ' 20

# register NAME: a roster CLI agent keeps the instance alive until SIGTERM, then cancels it.
declare -A agents
register() {
  local port
  port="$(awk -v n="$1" '$1 == "serving" && $2 == n { print $3 }' "$work/serve.out")"
  "${roster[@]}" register --server "$ROSTER_GRPC" --app echo --id "$1" --ip 127.0.0.1 --port "$port" --zone z1 \
    >"$work/register-$1.out" 2>&1 &
  pids+=($!)
  agents[$1]=$!
}

# expect_calls A,B,...: a fresh client's calls must reach exactly these servers (retried for
# a few seconds while a change propagates).
expect_calls() {
  local deadline=$((SECONDS + 15))
  until GRPC_XDS_BOOTSTRAP="$work/bootstrap.json" ./xds-example call --target xds:///echo --calls 60 --expect "$1" \
    >"$work/call.out" 2>&1; do
    ((SECONDS < deadline)) || fail "a grpc-go xDS client did not reach exactly $1"
    sleep 0.5
  done
  echo "grpc-go over xds:///echo: $(cat "$work/call.out")"
}

"${roster[@]}" xds bootstrap --server "$ROSTER_GRPC" --zone z1 --node-id xds-go-example >"$work/bootstrap.json"
for name in e1 e2 e3; do register "$name"; done
expect_calls e1,e2,e3

kill -TERM "${agents[e2]}" && wait "${agents[e2]}" || fail "the e2 agent did not exit cleanly on SIGTERM"
expect_calls e1,e3

"${roster[@]}" status --server "$ROSTER_GRPC" echo e3 OUT_OF_SERVICE
expect_calls e1

register e4
expect_calls e1,e4

# Bad input is refused with usage errors.
if "${roster[@]}" xds bootstrap --server no-port >/dev/null 2>&1; then fail "bootstrap accepted a server without a port"; fi
echo "examples/xds-go: ok"
