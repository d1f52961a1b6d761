#!/usr/bin/env bash
# Runs subvolkit's whole test suite, real GlusterFS tests included (as root).
# Installs what it needs first. In CI (CI=true) a missing prerequisite fails
# the run instead of skipping the GlusterFS tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh

echo "== Kubernetes control plane for the provisioner tests (built once per machine, then cached)"
t0=$(date +%s)
nice -n 10 bash scripts/build-kube.sh
echo "   control-plane binaries ready in $(( $(date +%s) - t0 )) s"

echo "== gofmt"
bad=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$bad" ]; then echo "gofmt would change:"; echo "$bad"; exit 1; fi

echo "== staticcheck (both modules; any finding fails the run)"
# A pinned staticcheck that supports this Go, built once into a cache.
STATICCHECK_VERSION=2026.2.2 # module honnef.co/go/tools v0.8.2
sc_bin="${XDG_CACHE_HOME:-$HOME/.cache}/subvolkit/staticcheck-$STATICCHECK_VERSION"
if [ ! -x "$sc_bin/staticcheck" ]; then
    GOBIN="$sc_bin" go install "honnef.co/go/tools/cmd/staticcheck@v0.8.2"
fi
"$sc_bin/staticcheck" ./...
if [ -f examples/go.mod ]; then (cd examples && "$sc_bin/staticcheck" ./...); fi

echo "== core module: go vet + go test -race"
go vet ./...
go test -race -count=1 -timeout 45m ./...

echo "== benchmarks of the core module, short counts (so that they cannot rot; full runs: README, Benchmarks)"
SUBVOLKIT_BENCH_BURST=10 SUBVOLKIT_BENCH_LIST_N=100 SUBVOLKIT_BENCH_FILES=300 SUBVOLKIT_BENCH_SUBVOLS=30 \
SUBVOLKIT_BENCH_ROUNDS=1 SUBVOLKIT_BENCH_BIG_MIB=16 \
    go test -run=NONE -bench=. -benchtime=1x -timeout 20m ./backend/cli/ ./internal/fsutil/

if [ -f examples/go.mod ]; then
    echo "== examples module: go vet + go test -race"
    (cd examples && go vet ./... && go test -race -count=1 -timeout 40m ./...)
fi
