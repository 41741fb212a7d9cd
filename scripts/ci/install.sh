#!/usr/bin/env bash
# Installs the exact dependencies of package-lock.json (npm ci), dev dependencies included, without onnxruntime-node's CUDA download. Needs: node 24, npm.
source "$(dirname "$0")/lib.sh"
need_node
# The CUDA libraries are only for the runner image (Dockerfile.runner); .npmrc says the same.
export ONNXRUNTIME_NODE_INSTALL=skip
npm ci --no-audit --no-fund
