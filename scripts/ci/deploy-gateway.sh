#!/usr/bin/env bash
# Deploys the gateway image push-images.sh recorded (by digest) as a new Cloud Run revision that gets no traffic yet, only a tag URL (sha-<12 hex>) for the smoke test; promote-gateway.sh moves the traffic. Writes the revision, its URL and the revision serving before it to ci-out/deploy/<env>/. Needs: gcloud, jq, node 24, a synthesized stack, ci-out/images/<env>.env (push-images.sh), the caller may impersonate the deployer account (no key file). Usage: deploy-gateway.sh <env>
source "$(dirname "$0")/lib.sh"
load_settings "${1:-}"
need_tools jq
need_stack
load_images "$ENV_NAME"
use_identity deployer
traffic_tag="sha-$(printf '%s' "${IMAGE_TAG:0:12}" | tr -c 'a-z0-9' '-')"
image="$GATEWAY_REPOSITORY@$GATEWAY_DIGEST"
run=(--project "$PROJECT" --region "$CLOUD_RUN_REGION" --quiet)
out="$CI_OUT/deploy/$ENV_NAME"
mkdir -p "$out"
rm -f "$out/gateway-promoted"

# What serves now, for rollback.sh: with --no-traffic, gcloud turns "latest: 100 %" into that
# revision by name, so it keeps serving until promote-gateway.sh.
before=$(gcloud run services describe "$CLOUD_RUN_SERVICE" "${run[@]}" --format=json)
jq -r '[.status.traffic[]? | select((.percent // 0) > 0) | .revisionName] | first // empty' <<<"$before" >"$out/gateway-previous-revision"

# Only the gateway container's image changes (`--container`: the service also runs the metrics
# collector, infra/gateway-service.ts); everything else about the service (secrets, VPC egress,
# scaling, account, the collector) is Terraform's. The new revision runs the database migrations as it starts: they must keep
# working for the revision still serving (forward-only, additive).
say "deploying $image to $CLOUD_RUN_SERVICE (no traffic, tag $traffic_tag)"
gcloud run deploy "$CLOUD_RUN_SERVICE" "${run[@]}" --container gateway --image "$image" --no-traffic --tag "$traffic_tag" >&2

service=$(gcloud run services describe "$CLOUD_RUN_SERVICE" "${run[@]}" --format=json)
revision=$(jq -r '.status.latestCreatedRevisionName' <<<"$service")
ready=$(jq -r '.status.latestReadyRevisionName' <<<"$service")
[ "$revision" = "$ready" ] || die "revision $revision is not ready (latest ready: $ready); see gcloud run revisions describe $revision"
url=$(jq -r --arg t "$traffic_tag" '.status.traffic[] | select(.tag == $t) | .url' <<<"$service" | head -n 1)
[ -n "$url" ] || die "Cloud Run gave no URL for tag $traffic_tag"

printf '%s\n' "$revision" >"$out/gateway-revision"
printf '%s\n' "$image" >"$out/gateway-image"
printf '%s\n' "$traffic_tag" >"$out/gateway-traffic-tag"
printf '%s\n' "$url" >"$out/gateway-url"
jq -r '.status.url' <<<"$service" >"$out/gateway-service-url"
say "revision $revision ($image) is ready at $url (no traffic yet)"
