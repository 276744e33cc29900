#!/usr/bin/env bash
# Prints the Secrets jifen's manifests refer to, with fresh random keys and passwords, as YAML on
# standard output. An example generator: pipe it to `kubectl apply -f -`, or into your secret
# manager (sealed-secrets, SOPS, Vault); never commit its output.
#
#   deploy/k8s/scripts/generate-secrets.sh --env prod | kubectl apply -f -
#   deploy/k8s/scripts/generate-secrets.sh --env dev  | kubectl apply -f -
#
# prod also needs the object store's credentials for the PostgreSQL backups, which no script can
# invent: set JIFEN_BACKUP_ACCESS_KEY_ID and JIFEN_BACKUP_SECRET_ACCESS_KEY.
#
# Run it once per installation: running it again makes new keys, and applying them replaces the
# old ones — new JWT keys log everybody out, a new JIFEN_PII_KEY makes the stored phone and ID
# numbers unreadable (rotate it with `jifen-members rekey-pii` instead, docs/personal-data.md),
# and a new evaluation code key voids every outstanding invitation code. Database and broker
# passwords given to CloudNativePG and the topology operator are applied to the servers;
# Redis's takes effect when its pod restarts.
#
# Needs openssl (1.1.1 or later, for Ed25519).
set -euo pipefail

env=prod
namespace=
kid=k1
while [[ $# -gt 0 ]]; do
    case $1 in
        --env) env=$2; shift 2 ;;
        --namespace) namespace=$2; shift 2 ;;
        --kid) kid=$2; shift 2 ;;
        -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
        *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
case $env in
    prod) namespace=${namespace:-jifen} ;;
    dev) namespace=${namespace:-jifen-dev} ;;
    *) echo "--env must be prod or dev" >&2; exit 2 ;;
esac
if [[ $env == prod && ( -z ${JIFEN_BACKUP_ACCESS_KEY_ID:-} || -z ${JIFEN_BACKUP_SECRET_ACCESS_KEY:-} ) ]]; then
    echo "prod: set JIFEN_BACKUP_ACCESS_KEY_ID and JIFEN_BACKUP_SECRET_ACCESS_KEY (the object store of the PostgreSQL backups)" >&2
    exit 2
fi

# Hex passwords need no escaping in a URL or a configuration file.
password() { openssl rand -hex 24; }
key32() { openssl rand -base64 32; }

# secret NAME TYPE [LABEL] -- KEY VALUE [KEY VALUE...]: one Secret, values as stringData blocks.
secret() {
    local name=$1 type=$2 label=$3
    shift 4
    printf -- '---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\n  namespace: %s\n' "$name" "$namespace"
    printf '  labels:\n    app.kubernetes.io/name: jifen\n'
    [[ -n $label ]] && printf '    %s\n' "$label"
    printf 'type: %s\nstringData:\n' "$type"
    while [[ $# -gt 0 ]]; do
        printf '  %s: |-\n' "$1"
        printf '%s\n' "$2" | sed 's/^/    /'
        shift 2
    done
}

workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
openssl genpkey -algorithm ed25519 -out "$workdir/jwt.key.pem" 2>/dev/null
openssl pkey -in "$workdir/jwt.key.pem" -pubout -out "$workdir/jwt.pub.pem" 2>/dev/null

echo "# jifen Secrets for namespace $namespace ($env), generated $(date -u +%Y-%m-%dT%H:%M:%SZ). Do not commit."
secret jifen-jwt-signing Opaque '' -- "$kid.key.pem" "$(cat "$workdir/jwt.key.pem")"
secret jifen-jwt-public Opaque '' -- "$kid.pub.pem" "$(cat "$workdir/jwt.pub.pem")"
secret jifen-pii-key Opaque '' -- key "$(key32)"
secret jifen-evaluations-code-key Opaque '' -- key "$(key32)"
secret jifen-bootstrap-admin Opaque '' -- password "$(password)"

# PostgreSQL: prod has an owner and an app role per database on CloudNativePG's read-write
# Service; dev's single server has only its superuser, which the services use for both.
# JIFEN_DATABASE_URL is the server's URL: each service appends its own database.
if [[ $env == prod ]]; then
    for service in members declarations evaluations grading; do
        for role in owner app; do
            user="jifen_${service}_${role}"
            pass=$(password)
            # cnpg.io/reload: CloudNativePG applies a changed password to the role.
            secret "jifen-$service-db-$role" kubernetes.io/basic-auth 'cnpg.io/reload: "true"' -- \
                username "$user" password "$pass" url "postgres://$user:$pass@jifen-pg-rw:5432"
        done
    done
    secret jifen-pg-backup Opaque '' -- \
        ACCESS_KEY_ID "$JIFEN_BACKUP_ACCESS_KEY_ID" ACCESS_SECRET_KEY "$JIFEN_BACKUP_SECRET_ACCESS_KEY"
else
    pg=$(password)
    secret jifen-dev-postgres Opaque '' -- password "$pg"
    for service in members declarations evaluations grading; do
        secret "jifen-$service-db-app" Opaque '' -- url "postgres://postgres:$pg@jifen-pg-rw:5432"
    done
    # The year-end batch migrates before it grades: it reads the owner's Secret in every overlay.
    secret jifen-grading-db-owner Opaque '' -- url "postgres://postgres:$pg@jifen-pg-rw:5432"
fi

# RabbitMQ: jifen's user. In prod the topology operator creates it from username/password; in dev
# it is the broker's default user.
amqp=$(password)
secret jifen-amqp Opaque '' -- username jifen password "$amqp" url "amqp://jifen:$amqp@jifen-rabbitmq:5672/%2f"
if [[ $env == dev ]]; then
    secret jifen-dev-rabbitmq Opaque '' -- default-user.conf "default_user = jifen
default_pass = $amqp"
fi

# Redis: the password as redis.conf's `requirepass` (included by the server) and in the URL.
redis=$(password)
secret jifen-redis Opaque '' -- auth.conf "requirepass $redis" url "redis://:$redis@jifen-redis:6379"

echo "# Not generated: jifen-gateway-tls (kubernetes.io/tls) for the Ingress: cert-manager or your CA." >&2
