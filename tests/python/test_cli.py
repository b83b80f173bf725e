"""The `maitred` command and `python -m maitred`: flags, exit codes, application loading,
and `maitred.serve()` from Python."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import textwrap

import pytest

from helpers import (
    ROOT,
    ServerProcess,
    build_request,
    clean_env,
    exchange,
    maitred_argv,
    require_maitred,
    start_maitred,
)

require_maitred()

import maitred  # noqa: E402
from maitred import AppLoadError, load_app  # noqa: E402

RUN_TIMEOUT = 30


def run(*args, cwd=ROOT, argv=None):
    """Run the command to completion (for flags that exit at once)."""
    return subprocess.run(
        argv or maitred_argv(*args),
        cwd=str(cwd),
        env=clean_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=RUN_TIMEOUT,
    )


@pytest.fixture
def apps(tmp_path):
    """A directory with small application modules, importable with --app-dir."""
    (tmp_path / "plain.py").write_text(
        textwrap.dedent(
            """
            def application(environ, start_response):
                start_response("200 OK", [("Content-Type", "text/plain")])
                return [b"plain application"]

            def other(environ, start_response):
                start_response("200 OK", [("Content-Type", "text/plain")])
                return [b"other"]

            class Holder:
                def wsgi(self, environ, start_response):
                    start_response("200 OK", [("Content-Type", "text/plain")])
                    return [b"nested attribute"]

            holder = Holder()
            not_callable = 42

            def make_app(greeting="factory"):
                def app(environ, start_response):
                    start_response("200 OK", [("Content-Type", "text/plain")])
                    return [greeting.encode()]
                return app

            def returns_none():
                return None
            """
        )
    )
    (tmp_path / "only_app.py").write_text(
        textwrap.dedent(
            """
            def app(environ, start_response):
                start_response("200 OK", [("Content-Type", "text/plain")])
                return [b"only app"]
            """
        )
    )
    (tmp_path / "broken_import.py").write_text("import no_such_dependency_xyz\n")
    (tmp_path / "nothing.py").write_text("x = 1\n")
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "wsgi.py").write_text(
        "def application(environ, start_response):\n"
        "    start_response('200 OK', [])\n"
        "    return [b'package module']\n"
    )
    sys.path.insert(0, str(tmp_path))
    yield tmp_path
    sys.path.remove(str(tmp_path))
    for name in ("plain", "only_app", "broken_import", "nothing", "pkg", "pkg.wsgi"):
        sys.modules.pop(name, None)


def serve_once(*args, target="/", cwd=ROOT):
    """Start the command, make one request, stop it with SIGTERM; return (status, body)."""
    server = start_maitred("--listen", "127.0.0.1:0", *args)
    try:
        resp, _ = exchange(server.addr, build_request("GET", target))
        code = server.stop(signal.SIGTERM)
    finally:
        server.kill_if_running()
    assert code == 0, server.output()
    return resp.status, resp.body


# -- load_app, in process -----------------------------------------------------------------


def call(app):
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen["status"] = status

    body = b"".join(app({"REQUEST_METHOD": "GET", "PATH_INFO": "/"}, start_response))
    return seen["status"], body


def test_load_module_attribute(apps):
    assert call(load_app("plain:other")) == ("200 OK", b"other")


def test_load_dotted_attribute(apps):
    assert call(load_app("plain:holder.wsgi")) == ("200 OK", b"nested attribute")


def test_load_module_alone_prefers_application_then_app(apps):
    assert call(load_app("plain"))[1] == b"plain application"
    assert call(load_app("only_app"))[1] == b"only app"
    assert call(load_app("pkg.wsgi"))[1] == b"package module"


def test_load_factory_call(apps):
    assert call(load_app("plain:make_app()"))[1] == b"factory"
    assert call(load_app("plain:make_app('hi there')"))[1] == b"hi there"
    assert call(load_app("plain:make_app(greeting='kw')"))[1] == b"kw"
    assert call(load_app("plain:make_app", call=True))[1] == b"factory"


@pytest.mark.parametrize(
    "spec,message",
    [
        ("no_such_module_xyz:app", "no module named 'no_such_module_xyz'"),
        ("pkg.nope:app", "no module named 'pkg.nope'"),
        ("plain:missing", "has no attribute 'missing'"),
        ("plain:holder.missing", "has no attribute 'missing'"),
        ("plain:not_callable", "is an int, not a WSGI application"),
        ("nothing", "has no 'application' or 'app' attribute"),
        ("plain:returns_none()", "returned None"),
        ("plain:make_app(open('x'))", "must be Python literals"),
        ("plain:1+", "is not an attribute name or a call"),
        (":app", "module part before ':' is empty"),
        ("plain:", "part after ':' is empty"),
        ("", "no application given"),
    ],
)
def test_load_errors_are_clear(apps, spec, message):
    with pytest.raises(AppLoadError) as info:
        load_app(spec)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_import_error_inside_the_application_is_not_hidden(apps):
    with pytest.raises(ModuleNotFoundError) as info:
        load_app("broken_import:app")
    assert info.value.name == "no_such_dependency_xyz"


# -- the command ----------------------------------------------------------------------------


def test_console_script_is_installed():
    exe = shutil.which("maitred")
    assert exe, "`pip install .` should put a `maitred` command on PATH"
    out = run(argv=[exe, "--version"])
    assert out.returncode == 0
    assert out.stdout.decode().startswith("maitred ")


def test_version():
    out = run("--version")
    assert out.returncode == 0, out
    assert out.stdout.decode().strip().startswith("maitred ")


def test_help_lists_server_and_python_flags():
    out = run("--help")
    assert out.returncode == 0, out
    text = out.stdout.decode()
    for flag in ("--listen", "--threads", "--url-prefix", "--access-log", "--max-body-size", "--app-dir", "--call"):
        assert flag in text, flag


@pytest.mark.parametrize(
    "args",
    [
        (),  # no application
        ("a:app", "b:app"),  # two
        ("--bogus-flag", "x:app"),
        ("--threads", "many", "x:app"),
        ("--threads",),
        ("--app-dir",),
        ("--app-dir", "/no/such/directory", "x:app"),
    ],
    ids=["no-app", "two-apps", "unknown-flag", "bad-value", "missing-value", "app-dir-no-value", "app-dir-missing"],
)
def test_usage_errors_exit_2_with_one_line(args):
    out = run(*args)
    assert out.returncode == 2, out
    err = out.stderr.decode().strip()
    assert err and "\n" not in err, err
    assert "Traceback" not in err


def test_application_not_found_is_one_line(apps):
    out = run("--listen", "127.0.0.1:0", "--app-dir", str(apps), "no_such_module_xyz:app")
    assert out.returncode in (1, 2), out
    err = out.stderr.decode()
    assert "no_such_module_xyz" in err
    assert "Traceback" not in err


def test_error_inside_the_application_shows_its_traceback(apps):
    out = run("--listen", "127.0.0.1:0", "--app-dir", str(apps), "broken_import:app")
    assert out.returncode == 2, out
    err = out.stderr.decode()
    assert "Traceback" in err and "no_such_dependency_xyz" in err
    assert err.strip().splitlines()[-1].startswith("maitred: cannot load broken_import:app")


def test_port_in_use_exits_1():
    server = start_maitred("--listen", "127.0.0.1:0", "--app-dir", str(ROOT / "tests" / "python"), "conformance_app:app")
    try:
        out = run("--listen", f"127.0.0.1:{server.port}", "--app-dir", str(ROOT / "tests" / "python"), "conformance_app:app")
        assert out.returncode == 1, out
        assert out.stderr.decode().strip(), out
    finally:
        assert server.stop(signal.SIGTERM) == 0


def test_check_config(apps):
    out = run("--check-config", "--app-dir", str(apps), "plain:application")
    assert out.returncode == 0, out


def test_print_config_shows_wsgi_default_threads(apps):
    out = run("--print-config", "--app-dir", str(apps), "plain")
    assert out.returncode == 0, out
    assert "threads = 4" in out.stdout.decode()


def test_serves_module_attribute(apps):
    assert serve_once("--app-dir", str(apps), "plain:holder.wsgi") == (200, b"nested attribute")


def test_serves_module_alone(apps):
    assert serve_once("--app-dir", str(apps), "only_app") == (200, b"only app")


def test_serves_factory_call(apps):
    assert serve_once("--app-dir", str(apps), "plain:make_app()") == (200, b"factory")


def test_call_flag_calls_the_factory(apps):
    assert serve_once("--app-dir", str(apps), "--call", "plain:make_app") == (200, b"factory")


def test_waitress_flag_names(apps):
    from helpers import free_port

    port = free_port()
    server = ServerProcess(
        maitred_argv("--host", "127.0.0.1", "--port", str(port), "--ident", "tested", "--channel-timeout", "30",
                     "--app-dir", str(apps), "plain")
    ).start()
    try:
        server.wait_listening()
        assert server.port == port
        resp, _ = exchange(server.addr, build_request("GET", "/"))
        assert resp.header("Server") == "tested"
        assert server.stop(signal.SIGTERM) == 0
    finally:
        server.kill_if_running()


def test_current_directory_is_on_sys_path_by_default(apps):
    server = ServerProcess(maitred_argv("--listen", "127.0.0.1:0", "only_app"), cwd=apps).start()
    try:
        server.wait_listening()
        resp, _ = exchange(server.addr, build_request("GET", "/"))
        assert resp.body == b"only app"
        assert server.stop(signal.SIGTERM) == 0
    finally:
        server.kill_if_running()


def test_serve_from_python(apps):
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(apps)!r})
        import maitred, plain
        maitred.serve(plain.application, listen="127.0.0.1:0", threads=2)
        print("serve returned", flush=True)
        """
    )
    server = ServerProcess([sys.executable, "-c", script]).start()
    try:
        server.wait_listening()
        resp, _ = exchange(server.addr, build_request("GET", "/"))
        assert resp.body == b"plain application"
        assert server.stop(signal.SIGTERM) == 0, server.output()
        assert "serve returned" in server.stdout_text()
    finally:
        server.kill_if_running()


def test_serve_rejects_a_non_callable():
    with pytest.raises(TypeError):
        maitred.serve(42)
