#!/usr/bin/env bash
# Shared by scripts/ci/*.sh (sourced, does nothing on its own): messages, checks of tools and variables, an environment's settings, the Google identity a step acts as (impersonation, no key files), the digests of the images being delivered. Needs: none itself.
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

# use_identity terraform|planner|deployer: every Google call of this script acts as that account of
# the environment (load_settings first), by impersonation: the caller's own credentials (the Jenkins
# VM's or a review agent's attached account, or a person's gcloud login) only mint short-lived tokens
# for it, which needs roles/iam.serviceAccountTokenCreator on the account (bootstrap.sh, infra/).
# No key file exists: GOOGLE_APPLICATION_CREDENTIALS is refused rather than silently used.
#   gcloud, and kubectl through gke-gcloud-auth-plugin (which asks gcloud): CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT
#   terraform (the google provider and the gcs backend):                     GOOGLE_IMPERSONATE_SERVICE_ACCOUNT
#   docker:                                                                   docker_login, below
use_identity() {
  local who=${1:-} account
  case $who in
    terraform) account=$TERRAFORM_ACCOUNT ;;
    planner) account=$PLANNER_ACCOUNT ;;
    deployer) account=$DEPLOYER_ACCOUNT ;;
    *) die "use_identity: unknown identity '$who' (terraform, planner or deployer)" ;;
  esac
  [ -z "${GOOGLE_APPLICATION_CREDENTIALS:-}" ] \
    || die "GOOGLE_APPLICATION_CREDENTIALS is set ($GOOGLE_APPLICATION_CREDENTIALS): delivery uses no key files; unset it, the step impersonates $account"
  need_tools gcloud
  export CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT=$account GOOGLE_IMPERSONATE_SERVICE_ACCOUNT=$account
  # One token up front, so a missing grant fails here with a message rather than deep in terraform.
  gcloud auth print-access-token >/dev/null 2>&1 \
    || die "cannot impersonate $account: the caller ($(CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT='' gcloud config get-value account 2>/dev/null || echo 'no gcloud account')) needs roles/iam.serviceAccountTokenCreator on it (scripts/ci/bootstrap.sh, infra/)"
  IDENTITY=$account
  say "acting as $account"
}

# export_database_password: the Cloud SQL user's password for Terraform's write-only argument, read
# from Secret Manager as the terraform account (the only one that may read this secret) into the
# environment, never argv or a file. The variable is ephemeral, so neither the state nor a saved plan
# holds it, and the apply of a saved plan needs it again.
export_database_password() {
  [ "${IDENTITY:-}" = "${TERRAFORM_ACCOUNT:-}" ] || die "export_database_password: call use_identity terraform first"
  local password
  password=$(gcloud secrets versions access latest --secret="$DATABASE_PASSWORD_SECRET" --project="$PROJECT") \
    || die "cannot read the secret $DATABASE_PASSWORD_SECRET as $TERRAFORM_ACCOUNT (scripts/ci/bootstrap.sh makes it and the grant)"
  [ -n "$password" ] || die "the secret $DATABASE_PASSWORD_SECRET is empty"
  export TF_VAR_database_password=$password
}

# docker_login: docker talks to the environment's Artifact Registry host as the current identity,
# with a short-lived token in a docker config private to this script ($CI_TMP): it never stays on
# the agent, and the agent's own docker config is left alone.
docker_login() {
  need_tools docker
  [ -n "${IDENTITY:-}" ] || die "docker_login: call use_identity first"
  export DOCKER_CONFIG="$CI_TMP/docker"
  mkdir -p "$DOCKER_CONFIG"
  gcloud auth print-access-token | docker login -u oauth2accesstoken --password-stdin "https://$REGISTRY_HOST" >/dev/null \
    || die "docker login to $REGISTRY_HOST as $IDENTITY failed"
}

# The digests push-images.sh recorded for an environment (GATEWAY_DIGEST, RUNNER_DIGEST, IMAGE_TAG):
# deploys name images by digest, never by a tag.
images_file() { printf '%s/images/%s.env\n' "$CI_OUT" "$1"; }
load_images() {
  local file
  file=$(images_file "$1")
  [ -s "$file" ] || die "$file is missing: run scripts/ci/push-images.sh $1 first"
  GATEWAY_DIGEST='' RUNNER_DIGEST=''
  # shellcheck disable=SC1090 # written by push-images.sh: KEY='value' lines only
  source "$file"
  is_digest "$GATEWAY_DIGEST" || die "$file holds no GATEWAY_DIGEST=sha256:<64 hex>"
  is_digest "$RUNNER_DIGEST" || die "$file holds no RUNNER_DIGEST=sha256:<64 hex>"
}
is_digest() { [[ ${1:-} =~ ^sha256:[0-9a-f]{64}$ ]]; }

# k8s_credentials: a kubeconfig private to this script for the environment's cluster (as the
# current identity; the auth plugin asks gcloud, so impersonation applies to kubectl as well).
k8s_credentials() {
  need_tools kubectl gke-gcloud-auth-plugin
  export KUBECONFIG="$CI_TMP/kubeconfig"
  # shellcheck disable=SC2086 # the optional flags are words
  gcloud container clusters get-credentials "$GKE_CLUSTER" --location "$GKE_LOCATION" --project "$PROJECT" ${GKE_GET_CREDENTIALS_FLAGS:-} >&2
}

# apply_runners <tag|sha256:…> <record dir>: k8s/dist/<env> with the runner image pinned, applied
# server-side, and every workload's rollout awaited; fails (after ROLLOUT_TIMEOUT) on the first
# that does not become ready.
apply_runners() {
  local image=$1 out=$2 resource timeout=${ROLLOUT_TIMEOUT:-20m}
  mkdir -p "$out"
  node --import tsx scripts/ci/delivery.ts pin-image "$K8S_DIST" "$RUNNER_REPOSITORY" "$image" >"$out/manifests.yaml" \
    || die "cannot pin the runner image in $K8S_DIST"
  # --force-conflicts: CI owns these fields; a hand-made change (kubectl edit, rollout undo) is
  # replaced by what the repository says.
  kubectl apply --server-side --force-conflicts --field-manager=itemgen-ci -f "$out/manifests.yaml" -o name | tee "$out/applied.txt" >&2
  while read -r resource; do
    case $resource in
      deployment.apps/* | statefulset.apps/* | daemonset.apps/*)
        say "waiting for $resource"
        # A GPU node may have to be created first: the timeout allows for that.
        kubectl -n "$K8S_NAMESPACE" rollout status "$resource" --timeout="$timeout" >&2 \
          || die "$resource did not roll out within $timeout"
        ;;
    esac
  done <"$out/applied.txt"
}
