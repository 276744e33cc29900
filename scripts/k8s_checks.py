#!/usr/bin/env python3
"""The project's own checks of the Kubernetes manifests, run by scripts/check-k8s.sh.

Each check prints one line and exits non-zero on the first failing check, naming what failed:

  split RENDERED BUILTIN CUSTOM     split a rendered overlay: Kubernetes' own kinds (validated by
                                   kubernetes-validate) and the operators' custom resources
                                   (validated by `crs`); an unknown apiVersion/kind fails here.
  with-policies RENDERED PARENT OUT  RENDERED plus PARENT's NetworkPolicies, for checkov.
  crs CUSTOM                       each custom resource has its apiVersion, kind and the fields
                                   its CRD marks required (table CUSTOM_RESOURCES below).
  secrets GENERATED RENDERED...    every Secret the renders read (volumes, projected sources,
                                   operators' secret references) is made by
                                   deploy/k8s/scripts/generate-secrets.sh with the keys read, and
                                   it makes nothing unused.
  layers RENDERED MIGRATE          the jifen.io/layer labels a first install applies in order
                                   (namespace, data, then migrate/, then the rest) are where
                                   the README's steps need them.
  batch RENDERED                   the year-end grading CronJob: Indexed, completions ==
                                   parallelism == SHARDS, the shard argument, the Job limits.
  images RENDERED RENDERED...      every jifen container of the given renders runs the same image
                                   (an overlay and its migrate/ must release the same version).
  rules-sync                       deploy/observability/prometheusrule.yaml embeds exactly the
                                   groups of deploy/observability/rules/jifen.rules.yaml.
  runbooks                         every alert has a severity and a runbook_url whose anchor is a
                                   heading of docs/operations.md.
  metrics                          every metric named in the alert rules and the dashboard is one
                                   the services expose (METRICS below) or kube-state-metrics'.
  sync-rules                       (not a check) rewrites prometheusrule.yaml from the rules file.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
OBS = ROOT / "deploy" / "observability"
RULES = OBS / "rules" / "jifen.rules.yaml"
PROMETHEUS_RULE = OBS / "prometheusrule.yaml"
DASHBOARD = OBS / "grafana" / "jifen-dashboard.json"
OPERATIONS = ROOT / "docs" / "operations.md"

# Kubernetes' own API groups: validated by kubernetes-validate against the target version's
# schemas. Anything else must be in CUSTOM_RESOURCES.
BUILTIN_GROUPS = {
    "v1",
    "apps/v1",
    "batch/v1",
    "policy/v1",
    "autoscaling/v2",
    "networking.k8s.io/v1",
    "rbac.authorization.k8s.io/v1",
}

# The custom resources jifen uses, for the operator versions named in deploy/k8s/README.md, and
# the fields their CRDs' openAPIV3Schema mark `required` (dotted paths; `[]` = every item).
# Sources (config/crd/bases/ of each operator's repository):
#   CloudNativePG 1.27: postgresql.cnpg.io_clusters.yaml (spec: instances; managed.roles[]:
#     name; passwordSecret: name; barmanObjectStore: destinationPath; s3Credentials key refs:
#     key, name), postgresql.cnpg.io_databases.yaml (spec: cluster, name, owner; cluster: name),
#     postgresql.cnpg.io_scheduledbackups.yaml (spec: cluster, schedule; cluster: name).
#   RabbitMQ Cluster Operator 2.16: rabbitmq.com_rabbitmqclusters.yaml (no required spec field;
#     we require replicas). Messaging topology operator 1.17: rabbitmq.com_users.yaml (spec:
#     rabbitmqClusterReference), rabbitmq.com_permissions.yaml (spec: permissions,
#     rabbitmqClusterReference, vhost; and user or userReference, enforced by its webhook).
#   OpenTelemetry Operator 0.13x: opentelemetry.io_opentelemetrycollectors.yaml, v1beta1 (spec:
#     config; config: exporters, receivers, service; service: pipelines; pipeline: exporters,
#     receivers).
#   Prometheus Operator 0.8x: monitoring.coreos.com_prometheusrules.yaml (groups[]: name;
#     rules[]: expr), monitoring.coreos.com_podmonitors.yaml (spec: selector).
CUSTOM_RESOURCES: dict[tuple[str, str], list[str]] = {
    ("postgresql.cnpg.io/v1", "Cluster"): ["spec.instances"],
    ("postgresql.cnpg.io/v1", "Database"): ["spec.cluster.name", "spec.name", "spec.owner"],
    ("postgresql.cnpg.io/v1", "ScheduledBackup"): ["spec.cluster.name", "spec.schedule"],
    ("rabbitmq.com/v1beta1", "RabbitmqCluster"): ["spec.replicas"],
    ("rabbitmq.com/v1beta1", "User"): ["spec.rabbitmqClusterReference"],
    ("rabbitmq.com/v1beta1", "Permission"): [
        "spec.permissions",
        "spec.rabbitmqClusterReference",
        "spec.vhost",
    ],
    ("opentelemetry.io/v1beta1", "OpenTelemetryCollector"): [
        "spec.config.receivers",
        "spec.config.exporters",
        "spec.config.service.pipelines",
    ],
    ("monitoring.coreos.com/v1", "PrometheusRule"): ["spec.groups"],
    ("monitoring.coreos.com/v1", "PodMonitor"): ["spec.selector"],
}

# The metrics the services expose (the names agreed for issue 14), and kube-state-metrics'.
METRICS = {
    "http_requests_total",
    "http_request_duration_seconds_bucket",
    "jifen_grpc_server_requests_total",
    "jifen_grpc_server_request_duration_seconds_bucket",
    "jifen_outbox_backlog",
    "jifen_outbox_oldest_age_seconds",
    "jifen_outbox_published_total",
    "jifen_events_consumed_total",
    "jifen_consumer_queue_messages",
    "jifen_consumer_dead_letters",
    "jifen_db_pool_connections",
    "jifen_db_pool_max_connections",
    "gateway_code_guess_refused_total",
    "gateway_code_exchange_failures_total",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_open_fds",
    "process_start_time_seconds",
    "up",
    "kube_job_status_failed",
}


class CheckFailed(Exception):
    pass


def load_all(path: str | Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def name_of(doc: dict) -> str:
    return f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


def get(doc, dotted: str):
    """The values at a dotted path; `[]` descends into every item of a list."""
    values = [doc]
    for part in dotted.split("."):
        many = part.endswith("[]")
        key = part[:-2] if many else part
        nxt = []
        for v in values:
            if not isinstance(v, dict) or key not in v or v[key] is None:
                raise CheckFailed(f"missing required field {dotted}")
            child = v[key]
            if many:
                if not isinstance(child, list) or not child:
                    raise CheckFailed(f"{dotted}: expected a non-empty list")
                nxt.extend(child)
            else:
                nxt.append(child)
        values = nxt
    return values


# --- split -------------------------------------------------------------------------------------


def split(rendered: str, builtin_out: str, custom_out: str) -> str:
    builtin, custom = [], []
    for doc in load_all(rendered):
        key = (doc.get("apiVersion"), doc.get("kind"))
        if key[0] in BUILTIN_GROUPS:
            builtin.append(doc)
        elif key in CUSTOM_RESOURCES:
            custom.append(doc)
        else:
            raise CheckFailed(f"{name_of(doc)}: unknown apiVersion/kind {key[0]} {key[1]}")
    for out, docs in ((builtin_out, builtin), (custom_out, custom)):
        with open(out, "w", encoding="utf-8") as f:
            yaml.safe_dump_all(docs, f, sort_keys=False, allow_unicode=True)
    return f"{len(builtin)} Kubernetes resources, {len(custom)} custom resources"


def with_policies(rendered: str, parent: str, out: str) -> str:
    """`rendered` plus the NetworkPolicies of `parent` (the overlay whose namespace it joins)."""
    policies = [d for d in load_all(parent) if d.get("kind") == "NetworkPolicy"]
    if not policies:
        raise CheckFailed(f"{parent} has no NetworkPolicy")
    with open(out, "w", encoding="utf-8") as f:
        yaml.safe_dump_all(load_all(rendered) + policies, f, sort_keys=False, allow_unicode=True)
    return f"{len(policies)} NetworkPolicies added"


# --- crs ---------------------------------------------------------------------------------------


def check_cr(doc: dict) -> None:
    key = (doc.get("apiVersion"), doc.get("kind"))
    for path in CUSTOM_RESOURCES[key]:
        get(doc, path)
    spec = doc["spec"]
    kind = key[1]
    if kind == "Cluster":
        if spec["instances"] < 3:
            raise CheckFailed("a production Cluster needs 3 instances")
        for role in spec.get("managed", {}).get("roles", []):
            get(role, "name")
            if "passwordSecret" in role:
                get(role, "passwordSecret.name")
        store = spec.get("backup", {}).get("barmanObjectStore")
        if store is not None:
            get(store, "destinationPath")
            for ref in ("accessKeyId", "secretAccessKey"):
                get(store, f"s3Credentials.{ref}.name")
                get(store, f"s3Credentials.{ref}.key")
        initdb = spec.get("bootstrap", {}).get("initdb")
        if initdb is not None and "owner" in initdb and "database" not in initdb:
            raise CheckFailed("bootstrap.initdb.owner without database")
    elif kind == "ScheduledBackup":
        # CloudNativePG's schedule has a seconds field: six fields, not a CronJob's five.
        if len(str(spec["schedule"]).split()) != 6:
            raise CheckFailed(f"schedule {spec['schedule']!r} must have 6 fields (seconds first)")
    elif kind == "RabbitmqCluster":
        if spec["replicas"] % 2 == 0:
            raise CheckFailed("an even number of RabbitMQ nodes cannot keep a quorum majority")
    elif kind == "Permission":
        if "user" not in spec and "userReference" not in spec:
            raise CheckFailed("Permission needs user or userReference")
    elif kind == "OpenTelemetryCollector":
        config = spec["config"]
        for name, pipeline in config["service"]["pipelines"].items():
            for part in ("receivers", "exporters", "processors"):
                if part != "processors":
                    get(pipeline, part)
                for component in pipeline.get(part, []):
                    if component not in (config.get(part) or {}):
                        raise CheckFailed(f"pipeline {name} names undefined {part[:-1]} {component}")
    elif kind == "PrometheusRule":
        for group in spec["groups"]:
            get(group, "name")
            for rule in get(group, "rules")[0]:
                get(rule, "expr")
                if "alert" not in rule and "record" not in rule:
                    raise CheckFailed(f"group {group['name']}: a rule without alert or record")
    elif kind == "PodMonitor":
        for endpoint in get(doc, "spec.podMetricsEndpoints")[0]:
            get(endpoint, "port")


def crs(custom: str) -> str:
    docs = load_all(custom)
    for doc in docs:
        try:
            check_cr(doc)
        except CheckFailed as e:
            raise CheckFailed(f"{name_of(doc)} ({doc.get('apiVersion')}): {e}") from None
    kinds = sorted({d["kind"] for d in docs})
    return f"{len(docs)} custom resources ({', '.join(kinds) or 'none'}) have their required fields"


# --- secrets ---------------------------------------------------------------------------------


# Secrets the manifests use that the generator does not make, on purpose.
NOT_GENERATED = {"jifen-gateway-tls"}  # the Ingress certificate: cert-manager or the operator's CA


def secret_references(docs: list[dict]) -> dict[str, set[str]]:
    """Secret name -> the keys the manifests read from it (empty: the whole Secret)."""
    refs: dict[str, set[str]] = {}

    def add(name, keys=()):
        refs.setdefault(name, set()).update(keys)

    def walk(node):
        if isinstance(node, dict):
            secret = node.get("secret")
            if isinstance(secret, dict):
                name = secret.get("secretName") or secret.get("name")
                if name:
                    add(name, [i["key"] for i in secret.get("items", [])])
            for key in ("secretKeyRef",):
                if isinstance(node.get(key), dict):
                    add(node[key]["name"], [node[key]["key"]])
            if isinstance(node.get("passwordSecret"), dict):
                add(node["passwordSecret"]["name"], ["username", "password"])
            if isinstance(node.get("importCredentialsSecret"), dict):
                add(node["importCredentialsSecret"]["name"], ["username", "password"])
            s3 = node.get("s3Credentials")
            if isinstance(s3, dict):
                for ref in s3.values():
                    add(ref["name"], [ref["key"]])
            for tls in node.get("tls", []) if isinstance(node.get("tls"), list) else []:
                if isinstance(tls, dict) and "secretName" in tls:
                    add(tls["secretName"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(docs)
    return refs


def secrets(generated: str, *rendered: str) -> str:
    made = {}
    for doc in load_all(generated):
        if doc.get("kind") == "Secret":
            made[doc["metadata"]["name"]] = set(doc.get("stringData", {})) | set(doc.get("data", {}))
    docs = [d for path in rendered for d in load_all(path)]
    refs = secret_references(docs)
    for name, keys in sorted(refs.items()):
        if name in NOT_GENERATED:
            continue
        if name not in made:
            raise CheckFailed(f"Secret {name} is used but generate-secrets.sh does not make it")
        missing = keys - made[name]
        if missing:
            raise CheckFailed(f"Secret {name} lacks keys {sorted(missing)} that the manifests read")
    unused = set(made) - set(refs)
    if unused:
        raise CheckFailed(f"generate-secrets.sh makes Secrets nothing uses: {sorted(unused)}")
    return f"generate-secrets.sh makes the {len(made)} Secrets the manifests use, with their keys"


# --- layers ----------------------------------------------------------------------------------

# What a first install applies with `-l jifen.io/layer=data` before the migration Jobs: the
# servers, the databases the Jobs migrate, the broker user (deploy/k8s/README.md, "Install").
DATA_KINDS = {"Cluster", "Database", "ScheduledBackup", "RabbitmqCluster", "User", "Permission",
              "OpenTelemetryCollector", "StatefulSet"}


def layer(doc: dict) -> str | None:
    return (doc.get("metadata", {}).get("labels") or {}).get("jifen.io/layer")


def layers(rendered: str, migrate: str) -> str:
    docs = load_all(rendered)
    for doc in docs:
        kind, name = doc["kind"], doc["metadata"]["name"]
        wanted = None
        if kind == "Namespace":
            wanted = "namespace"
        elif kind in DATA_KINDS or name.startswith(("jifen-redis", "jifen-otel-collector")):
            wanted = "data"
        elif (doc.get("metadata", {}).get("labels") or {}).get("app.kubernetes.io/name") == "jifen" \
                and kind in ("Deployment", "CronJob"):
            wanted = "app"
        if wanted and layer(doc) != wanted:
            raise CheckFailed(f"{name_of(doc)} must carry jifen.io/layer={wanted}, has {layer(doc)}")
    for doc in load_all(migrate):
        if layer(doc) != "migrate":
            raise CheckFailed(f"{name_of(doc)} in the migrate render must carry jifen.io/layer=migrate")
    counts = {}
    for doc in docs:
        counts[layer(doc) or "(app, unlabelled)"] = counts.get(layer(doc) or "(app, unlabelled)", 0) + 1
    return "install layers: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


# --- batch -------------------------------------------------------------------------------------


def batch(rendered: str) -> str:
    cronjobs = [
        d
        for d in load_all(rendered)
        if d.get("kind") == "CronJob" and d["metadata"]["name"] == "jifen-grading-batch"
    ]
    if len(cronjobs) != 1:
        raise CheckFailed("expected one CronJob jifen-grading-batch")
    cj = cronjobs[0]
    spec = cj["spec"]
    if spec.get("timeZone") != "Asia/Shanghai" or spec.get("concurrencyPolicy") != "Forbid":
        raise CheckFailed("the grading CronJob must run in Asia/Shanghai with concurrencyPolicy Forbid")
    job = spec["jobTemplate"]["spec"]
    if job.get("completionMode") != "Indexed":
        raise CheckFailed("the grading Job must be Indexed (each pod takes the shard of its index)")
    for field in ("backoffLimitPerIndex", "maxFailedIndexes", "podFailurePolicy",
                  "activeDeadlineSeconds", "ttlSecondsAfterFinished"):
        if field not in job:
            raise CheckFailed(f"the grading Job lacks {field}")
    containers = job["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in containers[0].get("env", [])}
    shards = env.get("SHARDS")
    if shards is None or not str(shards).isdigit():
        raise CheckFailed("the grading container lacks a numeric SHARDS")
    n = {"completions": job.get("completions"), "parallelism": job.get("parallelism"),
         "SHARDS": int(shards)}
    if len(set(n.values())) != 1:
        raise CheckFailed(f"shard count disagrees: {n}")
    args = " ".join(containers[0].get("args", []))
    if "--shard $(JOB_COMPLETION_INDEX)/$(SHARDS)" not in args:
        raise CheckFailed(f"the grading container must pass --shard $(JOB_COMPLETION_INDEX)/$(SHARDS), has: {args}")
    return f"grading batch: Indexed, completions = parallelism = SHARDS = {n['SHARDS']}"


# --- images ------------------------------------------------------------------------------------


def images(*rendered: str) -> str:
    seen: dict[str, list[str]] = {}

    def walk(node, owner):
        if isinstance(node, dict):
            for key in ("containers", "initContainers"):
                for c in node.get(key) or []:
                    if "jifen-" in " ".join(c.get("command", [])):
                        seen.setdefault(c["image"], []).append(owner)
            for v in node.values():
                walk(v, owner)
        elif isinstance(node, list):
            for v in node:
                walk(v, owner)

    for path in rendered:
        for doc in load_all(path):
            walk(doc, f"{Path(path).name}:{name_of(doc)}")
    if len(seen) != 1:
        raise CheckFailed(f"jifen containers run different images: { {k: v[:3] for k, v in seen.items()} }")
    image = next(iter(seen))
    if ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest"):
        raise CheckFailed(f"image {image} has no release tag")
    return f"one jifen image in {len(rendered)} renders: {image}"


# --- rules -------------------------------------------------------------------------------------


def prometheus_rule_doc() -> dict:
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "jifen",
            "labels": {"app.kubernetes.io/name": "jifen", "role": "alert-rules"},
        },
        "spec": {"groups": rules["groups"]},
    }


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (PromQL) as `|` blocks, so the generated file reads like its source."""


_BlockDumper.add_representer(
    str,
    lambda dumper, value: dumper.represent_scalar(
        "tag:yaml.org,2002:str", value, style="|" if "\n" in value else None
    ),
)


def sync_rules() -> str:
    header = (
        "# Generated from rules/jifen.rules.yaml by `scripts/k8s_checks.py sync-rules`: edit that\n"
        "# file, not this one (scripts/check-k8s.sh fails when they differ).\n"
    )
    body = yaml.dump(
        prometheus_rule_doc(), Dumper=_BlockDumper, sort_keys=False, allow_unicode=True, width=1000
    )
    PROMETHEUS_RULE.write_text(header + body, encoding="utf-8")
    return f"wrote {PROMETHEUS_RULE.relative_to(ROOT)}"


def rules_sync() -> str:
    embedded = yaml.safe_load(PROMETHEUS_RULE.read_text(encoding="utf-8"))
    if embedded != prometheus_rule_doc():
        raise CheckFailed(
            f"{PROMETHEUS_RULE.relative_to(ROOT)} differs from {RULES.relative_to(ROOT)}: "
            "run `scripts/k8s_checks.py sync-rules`"
        )
    return "PrometheusRule embeds the rules file's groups"


def github_anchor(heading: str) -> str:
    slug = heading.strip().lower()
    slug = re.sub(r"[^\w\- ]", "", slug)
    return slug.replace(" ", "-")


def runbooks() -> str:
    anchors = {
        github_anchor(m.group(1))
        for m in re.finditer(r"^#{1,6}\s+(.+)$", OPERATIONS.read_text(encoding="utf-8"), re.M)
    }
    alerts = 0
    for group in yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]:
        for rule in group["rules"]:
            if "alert" not in rule:
                continue
            alerts += 1
            name = rule["alert"]
            if rule.get("labels", {}).get("severity") not in ("warning", "critical"):
                raise CheckFailed(f"alert {name}: severity must be warning or critical")
            url = rule.get("annotations", {}).get("runbook_url", "")
            if "docs/operations.md#" not in url:
                raise CheckFailed(f"alert {name}: runbook_url must point into docs/operations.md")
            anchor = url.split("#", 1)[1]
            if anchor not in anchors:
                raise CheckFailed(f"alert {name}: docs/operations.md has no heading #{anchor}")
    return f"{alerts} alerts, each with a severity and a runbook paragraph in docs/operations.md"


def exprs() -> list[tuple[str, str]]:
    out = []
    for group in yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]:
        for rule in group["rules"]:
            out.append((f"rule {rule.get('alert') or rule.get('record')}", rule["expr"]))
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            out.append((f"panel {panel['title']!r}", target["expr"]))
    return out


PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "by", "without", "on", "ignoring", "group_left",
    "group_right", "and", "or", "unless", "rate", "increase", "irate", "histogram_quantile",
    "time", "absent", "le", "bool", "offset",
}


def metrics() -> str:
    n = 0
    for where, expr in exprs():
        # Drop label matchers, strings and durations, then look at the identifiers left.
        bare = re.sub(r"\{[^}]*\}", "", expr)
        bare = re.sub(r'"[^"]*"', "", bare)
        bare = re.sub(r"\[[^\]]*\]", "", bare)
        bare = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", bare)
        for ident in re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b", bare):
            if ident in PROMQL_WORDS or ident in METRICS:
                continue
            raise CheckFailed(f"{where}: unknown metric {ident}")
        n += 1
    return f"{n} expressions use only the services' metrics"


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    command, args = argv[0], argv[1:]
    table = {
        "split": split, "with-policies": with_policies, "crs": crs, "secrets": secrets,
        "layers": layers, "batch": batch, "images": images,
        "rules-sync": rules_sync, "runbooks": runbooks, "metrics": metrics,
        "sync-rules": sync_rules,
    }
    if command not in table:
        print(f"unknown command {command}", file=sys.stderr)
        return 2
    try:
        print(f"ok: {table[command](*args)}")
    except CheckFailed as e:
        print(f"FAILED {command}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
