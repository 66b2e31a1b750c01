#!/usr/bin/env bash
# The Go example, built and run exactly as the README's "Go" section says (its ```sh ci:go*
# blocks): against one node, then a three-node cluster. See check_registry_client in lib.sh.
# Go modules and builds are cached in Go's default places (go env GOMODCACHE GOCACHE).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
trap 'stop_readme_jobs; stop_rosters' EXIT
cd "$ROSTER_REPO"
go version
check_registry_client go
go vet ./...
