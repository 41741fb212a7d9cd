#!/usr/bin/env bash
# Applies the plan that terraform-plan.sh saved for an environment (`terraform apply tfplan`) as the environment's terraform account, so exactly the reviewed plan is applied, then deletes it. Needs: terraform, gcloud, node 24, the caller may impersonate the terraform account (no key file). Usage: terraform-apply.sh <env>
source "$(dirname "$0")/lib.sh"
load_settings "${1:-}"
need_tools terraform
plan="$STACK_DIR/tfplan"
[ -f "$plan" ] || die "$plan is missing: run scripts/ci/terraform-plan.sh $ENV_NAME first"
on_exit "rm -f '$plan'"
use_identity terraform
# The saved plan carries the variables it was made with except the ephemeral database password,
# which terraform asks for again. A plan made against an older state is refused by terraform
# ("Saved plan is stale"): plan again.
export_database_password
terraform -chdir="$STACK_DIR" apply -input=false -no-color -lock-timeout=10m tfplan
say "$STACK applied"
