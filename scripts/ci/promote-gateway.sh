#!/usr/bin/env bash
# Sends all of the gateway's traffic to the revision deploy-gateway.sh created and the smoke test passed, drops its temporary tag, and checks /healthz on the service URL. Needs: gcloud, curl, node 24, a synthesized stack, ci-out/deploy/<env>/gateway-revision (deploy-gateway.sh); GOOGLE_APPLICATION_CREDENTIALS (optional: else gcloud's active account). Usage: promote-gateway.sh <env>
source "$(dirname "$0")/lib.sh"
load_settings "${1:-}"
need_tools curl
need_stack
gcp_login
out="$CI_OUT/deploy/$ENV_NAME"
[ -s "$out/gateway-revision" ] || die "$out/gateway-revision is missing: run scripts/ci/deploy-gateway.sh $ENV_NAME first"
revision=$(cat "$out/gateway-revision")
traffic_tag=$(cat "$out/gateway-traffic-tag")
run=(--project "$PROJECT" --region "$CLOUD_RUN_REGION" --quiet)

# Traffic goes to this revision by name, not to "latest": exactly what the smoke test saw.
# Rolling back is the same command with the previous revision (README, Deploying).
gcloud run services update-traffic "$CLOUD_RUN_SERVICE" "${run[@]}" --to-revisions "$revision=100" >&2
gcloud run services update-traffic "$CLOUD_RUN_SERVICE" "${run[@]}" --remove-tags "$traffic_tag" >&2

service_url=$(cat "$out/gateway-service-url")
curl -fsS --max-time 10 --retry 5 --retry-all-errors --retry-delay 2 "$service_url/healthz" >/dev/null \
  || die "$service_url/healthz fails after the traffic switch; roll back: gcloud run services update-traffic $CLOUD_RUN_SERVICE --to-revisions <previous>=100"
say "$CLOUD_RUN_SERVICE serves revision $revision at $service_url"
