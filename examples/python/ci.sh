#!/usr/bin/env bash
# The Python example, built and run exactly as the README's "Python" section says (its
# ```sh ci:python* blocks): the client against one node and a three-node cluster (see
# check_registry_client in lib.sh), interop.py's checks, and the same client on Debian's
# grpcio. pip caches downloads in its default place (pip cache dir).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
trap 'stop_readme_jobs; stop_rosters' EXIT
cd "$ROSTER_REPO"
python3 --version
check_registry_client python # leaves the working directory in examples/python

printf '\n-- python: interop.py, every RegistryService basic (README ci:python-interop) --\n'
mapfile -t interop < <(readme_commands python-interop)
start_roster interop
readme_address 127.0.0.1:8761 "$ROSTER_GRPC"
code=0
summary="$(readme_run "${interop[0]}")" || code=$?
# Every check interop.py makes: each must be in the summary, and passed.
.venv/bin/python - "$code" "$summary" <<'PY'
import json, sys

EXPECTED = """list_applications register_app_lowercased register_metadata register_fields register_lease
register_revision get_instance_roundtrip heartbeat_ok heartbeats_batch_ids heartbeats_results
update_metadata heartbeat_after_cancel_not_found watch_events watch_event_content
watch_revisions_increase invalid_port invalid_app missing_instance_id invalid_changes_nothing""".split()
code, out = int(sys.argv[1]), sys.argv[2]
try:
    summary = json.loads(out.strip().splitlines()[-1])
except (ValueError, IndexError):
    sys.exit(f"FAIL: interop.py printed no JSON summary (exit {code}):\n{out}")
missing = [name for name in EXPECTED if summary["checks"].get(name) is not True]
if summary["failures"] or missing or not summary["ok"] or code != 0:
    sys.exit(f"FAIL: interop.py exit {code}, failures {summary['failures']}, not passed {missing}")
print(f"ok: interop.py, {len(EXPECTED)} checks passed (python {summary['python']}, "
      f"grpcio {summary['grpcio']}, protobuf {summary['protobuf']})")
PY

printf "\n-- python: the same client on Debian's grpcio (README ci:python-debian) --\n"
mapfile -t debian < <(readme_commands python-debian)
for cmd in "${debian[@]:0:${#debian[@]}-1}"; do readme_run "$cmd"; done
README_JOBS=()
readme_job py-debian "${debian[-1]}"
wait_for py-debian "^registered app=billing id=py-debian status=UP revision=[0-9]+$"
wait_for py-debian "^change revision=[0-9]+ type=ADDED instance=billing/py-debian status=UP$"
wait_for py-debian "^heartbeat batch=[0-9]+ code=OK$" 2
kill -TERM "${README_JOBS[0]}" # as Ctrl-C would (see readme_job in lib.sh)
expect_exit py-debian "${README_JOBS[0]}" 0
wait_for py-debian "^cancelled app=billing id=py-debian revision=[0-9]+$"
/usr/bin/python3 -c 'import grpc, google.protobuf; print("ok: Debian grpcio", grpc.__version__, "protobuf", google.protobuf.__version__)'
