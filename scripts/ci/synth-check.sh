#!/usr/bin/env bash
# Runs `npm run synth` and fails when k8s/dist/ then differs from the commit: changed, deleted or new files (the manifests are reviewed as committed, so they must be what the code produces). Needs: node 24, dependencies installed (install.sh), git.
source "$(dirname "$0")/lib.sh"
need_node
need_tools git
npm run --silent synth

stale=0
if ! git diff --quiet -- k8s/dist; then
  say "k8s/dist differs from what npm run synth writes:"
  git --no-pager diff --stat -- k8s/dist >&2
  git --no-pager diff -- k8s/dist | head -n 200 >&2
  stale=1
fi
untracked=$(git ls-files --others --exclude-standard -- k8s/dist)
if [ -n "$untracked" ]; then
  say "npm run synth writes files that are not committed:"
  sed 's/^/  /' <<<"$untracked" >&2
  stale=1
fi
[ "$stale" -eq 0 ] || die "k8s/dist is stale: run npm run synth and commit k8s/dist"
say "k8s/dist is up to date; Terraform stacks written to infra/cdktf.out"
