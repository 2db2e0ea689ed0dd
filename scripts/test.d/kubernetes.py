#!/usr/bin/env python3
"""deploy/kubernetes against Kubernetes' schemas and against the programs it runs.

  scripts/test.d/kubernetes.py --bin .build/release     (with the test venv's python: kubernetes-validate, PyYAML)

1. `kubernetes-validate --strict` on every manifest: the API's schemas, unknown fields refused.
2. What a schema cannot know, checked against our own binaries and rules:
   - terminationGracePeriodSeconds covers the preStop pause + GRACEFUL_TIMEOUT + 7 s (reaping, the pools);
   - the probes name routes the worker serves, and liveness is the supervisor's own `status`;
   - a read-only root file system has an emptyDir where the supervisor keeps its sockets (/tmp);
   - the connection budget the comments explain fits: `supervisor budget` with the Deployment's settings;
   - the PgBouncer settings the API's budget counts are the ones PgBouncer's config and replicas have.
Exit 0 when all hold, 1 with a line per problem.
"""
import argparse
import glob
import os
import re
import subprocess
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
problems = []


def check(condition, message):
    if not condition:
        problems.append(message)


def documents():
    found = {}
    for path in sorted(glob.glob(os.path.join(ROOT, "deploy/kubernetes/*.yaml"))):
        for document in yaml.safe_load_all(open(path)):
            if document:
                found[(document["kind"], document["metadata"]["name"])] = document
    return found


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    arguments = parser.parse_args()
    manifests = sorted(glob.glob(os.path.join(ROOT, "deploy/kubernetes/*.yaml")))
    validator = os.path.join(os.path.dirname(sys.executable), "kubernetes-validate")
    result = subprocess.run([validator, "--strict", "--quiet", *manifests], capture_output=True, text=True)
    check(result.returncode == 0, f"kubernetes-validate --strict: {result.stdout}{result.stderr}")

    found = documents()
    api = found[("Deployment", "prefork-api")]["spec"]["template"]["spec"]
    container = api["containers"][0]
    env = {item["name"]: item["value"] for item in container["env"] if "value" in item}
    graceful = float(env.get("GRACEFUL_TIMEOUT", "8"))
    pause = 0
    pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    if pre_stop[:1] == ["/bin/sleep"]:
        pause = float(pre_stop[1])
    grace = api["terminationGracePeriodSeconds"]
    check(grace >= pause + graceful + 7,
          f"terminationGracePeriodSeconds {grace} < preStop {pause} + GRACEFUL_TIMEOUT {graceful} + 7")

    served = {"/healthz", "/readyz", "/metrics"}
    for probe in ("startupProbe", "readinessProbe"):
        path = container[probe]["httpGet"]["path"]
        check(path in served, f"{probe} asks for {path}, which the worker does not serve")
        # /readyz waits up to 2 s for each dependency; Kubernetes' default timeout is 1 s.
        check(container[probe].get("timeoutSeconds", 1) > 2, f"{probe}: timeoutSeconds must be above /readyz's 2 s")
    check(container["readinessProbe"]["httpGet"]["path"] == "/readyz", "readiness must be /readyz (503 while draining)")
    check(container["livenessProbe"].get("exec", {}).get("command") == ["/usr/local/bin/supervisor", "status"],
          "liveness must be the supervisor's own status (it replaces hung workers itself)")
    check(container["livenessProbe"]["timeoutSeconds"] > 10, "supervisor status waits up to 10 s: timeoutSeconds must be above")

    security = container["securityContext"]
    check(security.get("readOnlyRootFilesystem") is True, "the root file system must be read-only")
    mounts = {mount["mountPath"]: mount["name"] for mount in container.get("volumeMounts", [])}
    volumes = {volume["name"]: volume for volume in api.get("volumes", [])}
    check("/tmp" in mounts and "emptyDir" in volumes.get(mounts["/tmp"], {}),
          "the supervisor's sockets live under /tmp/prefork-UID: mount an emptyDir at /tmp")
    check(api["securityContext"].get("runAsNonRoot") is True and security.get("allowPrivilegeEscalation") is False,
          "non-root, no privilege escalation")
    check(security.get("capabilities", {}).get("drop") == ["ALL"], "drop every capability")

    # The budget: what the Deployment's supervisors would compute, with the replica count of the Deployment.
    deployment = found[("Deployment", "prefork-api")]["spec"]
    surge = deployment.get("strategy", {}).get("rollingUpdate", {}).get("maxSurge", "25%")
    check(isinstance(surge, int), "maxSurge must be a count of pods, for the budget")
    replicas = deployment["replicas"] + (surge if isinstance(surge, int) else 0)
    check(env.get("REPLICAS") == str(replicas),
          f"REPLICAS={env.get('REPLICAS')}, but a rollout runs {replicas} pods (replicas + maxSurge)")
    budget_env = dict(env, DATABASE_URL="postgresql://api@pgbouncer:6432/api")
    budget = subprocess.run([os.path.join(arguments.bin, "supervisor"), "budget"], env=budget_env,
                            capture_output=True, text=True)
    check(budget.returncode == 0, f"supervisor budget refuses the Deployment's settings:\n{budget.stdout}{budget.stderr}")
    print(budget.stdout.strip().splitlines()[-2] if budget.stdout.strip() else budget.stderr.strip())

    ini = found[("ConfigMap", "pgbouncer")]["data"]["pgbouncer.ini"]
    setting = lambda name: re.search(rf"^\s*{name}\s*=\s*(\d+)", ini, re.M).group(1)
    check(env.get("PGBOUNCER_MAX_CLIENT_CONN") == setting("max_client_conn"), "PGBOUNCER_MAX_CLIENT_CONN != max_client_conn")
    check(env.get("PGBOUNCER_POOL_SIZE") == setting("default_pool_size"), "PGBOUNCER_POOL_SIZE != default_pool_size")
    check(env.get("PGBOUNCER_INSTANCES") == str(found[("Deployment", "pgbouncer")]["spec"]["replicas"]),
          "PGBOUNCER_INSTANCES != the pgbouncer Deployment's replicas")
    check(env.get("NO_CLEANUP") == "1" and ("CronJob", "prefork-cleanup") in found,
          "one cleanup per cluster: NO_CLEANUP=1 in the pods and the CronJob")

    for problem in problems:
        print(f"kubernetes: {problem}", file=sys.stderr)
    if not problems:
        print(f"kubernetes: {len(manifests)} manifests valid (--strict), grace, probes, sockets and budget consistent")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
