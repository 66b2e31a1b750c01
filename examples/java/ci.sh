#!/usr/bin/env bash
# Builds the Java client (grpc-java stubs generated from proto/ by Maven, cached in ~/.m2) and
# runs it against a real node: it registers, a CLI Watch sees it, it sees a CLI-registered
# instance on its own Watch, it heartbeats on the Heartbeats stream (through an operator
# override and the NOT_FOUND → register-again path), and it cancels on SIGINT.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=../lib.sh
source "$here/../lib.sh"
cd "$here"

# An array, not a function: a backgrounded function is a subshell, and $! would not be node.
roster=(node "$ROSTER_REPO/bin/roster.js")

work="$(mktemp -d "${TMPDIR:-/tmp}/roster-java.XXXX")"
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

# wait_for FILE REGEX SECONDS: until a line of FILE matches (bounded in time).
wait_for() {
  local deadline=$((SECONDS + $3))
  until grep -Eq -- "$2" "$1" 2>/dev/null; do
    ((SECONDS < deadline)) || fail "no line matching '$2' in $1 within $3 s"
    sleep 0.2
  done
}

echo "building examples/java (mvn -B -q package)"
build_start=$SECONDS
mvn -B -q -Dstyle.color=never package
echo "built target/roster-java-client.jar in $((SECONDS - build_start)) s"

start_roster java-example

# Another language's Watch, from revision 0 so it cannot miss the registration.
"${roster[@]}" watch --server "$ROSTER_GRPC" billing --json --since 0 >"$work/cli-watch.out" 2>&1 &
pids+=($!)

# Background jobs of a non-interactive shell ignore SIGINT, and the JVM keeps it ignored:
# give the client SIGINT's default back so Ctrl-C behaves as it would in a terminal.
env --default-signal=INT java -jar target/roster-java-client.jar \
  --server "$ROSTER_GRPC" --app billing --id java-1 --port 8080 \
  --renew-secs 1 --duration-secs 10 >"$work/java.out" 2>&1 &
java_pid=$!
pids+=("$java_pid")

wait_for "$work/java.out" '^registered billing/java-1 status=UP' 30
wait_for "$work/java.out" '^watch ADDED billing/java-1 status=UP' 20
wait_for "$work/cli-watch.out" '"type":"CHANGE_TYPE_ADDED","instance":\{"app":"billing","instanceId":"java-1"' 20
"${roster[@]}" get --server "$ROSTER_GRPC" billing java-1 --json >"$work/get.out" || fail "roster get billing java-1 failed"
grep -q '"language":"java"' "$work/get.out" || fail "the stored record lacks the client's metadata"
echo "ok: registered, seen by the CLI's Watch and by roster get"

wait_for "$work/java.out" '^heartbeat batch=2 OK status=UP' 20
echo "ok: heartbeats on the Heartbeats stream"

# The client's own Watch sees an instance registered by another client.
"${roster[@]}" register --server "$ROSTER_GRPC" --app billing --id cli-1 --port 9000 --renew-secs 1 --duration-secs 10 >"$work/cli-register.out" 2>&1 &
cli_pid=$!
pids+=("$cli_pid")
wait_for "$work/java.out" '^watch ADDED billing/cli-1 status=UP' 20
kill -TERM "$cli_pid"
wait "$cli_pid" || fail "roster register exited $? on SIGTERM"
wait_for "$work/java.out" '^watch DELETED billing/cli-1' 20
echo "ok: the Java Watch saw cli-1 come and go"

# An operator override shows in heartbeat answers; clearing it makes the status UNKNOWN, the
# next heartbeat answers NOT_FOUND and the client registers again with its real status.
"${roster[@]}" status --server "$ROSTER_GRPC" billing java-1 OUT_OF_SERVICE >/dev/null
wait_for "$work/java.out" '^heartbeat batch=[0-9]+ OK status=OUT_OF_SERVICE' 20
"${roster[@]}" status --server "$ROSTER_GRPC" billing java-1 --clear >/dev/null
wait_for "$work/java.out" '^heartbeat batch=[0-9]+ NOT_FOUND: registering again' 20
wait_for "$work/java.out" '^watch MODIFIED billing/java-1 status=UP' 20
[[ "$(grep -c '^registered billing/java-1 status=UP' "$work/java.out")" -eq 2 ]] ||
  fail "expected exactly two registrations"
echo "ok: override seen, NOT_FOUND answered by registering again"

# Ctrl-C: the shutdown hook cancels the registration; the JVM exits 130 (128 + SIGINT).
kill -INT "$java_pid"
set +e
wait "$java_pid"
java_rc=$?
set -e
[[ "$java_rc" -eq 130 ]] || fail "the client exited $java_rc on SIGINT, expected 130"
grep -q '^cancelled billing/java-1$' "$work/java.out" || fail "the client did not cancel"
wait_for "$work/cli-watch.out" '"type":"CHANGE_TYPE_DELETED","instance":\{"app":"billing","instanceId":"java-1"' 20
set +e
"${roster[@]}" get --server "$ROSTER_GRPC" billing java-1 >"$work/get-after.out" 2>&1
get_rc=$?
set -e
[[ "$get_rc" -eq 3 ]] && grep -q 'not found' "$work/get-after.out" ||
  fail "java-1 is still registered after the client stopped (roster get exited $get_rc)"
echo "ok: SIGINT cancelled the registration (exit 130, DELETED on the CLI's Watch, roster get: not found, exit 3)"

echo "examples/java: all checks passed"
