#!/usr/bin/env bash
# Shared by scripts/ci/*.sh (sourced, does nothing on its own): messages, checks of tools and variables, an environment's settings, Google Cloud login. Needs: none itself.
# Sourcing it sets `-euo pipefail`, moves to the repository root and gives the script a private
# temporary folder ($CI_TMP, removed on exit) for credentials and config that must not outlive it.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
# What a script leaves for people (plans, diffs, URLs): archived by Jenkins, ignored by git.
CI_OUT=${CI_OUT:-$ROOT/ci-out}
CI_TMP=$(mktemp -d "${TMPDIR:-/tmp}/itemgen-ci.XXXXXX")
chmod 700 "$CI_TMP"
CI_CLEANUP=("rm -rf '$CI_TMP'")
trap 'for c in "${CI_CLEANUP[@]}"; do eval "$c" || true; done' EXIT
export TF_IN_AUTOMATION=1 CLOUDSDK_CORE_DISABLE_PROMPTS=1

SCRIPT=$(basename "$0" .sh)
say() { printf '%s: %s\n' "$SCRIPT" "$*" >&2; }
die() { say "error: $*"; exit 1; }
on_exit() { CI_CLEANUP=("$1" "${CI_CLEANUP[@]}"); }

need_tools() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' is required and not on PATH (see README, Deploying: prerequisites)"
  done
}

need_vars() {
  local var
  for var in "$@"; do
    [ -n "${!var:-}" ] || die "environment variable $var is required (see the first lines of $0)"
  done
}

# need_node: the Node.js major version package.json's `engines` names ("24.x"), the one npm test runs
# on and the images ship; another major is refused rather than run untested.
need_node() {
  need_tools node npm
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  [ "$major" = 24 ] || die "Node.js 24 is required, as package.json's engines says (found $(node --version))"
}

# load_settings <env>: PROJECT, REGION, repositories, names of the Cloud Run service and GKE cluster,
# … (scripts/ci/delivery.ts); fails on an unknown environment.
load_settings() {
  [ "$#" -eq 1 ] && [ -n "$1" ] || die "usage: $0 <environment> (dev or prod)"
  need_node
  local out
  out=$(node --import tsx scripts/ci/delivery.ts settings "$1") || die "cannot read the settings of environment '$1'"
  eval "$out"
}

# need_stack: the values that come from the synthesized Terraform stack are there.
need_stack() {
  [ "${STACK_SYNTHESIZED:-false}" = true ] || die "$STACK_DIR/cdk.tf.json is missing: run npm run synth (scripts/ci/synth-check.sh) first"
}

# The commit being delivered; images are tagged with it. A tree with uncommitted changes gets a
# `-dirty` tag locally and is refused in CI, where the tag must name exactly what was built.
image_tag() {
  if [ -n "${IMAGE_TAG:-}" ]; then printf '%s\n' "$IMAGE_TAG"; return; fi
  local sha
  sha=$(git rev-parse HEAD) || die "not a git checkout; set IMAGE_TAG"
  if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
    [ "${CI:-}" != true ] || die "the checkout has uncommitted changes; refusing to tag images with $sha"
    sha="$sha-dirty"
  fi
  printf '%s\n' "$sha"
}

# gcp_login: with GOOGLE_APPLICATION_CREDENTIALS (a service-account key file that Jenkins binds with
# withCredentials), gcloud uses that account in a config private to this script, so nothing is left
# on the agent; terraform reads the same variable. Without it, the caller's own gcloud login and
# application default credentials are used (a developer's machine, or a VM's attached account).
gcp_login() {
  need_tools gcloud
  if [ -n "${GOOGLE_APPLICATION_CREDENTIALS:-}" ]; then
    [ -r "$GOOGLE_APPLICATION_CREDENTIALS" ] || die "GOOGLE_APPLICATION_CREDENTIALS ($GOOGLE_APPLICATION_CREDENTIALS) is not a readable file"
    export CLOUDSDK_CONFIG="$CI_TMP/gcloud"
    gcloud auth activate-service-account --key-file="$GOOGLE_APPLICATION_CREDENTIALS" --quiet >/dev/null 2>&1 \
      || die "gcloud could not log in with the key file in GOOGLE_APPLICATION_CREDENTIALS"
  fi
  local account
  account=$(gcloud config get-value account 2>/dev/null || true)
  [ -n "$account" ] || die "no Google Cloud credentials: set GOOGLE_APPLICATION_CREDENTIALS or run gcloud auth login"
  say "acting as $account"
}
