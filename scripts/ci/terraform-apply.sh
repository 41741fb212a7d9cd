#!/usr/bin/env bash
# Applies the plan that terraform-plan.sh saved for an environment (`terraform apply tfplan`), so exactly the reviewed plan is applied, then deletes it. Needs: terraform, node 24, GOOGLE_APPLICATION_CREDENTIALS (optional: else application default credentials). Usage: terraform-apply.sh <env>
source "$(dirname "$0")/lib.sh"
load_settings "${1:-}"
need_tools terraform
plan="$STACK_DIR/tfplan"
[ -f "$plan" ] || die "$plan is missing: run scripts/ci/terraform-plan.sh $ENV_NAME first"
on_exit "rm -f '$plan'"
# A plan made against an older state is refused by terraform ("Saved plan is stale"): plan again.
terraform -chdir="$STACK_DIR" apply -input=false -no-color -lock-timeout=10m tfplan
say "$STACK applied"
