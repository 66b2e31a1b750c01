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

# free_ports N: prints N distinct free TCP ports on 127.0.0.1, one a line. They are held
# together while chosen, so they differ; for nodes that must know each other's address before
# they start (--peers), where port 0 cannot be used.
free_ports() {
  node -e '
    const net = require("node:net");
    const servers = Array.from({ length: Number(process.argv[1]) }, () => net.createServer());
    Promise.all(servers.map((s) => new Promise((ok, fail) => s.once("error", fail).listen(0, "127.0.0.1", () => ok(s.address().port)))))
      .then((ports) => { console.log(ports.join("\n")); servers.forEach((s) => s.close()); });
  ' "$1"
}

# wait_ready HOST:PORT: waits (at most 30 s) until a node's /readyz answers 200.
wait_ready() {
  local http="$1"
  for _ in $(seq 1 300); do
    if node -e 'fetch(`http://${process.argv[1]}/readyz`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))' "$http"; then
      return 0
    fi
    sleep 0.1
  done
  echo "roster node at $http is not ready after 30 s" >&2
  return 1
}

# start_roster_cluster N [serve flags...]: N nodes named node-1..node-N that replicate to each
# other (--peers with every address, a shared ROSTER_CLUSTER_TOKEN), each waited on until
# ready. Sets the arrays CLUSTER_GRPC and CLUSTER_HTTP (host:port per node, in order) and
# CLUSTER_PEERS (the --peers list).
start_roster_cluster() {
  local count="$1"
  shift
  local ports peers=() i
  # HTTP ports are chosen with the gRPC ones: with --http-port 0, an early node could take a
  # later node's gRPC port, freed again once chosen.
  mapfile -t ports < <(free_ports "$((2 * count))")
  for ((i = 0; i < count; i++)); do peers+=("127.0.0.1:${ports[i]}"); done
  CLUSTER_PEERS="$(IFS=,; echo "${peers[*]}")"
  CLUSTER_GRPC=()
  CLUSTER_HTTP=()
  export ROSTER_CLUSTER_TOKEN="${ROSTER_CLUSTER_TOKEN:-$(node -e 'console.log(require("node:crypto").randomBytes(24).toString("hex"))')}"
  for ((i = 0; i < count; i++)); do
    start_roster "node-$((i + 1))" --port "${ports[i]}" --http-port "${ports[count + i]}" \
      --peers "$CLUSTER_PEERS" "$@" || return 1
    CLUSTER_GRPC+=("$ROSTER_GRPC")
    CLUSTER_HTTP+=("$ROSTER_HTTP")
  done
  for http in "${CLUSTER_HTTP[@]}"; do wait_ready "$http" || return 1; done
}

# readme_commands TAG: the commands of the README's code blocks fenced as ```sh ci:TAG, in
# order, one a line: `\` continuations joined, comment and blank lines left out. A ci.sh runs
# these, so the README shows exactly what CI runs.
readme_commands() {
  awk -v tag="ci:$1" '
    /^```/ { if (inside) { inside = 0; next } if ($1 == "```sh" && $2 == tag) { inside = 1 } next }
    !inside { next }
    /^[[:space:]]*(#|$)/ { next }
    { line = cont $0 }
    /\\$/ { sub(/[[:space:]]*\\$/, " ", line); cont = line; next }
    { cont = ""; print line }
  ' "$ROSTER_REPO/README.md"
}

# Running the README's commands. readme_address maps an address the README uses to a node's
# real one; readme_run and readme_job run a README command with those addresses put in, and
# with `%N` (a README job number) replaced by the pid of the Nth job readme_job started.
declare -A README_ADDRESSES=()
README_JOBS=()
README_OUT="$(mktemp -d "${TMPDIR:-/tmp}/roster-readme.XXXX")"

readme_address() {
  README_ADDRESSES["$1"]="$2"
}

# readme_expand CMD: prints CMD with README addresses and job numbers replaced.
readme_expand() {
  local cmd="$1" from n
  for from in "${!README_ADDRESSES[@]}"; do cmd="${cmd//"$from"/${README_ADDRESSES[$from]}}"; done
  while [[ "$cmd" =~ %([0-9]+) ]]; do
    n="${BASH_REMATCH[1]}"
    if ((n < 1 || n > ${#README_JOBS[@]})); then
      echo "readme_expand: no job %$n in: $1" >&2
      return 1
    fi
    cmd="${cmd//"%$n"/${README_JOBS[n - 1]}}"
  done
  printf '%s\n' "$cmd"
}

# readme_run CMD: runs a README command in this shell (so `cd` sticks) and returns its status.
readme_run() {
  local cmd
  cmd="$(readme_expand "$1")" || return 1
  echo "+ $cmd"
  eval "$cmd"
}

# readme_job NAME CMD: starts a README command that the README runs in the background
# (`cmd &`) or until Ctrl-C, with stdout and stderr in "$(readme_log NAME)"; it becomes the next
# job number for readme_expand. The program replaces the subshell (exec), so signals reach it.
# CI stops jobs with SIGTERM, never SIGINT: when CI itself was started as a background job, it
# and its children inherit SIGINT ignored, job control does not give it back, and a JVM leaves
# an ignored SIGINT ignored (the Java client would run on).
readme_job() {
  local name="$1" cmd
  cmd="$(readme_expand "$2")" || return 1
  [[ "$cmd" =~ ^(.*[^[:space:]])[[:space:]]*\&[[:space:]]*(#.*)?$ ]] && cmd="${BASH_REMATCH[1]}"
  echo "+ $cmd &    # job %$((${#README_JOBS[@]} + 1)), output in $(readme_log "$name")"
  set -m
  eval "exec $cmd" >"$(readme_log "$name")" 2>&1 &
  README_JOBS+=("$!")
  set +m
}

readme_log() {
  printf '%s/%s.log\n' "$README_OUT" "$1"
}

# wait_for NAME REGEX [COUNT]: waits (at most 30 s) until job NAME's output has COUNT (default
# 1) lines matching the extended REGEX; on timeout, prints the output and fails.
wait_for() {
  local log count
  log="$(readme_log "$1")"
  for _ in $(seq 1 300); do
    count="$(grep -cE -- "$2" "$log" 2>/dev/null || true)"
    ((count >= ${3:-1})) && return 0
    sleep 0.1
  done
  echo "FAIL: $1 printed ${count:-0} of ${3:-1} lines matching /$2/ within 30 s; its output:" >&2
  sed 's/^/  | /' "$log" >&2
  return 1
}

# expect_exit NAME PID CODE: waits (at most 20 s) for a job and fails unless it exited with CODE.
# wait_for_line FILE REGEX SECONDS: until a line of FILE matches, bounded in time; on timeout
# calls the script's own fail (or exits 1 if it has none).
wait_for_line() {
  local deadline=$((SECONDS + $3))
  until grep -Eq -- "$2" "$1" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      if declare -F fail >/dev/null; then fail "no line matching '$2' in $1 within $3 s"; fi
      echo "FAIL: no line matching '$2' in $1 within $3 s" >&2
      exit 1
    fi
    sleep 0.2
  done
}

expect_exit() {
  local name="$1" pid="$2" want="$3" code=0
  for _ in $(seq 1 200); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
    echo "FAIL: $name (pid $pid) still running 20 s after it was asked to stop" >&2
    return 1
  fi
  wait "$pid" || code=$?
  if ((code != want)); then
    echo "FAIL: $name exited $code, expected $want; its output:" >&2
    sed 's/^/  | /' "$(readme_log "$name")" >&2
    return 1
  fi
  echo "ok: $name exited $code"
}

# stop_readme_jobs: ends what readme_job started and is still running (for an EXIT trap).
stop_readme_jobs() {
  local pid
  for pid in "${README_JOBS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
}

# instance_id CMD: the value of a command's -id / --id flag.
instance_id() {
  [[ "$1" =~ [[:space:]]--?id[=[:space:]]+([^[:space:]]+) ]] && printf '%s\n' "${BASH_REMATCH[1]}"
}

# check_compressed_snapshot RUN ID HTTP: the client (README command RUN, instance ID) registers on
# the node, then a second one (ID-z) starts: its snapshot, which the examples read gzip-compressed,
# must list the first, and the node's metrics must count gzip answers (it answers gzip only to a
# request that came compressed).
check_compressed_snapshot() {
  # Logs under names of their own: an earlier run's log of "$id" would satisfy wait_for at once.
  local run="$1" id="$2" http="$3" first="$2-gz" peer="$2-z" gzip_reads
  README_JOBS=()
  readme_job "$first" "$run"
  wait_for "$first" "^registered app=billing id=$id status=UP"
  readme_job "$peer" "${run/-id $id /-id $peer }"
  wait_for "$peer" "^listed instance=billing/$id status=UP$"
  wait_for "$peer" "^snapshot revision=[0-9]+ instances=1 node="
  gzip_reads="$(node -e '
    fetch(`http://${process.argv[1]}/metrics`).then((r) => r.text()).then((text) => {
      const counts = [...text.matchAll(/^roster_full_reads_total\{encoding="gzip",cache="\w+"\} (\d+)$/gm)];
      console.log(counts.reduce((sum, m) => sum + Number(m[1]), 0));
    })' "$http")"
  if ((gzip_reads < 2)); then
    echo "FAIL: the node answered $gzip_reads full reads in gzip, expected both clients' snapshots (2)" >&2
    return 1
  fi
  echo "ok: both snapshots were answered gzip-compressed ($gzip_reads gzip full reads on the node)"
  kill -TERM "${README_JOBS[0]}" "${README_JOBS[1]}"
  expect_exit "$first" "${README_JOBS[0]}" 0
  expect_exit "$peer" "${README_JOBS[1]}" 0
}

# check_registry_client TAG: runs a registry client example the way the README shows it, and
# checks what it prints. The README has three blocks for it:
#   ```sh ci:TAG          the build commands, then the command that runs the client (until Ctrl-C)
#   ```sh ci:TAG-status   an operator's OUT_OF_SERVICE override, then --clear
#   ```sh ci:TAG-cluster  a client on node A (&), one on node B (&), a read on node C, kill %1, kill %2
# The client prints `listed`, `registered`, `change`, `heartbeat`, `re-registered` and `cancelled` lines
# (see examples/go/main.go). Run from the repository root; leaves the working directory where
# the build commands' `cd` took it.
check_registry_client() {
  local tag="$1" build status cluster run id
  mapfile -t build < <(readme_commands "$tag")
  mapfile -t status < <(readme_commands "$tag-status")
  mapfile -t cluster < <(readme_commands "$tag-cluster")
  if ((${#build[@]} < 2 || ${#status[@]} != 2 || ${#cluster[@]} != 5)); then
    echo "FAIL: README blocks ci:$tag (${#build[@]} commands, want 2+), ci:$tag-status (${#status[@]}, want 2), ci:$tag-cluster (${#cluster[@]}, want 5)" >&2
    return 1
  fi
  run="${build[-1]}"
  id="$(instance_id "$run")"

  printf '\n-- %s: build (README ci:%s) --\n' "$tag" "$tag"
  local started=$SECONDS cmd
  for cmd in "${build[@]:0:${#build[@]}-1}"; do readme_run "$cmd"; done
  echo "built in $((SECONDS - started)) s"

  printf '\n-- %s: one node: register, watch, heartbeats, NOT_FOUND and register again, cancel --\n' "$tag"
  start_roster "$tag-single"
  local single="$ROSTER_GRPC" single_pid="$ROSTER_PID"
  readme_address 127.0.0.1:8761 "$single"
  README_JOBS=()
  readme_job "$id" "$run"
  local pid="${README_JOBS[0]}"
  wait_for "$id" "^registered app=billing id=$id status=UP revision=[0-9]+$"
  wait_for "$id" "^change revision=[0-9]+ type=ADDED instance=billing/$id status=UP$"
  wait_for "$id" "^heartbeat batch=[0-9]+ code=OK$" 2
  for cmd in "${status[@]}"; do readme_run "$cmd"; done
  wait_for "$id" "^change revision=[0-9]+ type=MODIFIED instance=billing/$id status=OUT_OF_SERVICE$"
  wait_for "$id" "^change revision=[0-9]+ type=MODIFIED instance=billing/$id status=UNKNOWN$"
  wait_for "$id" "^heartbeat batch=[0-9]+ code=NOT_FOUND$"
  wait_for "$id" "^re-registered app=billing id=$id status=UP revision=[0-9]+$"
  wait_for "$id" "^change revision=[0-9]+ type=MODIFIED instance=billing/$id status=UP$"
  wait_for "$id" "^heartbeat batch=[0-9]+ code=OK$" 3
  kill -TERM "$pid" # as Ctrl-C would (see readme_job)
  expect_exit "$id" "$pid" 0
  wait_for "$id" "^cancelled app=billing id=$id revision=[0-9]+$"
  if npx --no-install roster get billing "$id" --server "$single" >/dev/null 2>&1; then
    echo "FAIL: billing/$id is still registered after the client stopped" >&2
    return 1
  fi
  echo "ok: billing/$id is gone from the node"

  printf '\n-- %s: a snapshot read gzip-compressed lists what the node holds --\n' "$tag"
  check_compressed_snapshot "$run" "$id" "$ROSTER_HTTP"

  printf '\n-- %s: the node goes away: the client fails with exit 1 --\n' "$tag"
  README_JOBS=()
  readme_job "$id-lost" "$run"
  pid="${README_JOBS[0]}"
  wait_for "$id-lost" "^heartbeat batch=[0-9]+ code=OK$"
  kill -TERM "$single_pid"
  expect_exit "$id-lost" "$pid" 1
  wait_for "$id-lost" "UNAVAILABLE|Unavailable"

  printf "\n-- %s: three nodes: B's register reaches A's Watch, A's cancel reaches B's; C lists both --\n" "$tag"
  start_roster_cluster 3
  readme_address 127.0.0.1:8761 "${CLUSTER_GRPC[0]}"
  readme_address 127.0.0.1:8771 "${CLUSTER_GRPC[1]}"
  readme_address 127.0.0.1:8781 "${CLUSTER_GRPC[2]}"
  README_JOBS=()
  local a b
  a="$(instance_id "${cluster[0]}")"
  b="$(instance_id "${cluster[1]}")"
  # B starts once A watches, so A's Watch must show B's register, copied from node B; B finds A
  # in its snapshot or in its Watch, whichever comes first.
  readme_job "$a" "${cluster[0]}"
  wait_for "$a" "^registered app=billing id=$a status=UP"
  wait_for "$a" "^watching app=billing since=[0-9]+$"
  readme_job "$b" "${cluster[1]}"
  local pid_a="${README_JOBS[0]}" pid_b="${README_JOBS[1]}"
  wait_for "$b" "^registered app=billing id=$b status=UP"
  wait_for "$a" "^change revision=[0-9]+ type=ADDED instance=billing/$b status=UP$"
  wait_for "$b" "^(listed|change revision=[0-9]+ type=ADDED) instance=billing/$a status=UP$"
  wait_for "$a" "^heartbeat batch=[0-9]+ code=OK$" 2
  wait_for "$b" "^heartbeat batch=[0-9]+ code=OK$" 2
  local read="" tries
  for tries in $(seq 1 50); do
    read="$(readme_run "${cluster[2]}" 2>&1)" || true
    grep -q "$a" <<<"$read" && grep -q "$b" <<<"$read" && break
    sleep 0.2
  done
  if ! { grep -q "$a" <<<"$read" && grep -q "$b" <<<"$read"; }; then
    echo "FAIL: node C does not list both $a and $b after $tries reads:" >&2
    echo "$read" >&2
    return 1
  fi
  echo "$read"
  readme_run "${cluster[3]}"
  expect_exit "$a" "$pid_a" 0
  wait_for "$a" "^cancelled app=billing id=$a revision=[0-9]+$"
  wait_for "$b" "^change revision=[0-9]+ type=DELETED instance=billing/$a status=UP$"
  readme_run "${cluster[4]}"
  expect_exit "$b" "$pid_b" 0
  wait_for "$b" "^cancelled app=billing id=$b revision=[0-9]+$"
  stop_rosters
  printf '\n-- %s: passed --\n' "$tag"
}
