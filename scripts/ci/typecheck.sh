#!/usr/bin/env bash
# Typechecks the whole repository (src, test, scripts, infra, k8s) with tsc. Needs: node 24, dependencies installed (install.sh).
source "$(dirname "$0")/lib.sh"
need_node
npm run --silent typecheck
say "typecheck passed"
