#!/usr/bin/env python3
"""Self-test of deploy/check.py: the repository's files pass; copies with one inconsistency
each (a grace period shorter than the drain, a probe on the wrong path, a missing limit, the
dev server in prod, ...) fail with the right message.

    python3 deploy/test_check.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CHECK = os.path.join(HERE, "check.py")
FILES = ["docker-compose.yml", "deploy/k8s", "deploy/nginx", "deploy/systemd"]


def run_on(mutate=None):
    with tempfile.TemporaryDirectory() as tmp:
        for rel in FILES:
            src = os.path.join(ROOT, rel)
            dst = os.path.join(tmp, rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            (shutil.copytree if os.path.isdir(src) else shutil.copy)(src, dst)
        if mutate:
            rel, old, new = mutate
            path = os.path.join(tmp, rel)
            with open(path) as f:
                text = f.read()
            assert old in text, f"{old!r} not in {rel}"
            with open(path, "w") as f:
                f.write(text.replace(old, new, 1))
        # --binary to a missing file: skip systemd-analyze (the checks above it still run).
        proc = subprocess.run(
            [sys.executable, CHECK, "--root", tmp, "--binary", "/nonexistent"], capture_output=True, text=True, timeout=60
        )
        return proc.returncode, proc.stdout + proc.stderr


class DeployCheck(unittest.TestCase):
    def test_repository_files_pass(self):
        code, out = run_on()
        self.assertEqual(code, 0, out)

    def bad(self, mutate, needle):
        code, out = run_on(mutate)
        self.assertEqual(code, 1, out)
        self.assertIn(needle, out)

    def test_k8s_grace_period_too_short(self):
        self.bad(("deploy/k8s/deployment.yaml", "terminationGracePeriodSeconds: 45", "terminationGracePeriodSeconds: 30"),
                 "terminationGracePeriodSeconds 30 must exceed")

    def test_k8s_probe_wrong_path(self):
        self.bad(("deploy/k8s/deployment.yaml", "path: /healthz", "path: /health"), "not the health path")

    def test_k8s_missing_limit(self):
        self.bad(("deploy/k8s/deployment.yaml", 'cpu: "1500m"\n', ""), "no resources.limits.cpu")

    def test_k8s_invalid_yaml(self):
        self.bad(("deploy/k8s/service.yaml", "spec:\n", "spec: [\n"), "not valid YAML")

    def test_compose_grace_too_short(self):
        self.bad(("docker-compose.yml", "stop_grace_period: 30s", "stop_grace_period: 20s"), "stop_grace_period 20s must exceed")

    def test_compose_prod_overrides_command(self):
        self.bad(("docker-compose.yml", "    profiles: [\"prod\"]\n    build: *api-build\n",
                  "    profiles: [\"prod\"]\n    build: *api-build\n    command: [\"flask\", \"run\"]\n"),
                 "must run the image's own command")

    def test_compose_nginx_without_health_condition(self):
        self.bad(("docker-compose.yml", "condition: service_healthy", "condition: service_started"), "service_healthy")

    def test_compose_shell_healthcheck(self):
        self.bad(("docker-compose.yml", 'test: ["CMD", "maitred", "--healthcheck", "http://127.0.0.1:8080/healthz"]',
                  'test: "curl -f http://127.0.0.1:8080/healthz"'), "exec form")

    def test_nginx_keepalive_above_maitred(self):
        self.bad(("deploy/nginx/default.conf", "keepalive_timeout 60s;", "keepalive_timeout 90s;"), "must be below maitred's")

    def test_systemd_timeout_too_short(self):
        self.bad(("deploy/systemd/maitred.service", "TimeoutStopSec=45s", "TimeoutStopSec=30s"), "TimeoutStopSec 30s must exceed")

    def test_systemd_root(self):
        self.bad(("deploy/systemd/maitred.service", "DynamicUser=yes", "User=root"), "non-root")


if __name__ == "__main__":
    unittest.main(verbosity=2)
