#!/usr/bin/env bash
# The README's inspection examples ("With grpcurl" and "With `buf curl`"), run exactly as
# written (its ```sh ci:grpcurl* and ci:buf-curl blocks) against a node of its own: installs
# grpcurl at the README's pinned version (cached in Go's module and build caches), then checks
# each command's output and exit status. A command added to those blocks fails this script until
# it is checked here too.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
trap 'stop_readme_jobs; stop_rosters' EXIT
cd "$ROSTER_REPO"

# run_checked CMD STATUS REGEX...: runs a README command, fails unless it exits with STATUS and
# its output (stdout and stderr) matches every extended REGEX.
run_checked() {
  local cmd="$1" want="$2" out code=0 pattern
  shift 2
  out="$(readme_run "$cmd" 2>&1)" || code=$?
  for pattern in "$@"; do
    if ! grep -qE -- "$pattern" <<<"$out"; then
      echo "FAIL: no /$pattern/ in the output (exit $code) of: $cmd" >&2
      sed 's/^/  | /' <<<"$out" >&2
      return 1
    fi
  done
  if ((code != want)); then
    echo "FAIL: exit $code, expected $want: $cmd" >&2
    sed 's/^/  | /' <<<"$out" >&2
    return 1
  fi
  echo "ok: exit $code, output as expected: ${cmd:0:100}"
}

# expect_commands TAG PATTERN...: the README block's commands, one per PATTERN, each matching
# its PATTERN in order (so a reordered or added command is reported here, not misread later).
expect_commands() {
  local tag="$1" i
  shift
  mapfile -t CMDS < <(readme_commands "$tag")
  if ((${#CMDS[@]} != $#)); then
    echo "FAIL: README ci:$tag has ${#CMDS[@]} commands, this script checks $#:" >&2
    printf '  %s\n' "${CMDS[@]}" >&2
    return 1
  fi
  for ((i = 1; i <= $#; i++)); do
    if [[ "${CMDS[i - 1]}" != *"${!i}"* ]]; then
      echo "FAIL: README ci:$tag command $i should contain '${!i}': ${CMDS[i - 1]}" >&2
      return 1
    fi
  done
}

printf '\n-- grpcurl: install (README ci:grpcurl-install) --\n'
expect_commands grpcurl-install 'go install github.com/fullstorydev/grpcurl/cmd/grpcurl@v'
started=$SECONDS
readme_run "${CMDS[0]}"
export PATH="$(go env GOPATH)/bin:$PATH"
echo "installed in $((SECONDS - started)) s: $(command -v grpcurl), $(grpcurl -version 2>&1)"

printf '\n-- grpcurl: the README commands against a node (README ci:grpcurl) --\n'
expect_commands grpcurl ' list' 'describe roster.v1.RegistryService' 'describe roster.v1.Instance' \
  'RegistryService/Register' 'RegistryService/GetInstance' 'RegistryService/Heartbeat' \
  'RegistryService/Watch' 'RegistryService/Cancel' 'RegistryService/Heartbeat' 'grpc.health.v1.Health/Check'
start_roster grpcurl
readme_address 127.0.0.1:8761 "$ROSTER_GRPC"
# gRPC health turns SERVING up to a second after "roster started" (it is re-checked every second).
for _ in $(seq 1 50); do
  grpcurl -plaintext "$ROSTER_GRPC" grpc.health.v1.Health/Check 2>/dev/null | grep -q '"SERVING"' && break
  sleep 0.1
done

# `list` prints exactly the services the README shows after it.
expected_list="$(awk '/^```/ { if (inside) exit; if ($1 == "```text" && $2 == "ci:grpcurl-list") inside = 1; next } inside' "$ROSTER_REPO/README.md")"
actual_list="$(readme_run "${CMDS[0]}" | grep -v '^+ ')"
if [[ -z "$expected_list" || "$actual_list" != "$expected_list" ]]; then
  echo "FAIL: grpcurl list differs from the README's block ci:grpcurl-list:" >&2
  diff <(echo "$expected_list") <(echo "$actual_list") >&2 || true
  exit 1
fi
echo "ok: grpcurl list prints the README's $(wc -l <<<"$expected_list") services"
run_checked "${CMDS[1]}" 0 '^roster.v1.RegistryService is a service:' \
  'rpc Register \( \.roster\.v1\.RegisterRequest \) returns \( \.roster\.v1\.RegisterResponse \);' \
  'rpc Heartbeats \( stream \.roster\.v1\.HeartbeatsRequest \) returns \( stream \.roster\.v1\.HeartbeatsResponse \);' \
  'rpc Watch \( \.roster\.v1\.WatchRequest \) returns \( stream \.roster\.v1\.WatchResponse \);'
run_checked "${CMDS[2]}" 0 '^roster.v1.Instance is a message:' 'int64 last_dirty_timestamp = 18;' \
  'map<string, string> metadata = 13;'
run_checked "${CMDS[3]}" 0 '"instanceId": "i-1"' '"status": "INSTANCE_STATUS_UP"' '"version": "1.4.2"' \
  '"renewalIntervalSecs": 30' '"durationSecs": 90' '"revision": "1"'
run_checked "${CMDS[4]}" 0 '"hostName": "billing-1.local"' '"version": "1.4.2"' '"revision": "1"'
run_checked "${CMDS[5]}" 0 '"status": "INSTANCE_STATUS_UP"'

README_JOBS=()
readme_job watch "${CMDS[6]}"
wait_for watch '"progress": true'
run_checked "${CMDS[7]}" 0 '"revision": "2"'
wait_for watch '"type": "CHANGE_TYPE_DELETED"'
wait_for watch '"instanceId": "i-1"'
run_checked "${CMDS[8]}" 69 'Code: NotFound' 'instance billing/i-1 is not registered'
kill -INT "${README_JOBS[0]}"
expect_exit watch "${README_JOBS[0]}" 130 # killed by SIGINT, as by Ctrl-C
run_checked "${CMDS[9]}" 0 '"status": "SERVING"'
stop_rosters

printf '\n-- buf curl: the README commands against a node (README ci:buf-curl) --\n'
expect_commands buf-curl '--list-services' 'RegistryService/Register' 'RegistryService/GetInstance'
start_roster buf-curl
readme_address 127.0.0.1:8761 "$ROSTER_GRPC"
run_checked "${CMDS[0]}" 0 '^grpc.health.v1.Health$' '^roster.v1.RegistryService$' '^roster.v1.ReplicationService$'
run_checked "${CMDS[1]}" 0 '"instanceId": "i-1"' '"status": "INSTANCE_STATUS_UP"' '"revision": "1"'
run_checked "${CMDS[2]}" 0 '"ipAddr": "10.0.0.7"' '"revision": "1"'
printf '\n-- grpcurl and buf curl: passed --\n'
