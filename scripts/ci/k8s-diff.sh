#!/usr/bin/env bash
# Pull requests: writes the change this pull request makes to k8s/dist/ (against the merge base with its target branch) to ci-out/review/k8s-dist.diff and .stat. Needs: git, CHANGE_TARGET (the target branch; Jenkins sets it on pull requests).
source "$(dirname "$0")/lib.sh"
need_tools git
need_vars CHANGE_TARGET
target="refs/remotes/origin/$CHANGE_TARGET"
if ! git rev-parse --verify -q "$target^{commit}" >/dev/null; then
  git fetch --no-tags --quiet origin "+refs/heads/$CHANGE_TARGET:$target" \
    || die "cannot find or fetch origin/$CHANGE_TARGET (the job's checkout must fetch the target branch)"
fi
base=$(git merge-base "$target" HEAD) || die "no merge base with origin/$CHANGE_TARGET (shallow clone? fetch full history)"
out="$CI_OUT/review"
mkdir -p "$out"
git diff --no-color --stat "$base" HEAD -- k8s/dist >"$out/k8s-dist.stat"
git diff --no-color "$base" HEAD -- k8s/dist >"$out/k8s-dist.diff"
if [ -s "$out/k8s-dist.diff" ]; then
  say "k8s/dist changes against origin/$CHANGE_TARGET: $(tail -n 1 "$out/k8s-dist.stat")"
else
  say "no k8s/dist changes against origin/$CHANGE_TARGET"
fi
