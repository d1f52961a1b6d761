#!/usr/bin/env bash
# Builds the Kubernetes control-plane binaries the kubetest harness runs
# (etcd, kube-apiserver, kube-controller-manager) from the Go module proxy,
# since none can be downloaded on the test machines.
#
# The binaries land in $KUBE_CACHE/v$KUBE_VERSION/ (default
# /var/cache/subvolkit/kube/v1.37.2/), keyed by version, so only the first
# run on a machine pays the build (about 15 minutes on 2 cores). The build
# happens in a throwaway module outside the repository, in a temporary
# directory that is renamed into place only when all three binaries are
# built: a half-built binary is never used. A lock makes concurrent callers
# (two test processes) wait for one build instead of running two.
#
# Environment: KUBE_VERSION (1.37.2), ETCD_VERSION (3.6.16), KUBE_CACHE,
# KUBE_BUILD_JOBS (go build -p, default: the number of CPUs). Prints the binary directory.
set -euo pipefail

KUBE_VERSION=${KUBE_VERSION:-1.37.2}
ETCD_VERSION=${ETCD_VERSION:-3.6.16}
KUBE_CACHE=${KUBE_CACHE:-/var/cache/subvolkit/kube}
JOBS=${KUBE_BUILD_JOBS:-$(nproc 2>/dev/null || echo 2)}
STAGING_VERSION="v0.${KUBE_VERSION#*.}" # 1.37.2 -> v0.37.2

out="$KUBE_CACHE/v$KUBE_VERSION"
bins=(etcd kube-apiserver kube-controller-manager)

complete() {
    local b
    for b in "${bins[@]}"; do [ -x "$out/$b" ] || return 1; done
}

if complete; then
    echo "$out"
    exit 0
fi

command -v go >/dev/null 2>&1 || { echo "build-kube: go is not in PATH" >&2; exit 1; }
command -v flock >/dev/null 2>&1 || { echo "build-kube: flock (util-linux) is missing" >&2; exit 1; }
mkdir -p "$KUBE_CACHE"

exec 9>"$KUBE_CACHE/v$KUBE_VERSION.lock"
if ! flock -n 9; then
    echo "build-kube: another build of v$KUBE_VERSION is running; waiting for it" >&2
    flock 9
fi
if complete; then # built by whoever held the lock
    echo "$out"
    exit 0
fi

start=$(date +%s)
src="$KUBE_CACHE/src-v$KUBE_VERSION"
tmp="$KUBE_CACHE/.v$KUBE_VERSION.tmp.$$"
rm -rf "$tmp"
mkdir -p "$src/kube" "$src/etcd" "$tmp"
trap 'rm -rf "$tmp"' EXIT

# Outside any module of the repository, with the module cache as the source.
export GOFLAGS="-mod=mod -buildvcs=false"
export GOWORK=off
: "${GOPROXY:=https://proxy.golang.org}"
export GOPROXY

echo "build-kube: building Kubernetes v$KUBE_VERSION and etcd v$ETCD_VERSION into $out (go build -p $JOBS)" >&2

# --- kube-apiserver and kube-controller-manager ---
cd "$src/kube"
rm -f go.mod go.sum
modfile="$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/v$KUBE_VERSION.mod"
[ -f "$modfile" ] || go mod download -json "k8s.io/kubernetes@v$KUBE_VERSION" >/dev/null
staging=$(grep -E '=> \./staging/' "$modfile" | awk '{print $1}' | sort -u)
[ -n "$staging" ] || { echo "build-kube: no staging replaces found in $modfile" >&2; exit 1; }
{
    echo "module example.com/subvolkit-kubebins"
    echo
    echo "go 1.26"
    echo
    echo "require k8s.io/kubernetes v$KUBE_VERSION"
    echo
    echo "replace ("
    for m in $staging; do echo "	$m => $m $STAGING_VERSION"; done
    echo ")"
} >go.mod
cat >tools.go <<'EOF'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
)
EOF
go mod tidy >&2
vpkg=k8s.io/component-base/version
minor=${KUBE_VERSION#*.}
minor=${minor%%.*}
ldflags="-s -w -X $vpkg.gitVersion=v$KUBE_VERSION -X $vpkg.gitMajor=${KUBE_VERSION%%.*} -X $vpkg.gitMinor=$minor -X $vpkg.gitTreeState=clean"
for b in kube-apiserver kube-controller-manager; do
    t0=$(date +%s)
    go build -p "$JOBS" -trimpath -ldflags "$ldflags" -o "$tmp/$b" "k8s.io/kubernetes/cmd/$b"
    echo "build-kube: $b built in $(( $(date +%s) - t0 )) s" >&2
done

# --- etcd ---
cd "$src/etcd"
cat >go.mod <<EOF
module example.com/subvolkit-etcdbin

go 1.26

require go.etcd.io/etcd/server/v3 v$ETCD_VERSION
EOF
cat >tools.go <<'EOF'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
EOF
go mod tidy >&2
t0=$(date +%s)
go build -p "$JOBS" -trimpath -ldflags "-s -w" -o "$tmp/etcd" go.etcd.io/etcd/server/v3
echo "build-kube: etcd built in $(( $(date +%s) - t0 )) s" >&2

printf 'kubernetes v%s\netcd v%s\n' "$KUBE_VERSION" "$ETCD_VERSION" >"$tmp/VERSIONS"
rm -rf "$out"
mv "$tmp" "$out" # atomic: the directory appears complete or not at all
trap - EXIT
echo "build-kube: done in $(( $(date +%s) - start )) s" >&2
echo "$out"
