#!/usr/bin/env bash
# Installs what subvolkit's demo and tests need on a Debian machine (run as root):
# GlusterFS 10 server and client, iproute2 (network namespaces), util-linux
# (nsenter), attr, psmisc. Go (>= 1.24) must already be installed.
set -euo pipefail

need=()
command -v glusterd >/dev/null 2>&1 || need+=(glusterfs-server)
[ -x /sbin/mount.glusterfs ] || [ -x /usr/sbin/mount.glusterfs ] || need+=(glusterfs-client)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v nsenter >/dev/null 2>&1 || need+=(util-linux)
command -v setfattr >/dev/null 2>&1 || need+=(attr)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "install-deps: need root to install: ${need[*]}" >&2
        exit 1
    fi
    echo "install-deps: installing ${need[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if ! command -v go >/dev/null 2>&1; then
    echo "install-deps: Go >= 1.24 is required and was not found in PATH" >&2
    exit 1
fi
[ -e /dev/fuse ] || modprobe fuse 2>/dev/null || true
[ -e /dev/fuse ] || { echo "install-deps: /dev/fuse is missing; FUSE mounts cannot work" >&2; exit 1; }
