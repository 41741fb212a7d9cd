#!/usr/bin/env bash
# Applies k8s/dist/<env> to the environment's GKE cluster with server-side apply, the runner image pinned by digest (push-images.sh's record), and waits for the rollouts; records first the runner image that ran before (ci-out/deploy/<env>/runner-previous-image) for rollback.sh. Needs: gcloud (with gke-gcloud-auth-plugin), kubectl, jq, node 24, a synthesized stack, ci-out/images/<env>.env, the caller may impersonate the deployer account (no key file); GKE_GET_CREDENTIALS_FLAGS (optional, e.g. --internal-ip or --dns-endpoint), ROLLOUT_TIMEOUT (optional, default 20m). Usage: deploy-runners.sh <env>
source "$(dirname "$0")/lib.sh"
load_settings "${1:-}"
need_tools jq
need_stack
load_images "$ENV_NAME"
use_identity deployer
k8s_credentials
out="$CI_OUT/deploy/$ENV_NAME"
mkdir -p "$out"

# The runner image running now (empty on the first deploy): what rollback.sh pins back to.
kubectl -n "$K8S_NAMESPACE" get deployments -o json 2>/dev/null \
  | jq -r --arg repo "$RUNNER_REPOSITORY" '[.items[]?.spec.template.spec.containers[]?.image | select(startswith($repo + "@") or startswith($repo + ":"))] | first // empty' \
  >"$out/runner-previous-image" || : >"$out/runner-previous-image"
say "runner image before this deploy: $(cat "$out/runner-previous-image" 2>/dev/null || true)"
touch "$out/runners-applied"

# Why the digest is written into the manifests before they are applied, rather than `kubectl set image`
# afterwards: one apply is one rollout, straight to the new image; what runs is exactly the
# committed manifests plus the digest (kept in ci-out for the record); and the image field keeps a
# single owner, so the next server-side apply does not conflict with a `set image` manager.
apply_runners "$RUNNER_DIGEST" "$out"
say "k8s/dist/$ENV_NAME applied to $GKE_CLUSTER with $RUNNER_REPOSITORY@$RUNNER_DIGEST"
