#!/usr/bin/env bash
# The Java example, built and run exactly as the README's "Java" section says (its ```sh ci:java*
# blocks): against one node, then a three-node cluster. See check_registry_client in lib.sh.
# Maven caches what it downloads in ~/.m2.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
trap 'stop_readme_jobs; stop_rosters' EXIT
cd "$ROSTER_REPO"
java -version 2>&1 | sed -n 1p # sed reads it all: head could SIGPIPE the writer (pipefail)
mvn -v -B -Dstyle.color=never | sed -n 1p
check_registry_client java
