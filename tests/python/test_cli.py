"""The `maitred` command and `python -m maitred`: flags, exit codes, application loading,
and `maitred.serve()` from Python."""

from __future__ import annotations

import re
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

            def create_app():
                return make_app("created")

            def returns_factory():
                return create_app
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
    (tmp_path / "broken_syntax.py").write_text("x = 1\ndef app(environ, start_response)\n    pass\n")
    (tmp_path / "side_effect.py").write_text(
        "print('side_effect.py was imported', flush=True)\n"
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [])\n"
        "    return [b'x']\n"
    )
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
    for name in ("plain", "only_app", "broken_import", "broken_syntax", "side_effect", "nothing", "pkg", "pkg.wsgi"):
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
        ("plain:create_app", "takes no arguments, so it is not a WSGI application"),
        ("plain:make_app", "cannot be called with (environ, start_response)"),
        ("plain:returns_factory()", "result takes no arguments, so it is not a WSGI application"),
        ("side_effect.py", "is a file name, not a module"),
        (".", "is a directory, not a module"),
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


def test_help_shows_wsgi_defaults_and_only_wsgi_settings():
    out = run("--help")
    assert out.returncode == 0, out
    text = out.stdout.decode()
    assert "  --threads <threads>\n      env MAITRED_THREADS, default 4\n" in text, text
    assert "CPUs" not in text, text
    for flag in ("--root", "--directory-listing", "--follow-symlinks"):
        assert flag not in text, flag


@pytest.mark.parametrize(
    "flag",
    [("--root", "/nonexistent"), ("--root=/nonexistent",), ("--directory-listing",), ("--follow-symlinks=true",)],
    ids=["root", "root-inline", "directory-listing", "follow-symlinks"],
)
def test_static_file_flags_are_refused(apps, flag):
    out = run("--check-config", *flag, "--app-dir", str(apps), "plain:application")
    assert out.returncode == 2, out
    err = one_line_error(out)
    assert flag[0].split("=")[0] in err and "does not apply to WSGI" in err, err
    assert "configuration ok" not in out.stdout.decode()


def test_static_file_keys_in_a_config_file_are_refused(apps, tmp_path):
    config = tmp_path / "maitred.toml"
    config.write_text('threads = 2\nroot = "/nonexistent"\n')
    out = run("--check-config", "--config", str(config), "--app-dir", str(apps), "plain:application")
    assert out.returncode == 2, out
    err = one_line_error(out)
    assert "root" in err and "does not apply to WSGI" in err and str(config) in err, err
    assert "configuration ok" not in out.stdout.decode()


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


def one_line_error(out) -> str:
    """The command's stderr, checked to be exactly one line and no traceback."""
    err = out.stderr.decode()
    assert "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    return err.strip()


def test_error_inside_the_application_is_one_line_with_the_traceback_at_debug_level(apps):
    out = run("--listen", "127.0.0.1:0", "--app-dir", str(apps), "broken_import:app")
    assert out.returncode == 2, out
    err = one_line_error(out)
    assert err.startswith("maitred: cannot load broken_import:app: ModuleNotFoundError"), err
    assert "no_such_dependency_xyz" in err and "broken_import.py, line 1" in err, err
    assert "--log-level debug" in err, err

    out = run("--log-level", "debug", "--listen", "127.0.0.1:0", "--app-dir", str(apps), "broken_import:app")
    assert out.returncode == 2, out
    err = out.stderr.decode()
    assert "Traceback" in err and "no_such_dependency_xyz" in err, err
    assert err.strip().splitlines()[-1].startswith("maitred: cannot load broken_import:app"), err


def test_syntax_error_is_one_line_with_file_and_line(apps):
    out = run("--listen", "127.0.0.1:0", "broken_syntax:app", cwd=apps)
    assert out.returncode == 2, out
    err = one_line_error(out)
    assert err.startswith("maitred: cannot load broken_syntax:app: SyntaxError"), err
    assert "broken_syntax.py, line 2" in err, err


@pytest.mark.parametrize(
    "spec,expected",
    [
        ("side_effect.py", ["'side_effect.py' is a file name", "MODULE:APP", "as in side_effect:app"]),
        ("side_effect.py:app", ["'side_effect.py' is a file name", "as in side_effect:app"]),
        ("pkg/wsgi.py", ["is a file name", "as in --app-dir pkg wsgi:app"]),
        (".", ["'.' is a directory, not a module", "MODULE:APP"]),
        ("pkg/", ["'pkg/' is a directory", "as in --app-dir pkg/ wsgi:app"]),
    ],
    ids=["file", "file-with-app", "file-in-directory", "dot", "directory"],
)
def test_a_path_instead_of_a_module_is_one_line(apps, spec, expected):
    out = run("--listen", "127.0.0.1:0", spec, cwd=apps)
    assert out.returncode == 2, out
    err = one_line_error(out)
    for part in expected:
        assert part in err, (part, err)
    # The file is not imported (that would run its top-level code) just to say it is a file.
    assert b"was imported" not in out.stdout, out


def test_factory_without_call_is_refused_at_start_up(apps):
    out = run("--check-config", "--app-dir", str(apps), "plain:create_app")
    assert out.returncode == 2, out
    err = one_line_error(out)
    assert "plain:create_app takes no arguments" in err, err
    assert "--call" in err and "plain:create_app()" in err, err
    assert "configuration ok" not in out.stdout.decode()
    # Both ways the message suggests work.
    assert run("--check-config", "--app-dir", str(apps), "plain:create_app()").returncode == 0
    assert run("--check-config", "--app-dir", str(apps), "--call", "plain:create_app").returncode == 0


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
    text = out.stdout.decode()
    assert "threads = 4" in text
    # Only settings the command accepts, so the file reads back with --config.
    for name in ("root", "directory_listing", "follow_symlinks"):
        assert f"\n{name} = " not in text, name
    saved = apps / "printed.toml"
    saved.write_text(text)
    out = run("--check-config", "--config", str(saved), "--app-dir", str(apps), "plain")
    assert out.returncode == 0, out


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


def serve_script(apps, call: str) -> str:
    return textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(apps)!r})
        import maitred, plain
        {call}
        print("serve returned", flush=True)
        """
    )


def test_serve_takes_waitress_keyword_names(apps):
    script = serve_script(apps, 'maitred.serve(plain.application, host="127.0.0.1", port=0, ident="tested", '
                                'channel_timeout=30, max_request_body_size=1024, threads=2)')
    server = ServerProcess([sys.executable, "-c", script]).start()
    try:
        server.wait_listening()
        resp, _ = exchange(server.addr, build_request("GET", "/"))
        assert resp.body == b"plain application" and resp.header("Server") == "tested", resp
        # max_request_body_size is max_body_size: 2 KiB is over it.
        resp, _ = exchange(server.addr, build_request("POST", "/", body=b"x" * 2048))
        assert resp.status == 413, resp
        assert server.stop(signal.SIGTERM) == 0, server.output()
    finally:
        server.kill_if_running()


def test_serve_takes_waitress_listen_list(apps):
    script = serve_script(apps, 'maitred.serve(plain.application, listen="127.0.0.1:0 127.0.0.1:0")')
    server = ServerProcess([sys.executable, "-c", script]).start()
    try:
        server.wait_listening()
        server.wait_for(re.compile(rb"listening on http://127\.0\.0\.1:(?!%d\b)\d+" % server.port))
        assert server.stop(signal.SIGTERM) == 0, server.output()
    finally:
        server.kill_if_running()


@pytest.mark.parametrize(
    "call,message",
    [
        ('maitred.serve(plain.application, host="127.0.0.1", listen="127.0.0.1:0")', "conflicting settings"),
        ('maitred.serve(plain.application, port=0, root="/nonexistent")', "does not apply to WSGI"),
        ('maitred.serve(plain.application, port=0, directory_listing=True)', "does not apply to WSGI"),
        ('maitred.serve(plain.application, port=0, asyncore_use_poll=True)', "unknown setting"),
        ("maitred.serve(plain.create_app, port=0)", "takes no arguments"),
    ],
    ids=["host-and-listen", "root", "directory-listing", "unknown", "factory"],
)
def test_serve_refuses_settings_and_apps_it_cannot_honour(apps, call, message):
    # In a child process: a setting wrongly accepted would start a server, not hang the suite.
    out = run(argv=[sys.executable, "-c", serve_script(apps, call)])
    assert out.returncode != 0, out
    err = out.stderr.decode()
    assert message in err, err
    assert "serve returned" not in out.stdout.decode()


def test_help_of_serve_lists_the_settings_and_waitress_names():
    import pydoc

    from maitred import _maitred

    text = pydoc.render_doc(maitred.serve, renderer=pydoc.plaintext)
    settings = _maitred.wsgi_settings()
    assert len(settings) > 20
    for name, unit, default, _summary in settings:
        assert f"    {name} ({unit}, default " in text, name
    assert "    threads (threads, default 4)" in text, text
    assert "    max_body_size (bytes, default 8MiB)" in text, text
    for name in ("host", "port", "channel_timeout", "max_request_body_size", "ident", "trusted_proxy"):
        assert f"    {name} = " in text, name
    assert "    root (" not in text and "directory_listing" not in text, text
