#!/usr/bin/env python3
"""Consistency checks of the deployment files, run by .ci/run (fast; no Docker, no cluster; the
compose file and the nginx config also run for real in docker/ci.sh's prod step).

    python3 deploy/check.py [--binary PATH] [--nginx]

- deploy/k8s/*.yaml parse as YAML (PyYAML) into Kubernetes objects; the Deployment's probes use
  the health path it sets, its terminationGracePeriodSeconds exceeds preStop + drain delay +
  graceful timeout, it has CPU and memory requests and limits, runs as non-root, and the
  Service selects its pods and targets a port it declares.
- docker-compose.yml: `api` overrides the command with Flask's development server and mounts
  the app's source; `api-prod` runs the image's command as 3 replicas with stop_grace_period
  longer than drain delay + graceful timeout; nginx waits for healthy replicas; health checks
  are exec form; nginx's upstream keep-alive timeout is below maitred's.
- deploy/systemd/maitred.service: Type=exec, SIGTERM, TimeoutStopSec longer than the drain,
  Restart=on-failure, not root; `systemd-analyze verify` when available (ExecStart pointed at
  --binary, default target/release/maitred).
- --nginx: `nginx -t` on deploy/nginx/default.conf inside a minimal nginx.conf, when nginx is
  installed on the machine (the upstream host is replaced by 127.0.0.1, which it can resolve).

Exits 0 when all pass, 1 listing the problems.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional

try:
    import yaml  # PyYAML
except ImportError:  # pragma: no cover
    print("deploy/check.py: PyYAML is missing (python3 -m pip install pyyaml)", file=sys.stderr)
    sys.exit(1)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # --root changes it
problems: List[str] = []


def problem(where: str, message: str) -> None:
    problems.append(f"{where}: {message}")


def seconds(value, where: str) -> float:
    """Seconds in a duration such as 45, "45s", "1m30s", "250ms", "1min" (maitred, compose, systemd)."""
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip().replace(" ", "")
    units = {"ms": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}
    total, pos = 0.0, 0
    for m in re.finditer(r"(\d+(?:\.\d+)?)(ms|min|sec|s|m|h)?", text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * units[m.group(2) or "s"]
        pos = m.end()
    if pos != len(text) or not text:
        problem(where, f"cannot read the duration {value!r}")
        return 0.0
    return total


def load_yaml_docs(path: str) -> list:
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


# ---------------------------------------------------------------------------------------------
def check_k8s() -> None:
    directory = os.path.join(ROOT, "deploy", "k8s")
    objects = []
    for name in sorted(os.listdir(directory)):
        if not name.endswith((".yaml", ".yml")):
            continue
        path = os.path.join(directory, name)
        try:
            docs = load_yaml_docs(path)
        except yaml.YAMLError as e:
            problem(path, f"not valid YAML: {e}")
            continue
        for doc in docs:
            if not isinstance(doc, dict) or not all(k in doc for k in ("apiVersion", "kind", "metadata")):
                problem(path, "a document without apiVersion, kind and metadata")
                continue
            objects.append((path, doc))
    deployments = [(p, d) for p, d in objects if d["kind"] == "Deployment"]
    services = [(p, d) for p, d in objects if d["kind"] == "Service"]
    if not deployments or not services:
        problem(directory, "needs a Deployment and a Service")
        return
    for path, dep in deployments:
        where = f"{os.path.relpath(path, ROOT)} Deployment/{dep['metadata'].get('name')}"
        pod = dep["spec"]["template"]["spec"]
        labels = dep["spec"]["template"]["metadata"].get("labels", {})
        selector = dep["spec"]["selector"].get("matchLabels", {})
        if any(labels.get(k) != v for k, v in selector.items()):
            problem(where, "spec.selector does not match the pod template's labels")
        security = pod.get("securityContext", {})
        if not security.get("runAsNonRoot") or security.get("runAsUser", 0) == 0:
            problem(where, "the pod must set runAsNonRoot and a non-zero runAsUser")
        for c in pod["containers"]:
            cw = f"{where} container {c['name']}"
            env = {e["name"]: e.get("value") for e in c.get("env", [])}
            health = env.get("MAITRED_HEALTH_PATH", "/healthz")
            ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
            for probe_name in ("readinessProbe", "livenessProbe", "startupProbe"):
                probe = c.get(probe_name)
                if not probe:
                    if probe_name != "startupProbe":
                        problem(cw, f"no {probe_name}")
                    continue
                get = probe.get("httpGet", {})
                if get.get("path") != health:
                    problem(cw, f"{probe_name} probes {get.get('path')!r}, not the health path {health!r}")
                if get.get("port") not in ports and get.get("port") not in ports.values():
                    problem(cw, f"{probe_name} port {get.get('port')!r} is not a container port")
            drain = seconds(env.get("MAITRED_DRAIN_DELAY", "0s"), cw)
            graceful = seconds(env.get("MAITRED_GRACEFUL_TIMEOUT", "30s"), cw)
            pre_stop = 0.0
            hook = c.get("lifecycle", {}).get("preStop")
            if hook and "sleep" in hook:
                pre_stop = float(hook["sleep"].get("seconds", 0))
            grace = float(pod.get("terminationGracePeriodSeconds", 30))
            if grace <= pre_stop + drain + graceful:
                problem(
                    cw,
                    f"terminationGracePeriodSeconds {grace:g} must exceed preStop {pre_stop:g} + drain_delay "
                    f"{drain:g} + graceful_timeout {graceful:g}",
                )
            if drain == 0 and not hook:
                problem(cw, "neither a drain delay nor a preStop hook: requests routed during endpoint removal fail")
            resources = c.get("resources", {})
            for kind in ("requests", "limits"):
                for res in ("cpu", "memory"):
                    if res not in resources.get(kind, {}):
                        problem(cw, f"no resources.{kind}.{res}")
            if "MAITRED_THREADS" not in env:
                problem(cw, "MAITRED_THREADS is not set (size it for blocking I/O; see deploy/README.md)")
            sc = c.get("securityContext", {})
            if sc.get("allowPrivilegeEscalation") is not False:
                problem(cw, "securityContext.allowPrivilegeEscalation should be false")
        for spath, svc in services:
            sel = svc["spec"].get("selector", {})
            if sel and all(labels.get(k) == v for k, v in sel.items()):
                all_ports = [p for c in pod["containers"] for p in c.get("ports", [])]
                names = {p.get("name") for p in all_ports} | {p["containerPort"] for p in all_ports}
                for sp in svc["spec"].get("ports", []):
                    if sp.get("targetPort") not in names:
                        problem(f"{os.path.relpath(spath, ROOT)} Service", f"targetPort {sp.get('targetPort')!r} not declared")
                break
        else:
            problem(where, "no Service selects its pods")


# ---------------------------------------------------------------------------------------------
def exec_form_healthcheck(svc: dict, where: str) -> None:
    test = svc.get("healthcheck", {}).get("test")
    if test is None:
        return
    if not isinstance(test, list) or not test or test[0] != "CMD":
        problem(where, f"healthcheck.test should be exec form [\"CMD\", ...], not {test!r}")


def check_compose() -> Optional[float]:
    path = os.path.join(ROOT, "docker-compose.yml")
    where = "docker-compose.yml"
    with open(path, encoding="utf-8") as f:
        compose = yaml.safe_load(f)
    services = compose.get("services", {})
    api = services.get("api")
    if not api:
        problem(where, "no `api` service")
    else:
        command = api.get("command")
        if not isinstance(command, list) or command[:3] != ["flask", "--app", "app"] or "--debug" not in command:
            problem(where, f"`api` should override the command with Flask's dev server (exec form), not {command!r}")
        if api.get("profiles"):
            problem(where, "`api` (development) must run without a profile: plain `docker compose up`")
        # The source may be a variable with this default: ${MAITRED_DEV_APP_DIR:-./examples/flask_app}.
        sources = [re.sub(r"^\$\{\w+:-([^}]*)\}", r"\1", str(v)) for v in api.get("volumes", [])]
        if not any(v.startswith("./examples/flask_app:") for v in sources):
            problem(where, "`api` should mount ./examples/flask_app as the source")
        if api.get("build", {}).get("target") != "api":
            problem(where, "`api` should build the image's default target `api`")
        exec_form_healthcheck(api, f"{where} api")
    prod = services.get("api-prod")
    upstream_keepalive = None
    if not prod:
        problem(where, "no `api-prod` service")
    else:
        if "prod" not in prod.get("profiles", []):
            problem(where, "`api-prod` should be in the `prod` profile")
        if "command" in prod:
            problem(where, "`api-prod` must run the image's own command (maitred), not override it")
        if prod.get("deploy", {}).get("replicas") != 3:
            problem(where, "`api-prod` should run 3 replicas")
        env = prod.get("environment", {})
        drain = seconds(env.get("MAITRED_DRAIN_DELAY", "0s"), where)
        graceful = seconds(env.get("MAITRED_GRACEFUL_TIMEOUT", "30s"), where)
        grace = seconds(prod.get("stop_grace_period", "10s"), where)
        if grace <= drain + graceful:
            problem(where, f"api-prod stop_grace_period {grace:g}s must exceed drain {drain:g}s + graceful {graceful:g}s")
        if drain <= 0:
            problem(where, "api-prod needs MAITRED_DRAIN_DELAY > 0 so nginx stops routing before the listener closes")
        exec_form_healthcheck(prod, f"{where} api-prod")
        upstream_keepalive = seconds(env.get("MAITRED_KEEPALIVE_TIMEOUT", "15s"), where)
    nginx = services.get("nginx")
    if not nginx:
        problem(where, "no `nginx` service")
    else:
        if "prod" not in nginx.get("profiles", []):
            problem(where, "`nginx` should be in the `prod` profile")
        dep = nginx.get("depends_on", {})
        if not isinstance(dep, dict) or dep.get("api-prod", {}).get("condition") != "service_healthy":
            problem(where, "`nginx` should depend on api-prod with condition: service_healthy")
        for volume in nginx.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if source.startswith("./") and not os.path.exists(os.path.join(ROOT, source)):
                problem(where, f"nginx mounts {source}, which does not exist")
        exec_form_healthcheck(nginx, f"{where} nginx")
    return upstream_keepalive


def check_nginx_conf(maitred_keepalive: Optional[float], run_nginx: bool) -> None:
    path = os.path.join(ROOT, "deploy", "nginx", "default.conf")
    where = "deploy/nginx/default.conf"
    with open(path, encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"upstream\s+\w+\s*\{(.*?)\}", text, re.S)
    if not m:
        problem(where, "no upstream block")
        return
    upstream = m.group(1)
    ka = re.search(r"^\s*keepalive_timeout\s+(\S+);", upstream, re.M)
    if maitred_keepalive is not None and ka and seconds(ka.group(1), where) >= maitred_keepalive:
        problem(where, f"upstream keepalive_timeout {ka.group(1)} must be below maitred's {maitred_keepalive:g}s")
    if not re.search(r"proxy_next_upstream\s+[^;]*\berror\b[^;]*\bhttp_503\b", text):
        problem(where, "proxy_next_upstream should include error and http_503")
    if not run_nginx:
        return
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if not nginx:
        print("deploy/check.py: nginx not installed; skipping nginx -t")
        return
    version = subprocess.run([nginx, "-v"], capture_output=True, text=True).stderr.strip()
    with tempfile.TemporaryDirectory() as tmp:
        snippet = text.replace("api-prod:8080", "127.0.0.1:8080").replace("/var/log/nginx/", f"{tmp}/")
        with open(os.path.join(tmp, "default.conf"), "w") as f:
            f.write(snippet)
        with open(os.path.join(tmp, "nginx.conf"), "w") as f:
            f.write(
                f"pid {tmp}/nginx.pid;\nerror_log {tmp}/error.log;\nevents {{}}\nhttp {{\n"
                f"  client_body_temp_path {tmp}/body;\n  proxy_temp_path {tmp}/proxy;\n"
                f"  fastcgi_temp_path {tmp}/fastcgi;\n  uwsgi_temp_path {tmp}/uwsgi;\n  scgi_temp_path {tmp}/scgi;\n"
                f"  access_log off;\n  include {tmp}/default.conf;\n}}\n"
            )
        proc = subprocess.run(
            [nginx, "-t", "-p", tmp, "-c", f"{tmp}/nginx.conf", "-e", f"{tmp}/error.log"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        output = proc.stdout + proc.stderr
        if proc.returncode != 0:
            problem(where, f"nginx -t ({version}) failed:\n{output}")
        else:
            print(f"deploy/check.py: nginx -t ({version}): ok")


# ---------------------------------------------------------------------------------------------
def check_systemd(binary: str) -> None:
    path = os.path.join(ROOT, "deploy", "systemd", "maitred.service")
    where = "deploy/systemd/maitred.service"
    settings: Dict[str, List[str]] = {}
    section = ""
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            key, _, value = line.partition("=")
            settings.setdefault(f"{section}.{key}", []).append(value)

    def one(key: str) -> Optional[str]:
        values = settings.get(f"Service.{key}")
        return values[-1] if values else None

    env = {}
    for item in settings.get("Service.Environment", []):
        k, _, v = item.partition("=")
        env[k] = v
    if one("Type") != "exec":
        problem(where, "Type=exec expected")
    if one("KillSignal") != "SIGTERM":
        problem(where, "KillSignal=SIGTERM expected")
    if one("Restart") != "on-failure":
        problem(where, "Restart=on-failure expected")
    if one("DynamicUser") != "yes" and (one("User") in (None, "root", "0")):
        problem(where, "run as a non-root user (DynamicUser=yes or User=)")
    drain = seconds(env.get("MAITRED_DRAIN_DELAY", "0s"), where)
    graceful = seconds(env.get("MAITRED_GRACEFUL_TIMEOUT", "30s"), where)
    stop = seconds(one("TimeoutStopSec") or "90s", where)
    if stop <= drain + graceful:
        problem(where, f"TimeoutStopSec {stop:g}s must exceed drain {drain:g}s + graceful {graceful:g}s")
    analyze = shutil.which("systemd-analyze")
    if analyze and os.path.exists(binary):
        with tempfile.TemporaryDirectory() as tmp:
            unit = os.path.join(tmp, "maitred.service")
            with open(path, encoding="utf-8") as f:
                text = f.read().replace("/usr/local/bin/maitred", os.path.abspath(binary))
            with open(unit, "w", encoding="utf-8") as f:
                f.write(text)
            proc = subprocess.run([analyze, "verify", unit], capture_output=True, text=True, timeout=60)
            out = (proc.stdout + proc.stderr).strip()
            if proc.returncode != 0 or out:
                problem(where, f"systemd-analyze verify: exit {proc.returncode}:\n{out}")
            else:
                print("deploy/check.py: systemd-analyze verify: ok")
    else:
        print("deploy/check.py: systemd-analyze or the binary missing; skipping systemd-analyze verify")


def main() -> int:
    global ROOT
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "maitred"))
    parser.add_argument("--nginx", action="store_true", help="also run nginx -t on the nginx config")
    parser.add_argument("--root", default=ROOT, help="check the files of another tree (the self-test)")
    args = parser.parse_args()
    ROOT = os.path.abspath(args.root)
    check_k8s()
    keepalive = check_compose()
    check_nginx_conf(keepalive, args.nginx)
    check_systemd(args.binary)
    if problems:
        for p in problems:
            print(f"deploy/check.py: {p}")
        return 1
    print("deploy/check.py: k8s manifests, docker-compose.yml, nginx and systemd files are consistent")
    return 0


if __name__ == "__main__":
    sys.exit(main())
