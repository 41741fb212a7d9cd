#!/usr/bin/env bash
# Deploys gateway:<sha> as a new Cloud Run revision that gets no traffic yet, only a tag URL (sha-<12 hex>) for the smoke test; promote-gateway.sh moves the traffic. Writes the revision and its URL to ci-out/deploy/<env>/. Needs: gcloud, jq, node 24, git, a synthesized stack; GOOGLE_APPLICATION_CREDENTIALS (optional: else gcloud's active account), IMAGE_TAG (optional). Usage: deploy-gateway.sh <env>
source "$(dirname "$0")/lib.sh"
load_settings "${1:-}"
need_tools jq git
need_stack
gcp_login
tag=$(image_tag)
traffic_tag="sha-$(printf '%s' "${tag:0:12}" | tr -c 'a-z0-9' '-')"
image="$GATEWAY_REPOSITORY:$tag"
run=(--project "$PROJECT" --region "$CLOUD_RUN_REGION" --quiet)

# Only the image changes; everything else about the service (secrets, VPC egress, scaling, account)
# is Terraform's. The new revision runs the database migrations as it starts: they must keep
# working for the revision still serving (forward-only, additive).
say "deploying $image to $CLOUD_RUN_SERVICE (no traffic, tag $traffic_tag)"
gcloud run deploy "$CLOUD_RUN_SERVICE" "${run[@]}" --image "$image" --no-traffic --tag "$traffic_tag" >&2

service=$(gcloud run services describe "$CLOUD_RUN_SERVICE" "${run[@]}" --format=json)
revision=$(jq -r '.status.latestCreatedRevisionName' <<<"$service")
ready=$(jq -r '.status.latestReadyRevisionName' <<<"$service")
[ "$revision" = "$ready" ] || die "revision $revision is not ready (latest ready: $ready); see gcloud run revisions describe $revision"
url=$(jq -r --arg t "$traffic_tag" '.status.traffic[] | select(.tag == $t) | .url' <<<"$service" | head -n 1)
[ -n "$url" ] || die "Cloud Run gave no URL for tag $traffic_tag"

out="$CI_OUT/deploy/$ENV_NAME"
mkdir -p "$out"
printf '%s\n' "$revision" >"$out/gateway-revision"
printf '%s\n' "$traffic_tag" >"$out/gateway-traffic-tag"
printf '%s\n' "$url" >"$out/gateway-url"
jq -r '.status.url' <<<"$service" >"$out/gateway-service-url"
say "revision $revision is ready at $url (no traffic yet)"
