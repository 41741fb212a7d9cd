#!/usr/bin/env bash
# Sends all of the gateway's traffic to the latest revision (`--to-latest`) once it is the one deploy-gateway.sh created and the smoke test passed, drops its temporary tag, and checks /healthz on the service URL. Needs: gcloud, jq, curl, node 24, a synthesized stack, ci-out/deploy/<env>/gateway-revision (deploy-gateway.sh), the caller may impersonate the deployer account (no key file). Usage: promote-gateway.sh <env>
source "$(dirname "$0")/lib.sh"
load_settings "${1:-}"
need_tools curl jq
need_stack
use_identity deployer
out="$CI_OUT/deploy/$ENV_NAME"
[ -s "$out/gateway-revision" ] || die "$out/gateway-revision is missing: run scripts/ci/deploy-gateway.sh $ENV_NAME first"
revision=$(cat "$out/gateway-revision")
traffic_tag=$(cat "$out/gateway-traffic-tag")
run=(--project "$PROJECT" --region "$CLOUD_RUN_REGION" --quiet)

# Traffic goes back to "latest revision", not to this revision by name: then a revision Terraform
# makes later (a change of the service's template) gets the traffic too, instead of the service
# staying pinned to an old one. Only while latest is the revision the smoke test saw.
latest=$(gcloud run services describe "$CLOUD_RUN_SERVICE" "${run[@]}" --format=json | jq -r '.status.latestReadyRevisionName')
[ "$latest" = "$revision" ] || die "the latest ready revision is $latest, not $revision that the smoke test passed; not promoting"
touch "$out/gateway-promoted"
gcloud run services update-traffic "$CLOUD_RUN_SERVICE" "${run[@]}" --to-latest >&2
gcloud run services update-traffic "$CLOUD_RUN_SERVICE" "${run[@]}" --remove-tags "$traffic_tag" >&2

service_url=$(cat "$out/gateway-service-url")
curl -fsS --max-time 10 --retry 5 --retry-all-errors --retry-delay 2 "$service_url/healthz" >/dev/null \
  || die "$service_url/healthz fails after the traffic switch; roll back: scripts/ci/rollback.sh $ENV_NAME"
say "$CLOUD_RUN_SERVICE serves revision $revision (latest) at $service_url"
