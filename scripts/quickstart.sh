#!/usr/bin/env bash
# The quickstart demo: a throwaway one-node GlusterFS on this machine (in its
# own network namespace), then allocate -> write until EDQUOT -> resize ->
# clone -> usage table -> delete, through subvolkit's Pool. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cd examples && exec go run ./quickstart "$@"
