"""``nnscratch sanity-check --layer pkg.module:Class``: a user's layer class, imported, checked
against the layer protocol, and only then built.

Importing the module runs that module's code, as any import does. The class is then checked before
it is called (``forward`` and ``backward`` methods on the class, ``parameters`` and
``parameters_deltas`` lists if the class defines them, forward's arguments against ``--targets``),
so something that is not a layer class (``subprocess:Popen``, ``os:system``) is never called;
building it runs its ``__init__``.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import sys
import types

from .common import UsageError
from .sanity_check_inputs import TARGET_KINDS


def _forward_signature(cls):
    """The signature of ``cls.forward`` as an instance's bound method has it (without ``self``), or None."""
    try:
        signature = inspect.signature(cls.forward)
    except (TypeError, ValueError):  # no signature to read (a C function): the check will tell
        return None
    if isinstance(inspect.getattr_static(cls, "forward"), (staticmethod, classmethod)):
        return signature
    params = list(signature.parameters.values())
    if params and params[0].kind in (params[0].POSITIONAL_ONLY, params[0].POSITIONAL_OR_KEYWORD):
        params = params[1:]  # self
    return signature.replace(parameters=params)


def _check_forward_arguments(cls, spec: str, targets) -> None:
    """Refuse a forward that needs targets when none are given, or that takes none when they are."""
    signature = _forward_signature(cls)
    if signature is None:
        return
    params = signature.parameters.values()
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    takes_any = any(p.kind == p.VAR_POSITIONAL for p in params)
    if targets is None and len(required) == 2:
        raise UsageError(f"--layer: {spec}.forward{signature} needs targets; give --targets, one of "
                         f"{', '.join(TARGET_KINDS)}")
    if len(required) > (1 if targets is None else 2):
        raise UsageError(f"--layer: {spec}.forward{signature} needs {len(required)} arguments; sanity-check "
                         "passes the input and, with --targets, the targets")
    if targets is not None and len(positional) < 2 and not takes_any:
        raise UsageError(f"--targets: {spec}.forward{signature} takes no targets, only the input")


def _check_class_protocol(cls, spec: str) -> None:
    """Refuse a class that cannot be a layer before it is called: forward and backward must be
    methods of the class; parameters and parameters_deltas, when the class defines them, lists (or
    properties). Those set in __init__ are checked once it is built."""
    missing = [m for m in ("forward", "backward") if not callable(getattr(cls, m, None))]
    for attr in ("parameters", "parameters_deltas"):
        value = inspect.getattr_static(cls, attr, None)
        plain_value = not hasattr(value, "__get__") or isinstance(value, types.FunctionType)
        if value is not None and not isinstance(value, (list, tuple)) and plain_value:
            missing.append(f"{attr} as a list")
    if missing:
        raise UsageError(
            f"--layer: {spec} does not follow the layer protocol (forward, backward, parameters, "
            f"parameters_deltas): missing {', '.join(missing)}; it was not built"
        )


def load_user_layer(spec: str, kwargs_json: str | None, targets=None):
    """Import ``pkg.module:Class`` (the current directory is searched too), check the class against
    the layer protocol and forward's arguments against ``targets``, and only then build it."""
    module_name, sep, class_name = spec.partition(":")
    if not sep or not module_name or not class_name:
        raise UsageError(f"--layer: expected pkg.module:Class, got {spec!r}")
    kwargs = {}
    if kwargs_json is not None:
        try:
            kwargs = json.loads(kwargs_json)
        except json.JSONDecodeError as error:
            raise UsageError(f"--args: not valid JSON ({error}): {kwargs_json!r:.200}") from None
        except RecursionError:
            raise UsageError(f"--args: nested too deeply to read: {kwargs_json!r:.60}") from None
        if not isinstance(kwargs, dict):
            raise UsageError(f"--args: expected a JSON object of constructor arguments, got {kwargs_json!r}")
    added = os.getcwd() not in sys.path
    if added:  # as `python -m` does, so a module next to you imports from the console script too
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except SystemExit as error:  # a script, not a module of layers: never "all passed"
        raise UsageError(f"--layer: importing module {module_name!r} exited (sys.exit({error.code!r})); "
                         "--layer takes a module that defines a layer class") from None
    except Exception as error:
        raise UsageError(f"--layer: cannot import module {module_name!r}: {type(error).__name__}: {error}") from None
    finally:
        if added:
            sys.path.remove(os.getcwd())
    cls = getattr(module, class_name, None)
    if cls is None:
        raise UsageError(f"--layer: module {module_name!r} has no class {class_name!r}")
    if not isinstance(cls, type):  # os:system, shutil:rmtree: never call what is not a class
        raise UsageError(f"--layer: {spec} is a {type(cls).__name__}, not a class; --layer takes a layer class")
    _check_class_protocol(cls, spec)
    _check_forward_arguments(cls, spec, targets)
    try:
        layer = cls(**kwargs)
    except (Exception, SystemExit) as error:
        raise UsageError(f"--layer: cannot build {spec}(**{kwargs!r:.200}): {type(error).__name__}: {error}") from None
    missing = [f"{attr} as a list" for attr in ("parameters", "parameters_deltas")
               if not isinstance(getattr(layer, attr, []), (list, tuple))]
    if missing:
        raise UsageError(f"--layer: {spec} does not follow the layer protocol (forward, backward, parameters, "
                         f"parameters_deltas): missing {', '.join(missing)}")
    return layer
