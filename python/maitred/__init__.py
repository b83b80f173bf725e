"""maitred: a production HTTP/1.1 server written in Rust, hosting WSGI applications.

From the command line (``maitred`` or ``python -m maitred``)::

    maitred --listen 0.0.0.0:8080 --threads 4 myproject.wsgi:application

``maitred --help`` lists every setting; each is also a ``MAITRED_*`` environment variable.
Waitress's flag names (``--host``, ``--port``, ``--call``, ``--channel-timeout``, ...) are
accepted where the meaning matches. Two flags are handled here, in Python, before the server
sees the command line:

``--app-dir DIR``
    Put DIR first on ``sys.path`` before importing the application (repeatable). Without
    it the current directory is on ``sys.path``, as with ``waitress-serve``.
``--call``
    The spec names a factory: call it with no arguments and serve what it returns.

With ``--workers N`` (or ``auto``: one per usable CPU) the command supervises N worker
processes, each this interpreter started again, importing the application itself; SIGHUP
loads new code into new workers before the old ones drain.

From Python::

    import maitred
    maitred.serve(app, listen="127.0.0.1:8080", threads=8)
    maitred.serve(app, host="127.0.0.1", port=8080)   # Waitress's names work too

blocks until SIGINT or SIGTERM has drained the server; ``help(maitred.serve)`` lists the
settings.

An application that cannot be loaded is one line on stderr (exit status 2); the traceback
of an error inside the application is logged at debug level (``--log-level debug``).

The application spec (``MODULE:APP``) is resolved by :func:`load_app`; see
``maitred._loader`` for the accepted forms.
"""

from __future__ import annotations

import logging
import os
import sys
import textwrap
from typing import Any, Callable, List, Optional, Sequence, Tuple

from ._loader import AppLoadError, describe_failure, load_app, wsgi_call_problem

__all__ = ["AppLoadError", "load_app", "main", "serve", "__version__"]

try:
    from importlib.metadata import PackageNotFoundError, version as _dist_version

    try:
        __version__ = _dist_version("maitred")
    except PackageNotFoundError:  # running from a source tree
        __version__ = "0+unknown"
except ImportError:  # pragma: no cover - Python < 3.8 is not supported anyway
    __version__ = "0+unknown"

ACCESS_LOGGER = "maitred.access"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

PYTHON_FLAGS_HELP = """
Python front end flags (handled before the settings above):
  --app-dir <DIR>
      Put DIR first on sys.path before importing the application (repeatable); without it
      the current directory is on sys.path.
  --call
      MODULE:APP names a factory: call it with no arguments and serve what it returns.

The application (one positional argument):
  MODULE:NAME          an attribute of the module (dotted names walk attributes)
  MODULE:factory()     the result of calling factory(); literal arguments are allowed,
                       as in MODULE:create_app('production')
  MODULE               the module's `application`, else its `app`
"""


def _native():
    # Imported lazily so that `import maitred` (and the loader) work without the compiled
    # extension, for example in a source checkout; serving needs it.
    from . import _maitred

    return _maitred


def configure_logging() -> bool:
    """Send maitred's log records somewhere useful unless logging is already configured.

    When the root logger has no handlers: ``logging.basicConfig`` at INFO to stderr, and the
    access logger (``maitred.access``) writes bare lines to stdout without propagating, so
    ``--access-log`` output is one clean line per request. Returns True when it configured
    logging, False when it left an existing configuration alone.
    """
    root = logging.getLogger()
    if root.handlers:
        return False
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    access = logging.getLogger(ACCESS_LOGGER)
    if not access.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        access.addHandler(handler)
    access.setLevel(logging.INFO)
    access.propagate = False
    return True


class _UsageError(Exception):
    pass


def _take_python_flags(argv: Sequence[str]) -> Tuple[List[str], List[str], bool]:
    """Remove ``--app-dir DIR`` / ``--app-dir=DIR`` and ``--call`` from ``argv``.

    Returns (the rest of argv, the app dirs in order, whether --call was given). Arguments
    after ``--`` are left alone.
    """
    rest: List[str] = []
    app_dirs: List[str] = []
    call = False
    i = 0
    args = list(argv)
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        if arg == "--app-dir":
            if i + 1 >= len(args):
                raise _UsageError("--app-dir needs a value")
            app_dirs.append(args[i + 1])
            i += 2
            continue
        if arg.startswith("--app-dir="):
            value = arg[len("--app-dir="):]
            if not value:
                raise _UsageError("--app-dir needs a value")
            app_dirs.append(value)
        elif arg == "--call":
            call = True
        elif arg.startswith("--call="):
            value = arg[len("--call="):].lower()
            if value in ("true", "yes", "on", "1"):
                call = True
            elif value in ("false", "no", "off", "0"):
                call = False
            else:
                raise _UsageError(f"invalid value {value!r} for --call: expected true or false")
        else:
            rest.append(arg)
        i += 1
    return rest, app_dirs, call


def _wants_help(argv: Sequence[str]) -> bool:
    for arg in argv:
        if arg == "--":
            return False
        if arg in ("-h", "--help"):
            return True
    return False


def _program() -> str:
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if not name or name in ("__main__.py", "-c") or name.endswith(".py"):
        return "maitred"
    return os.path.splitext(name)[0]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The ``maitred`` command: serve the WSGI application named on the command line.

    ``argv`` excludes the program name (default: ``sys.argv[1:]``). Returns the exit code:
    0 after a graceful drain, 1 when the server cannot start, 2 for a usage error.
    """
    if argv is None:
        argv = sys.argv[1:]
    try:
        args, app_dirs, call = _take_python_flags(argv)
        for directory in app_dirs:
            if not os.path.isdir(directory):
                raise _UsageError(f"--app-dir {directory}: not a directory")
    except _UsageError as e:
        print(f"{_program()}: {e}", file=sys.stderr)
        return 2

    # Like waitress-serve: the application's directory (or else the current one) first.
    for directory in reversed(app_dirs):
        sys.path.insert(0, os.path.abspath(directory))
    if not app_dirs:
        cwd = os.getcwd()
        if cwd not in sys.path and "" not in sys.path:
            sys.path.insert(0, cwd)

    configured = configure_logging()

    def apply_log_level(log_level: int) -> None:
        if configured:
            # --log-level (or RUST_LOG) decides what maitred's Python loggers show, as it
            # decides what the server sends them.
            logging.getLogger("maitred").setLevel(log_level)

    def loader(spec: str, log_level: int = logging.INFO) -> Callable:
        apply_log_level(log_level)
        try:
            return load_app(spec, call=call)
        except AppLoadError:
            raise  # a one-line message says it all
        except Exception as e:
            # A failure inside the application's own code (a syntax error, a missing
            # dependency): one line says what and where; the traceback is for debug level.
            app_log = logging.getLogger("maitred.app")
            app_log.debug("importing the application %s failed", spec, exc_info=True)
            note = None if app_log.isEnabledFor(logging.DEBUG) else "--log-level debug shows the traceback"
            raise AppLoadError(describe_failure(e, note)) from None

    # A supervisor (--workers) loads no application, but logs at the same level.
    loader.apply_log_level = apply_log_level  # type: ignore[attr-defined]
    # With --workers N, the process started like this one supervises N copies of it, each of
    # which imports the application itself (spawned, never forked).
    worker_program = [sys.executable, "-m", "maitred", *argv]
    code = _native().run(list(args), loader, worker_program)
    if _wants_help(args):
        sys.stdout.write(PYTHON_FLAGS_HELP)
        sys.stdout.flush()
    return int(code)


def serve(app: Callable, **settings: Any) -> None:
    """Serve the WSGI callable ``app``; block until SIGINT or SIGTERM has drained the server.

    Settings are keyword arguments with the names of ``maitred --help`` (underscores or
    dashes), or Waitress's names for the same thing::

        serve(app, listen="0.0.0.0:8080", threads=8, max_body_size="16MiB")
        serve(app, host="0.0.0.0", port=8080, channel_timeout=60)   # as waitress.serve

    ``host`` and ``port`` combine into ``listen`` (the host defaults to 127.0.0.1, not
    Waitress's 0.0.0.0; the port to 8080); ``listen`` also takes Waitress's space-separated
    list. Values are text (``"16MiB"``, ``"30s"``), numbers, booleans, or a list for
    ``listen``. An unknown or invalid setting raises ``ValueError``; an address that cannot
    be bound raises ``OSError``. Logging is set up as for the command line unless it is
    already configured. No ``MAITRED_*`` variable or flag is read.

    With ``workers=N`` (or ``"auto"``) this process supervises N worker processes and serves
    nothing itself: each worker is this program started again (``sys.executable`` with the
    same command line), which imports its modules, reaches ``serve`` and serves its own
    ``app``. So, as with ``multiprocessing``, call ``serve`` under
    ``if __name__ == "__main__":`` and keep start-up work that must run once out of the
    worker's path.
    """
    if not callable(app):
        raise TypeError(f"app must be a WSGI callable, not {type(app).__name__}")
    problem = wsgi_call_problem(app)
    if problem is not None:
        raise TypeError(
            f"app {problem}, so it is not a WSGI application (called as app(environ, "
            "start_response)); if it is a factory, serve what it returns: serve(create_app())"
        )
    configure_logging()
    normalized = {key.replace("-", "_"): value for key, value in settings.items()}
    _native().serve(app, normalized, _this_program())


def _this_program() -> List[str]:
    """How to start this program again: a worker process runs it from the start, reaches
    ``serve`` itself and serves its own application (so, as with ``multiprocessing``'s spawn,
    a script that calls ``serve(app, workers=...)`` should do so under
    ``if __name__ == "__main__":``, which a worker runs too)."""
    orig = getattr(sys, "orig_argv", None)  # Python 3.10+: with -m, -c and interpreter flags
    if orig:
        return [sys.executable, *orig[1:]]
    return [sys.executable, *sys.argv]


def _settings_doc() -> str:
    """The settings part of ``serve.__doc__``, from the server's own table."""
    try:
        native = _native()
        settings = native.wsgi_settings()
        waitress = native.waitress_names()
    except (ImportError, AttributeError):
        return "\n    (The list of settings needs the compiled extension: ``pip install .``.)\n"
    lines = ["", "    Settings (name, unit, default for WSGI):", ""]
    for name, unit, default, summary in settings:
        lines.append(f"    {name} ({unit}, default {default or 'empty'})")
        lines.extend(textwrap.wrap(summary, width=92, initial_indent=" " * 8, subsequent_indent=" " * 8))
    lines += ["", "    Waitress's names accepted:", ""]
    lines += [f"    {alias} = {setting}" for alias, setting in waitress]
    return "\n".join(lines) + "\n"


serve.__doc__ = (serve.__doc__ or "") + _settings_doc()
