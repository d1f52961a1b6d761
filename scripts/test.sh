#!/usr/bin/env bash
# Runs subvolkit's whole test suite, real GlusterFS tests included (as root).
# Installs what it needs first. In CI (CI=true) a missing prerequisite fails
# the run instead of skipping the GlusterFS tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh

echo "== gofmt"
bad=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$bad" ]; then echo "gofmt would change:"; echo "$bad"; exit 1; fi

echo "== core module: go vet + go test -race"
go vet ./...
go test -race -count=1 -timeout 25m ./...

if [ -f examples/go.mod ]; then
    echo "== examples module: go vet + go test -race"
    (cd examples && go vet ./... && go test -race -count=1 -timeout 20m ./...)
fi
