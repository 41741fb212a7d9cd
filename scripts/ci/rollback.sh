#!/usr/bin/env bash
# Rolls an environment back by digest, in one step: gateway traffic to a revision (by name, or the newest ready one running a digest; a new revision with that digest when none does), runners pinned back to a digest. Without options (what Jenkins runs when a deploy fails): from ci-out/deploy/<env>/, the runners go back to the image deploy-runners.sh recorded as running before, and gateway traffic goes back to the previous revision if promote-gateway.sh had moved it (else it never left it). Needs: gcloud (with gke-gcloud-auth-plugin for runners), kubectl, jq, node 24, a synthesized stack, the caller may impersonate the deployer account (no key file); GKE_GET_CREDENTIALS_FLAGS (optional). Usage: rollback.sh <env> [--gateway-revision R | --gateway-digest sha256:…] [--runner-digest sha256:…]
source "$(dirname "$0")/lib.sh"
load_settings "${1:-}"
shift
need_tools jq
need_stack
usage="usage: $0 <env> [--gateway-revision R | --gateway-digest sha256:…] [--runner-digest sha256:…]"
gateway_revision='' gateway_digest='' runner_image='' manual=false
while [ "$#" -gt 0 ]; do
  case $1 in
    --gateway-revision) [ -n "${2:-}" ] || die "$usage"; gateway_revision=$2 ;;
    --gateway-digest) is_digest "${2:-}" || die "--gateway-digest takes sha256:<64 hex>; $usage"; gateway_digest=$2 ;;
    --runner-digest) is_digest "${2:-}" || die "--runner-digest takes sha256:<64 hex>; $usage"; runner_image=$2 ;;
    *) die "$usage" ;;
  esac
  manual=true
  shift 2
done
[ -z "$gateway_revision" ] || [ -z "$gateway_digest" ] || die "either --gateway-revision or --gateway-digest; $usage"
out="$CI_OUT/deploy/$ENV_NAME"
run=(--project "$PROJECT" --region "$CLOUD_RUN_REGION" --quiet)

if [ "$manual" = false ]; then
  # What this build changed, from its own records.
  if [ -e "$out/runners-applied" ]; then
    previous=$(cat "$out/runner-previous-image" 2>/dev/null || true)
    case $previous in
      "$RUNNER_REPOSITORY"@sha256:*) runner_image=${previous#"$RUNNER_REPOSITORY"@} ;;
      "$RUNNER_REPOSITORY":*) runner_image=${previous#"$RUNNER_REPOSITORY":} ;;
      '') say "no runner ran before this deploy (first deploy): the runners are left as they are" ;;
      *) die "the recorded runner image '$previous' is not of $RUNNER_REPOSITORY" ;;
    esac
  else
    say "this build did not apply the runners: nothing to roll back there"
  fi
  if [ -e "$out/gateway-promoted" ]; then
    gateway_revision=$(cat "$out/gateway-previous-revision" 2>/dev/null || true)
    [ -n "$gateway_revision" ] || say "no revision served before this deploy: gateway traffic is left as it is"
  else
    say "gateway traffic was not moved by this build: it stays on the revision that served before"
  fi
fi
[ -n "$gateway_revision$gateway_digest$runner_image" ] || { say "nothing to roll back"; exit 0; }
use_identity deployer

if [ -n "$gateway_digest" ]; then
  image="$GATEWAY_REPOSITORY@$gateway_digest"
  gateway_revision=$(gcloud run revisions list --service "$CLOUD_RUN_SERVICE" "${run[@]}" --format=json \
    | jq -r --arg image "$image" '[.[] | select(.spec.containers[0].image == $image)
        | select(any(.status.conditions[]?; .type == "Ready" and .status == "True"))]
        | sort_by(.metadata.creationTimestamp) | last | .metadata.name // empty')
  if [ -z "$gateway_revision" ]; then
    # No revision runs it any more (revisions are cleaned up): a new one, checked ready before it
    # gets traffic, exactly as a deploy.
    say "no ready revision runs $image: deploying it (no traffic first)"
    gcloud run deploy "$CLOUD_RUN_SERVICE" "${run[@]}" --container gateway --image "$image" --no-traffic >&2
    service=$(gcloud run services describe "$CLOUD_RUN_SERVICE" "${run[@]}" --format=json)
    created=$(jq -r '.status.latestCreatedRevisionName' <<<"$service")
    [ "$created" = "$(jq -r '.status.latestReadyRevisionName' <<<"$service")" ] || die "revision $created with $image is not ready; traffic left as it was"
    gcloud run services update-traffic "$CLOUD_RUN_SERVICE" "${run[@]}" --to-latest >&2
    say "gateway traffic on $created ($image), latest"
    gateway_revision=''
  fi
fi
if [ -n "$gateway_revision" ]; then
  # By name: traffic stays there (Terraform-made revisions do not get it) until the next promote.
  gcloud run services update-traffic "$CLOUD_RUN_SERVICE" "${run[@]}" --to-revisions "$gateway_revision=100" >&2
  say "gateway traffic on revision $gateway_revision"
fi

if [ -n "$runner_image" ]; then
  k8s_credentials
  say "pinning the runners back to $RUNNER_REPOSITORY $runner_image"
  apply_runners "$runner_image" "$out/rollback"
  say "runners back on $runner_image"
fi
