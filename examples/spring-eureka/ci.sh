#!/usr/bin/env bash
# Builds the Spring Boot + Spring Cloud Netflix Eureka client application (Maven, cached in
# ~/.m2) and runs two instances of it against a three-node Roster cluster, each on another
# node's Eureka face (alpha on node 1, beta on node 3): both register (listed by `roster apps`
# on node 2), each discovers the other and an instance registered over gRPC at node 2 through
# Spring's DiscoveryClient, a gRPC status override reaches them, and SIGTERM deregisters them
# (DOWN, then gone).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=../lib.sh
source "$here/../lib.sh"
cd "$here"

# An array, not a function: a backgrounded function is a subshell, and $! would not be node.
roster=(node "$ROSTER_REPO/bin/roster.js")

work="$(mktemp -d "${TMPDIR:-/tmp}/roster-spring.XXXX")"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  stop_rosters
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  for f in "$work"/*.out; do echo "--- $f (last 40 lines)" >&2; tail -n 40 "$f" >&2; done
  exit 1
}

# wait_until SECONDS DESCRIPTION COMMAND...: until COMMAND succeeds (bounded in time).
wait_until() {
  local deadline=$((SECONDS + $1)) what="$2"
  shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "not within the time allowed: $what"
    sleep 0.25
  done
}

# listed_apps NODE: the app names `roster apps` lists (its table's first column), one a line.
listed_apps() {
  "${roster[@]}" apps --server "$1" | awk 'NR > 1 && $1 != "revision" { print $1 }'
}
# (Outputs are captured before grep -q reads them: with pipefail, a writer that grep -q leaves
# early would die of SIGPIPE and fail the check.)
# is_listed NODE APP, is_not_listed NODE APP
is_listed() {
  local apps
  apps="$(listed_apps "$1")" && grep -qx "$2" <<<"$apps"
}
is_not_listed() {
  local apps
  apps="$(listed_apps "$1")" || return 1 # a failed listing proves nothing
  ! grep -qx "$2" <<<"$apps"
}

# GET http://127.0.0.1:PORT/instances/SERVICE answers a JSON list containing TEXT.
discovers() {
  local body
  body="$(curl -fsS "http://127.0.0.1:$1/instances/$2")" && grep -q -- "$3" <<<"$body"
}
discovers_nothing() { [[ "$(curl -fsS "http://127.0.0.1:$1/instances/$2")" == "[]" ]]; }

# last_changes APP ID N: the instance's last N changes on the Watch, as "TYPE STATUS,TYPE STATUS".
last_changes() {
  node -e '
    const [app, id, n] = process.argv.slice(1);
    const seen = [];
    for (const line of require("fs").readFileSync(process.argv[4], "utf8").split("\n")) {
      if (line === "") continue;
      for (const c of JSON.parse(line).changes ?? []) {
        if (c.instance.app === app && c.instance.instanceId === id) {
          seen.push(c.type.replace("CHANGE_TYPE_", "") + " " + c.instance.status.replace("INSTANCE_STATUS_", ""));
        }
      }
    }
    console.log(seen.slice(-Number(n)).join(","));
  ' "$1" "$2" "$3" "$work/watch.out"
}

echo "building examples/spring-eureka (mvn -B -q package)"
build_start=$SECONDS
mvn -B -q -Dstyle.color=never package
echo "built target/roster-spring-eureka.jar in $((SECONDS - build_start)) s"

start_roster_cluster 3
node1="${CLUSTER_GRPC[0]}" node2="${CLUSTER_GRPC[1]}" node3="${CLUSTER_GRPC[2]}"

# Every change at beta's node from revision 0, to check the order of events at shutdown.
"${roster[@]}" watch --server "$node3" --json --since 0 >"$work/watch.out" 2>&1 &
pids+=($!)

# A service that speaks gRPC only: Spring must find it by its VIP like any Eureka instance.
"${roster[@]}" register --server "$node2" --app grpc-side --id grpc-side-1 --vip grpc-side \
  --port 9000 --renew-secs 1 --duration-secs 30 >"$work/grpc-side.out" 2>&1 &
pids+=($!)

# start_app NAME HTTP: one instance of the application on a free port, using the Eureka face
# of the node at HTTP, renewing every second and fetching the registry every second so the
# test is fast (the defaults are 30 s).
start_app() {
  java -Xmx256m -XX:TieredStopAtLevel=1 -jar target/roster-spring-eureka.jar \
    --spring.application.name="$1" \
    --server.port=0 \
    --eureka.client.serviceUrl.defaultZone="http://$2/eureka/" \
    --eureka.client.registry-fetch-interval-seconds=1 \
    --eureka.client.initial-instance-info-replication-interval-seconds=1 \
    --eureka.client.instance-info-replication-interval-seconds=1 \
    --eureka.instance.lease-renewal-interval-in-seconds=1 \
    --eureka.instance.lease-expiration-duration-in-seconds=30 \
    --eureka.instance.instance-id="$1-1" \
    --eureka.instance.ip-address=127.0.0.1 \
    --logging.level.com.netflix.discovery.DiscoveryClient=DEBUG \
    >"$work/$1.out" 2>&1 &
  pids+=($!)
}

# port_of NAME: the HTTP port the instance's Tomcat took (server.port=0).
port_of() {
  sed -nE 's/.*Tomcat started on port ([0-9]+).*/\1/p' "$work/$1.out" | head -n 1
}

start_app alpha "${CLUSTER_HTTP[0]}"
alpha_pid=$!
start_app beta "${CLUSTER_HTTP[2]}"
beta_pid=$!
wait_until 90 "alpha's web server started" grep -q 'Tomcat started on port' "$work/alpha.out"
wait_until 90 "beta's web server started" grep -q 'Tomcat started on port' "$work/beta.out"
alpha_port="$(port_of alpha)"
beta_port="$(port_of beta)"
echo "alpha on :$alpha_port, beta on :$beta_port"

wait_until 30 "roster apps on node 2 lists alpha" is_listed "$node2" alpha
wait_until 20 "roster apps on node 2 lists beta" is_listed "$node2" beta
"${roster[@]}" get --server "$node2" alpha alpha-1 --json >"$work/alpha-record.out"
grep -q '"status":"INSTANCE_STATUS_UP"' "$work/alpha-record.out" || fail "alpha-1 is not UP in Roster"
grep -q "\"number\":$alpha_port" "$work/alpha-record.out" || fail "alpha-1 was not registered with its port $alpha_port"
echo "ok: roster apps on node 2 lists alpha (node 1) and beta (node 3), UP with their real ports"

wait_until 30 "alpha discovers beta" discovers "$alpha_port" beta "\"port\":$beta_port"
wait_until 30 "beta discovers alpha" discovers "$beta_port" alpha "\"port\":$alpha_port"
wait_until 30 "alpha discovers the gRPC-registered grpc-side-1" discovers "$alpha_port" grpc-side '"port":9000'
echo "ok: DiscoveryClient finds the other instance and the gRPC-registered one, across nodes"

# An operator override made over gRPC reaches Spring through the registry's deltas (Spring
# keeps only UP instances); clearing it makes beta's next heartbeat answer 404, and the Eureka
# client registers beta again.
"${roster[@]}" status --server "$node2" beta beta-1 OUT_OF_SERVICE >/dev/null
wait_until 20 "alpha stops discovering beta once it is OUT_OF_SERVICE" discovers_nothing "$alpha_port" beta
"${roster[@]}" status --server "$node2" beta beta-1 --clear >/dev/null
wait_until 20 "beta registered again after its heartbeat got 404" discovers "$alpha_port" beta "\"port\":$beta_port"
grep -q 'beta-1 - Re-registering apps/BETA' "$work/beta.out" || fail "beta did not re-register after a 404"
echo "ok: a gRPC status override reached Spring, and a 404 heartbeat made beta register again"

# SIGTERM: the Eureka client marks beta DOWN, then deregisters it before the JVM exits. The
# lease would last 30 s, so beta being gone from its node as soon as it exited is the DELETE,
# not an expiry; the other nodes learn it by replication.
kill -TERM "$beta_pid"
set +e
wait "$beta_pid"
beta_rc=$?
set -e
[[ "$beta_rc" -eq 143 ]] || fail "beta exited $beta_rc on SIGTERM, expected 143 (128 + SIGTERM)"
is_not_listed "$node3" beta || fail "beta is still listed by its node after it exited"
wait_until 20 "beta gone from roster apps on node 2" is_not_listed "$node2" beta
wait_until 20 "the Watch saw beta DELETED" grep -q '"CHANGE_TYPE_DELETED","instance":{"app":"beta"' "$work/watch.out"
[[ "$(last_changes beta beta-1 2)" == "MODIFIED DOWN,DELETED DOWN" ]] ||
  fail "beta's last changes were $(last_changes beta beta-1 2), expected DOWN then DELETED"
wait_until 20 "alpha no longer discovers beta" discovers_nothing "$alpha_port" beta
echo "ok: SIGTERM deregistered beta (DOWN, then DELETED; alpha's DiscoveryClient forgot it)"

kill -TERM "$alpha_pid"
set +e
wait "$alpha_pid"
alpha_rc=$?
set -e
[[ "$alpha_rc" -eq 143 ]] || fail "alpha exited $alpha_rc on SIGTERM, expected 143"
is_not_listed "$node1" alpha || fail "alpha is still listed by its node after it exited"
wait_until 20 "alpha gone from roster apps on node 2" is_not_listed "$node2" alpha
echo "ok: SIGTERM deregistered alpha"

# Each client fetched the registry in full once, at start, then only deltas: Roster's deltas
# and whole-registry hash kept its copy consistent (a mismatch or a refused delta would have
# made it fetch everything again). The DiscoveryClient's DEBUG log says which.
for app in alpha beta; do
  full="$(grep -c 'Got full registry' "$work/$app.out" || true)"
  deltas="$(grep -c 'Got delta update' "$work/$app.out" || true)"
  [[ "$full" -eq 1 && "$deltas" -ge 1 ]] || fail "$app fetched the full registry $full times and $deltas deltas"
  ! grep -Eq 'hashcodes do not match|does not allow the delta' "$work/$app.out" ||
    fail "$app's deltas did not reconcile: $(grep -E 'hashcodes do not match|does not allow the delta' "$work/$app.out")"
  echo "ok: $app kept its registry copy by deltas alone ($deltas deltas after its first full fetch)"
done

echo "examples/spring-eureka: all checks passed"
