#!/usr/bin/env bash
# Creates (or updates in place) the Kubernetes Secrets of an environment's namespace from Secret Manager, after the first terraform apply and `kubectl apply -f k8s/dist/<env>/` (the namespace): rabbitmq, rabbitmq-tls (ca.crt, tls.crt, tls.key), runner (runner-token, amqp-url to the in-cluster plaintext listener, gateway-url), keda-rabbitmq; values pass through files in a private folder, never a command line. Needs: gcloud (with gke-gcloud-auth-plugin), kubectl, jq, node 24, a synthesized stack; run by a cluster admin with their own gcloud login (may read the secrets and create Secrets in the namespace); GKE_GET_CREDENTIALS_FLAGS (optional). Usage: cluster-secrets.sh <env>
source "$(dirname "$0")/lib.sh"
load_settings "${1:-}"
need_tools gcloud jq
need_stack
ns=$K8S_NAMESPACE
umask 077
dir="$CI_TMP/secrets"
mkdir -p "$dir"

sm() { # <id>: the secret's value in $dir/<id>
  gcloud secrets versions access latest --secret="$PREFIX-$1" --project="$PROJECT" --out-file="$dir/$1" >/dev/null \
    || die "cannot read the secret $PREFIX-$1 (made by scripts/ci/bootstrap.sh $ENV_NAME)"
  [ -s "$dir/$1" ] || die "the secret $PREFIX-$1 is empty"
}
for id in rabbitmq-password rabbitmq-erlang-cookie runner-token rabbitmq-tls-ca rabbitmq-tls-cert rabbitmq-tls-key; do sm "$id"; done
password=$(tr -d '\n' <"$dir/rabbitmq-password")
# Runners stay inside the cluster, on the plaintext listener (the internal load balancer serves TLS
# only, for Cloud Run); KEDA reads the queue on the in-cluster management API.
printf 'amqp://%s:%s@rabbitmq-amqp.%s.svc.cluster.local:5672' "$AMQP_USER" "$password" "$ns" >"$dir/runner-amqp-url"
printf 'http://%s:%s@rabbitmq-management.%s.svc.cluster.local:15672' "$AMQP_USER" "$password" "$ns" >"$dir/management-url"
unset password
# The stack's gateway_url output is the service's URL; Cloud Run knows it only once it exists.
gateway_url=$(gcloud run services describe "$CLOUD_RUN_SERVICE" --project="$PROJECT" --region="$CLOUD_RUN_REGION" --format='value(status.url)') \
  || die "the Cloud Run service $CLOUD_RUN_SERVICE does not exist yet: run the first terraform apply first"
[ -n "$gateway_url" ] || die "Cloud Run reports no URL for $CLOUD_RUN_SERVICE"
printf '%s' "$gateway_url" >"$dir/gateway-url"

k8s_credentials
kubectl get namespace "$ns" -o name >/dev/null 2>&1 || die "namespace $ns does not exist: kubectl apply -f $K8S_DIST/ first (pods wait for these Secrets)"

# secret <name> <key=file>…: create, or replace the data of, one Secret (the manifest goes through
# a pipe, not a file or argv).
secret() {
  local name=$1 args=() pair
  shift
  for pair in "$@"; do args+=("--from-file=$pair"); done
  kubectl -n "$ns" create secret generic "$name" "${args[@]}" --dry-run=client -o yaml | kubectl -n "$ns" apply -f - >&2
  say "Secret $ns/$name"
}
printf '%s' "$AMQP_USER" >"$dir/rabbitmq-username"
secret rabbitmq rabbitmq-username="$dir/rabbitmq-username" rabbitmq-password="$dir/rabbitmq-password" rabbitmq-erlang-cookie="$dir/rabbitmq-erlang-cookie"
secret rabbitmq-tls ca.crt="$dir/rabbitmq-tls-ca" tls.crt="$dir/rabbitmq-tls-cert" tls.key="$dir/rabbitmq-tls-key"
secret runner runner-token="$dir/runner-token" amqp-url="$dir/runner-amqp-url" gateway-url="$dir/gateway-url"
secret keda-rabbitmq management-url="$dir/management-url"
say "the Secrets of $ns in $GKE_CLUSTER are in place"
