#!/usr/bin/env bash
# Checks what would block this design in an environment's project before anything is made there, each with a clear message: domain-restricted sharing (the gateway needs the public allUsers run.invoker), service-account key creation (informational: nothing here needs a key), the region's L4 GPU quota against the GPU node pool's maximum, and the APIs infra/bootstrap.ts requires; exits 1 when something blocks. With --bootstrap (bootstrap.sh, on a new project): disabled APIs and the checks that need them are reported, not failed, since bootstrap.sh enables them and runs this again. Needs: gcloud, jq, node 24, a caller allowed to read the project's org policies, quotas and services. Usage: preflight.sh <env> [--bootstrap]
source "$(dirname "$0")/lib.sh"
load_settings "${1:-}"
need_tools gcloud jq
bootstrap=false
case "${2:-}" in
  '') ;;
  --bootstrap) bootstrap=true ;;
  *) die "usage: $0 <env> [--bootstrap]" ;;
esac
eval "$(node --import tsx scripts/ci/delivery.ts bootstrap "$ENV_NAME")" || die "cannot read infra/bootstrap.ts"

blocked=0
ok() { say "ok: $*"; }
note() { say "note: $*"; }
block() { say "BLOCKED: $*"; blocked=$((blocked + 1)); }

# APIs first: the other checks call some of them.
enabled=$(gcloud services list --enabled --project="$PROJECT" --format='value(config.name)') \
  || die "cannot list the enabled services of $PROJECT (does the project exist, and may you read it?)"
has_api() { grep -qxF "$1" <<<"$enabled"; }
missing=()
for api in "${REQUIRED_APIS[@]}"; do has_api "$api" || missing+=("$api"); done
if [ "${#missing[@]}" -eq 0 ]; then
  ok "every API the stack needs is enabled (${#REQUIRED_APIS[@]})"
elif [ "$bootstrap" = true ]; then
  note "${#missing[@]} API(s) not enabled yet, bootstrap.sh enables them: ${missing[*]}"
else
  block "API(s) not enabled in $PROJECT: ${missing[*]} — run scripts/ci/bootstrap.sh $ENV_NAME (or gcloud services enable ${missing[*]} --project=$PROJECT)"
fi

# needs_api <api> <what>: false (and says why) when a check cannot run yet.
needs_api() {
  has_api "$1" && return 0
  if [ "$bootstrap" = true ]; then note "$2: not checked yet ($1 is not enabled; checked again once bootstrap.sh enabled it)"; else block "$2: cannot be checked, $1 is not enabled"; fi
  return 1
}

policy() { # <constraint>: the effective policy as JSON
  gcloud org-policies describe "$1" --project="$PROJECT" --effective --format=json
}

if needs_api orgpolicy.googleapis.com 'org policies'; then
  # Domain-restricted sharing: with any allowed-values list (or deny all), IAM refuses `allUsers`,
  # and the gateway's public run.invoker grant (Terraform) fails.
  if drs=$(policy constraints/iam.allowedPolicyMemberDomains); then
    verdict=$(jq -r '(.spec.rules // []) as $r
      | if ($r | any(.allowAll == true and (.condition == null))) then "open"
        elif ($r | any(.denyAll == true or ((.values.allowedValues // []) | length > 0) or ((.values.deniedValues // []) | length > 0))) then "restricted"
        else "open" end' <<<"$drs")
    if [ "$verdict" = restricted ]; then
      block "constraints/iam.allowedPolicyMemberDomains (domain-restricted sharing) is enforced on $PROJECT: the gateway's public roles/run.invoker for allUsers will be refused. Ask the organisation's policy admin for an exception on this project (a project policy with allowAll for this constraint), or put the gateway behind a load balancer with its own access control"
    else
      ok "domain-restricted sharing allows allUsers (the gateway's public run.invoker)"
    fi
  else
    block "cannot read constraints/iam.allowedPolicyMemberDomains of $PROJECT (needs roles/orgpolicy.policyViewer)"
  fi
  if keys=$(policy constraints/iam.disableServiceAccountKeyCreation); then
    if jq -e '(.spec.rules // []) | any(.enforce == true)' <<<"$keys" >/dev/null; then
      note "constraints/iam.disableServiceAccountKeyCreation is enforced on $PROJECT: fine, delivery creates no service-account keys (it impersonates)"
    else
      note "constraints/iam.disableServiceAccountKeyCreation is not enforced on $PROJECT; delivery creates no keys either way"
    fi
  else
    note "cannot read constraints/iam.disableServiceAccountKeyCreation of $PROJECT; delivery creates no keys either way"
  fi
fi

if needs_api compute.googleapis.com "GPU quota ($GPU_QUOTA_METRIC in $REGION)"; then
  if region=$(gcloud compute regions describe "$REGION" --project="$PROJECT" --format=json); then
    limit() { jq -r --arg m "$1" '[.quotas[]? | select(.metric == $m) | .limit] | first // 0 | floor' <<<"$region"; }
    need=$GPU_MAX_NODES # one GPU per node: the pool's machine type carries one (infra/cluster.ts)
    regular=$(limit "$GPU_QUOTA_METRIC")
    if [ "$GPU_SPOT" = true ]; then
      # Spot VMs count against the preemptible quota when the region grants one, else the regular one.
      preemptible=$(limit "PREEMPTIBLE_$GPU_QUOTA_METRIC")
      if [ "$preemptible" -ge "$need" ]; then
        ok "PREEMPTIBLE_$GPU_QUOTA_METRIC in $REGION is $preemptible, the spot GPU pool grows to $need"
      elif [ "$preemptible" -eq 0 ] && [ "$regular" -ge "$need" ]; then
        ok "no PREEMPTIBLE_$GPU_QUOTA_METRIC quota in $REGION: spot GPUs use $GPU_QUOTA_METRIC ($regular ≥ $need)"
      else
        block "GPU quota in $REGION: PREEMPTIBLE_$GPU_QUOTA_METRIC is $preemptible and $GPU_QUOTA_METRIC $regular, the spot GPU pool grows to $need nodes; request more (IAM & Admin → Quotas) or lower gke.gpuMaxNodes"
      fi
    elif [ "$regular" -ge "$need" ]; then
      ok "$GPU_QUOTA_METRIC in $REGION is $regular, the GPU pool grows to $need"
    else
      block "GPU quota in $REGION: $GPU_QUOTA_METRIC is $regular, the GPU pool grows to $need nodes; request more (IAM & Admin → Quotas) or lower gke.gpuMaxNodes"
    fi
  else
    block "cannot read the quotas of $REGION in $PROJECT"
  fi
fi

[ "$blocked" -eq 0 ] || die "$blocked check(s) block $ENV_NAME ($PROJECT); see above"
say "$ENV_NAME ($PROJECT): nothing blocks"
