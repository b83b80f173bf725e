#!/usr/bin/env python3
"""Run the built images for real and check what the Dockerfile and docker-compose.yml promise.

    python3 tests/scale/images.py api    --image maitred-api:local
    python3 tests/scale/images.py static --image maitred-static:ci
    python3 tests/scale/images.py dev    --image maitred-api:local

api:    the image's own command; maitred is PID 1 as UID 10001; Docker's HEALTHCHECK turns
        healthy; requests answered; `docker stop` while a 4 s request is at a worker: /healthz
        turns 503 (draining), the request completes with 200, the container exits 0 within the
        stop grace period.
static: a folder mounted on /srv/www is served; PID 1, UID 10001, healthy; the binary's glibc
        symbol versions are provided by the runtime base's libc; the base has no shell;
        `docker stop` exits 0.
dev:    `docker-compose up api` (the development override: Flask's dev server, the app's folder
        mounted): an edit of app.py in the mounted folder is served without restarting the
        container. A copy of examples/flask_app is mounted (MAITRED_DEV_APP_DIR), never the
        checkout itself.

Every container is started with a published port on 127.0.0.1 only (an ephemeral one) and
removed at the end by name. Exit 1 with a one-line reason when a check fails.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import uuid

import sys as _sys
_sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dockerlib import (  # noqa: E402
    CheckFailed,
    check_pid1_uid,
    compose_base,
    docker,
    expect,
    http_request,
    inspect,
    log,
    published,
    run_main,
    wait_health,
    wait_http,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UID = 10001
STOP_GRACE = 30  # docker stop -t
DRAIN_DELAY = 2  # MAITRED_DRAIN_DELAY given to the api container
SLOW_MS = 4000


def image_size(image: str) -> str:
    return f"{int(docker('image', 'inspect', '-f', '{{.Size}}', image)) / 1e6:.1f} MB"


def start(image: str, name: str, *args: str) -> float:
    """docker run -d; return the time it was started (before the command)."""
    t0 = time.time()
    docker("run", "-d", "--name", name, "-p", "127.0.0.1::8080", f"--stop-timeout={STOP_GRACE}", *args, image)
    return t0


def remove(name: str) -> None:
    subprocess.run(["docker", "rm", "-f", "-v", name], capture_output=True, timeout=60)


def stop_and_check_exit(name: str, grace: float = STOP_GRACE) -> float:
    t0 = time.time()
    docker("stop", "-t", str(int(grace)), name, timeout=grace + 30)
    took = time.time() - t0
    state = inspect(name)["State"]
    expect(state["ExitCode"] == 0, f"{name} exited {state['ExitCode']} after docker stop (expected 0)")
    expect(not state["OOMKilled"], f"{name} was OOM-killed")
    expect(took < grace, f"{name} took {took:.1f}s to stop, not within the {grace}s grace period (SIGKILLed?)")
    return took


# ---------------------------------------------------------------------------------------------
def check_api(argv) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--image", required=True)
    args = p.parse_args(argv)
    name = f"maitred-ci-api-{os.getpid()}"
    remove(name)
    try:
        t0 = start(
            args.image,
            name,
            "-e", f"MAITRED_DRAIN_DELAY={DRAIN_DELAY}s",
            "-e", "MAITRED_GRACEFUL_TIMEOUT=15s",
            "-e", "MAITRED_METRICS_PATH=/metrics",
        )
        host, port = published(name)
        t_serving = wait_http(host, port, "/healthz")
        t_healthy = wait_health(name)
        log(f"api: answering /healthz {t_serving - t0:.2f}s after docker run; Docker health 'healthy' after {t_healthy - t0:.2f}s (first check at the 10 s interval)")
        cmdline = check_pid1_uid(name, UID)
        log(f"api: PID 1 is `{cmdline}`, UID {UID}")

        status, headers, body = http_request(host, port, "GET", "/api/items")
        expect(status == 200 and b'"count":3' in body.replace(b" ", b""), f"GET /api/items: {status} {body[:200]!r}")
        status, headers, body = http_request(host, port, "GET", "/")
        expect(status == 200 and body == b"Hello from Flask on maitred!\n", f"GET /: {status} {body[:200]!r}")
        expect(headers.get("server", "").startswith("maitred"), f"GET /: Server header {headers.get('server')!r}, not maitred")
        log("api: GET /api/items and / answered by maitred")

        # Drain: a slow request at a worker, then docker stop.
        result = {}

        def slow() -> None:
            try:
                result["answer"] = http_request(host, port, "GET", f"/slow?ms={SLOW_MS}", timeout=30)
            except Exception as e:  # reported below
                result["error"] = f"{type(e).__name__}: {e}"
            result["at"] = time.time()

        client = threading.Thread(target=slow, daemon=True)
        client.start()
        deadline = time.time() + 10
        while True:  # the request is at a worker once busy_workers counts it
            _, _, metrics = http_request(host, port, "GET", "/metrics")
            m = re.search(rb"^maitred_busy_workers (\d+)", metrics, re.M)
            if m and int(m.group(1)) >= 1:
                break
            expect(time.time() < deadline, "the slow request never reached a worker (maitred_busy_workers stayed 0)")
            time.sleep(0.05)
        stopper_result = {}

        def stopper() -> None:
            try:
                stopper_result["took"] = stop_and_check_exit(name)
            except CheckFailed as e:
                stopper_result["error"] = str(e)

        t_stop = time.time()
        stopping = threading.Thread(target=stopper, daemon=True)
        stopping.start()
        # During the drain delay the server still answers, and /healthz says 503.
        saw_503 = False
        while time.time() < t_stop + DRAIN_DELAY + 1 and not saw_503:
            try:
                saw_503 = http_request(host, port, "GET", "/healthz", timeout=2)[0] == 503
            except OSError:
                break
            time.sleep(0.05)
        expect(saw_503, "after docker stop, /healthz never answered 503 (draining)")
        client.join(timeout=40)
        stopping.join(timeout=STOP_GRACE + 40)
        expect("error" not in stopper_result, stopper_result.get("error", ""))
        expect("error" not in result, f"the request in flight during docker stop failed: {result.get('error')}")
        status, _, body = result["answer"]
        expect(status == 200 and f'"slept_ms":{SLOW_MS}'.encode() in body.replace(b" ", b""),
               f"the request in flight during docker stop: {status} {body[:200]!r}")
        log(f"api: docker stop: /healthz 503 while draining; the {SLOW_MS} ms request in flight completed 200 "
            f"{result['at'] - t_stop:.2f}s after docker stop; exit 0 after {stopper_result['took']:.2f}s (grace {STOP_GRACE}s)")
        log(f"api: image {args.image}: {image_size(args.image)}")
        print(f"api: ok (start to serving {t_serving - t0:.2f}s, to healthy {t_healthy - t0:.2f}s)")
    finally:
        remove(name)


# ---------------------------------------------------------------------------------------------
def glibc_versions(symbol_text: str) -> list:
    return sorted({tuple(int(x) for x in v.split(".")) for v in re.findall(r"GLIBC_(\d+(?:\.\d+)+)", symbol_text)})


def check_static(argv) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--image", required=True)
    args = p.parse_args(argv)
    name = f"maitred-ci-static-{os.getpid()}"
    site = tempfile.mkdtemp(prefix="maitred-ci-site-")
    token = uuid.uuid4().hex
    remove(name)
    try:
        os.chmod(site, 0o755)
        with open(os.path.join(site, "index.html"), "w") as f:
            f.write(f"<h1>mounted site {token}</h1>\n")
        os.chmod(os.path.join(site, "index.html"), 0o644)
        t0 = start(args.image, name, "-v", f"{site}:/srv/www:ro")
        host, port = published(name)
        t_serving = wait_http(host, port, "/healthz")
        t_healthy = wait_health(name)
        log(f"static: answering {t_serving - t0:.2f}s after docker run; Docker health 'healthy' after {t_healthy - t0:.2f}s")
        cmdline = check_pid1_uid(name, UID)
        log(f"static: PID 1 is `{cmdline}`, UID {UID}")
        status, _, body = http_request(host, port, "GET", "/")
        expect(status == 200 and token.encode() in body, f"GET / did not serve the mounted index.html: {status} {body[:200]!r}")
        status, _, _ = http_request(host, port, "GET", "/no-such-file")
        expect(status == 404, f"GET /no-such-file: {status}, expected 404")
        log("static: the mounted folder is served (index.html, 404 for a missing file)")

        # glibc: what the binary needs (symbol versions) against what the base's libc provides.
        with tempfile.TemporaryDirectory() as tmp:
            docker("cp", f"{name}:/usr/local/bin/maitred", f"{tmp}/maitred")
            needed = glibc_versions(subprocess.run(["objdump", "-T", f"{tmp}/maitred"], capture_output=True, text=True, check=True).stdout)
        libc_banner = docker("run", "--rm", "--entrypoint", "/lib/x86_64-linux-gnu/libc.so.6", args.image).splitlines()[0]
        provided = re.search(r"version (\d+(?:\.\d+)+)", libc_banner)
        expect(provided is not None, f"no glibc version in the base's libc banner: {libc_banner!r}")
        have = tuple(int(x) for x in provided.group(1).split("."))
        expect(needed and needed[-1] <= have, f"the binary needs GLIBC_{'.'.join(map(str, needed[-1]))}, the base has {have}")
        log(f"static: binary needs up to GLIBC_{'.'.join(map(str, needed[-1]))}; base: {libc_banner.strip()}")
        shell = subprocess.run(["docker", "run", "--rm", "--entrypoint", "/bin/sh", args.image, "-c", "true"], capture_output=True, timeout=60)
        expect(shell.returncode != 0, "the runtime base has a shell (/bin/sh ran); distroless has none")
        log("static: no /bin/sh in the image")
        took = stop_and_check_exit(name)
        log(f"static: docker stop: exit 0 after {took:.2f}s")
        log(f"static: image {args.image}: {image_size(args.image)}")
        print(f"static: ok (start to serving {t_serving - t0:.2f}s, to healthy {t_healthy - t0:.2f}s)")
    finally:
        remove(name)
        shutil.rmtree(site, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
def check_dev(argv) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--image", required=True, help="the image docker-compose.yml names (built beforehand)")
    args = p.parse_args(argv)
    project = f"maitred-ci-dev-{os.getpid()}"
    app_dir = tempfile.mkdtemp(prefix="maitred-ci-dev-")
    shutil.rmtree(app_dir)
    shutil.copytree(os.path.join(ROOT, "examples", "flask_app"), app_dir,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    subprocess.run(["chmod", "-R", "a+rX", app_dir], check=True)
    env = dict(os.environ, MAITRED_DEV_APP_DIR=app_dir, MAITRED_DEV_PORT="0")
    compose = compose_base() + ["-p", project, "-f", os.path.join(ROOT, "docker-compose.yml")]

    def run(*a: str, timeout: float = 180) -> str:
        proc = subprocess.run(compose + list(a), env=env, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise CheckFailed(f"{' '.join(compose + list(a))} failed: {proc.stderr.strip()[-1500:]}")
        return proc.stdout

    try:
        t0 = time.time()
        run("up", "-d", "--no-build", "api")
        cid = run("ps", "-q", "api").strip()
        expect(cid != "", "docker-compose up started no api container")
        host, port = published(cid)
        wait_http(host, port, "/health")
        t_healthy = wait_health(cid)
        status, headers, body = http_request(host, port, "GET", "/")
        expect("werkzeug" in headers.get("server", "").lower(), f"docker-compose up api did not run the dev server: Server {headers.get('server')!r}")
        expect(body == b"Hello from Flask on maitred!\n", f"GET /: {status} {body[:200]!r}")
        before = inspect(cid)["State"]
        log(f"dev: Flask's dev server ({headers.get('server')}) answering, healthy {t_healthy - t0:.2f}s after up")

        token = uuid.uuid4().hex
        path = os.path.join(app_dir, "app.py")
        with open(path) as f:
            source = f.read()
        expect("Hello from Flask on maitred!" in source, "app.py has no greeting to edit")
        with open(path, "w") as f:
            f.write(source.replace("Hello from Flask on maitred!", f"Hello, edited {token}"))
        t_edit = time.time()
        deadline = t_edit + 30
        while True:
            try:
                status, _, body = http_request(host, port, "GET", "/", timeout=2)
                if status == 200 and token.encode() in body:
                    break
            except OSError:
                pass  # the reloader restarts the server process inside the container
            expect(time.time() < deadline, "the edit of app.py was not served within 30 s")
            time.sleep(0.2)
        t_seen = time.time()
        after = inspect(cid)["State"]
        expect(after["StartedAt"] == before["StartedAt"] and after["Running"],
               f"the container was restarted (started {before['StartedAt']} then {after['StartedAt']})")
        expect(inspect(cid)["RestartCount"] == 0, "the container was restarted")
        log(f"dev: the edit of app.py was served {t_seen - t_edit:.2f}s later, same container (started {after['StartedAt']})")
        print("dev: ok")
    finally:
        subprocess.run(compose + ["down", "-v", "--remove-orphans", "-t", "10"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(app_dir, ignore_errors=True)


if __name__ == "__main__":
    run_main({"api": check_api, "static": check_static, "dev": check_dev})
