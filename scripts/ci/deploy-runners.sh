#!/usr/bin/env bash
# Applies k8s/dist/<env> to the environment's GKE cluster with server-side apply, the runner image pinned to runner:<sha>, and waits for the rollouts. Needs: gcloud (with gke-gcloud-auth-plugin), kubectl, node 24, git, a synthesized stack; GOOGLE_APPLICATION_CREDENTIALS (optional: else gcloud's active account), IMAGE_TAG (optional), GKE_GET_CREDENTIALS_FLAGS (optional, e.g. --internal-ip or --dns-endpoint), ROLLOUT_TIMEOUT (optional, default 20m). Usage: deploy-runners.sh <env>
source "$(dirname "$0")/lib.sh"
load_settings "${1:-}"
need_tools kubectl gke-gcloud-auth-plugin git
need_stack
gcp_login
tag=$(image_tag)
export KUBECONFIG="$CI_TMP/kubeconfig"
# shellcheck disable=SC2086 # the optional flags are words
gcloud container clusters get-credentials "$GKE_CLUSTER" --location "$GKE_LOCATION" --project "$PROJECT" ${GKE_GET_CREDENTIALS_FLAGS:-} >&2

# Why the tag is written into the manifests before they are applied, rather than `kubectl set image`
# afterwards: one apply is one rollout, straight to the new image (applying the committed tag first
# would roll the runners to it and then again); what runs is exactly the committed manifests plus
# the tag (kept in ci-out for the record); and the image field keeps a single owner, so the next
# server-side apply does not conflict with a `set image` manager.
out="$CI_OUT/deploy/$ENV_NAME"
mkdir -p "$out"
node --import tsx scripts/ci/delivery.ts pin-image "$K8S_DIST" "$RUNNER_REPOSITORY" "$tag" >"$out/manifests.yaml" \
  || die "cannot pin the runner image in $K8S_DIST"

# --force-conflicts: CI owns these fields; a hand-made change (kubectl edit, rollout undo) is
# replaced by what the repository says.
kubectl apply --server-side --force-conflicts --field-manager=itemgen-ci -f "$out/manifests.yaml" -o name | tee "$out/applied.txt" >&2

timeout=${ROLLOUT_TIMEOUT:-20m}
while read -r resource; do
  case $resource in
    deployment.apps/* | statefulset.apps/* | daemonset.apps/*)
      say "waiting for $resource"
      # A GPU node may have to be created first: the timeout allows for that.
      kubectl -n "$K8S_NAMESPACE" rollout status "$resource" --timeout="$timeout" >&2 \
        || die "$resource did not roll out within $timeout; roll back: kubectl -n $K8S_NAMESPACE rollout undo $resource"
      ;;
  esac
done <"$out/applied.txt"
say "k8s/dist/$ENV_NAME applied to $GKE_CLUSTER with runner:$tag"
