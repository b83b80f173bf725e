"""Find the WSGI application a command line names.

Accepted forms of ``SPEC``:

``package.module:name``
    The attribute ``name`` of the module; dotted names walk attributes
    (``module:obj.wsgi_app``).
``package.module:factory()``
    Call ``factory`` with no arguments and serve what it returns.
``package.module:factory('prod', debug=False)``
    Call it with Python literal arguments (strings, numbers, booleans, None,
    tuples, lists, dicts). Only literals are allowed: nothing is evaluated.
``package.module``
    The module's ``application`` attribute, else its ``app`` attribute.

``--call`` (Waitress's flag) means the object the spec names is a factory to call
with no arguments.

A file name (``hello.py``) or a directory (``.``) is refused with a one-line hint, and so
is an object that cannot be called as ``app(environ, start_response)`` (a factory like
``create_app()`` named without ``()`` or ``--call``), so the mistake shows at start-up,
not as a 500 on every request.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import sys
import traceback
from typing import Any, Callable, List, Optional, Tuple

__all__ = ["AppLoadError", "describe_failure", "load_app", "wsgi_call_problem"]

DEFAULT_NAMES = ("application", "app")

SPEC_MEANING = "MODULE:APP names a module to import and the WSGI callable in it"

# Modules a directory often holds the application in, for the hint about a directory.
LIKELY_MODULES = ("wsgi", "app", "application", "main")


class AppLoadError(Exception):
    """The spec cannot be turned into a WSGI callable. The message is one line."""


def _split(spec: str) -> Tuple[str, str]:
    spec = spec.strip()
    if not spec:
        raise AppLoadError("no application given: expected MODULE:APP (like myapp:app)")
    module, sep, target = spec.partition(":")
    module = module.strip()
    target = target.strip()
    if not module:
        raise AppLoadError(f"the module part before ':' is empty in {spec!r} (expected MODULE:APP)")
    if sep and not target:
        raise AppLoadError(f"the part after ':' is empty in {spec!r} (expected MODULE:APP)")
    return module, target


def _with_app_dir(directory: str, spec: str) -> str:
    return f"--app-dir {directory} {spec}" if directory not in ("", ".") else spec


def _not_a_module(module: str, target: str) -> Optional[str]:
    """A one-line hint when ``module`` is a file name or a path, not a module name."""
    callable_name = target or "app"
    if all(part.isidentifier() for part in module.split(".")) and not module.endswith(".py"):
        return None  # a module name, maybe a package directory: import it
    if os.path.isdir(module):
        found = [m for m in LIKELY_MODULES if os.path.isfile(os.path.join(module, m + ".py"))]
        example = (
            _with_app_dir(module, f"{found[0]}:{callable_name}") if found else "myproject.wsgi:application"
        )
        return f"{module!r} is a directory, not a module: {SPEC_MEANING}, as in {example}"
    if module.endswith(".py") or os.path.isfile(module):
        directory, name = os.path.split(module)
        stem = name[:-3] if name.endswith(".py") else name
        return (
            f"{module!r} is a file name, not a module: {SPEC_MEANING}, "
            f"as in {_with_app_dir(directory, f'{stem}:{callable_name}')}"
        )
    if module.startswith(".") or "/" in module or "\\" in module:
        return f"{module!r} is not a module name: {SPEC_MEANING}, as in myproject.wsgi:application"
    return None


def _parse_target(spec: str, target: str) -> Tuple[List[str], bool, tuple, dict]:
    """``obj.attr`` or ``factory(args)`` into (attribute path, is_call, args, kwargs)."""
    try:
        node = ast.parse(target, mode="eval").body
    except SyntaxError:
        raise AppLoadError(
            f"{target!r} is not an attribute name or a call like factory()"
        ) from None
    call = isinstance(node, ast.Call)
    args: tuple = ()
    kwargs: dict = {}
    if call:
        try:
            args = tuple(ast.literal_eval(a) for a in node.args)
            kwargs = {}
            for kw in node.keywords:
                if kw.arg is None:  # **mapping
                    raise ValueError("** arguments")
                kwargs[kw.arg] = ast.literal_eval(kw.value)
        except ValueError:
            raise AppLoadError(
                "factory arguments must be Python literals (strings, numbers, "
                "True/False/None, tuples, lists, dicts)"
            ) from None
        node = node.func
    path: List[str] = []
    while isinstance(node, ast.Attribute):
        path.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        raise AppLoadError(f"{target!r} is not an attribute name or a call like factory()")
    path.append(node.id)
    path.reverse()
    return path, call, args, kwargs


def _import(spec: str, module_name: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        # Only our own module (or one of its parent packages) missing is "not found"; a
        # missing import *inside* the application is the application's error: let its
        # traceback through.
        missing = e.name or ""
        if missing == module_name or module_name.startswith(missing + "."):
            where = ", ".join(p or "." for p in sys.path[:3])
            raise AppLoadError(
                f"no module named {missing!r} (sys.path starts {where}, ...; "
                "use --app-dir DIR to add the application's directory)"
            ) from None
        raise


def _describe(obj: Any) -> str:
    name = type(obj).__name__
    return f"an {name}" if name[:1].lower() in "aeiou" else f"a {name}"


def wsgi_call_problem(obj: Any) -> Optional[str]:
    """Why ``obj(environ, start_response)`` cannot work, judged from its signature, or None.

    None also when the signature cannot be read (some built-in callables): the server then
    finds out at the first request, as before.
    """
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    try:
        signature.bind(object(), object())
    except TypeError:
        if not signature.parameters:
            return "takes no arguments"
        return f"has the signature {signature} and cannot be called with (environ, start_response)"
    return None


def _location(exc: BaseException) -> Optional[str]:
    """``FILE, line N`` of a syntax error, else of the innermost frame outside importlib."""
    def shown(path: str) -> str:
        try:
            relative = os.path.relpath(path)
        except ValueError:  # another drive on Windows
            return path
        return path if relative.startswith("..") else relative

    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{shown(exc.filename)}, line {exc.lineno}"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith("<")]
    if not frames:
        return None
    return f"{shown(frames[-1].filename)}, line {frames[-1].lineno}"


def describe_failure(exc: BaseException, note: Optional[str] = None) -> str:
    """One line for an exception raised while importing or building the application: its
    type, message and where it was raised (the file and line of a syntax error), and
    ``note`` in the parentheses."""
    message = exc.msg if isinstance(exc, SyntaxError) and exc.msg else str(exc)
    message = " ".join(message.split())
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    extra = "; ".join(part for part in (_location(exc), note) if part)
    return f"{text} ({extra})" if extra else text


def load_app(spec: str, call: bool = False) -> Callable:
    """Import and return the WSGI callable that ``spec`` names (see the module docs).

    Raises :class:`AppLoadError` with a one-line message when the module or attribute is
    missing or the result is not callable. Exceptions raised while importing the
    application's own code (a syntax error in it, a missing dependency) propagate unchanged.
    """
    module_name, target = _split(spec)
    hint = _not_a_module(module_name, target)
    if hint is not None:
        raise AppLoadError(hint)
    module = _import(spec, module_name)

    if not target:
        for name in DEFAULT_NAMES:
            if hasattr(module, name):
                target = name
                break
        else:
            raise AppLoadError(
                f"module {module_name!r} has no 'application' or 'app' attribute; "
                f"name one as {module_name}:NAME"
            )

    path, is_call, args, kwargs = _parse_target(spec, target)
    obj: Any = module
    walked = f"module {module_name!r}"
    for i, name in enumerate(path):
        try:
            obj = getattr(obj, name)
        except AttributeError:
            raise AppLoadError(f"{walked} has no attribute {name!r}") from None
        walked = f"{module_name}:{'.'.join(path[: i + 1])}"

    if is_call or call:
        if not callable(obj):
            raise AppLoadError(f"{walked} is {_describe(obj)}, not a factory that can be called")
        obj = obj(*args, **kwargs)
        if obj is None:
            raise AppLoadError(f"the factory {walked} returned None, not a WSGI application")
        walked = f"{walked}() result"

    if not callable(obj):
        raise AppLoadError(
            f"{walked} is {_describe(obj)}, not a WSGI application (a callable "
            "taking environ and start_response)"
        )
    problem = wsgi_call_problem(obj)
    if problem is not None:
        if is_call or call:
            raise AppLoadError(f"{walked} {problem}, so it is not a WSGI application")
        factory = f"{module_name}:{'.'.join(path)}"
        raise AppLoadError(
            f"{walked} {problem}, so it is not a WSGI application (called as app(environ, "
            f"start_response)); if it is a factory that returns one, use --call or {factory}()"
        )
    return obj
