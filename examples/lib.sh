# Shared by the examples' ci.sh scripts: source it, then `start_roster NAME [serve flags...]`.
# Starts a node from this checkout on free ports, in the background, and sets
# ROSTER_GRPC (host:port), ROSTER_HTTP (host:port) and ROSTER_PID. Nodes are stopped on exit.

ROSTER_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROSTER_PIDS=()

start_roster() {
  local name="$1"
  shift
  local log
  log="$(mktemp "${TMPDIR:-/tmp}/roster-${name}.XXXX.log")"
  node "$ROSTER_REPO/bin/roster.js" serve --node-id "$name" --port 0 --http-port 0 "$@" >"$log" 2>&1 &
  ROSTER_PID=$!
  ROSTER_PIDS+=("$ROSTER_PID")
  local line=""
  for _ in $(seq 1 150); do
    line="$(grep -m1 '"roster started"' "$log" || true)"
    [[ -n "$line" ]] && break
    kill -0 "$ROSTER_PID" 2>/dev/null || break
    sleep 0.1
  done
  if [[ -z "$line" ]]; then
    echo "roster node $name did not start; its log:" >&2
    cat "$log" >&2
    return 1
  fi
  ROSTER_GRPC="127.0.0.1:$(sed -E 's/.*"grpcPort":([0-9]+).*/\1/' <<<"$line")"
  ROSTER_HTTP="127.0.0.1:$(sed -E 's/.*"httpPort":([0-9]+).*/\1/' <<<"$line")"
  export ROSTER_GRPC ROSTER_HTTP ROSTER_PID
  echo "roster node $name: gRPC $ROSTER_GRPC, HTTP $ROSTER_HTTP (pid $ROSTER_PID, log $log)"
}

stop_rosters() {
  for pid in "${ROSTER_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${ROSTER_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  ROSTER_PIDS=()
}
trap stop_rosters EXIT
