#!/usr/bin/env python3
"""Checks etc/k8s/: every manifest parses, and the fields the README promises are there and agree
with each other (probes on the admin port, preStop drain, a grace period above the drain grace,
resources, Prometheus annotations, the password from a Secret, the ConfigMap's config).

Exits 77 (skipped) when PyYAML is missing (Debian: python3-yaml). Usage:
    k8s_manifests_test.py REPO_ROOT
"""
import os
import re
import sys

try:
    import tomllib  # Python 3.11
except ImportError:  # Debian 12's python3 is 3.11; keep a fallback anyway
    tomllib = None

try:
    import yaml
except ImportError:
    print("SKIP: PyYAML is not installed (apt-get install python3-yaml)")
    sys.exit(77)

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)


def load(root, name):
    with open(os.path.join(root, "etc", "k8s", name), encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if d is not None]
    check(len(docs) == 1, f"{name}: expected one document, found {len(docs)}")
    return docs[0]


def check_pod(name, pod_meta, spec, drain_grace):
    annotations = pod_meta.get("annotations", {})
    check(annotations.get("prometheus.io/scrape") == "true", f"{name}: prometheus.io/scrape")
    check(annotations.get("prometheus.io/port") == "9464", f"{name}: prometheus.io/port 9464")
    check(annotations.get("prometheus.io/path") == "/metrics", f"{name}: prometheus.io/path")
    grace = spec.get("terminationGracePeriodSeconds")
    check(isinstance(grace, int) and grace > drain_grace,
          f"{name}: terminationGracePeriodSeconds {grace} must be above the drain grace "
          f"{drain_grace}")
    containers = spec.get("containers", [])
    check(len(containers) == 1, f"{name}: one container")
    c = containers[0]
    args = c.get("args", [])
    check(args[:1] == ["run"], f"{name}: the container runs `vsieve run`")
    check("--config" in args and "/etc/vsieve/vsieve.toml" in args, f"{name}: --config")
    check("--owner-id" in args, f"{name}: a per-pod --owner-id")
    ports = {p.get("name"): p.get("containerPort") for p in c.get("ports", [])}
    check(ports.get("admin") == 9464, f"{name}: the admin port 9464")
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = c.get(probe, {}).get("httpGet", {})
        check(get.get("path") == path, f"{name}: {probe} on {path}")
        check(get.get("port") in ("admin", 9464), f"{name}: {probe} on the admin port")
    pre_stop = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    check(any("kill -TERM 1" in part for part in pre_stop), f"{name}: preStop sends SIGTERM")
    requests = c.get("resources", {}).get("requests", {})
    check("cpu" in requests and "memory" in requests, f"{name}: cpu and memory requests")
    env = {e.get("name"): e for e in c.get("env", [])}
    secret = env.get("PGPASSWORD", {}).get("valueFrom", {}).get("secretKeyRef", {})
    check(secret.get("name") == "vsieve-db" and secret.get("key") == "password",
          f"{name}: PGPASSWORD from the Secret vsieve-db")
    mounts = {m.get("name"): m.get("mountPath") for m in c.get("volumeMounts", [])}
    check(mounts.get("config") == "/etc/vsieve", f"{name}: the config mounted at /etc/vsieve")
    volumes = {v.get("name"): v for v in spec.get("volumes", [])}
    check(volumes.get("config", {}).get("configMap", {}).get("name") == "vsieve-config",
          f"{name}: the config volume is the ConfigMap vsieve-config")
    return args


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "."
    config_map = load(root, "configmap.yaml")
    secret = load(root, "secret.example.yaml")
    deployment = load(root, "deployment.yaml")
    job = load(root, "job.yaml")

    check(config_map.get("apiVersion") == "v1" and config_map.get("kind") == "ConfigMap",
          "configmap.yaml: a v1 ConfigMap")
    check(config_map.get("metadata", {}).get("name") == "vsieve-config", "ConfigMap name")
    toml_text = config_map.get("data", {}).get("vsieve.toml", "")
    drain_grace = 30.0
    if tomllib is not None:
        config = tomllib.loads(toml_text)
        url = config.get("store", {}).get("url", "")
        check(url.startswith("postgresql://"), "ConfigMap: [store] url is postgresql://")
        check(not re.search(r"://[^/@]*:[^/@]*@", url), "ConfigMap: no password in the URL")
        check("target_session_attrs=read-write" in url, "ConfigMap: target_session_attrs")
        drain_grace = float(config.get("pipeline", {}).get("grace_seconds", 30.0))
        listen = config.get("admin", {}).get("listen", "")
        check(listen.endswith(":9464") and not listen.startswith("127."),
              f"ConfigMap: [admin] listen {listen!r} must be reachable by the probes")

    check(secret.get("kind") == "Secret" and secret.get("metadata", {}).get("name") == "vsieve-db",
          "secret.example.yaml: the Secret vsieve-db")
    check("password" in secret.get("stringData", {}), "Secret: a password key")

    check(deployment.get("apiVersion") == "apps/v1" and deployment.get("kind") == "Deployment",
          "deployment.yaml: an apps/v1 Deployment")
    spec = deployment.get("spec", {})
    selector = spec.get("selector", {}).get("matchLabels", {})
    template = spec.get("template", {})
    labels = template.get("metadata", {}).get("labels", {})
    check(selector and all(labels.get(k) == v for k, v in selector.items()),
          "Deployment: the selector matches the pod labels")
    check(isinstance(spec.get("replicas"), int) and spec["replicas"] >= 2, "Deployment: replicas")
    check_pod("deployment.yaml", template.get("metadata", {}), template.get("spec", {}),
              drain_grace)

    check(job.get("apiVersion") == "batch/v1" and job.get("kind") == "Job",
          "job.yaml: a batch/v1 Job")
    job_spec = job.get("spec", {})
    check(job_spec.get("completionMode") == "Indexed", "Job: completionMode Indexed")
    check(job_spec.get("completions") == job_spec.get("parallelism"),
          "Job: completions equal parallelism (every pod works until the table is idle)")
    job_template = job_spec.get("template", {})
    check(job_template.get("spec", {}).get("restartPolicy") in ("OnFailure", "Never"),
          "Job: restartPolicy OnFailure or Never")
    args = check_pod("job.yaml", job_template.get("metadata", {}), job_template.get("spec", {}),
                     drain_grace)
    check("--until-idle" in args, "Job: --until-idle, so pods complete")

    if failures:
        for failure in failures:
            print("FAIL:", failure)
        return 1
    print("etc/k8s: 4 manifests parsed, every check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
