#!/usr/bin/env bash
# The Java example, built and run exactly as the README's "Java" section says (its ```sh ci:java*
# blocks): against one node, then a three-node cluster. See check_registry_client in lib.sh.
# Maven caches what it downloads in ~/.m2.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
trap 'stop_readme_jobs; stop_rosters' EXIT
cd "$ROSTER_REPO"
java -version 2>&1 | head -n 1
mvn -v -B 2>/dev/null | head -n 1
check_registry_client java
