#!/usr/bin/env bash
# Makes, once per environment and idempotently, what must exist before the first terraform apply, from the lists in infra/bootstrap.ts: runs preflight.sh first, enables the APIs, the state bucket (versioned, uniform access, public access prevention), the secrets (generated here, values only in files, never on a command line; an existing secret is never replaced), the delivery accounts (terraform and planner in the project, jenkins and review in the CI home's) with their roles, custom roles, state-bucket and secret grants, and who may impersonate whom (plus the operator, for 24 hours, terraform: the first apply). Needs: gcloud, jq, openssl, node 24; run by a person who may administer the project's IAM (owner), with their own gcloud login; BOOTSTRAP_OPERATOR (optional: the IAM member allowed the first apply, default the gcloud account). Usage: bootstrap.sh <env>
source "$(dirname "$0")/lib.sh"
load_settings "${1:-}"
need_tools gcloud jq openssl
eval "$(node --import tsx scripts/ci/delivery.ts bootstrap "$ENV_NAME")" || die "cannot read infra/bootstrap.ts"
[ -z "${GOOGLE_APPLICATION_CREDENTIALS:-}" ] || die "GOOGLE_APPLICATION_CREDENTIALS is set: bootstrap runs with your own gcloud login, and nothing here uses key files"
unset CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT GOOGLE_IMPERSONATE_SERVICE_ACCOUNT
ci="$(dirname "$0")"
p=(--project="$PROJECT")

# 1. What blocks the design, before anything is made; the checks that need an API not enabled yet
#    are run again (strictly) once the APIs are on.
say "preflight of $PROJECT"
"$ci/preflight.sh" "$ENV_NAME" --bootstrap

# 2. APIs.
enabled=$(gcloud services list --enabled "${p[@]}" --format='value(config.name)')
missing=()
for api in "${REQUIRED_APIS[@]}"; do grep -qxF "$api" <<<"$enabled" || missing+=("$api"); done
if [ "${#missing[@]}" -gt 0 ]; then
  say "enabling ${missing[*]}"
  gcloud services enable "${missing[@]}" "${p[@]}"
  "$ci/preflight.sh" "$ENV_NAME"
fi

# 3. Terraform's state bucket.
bucket="gs://${BOOTSTRAP_STATE_BUCKET[0]}"
if gcloud storage buckets describe "$bucket" "${p[@]}" --format='value(name)' >/dev/null 2>&1; then
  say "$bucket exists"
else
  gcloud storage buckets create "$bucket" "${p[@]}" --location="$REGION" --uniform-bucket-level-access --public-access-prevention
fi
# Versioned: a state written wrong (or deleted) can be recovered.
gcloud storage buckets update "$bucket" --versioning --uniform-bucket-level-access --public-access-prevention >&2

# 4. Accounts. terraform and planner live in the environment's project, jenkins and review in the
#    CI home's (they reach every environment by impersonation).
account() { # <email> <description>
  local email=$1 id=${1%%@*} project=${1#*@}
  project=${project%.iam.gserviceaccount.com}
  if gcloud iam service-accounts describe "$email" --project="$project" --format='value(email)' >/dev/null 2>&1; then
    say "$email exists"
  else
    gcloud iam service-accounts create "$id" --project="$project" --display-name="$2"
  fi
}
account "$TERRAFORM_ACCOUNT" 'itemgen: applies Terraform (impersonated by Jenkins; no key)'
account "$PLANNER_ACCOUNT" 'itemgen: plans pull requests, read-only, no secrets (impersonated by review agents)'
account "$JENKINS_ACCOUNT" 'itemgen: Jenkins VM (attached; impersonates terraform and deployer)'
account "$REVIEW_ACCOUNT" 'itemgen: ephemeral review agents (attached; impersonates planner only)'

# 5. Custom roles (converged to the listed permissions), then project roles.
for i in "${!CUSTOM_ROLE_IDS[@]}"; do
  role=${CUSTOM_ROLE_IDS[$i]}
  if gcloud iam roles describe "$role" "${p[@]}" --format='value(name)' >/dev/null 2>&1; then
    gcloud iam roles update "$role" "${p[@]}" --title="${CUSTOM_ROLE_TITLES[$i]}" --permissions="${CUSTOM_ROLE_PERMISSIONS[$i]}" --stage=GA --quiet >&2
  else
    gcloud iam roles create "$role" "${p[@]}" --title="${CUSTOM_ROLE_TITLES[$i]}" --permissions="${CUSTOM_ROLE_PERMISSIONS[$i]}" --stage=GA >&2
  fi
done

grant() { # <email> <role> <condition title> <condition expression>
  local condition=(--condition=None)
  if [ -n "$4" ]; then
    # From a file: an expression holds commas and quotes that --condition=k=v,… cannot carry.
    local file
    file=$(mktemp "$CI_TMP/condition.XXXXXX")
    jq -n --arg t "$3" --arg e "$4" '{title: $t, expression: $e}' >"$file"
    condition=(--condition-from-file="$file")
  fi
  gcloud projects add-iam-policy-binding "$PROJECT" --member="serviceAccount:$1" --role="$2" "${condition[@]}" --format=none
}
for i in "${!TERRAFORM_ROLES[@]}"; do
  grant "$TERRAFORM_ACCOUNT" "${TERRAFORM_ROLES[$i]}" "${TERRAFORM_CONDITION_TITLES[$i]}" "${TERRAFORM_CONDITION_EXPRESSIONS[$i]}"
done
for i in "${!PLANNER_ROLES[@]}"; do
  grant "$PLANNER_ACCOUNT" "${PLANNER_ROLES[$i]}" "${PLANNER_CONDITION_TITLES[$i]}" "${PLANNER_CONDITION_EXPRESSIONS[$i]}"
done

# 6. State: terraform writes it (and its lock), the planner only reads it.
gcloud storage buckets add-iam-policy-binding "$bucket" --member="serviceAccount:$TERRAFORM_ACCOUNT" --role=roles/storage.objectAdmin --format=none
gcloud storage buckets add-iam-policy-binding "$bucket" --member="serviceAccount:$PLANNER_ACCOUNT" --role=roles/storage.objectViewer --format=none

# 7. Secrets: generated into files in this script's private folder, handed to gcloud by file name.
umask 077
secrets="$CI_TMP/secrets"
mkdir -p "$secrets"
exists() { gcloud secrets describe "$PREFIX-$1" "${p[@]}" --format='value(name)' >/dev/null 2>&1; }
create() { # <id> <file>
  [ -s "$2" ] || die "no value made for $PREFIX-$1"
  gcloud secrets create "$PREFIX-$1" "${p[@]}" --replication-policy=automatic --data-file="$2" >&2
  say "created secret $PREFIX-$1"
}
value_file() { # <id>: a file with the secret's current value (made here, or read back)
  local file="$secrets/$1"
  [ -s "$file" ] || gcloud secrets versions access latest --secret="$PREFIX-$1" "${p[@]}" --out-file="$file" >/dev/null \
    || die "cannot read $PREFIX-$1"
  printf '%s\n' "$file"
}
make_tls() {
  local dir="$secrets/tls" ns=$K8S_NAMESPACE
  mkdir -p "$dir"
  # A CA of this environment's own, whose key is thrown away once it has signed the server
  # certificate: a new certificate is a new CA (all three secrets replaced together).
  openssl req -x509 -new -nodes -newkey rsa:3072 -sha256 -days 3650 -subj "/CN=$PREFIX RabbitMQ CA" \
    -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign' \
    -keyout "$dir/ca.key" -out "$secrets/rabbitmq-tls-ca" 2>/dev/null
  openssl req -new -nodes -newkey rsa:3072 -sha256 -subj "/CN=rabbitmq.$ns.svc.cluster.local" \
    -keyout "$secrets/rabbitmq-tls-key" -out "$dir/server.csr" 2>/dev/null
  # The names clients verify: Cloud Run dials the internal load balancer's address, pods the
  # in-cluster names (each broker by its headless-service name).
  printf '%s\n' \
    "subjectAltName=IP:$RABBITMQ_ADDRESS,DNS:rabbitmq.$ns.svc.cluster.local,DNS:*.rabbitmq-headless.$ns.svc.cluster.local" \
    'basicConstraints=critical,CA:FALSE' 'keyUsage=critical,digitalSignature,keyEncipherment' 'extendedKeyUsage=serverAuth' >"$dir/ext.cnf"
  openssl x509 -req -sha256 -days 825 -in "$dir/server.csr" -CA "$secrets/rabbitmq-tls-ca" -CAkey "$dir/ca.key" \
    -CAcreateserial -extfile "$dir/ext.cnf" -out "$secrets/rabbitmq-tls-cert" 2>/dev/null
  rm -f "$dir/ca.key"
}
tls_ids=()
for i in "${!SECRET_IDS[@]}"; do
  case ${SECRET_SOURCES[$i]} in tls-*) tls_ids+=("${SECRET_IDS[$i]}") ;; esac
done
tls_missing=0
for id in "${tls_ids[@]}"; do exists "$id" || tls_missing=$((tls_missing + 1)); done
if [ "$tls_missing" -ne 0 ] && [ "$tls_missing" -ne "${#tls_ids[@]}" ]; then
  die "only some of the RabbitMQ TLS secrets exist (${tls_ids[*]}): they belong together; delete the rest to make all three again"
fi
[ "$tls_missing" -eq 0 ] || make_tls

for i in "${!SECRET_IDS[@]}"; do
  id=${SECRET_IDS[$i]}
  if exists "$id"; then
    say "secret $PREFIX-$id exists; left as it is"
    continue
  fi
  case ${SECRET_SOURCES[$i]} in
    # No trailing newline: Cloud Run hands a secret to the gateway byte for byte, and Terraform's
    # copy of the database password (read back through $(…)) has none.
    random) openssl rand -hex 32 | tr -d '\n' >"$secrets/$id" ;;
    amqp-url)
      password_file=$(value_file rabbitmq-password)
      # printf is bash's own: the password reaches the file, not a process list.
      printf 'amqps://%s:%s@%s:%s' "$AMQP_USER" "$(tr -d '\n' <"$password_file")" "$RABBITMQ_ADDRESS" "$AMQPS_PORT" >"$secrets/$id"
      ;;
    tls-*) ;; # made above
    *) die "unknown secret source ${SECRET_SOURCES[$i]} for $id (infra/bootstrap.ts)" ;;
  esac
  create "$id" "$secrets/$id"
done

# 8. Terraform reads the database password (for the write-only argument), nothing else.
gcloud secrets add-iam-policy-binding "$DATABASE_PASSWORD_SECRET" "${p[@]}" \
  --member="serviceAccount:$TERRAFORM_ACCOUNT" --role=roles/secretmanager.secretAccessor --format=none

# 9. Impersonation: Jenkins may act as terraform, the review agents as the planner; nothing else.
gcloud iam service-accounts add-iam-policy-binding "$TERRAFORM_ACCOUNT" "${p[@]}" \
  --member="serviceAccount:$JENKINS_ACCOUNT" --role=roles/iam.serviceAccountTokenCreator --format=none
gcloud iam service-accounts add-iam-policy-binding "$PLANNER_ACCOUNT" "${p[@]}" \
  --member="serviceAccount:$REVIEW_ACCOUNT" --role=roles/iam.serviceAccountTokenCreator --format=none
# 10. The first apply has no Jenkins VM to run it yet (the dev stack makes it): the person
#     bootstrapping (or BOOTSTRAP_OPERATOR, e.g. group:platform@example.com) may act as terraform
#     for 24 hours, by an IAM condition that expires on its own; afterwards only Jenkins can.
operator=${BOOTSTRAP_OPERATOR:-}
if [ -z "$operator" ]; then
  me=$(gcloud config get-value account 2>/dev/null || true)
  [ -n "$me" ] || die "no gcloud account: run gcloud auth login, or set BOOTSTRAP_OPERATOR"
  case $me in *.gserviceaccount.com) operator="serviceAccount:$me" ;; *) operator="user:$me" ;; esac
fi
until=$(date -u -d '+24 hours' +%Y-%m-%dT%H:%M:%SZ)
expiry="$CI_TMP/operator-condition.json"
jq -n --arg until "$until" '{title: "bootstrap operator, first apply", description: "expires by itself", expression: ("request.time < timestamp(\"" + $until + "\")")}' >"$expiry"
gcloud iam service-accounts add-iam-policy-binding "$TERRAFORM_ACCOUNT" "${p[@]}" \
  --member="$operator" --role=roles/iam.serviceAccountTokenCreator --condition-from-file="$expiry" --format=none
say "$operator may act as $TERRAFORM_ACCOUNT until $until (the first apply)"
say "$ENV_NAME ($PROJECT) is bootstrapped; next: the first apply (README, Deploying)"
