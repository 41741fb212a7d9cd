#!/usr/bin/env bash
# Runs a command with Node.js 24 first on PATH (scripts/node24.sh: the machine's own when it is
# 24.x, else the pinned download): the benchmarks and the chaos run measure the runtime the
# product ships on (package.json's `engines`, the Dockerfiles), not whatever `node` the machine
# has. On Node 20, for one, AsyncLocalStorage runs on async hooks, which trace contexts pay for
# at every await; on 24 it is a context frame.
#   bash scripts/node24-exec.sh tsx scripts/bench/gateway.ts
set -euo pipefail
node24=$(bash "$(dirname "$0")/node24.sh")
export PATH="$(dirname "$node24"):$PATH"
exec "$@"
