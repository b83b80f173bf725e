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
"""

from __future__ import annotations

import ast
import importlib
import sys
from typing import Any, Callable, List, Tuple

__all__ = ["AppLoadError", "load_app"]

DEFAULT_NAMES = ("application", "app")


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


def load_app(spec: str, call: bool = False) -> Callable:
    """Import and return the WSGI callable that ``spec`` names (see the module docs).

    Raises :class:`AppLoadError` with a one-line message when the module or attribute is
    missing or the result is not callable. Exceptions raised while importing the
    application's own code (a syntax error in it, a missing dependency) propagate unchanged.
    """
    module_name, target = _split(spec)
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
    return obj
