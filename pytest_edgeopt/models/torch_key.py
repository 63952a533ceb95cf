"""The cache key of a user's torch module: everything that decides the graph it exports.

Two modules that export different graphs must never share a cached artifact. The key covers
- every tensor the module holds: parameters and all buffers, persistent or not (normalization
  constants registered with `persistent=False` are not in `state_dict()`);
- every module's plain attributes (`self.k = -1.0` read in forward), hooks included;
- the source of the user code the model reaches: each of its classes' files, and every file of
  user code (not the standard library, not an installed package) that their functions reach by
  name, followed transitively (a helper `act()` imported from another module).
Code of installed packages (torch, timm) is keyed by the package versions recorded elsewhere.
"""

from __future__ import annotations

import hashlib
import inspect
import marshal
import re
import sys
import sysconfig
import types
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, List, Set, Tuple

import numpy as np

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")  # a default repr's address differs every run
_HELD = ("_parameters", "_buffers", "_modules")  # hashed as tensors and submodules, not as attributes
_MAX_DEPTH = 4  # nested containers in attributes: deeper than this is described by type only
_MAX_ITEMS = 10_000


def module_key(module: Any) -> hashlib._Hash:
    """A sha256 fed with the module's tensors, plain attributes and reached code."""
    digest = hashlib.sha256(repr(module).encode())
    digest.update(type(module).__qualname__.encode())
    for part in tensor_parts(module):
        digest.update(part)
    for part in attribute_parts(module):
        digest.update(part)
    for source in code_sources(module):
        digest.update(source)
    return digest


def tensor_parts(module: Any) -> Iterator[bytes]:
    """Parameters and every buffer by name: catches `Normed(mean=3.0)` vs `Normed(mean=0.0)` when
    the mean is a non-persistent buffer."""
    named = [*module.named_parameters(remove_duplicate=False), *module.named_buffers(remove_duplicate=False)]
    for name, tensor in named:
        yield name.encode()
        yield _tensor_bytes(tensor)


def attribute_parts(module: Any) -> Iterator[bytes]:
    """Each submodule's own attributes (what `vars()` holds besides tensors and children): catches
    `Scaled(-1.0)` vs `Scaled(1.0)` when the scale is a float attribute read in forward."""
    for name, sub in module.named_modules(remove_duplicate=False):
        for attr, value in sorted(vars(sub).items()):
            if attr in _HELD:
                continue
            if "hook" in attr and isinstance(value, dict):  # keyed by a global handle counter: values only
                value = list(value.values())
            yield f"{name}.{attr}=".encode() + describe(value)


def describe(value: Any, depth: int = 0) -> bytes:
    """A stable byte description of an attribute's value: equal values give equal bytes across runs."""
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
        return repr(value).encode()
    if hasattr(value, "detach") and hasattr(value, "dtype"):
        return _tensor_bytes(value)
    if isinstance(value, np.ndarray):
        return f"{value.dtype}{value.shape}".encode() + np.ascontiguousarray(value).tobytes()
    if depth >= _MAX_DEPTH:
        return type(value).__qualname__.encode()
    if isinstance(value, (list, tuple)):
        return b"[" + b",".join(describe(v, depth + 1) for v in list(value)[:_MAX_ITEMS]) + b"]"
    if isinstance(value, (set, frozenset)):
        return b"{" + b",".join(sorted(describe(v, depth + 1) for v in value)) + b"}"
    if isinstance(value, dict):
        items = sorted((describe(k, depth + 1), describe(v, depth + 1)) for k, v in list(value.items())[:_MAX_ITEMS])
        return b"{" + b",".join(k + b":" + v for k, v in items) + b"}"
    return _describe_object(value, depth)


def _describe_object(value: Any, depth: int) -> bytes:
    code = _code_of(value)
    if code is not None:
        return _code_bytes(code) + describe(_closure_values(value), depth + 1)
    if isinstance(value, types.ModuleType):
        return f"module {value.__name__}".encode()
    if hasattr(value, "named_modules") and not isinstance(value, type):  # a module held outside `_modules`
        # (in a plain list); a module *class* (torchvision's `_norm_layer = nn.BatchNorm2d`) is its name
        return _ADDRESS.sub("", repr(value)).encode() + b"".join(tensor_parts(value))
    if hasattr(value, "__dict__") and not isinstance(value, type):
        return type(value).__qualname__.encode() + describe(dict(vars(value)), depth + 1)
    return _ADDRESS.sub("", repr(value)).encode()


def _code_of(value: Any) -> Any:
    target = getattr(value, "__func__", value)  # a bound method's function
    target = getattr(target, "func", target)  # functools.partial
    return getattr(target, "__code__", None)


def _closure_values(value: Any) -> List[Any]:
    target = getattr(getattr(value, "__func__", value), "func", getattr(value, "__func__", value))
    cells = getattr(target, "__closure__", None) or ()
    values = []
    for cell in cells:
        try:
            values.append(cell.cell_contents)
        except ValueError:  # an empty cell
            values.append(None)
    return values


def _code_bytes(code: Any) -> bytes:
    try:
        return marshal.dumps(code)
    except ValueError:
        return code.co_code  # type: ignore[no-any-return]


def _tensor_bytes(tensor: Any) -> bytes:
    array = tensor.detach().cpu().contiguous()
    head = f"{array.dtype}{tuple(array.shape)}".encode()
    try:
        data: bytes = array.numpy().tobytes()
    except (TypeError, RuntimeError):  # bfloat16 and other dtypes numpy lacks
        data = array.reshape(-1).float().numpy().tobytes()
    return head + data


# -- code the model reaches ---------------------------------------------------------------------------------


def code_sources(module: Any) -> List[bytes]:
    """The files of user code the model's classes live in and reach, in a stable order."""
    files: Set[Path] = set()
    compiled: List[bytes] = []
    seen: Set[int] = set()
    for cls in _own_classes(module):
        path = _source_file(cls)
        if path is None:  # a class built in a notebook cell or exec(): its functions' code
            compiled.append(_class_code(cls))
        else:
            files.add(path)
        for function in _functions_of(cls):
            _follow(function, files, seen)
    sources = [path.as_posix().encode() + b"\0" + path.read_bytes() for path in sorted(files)]
    return sources + compiled


def _own_classes(module: Any) -> List[type]:
    classes = {cls for sub in module.modules() for cls in type(sub).__mro__}
    own = (c for c in classes if not _installed(getattr(sys.modules.get(c.__module__), "__file__", None), c.__module__))
    return sorted(own, key=lambda c: f"{c.__module__}.{c.__qualname__}")


def _follow(function: Any, files: Set[Path], seen: Set[int]) -> None:
    """Add the function's file, then follow every global name its code reads (a module: every
    function and class defined in it) while it stays in user code."""
    code = _code_of(function)
    if code is None or id(code) in seen:
        return
    seen.add(id(code))
    path = _user_file(function)
    if path is None:
        return
    files.add(path)
    namespace = getattr(getattr(function, "__func__", function), "__globals__", {})
    for name in _names(code):
        _follow_value(namespace.get(name), files, seen)


def _follow_value(value: Any, files: Set[Path], seen: Set[int]) -> None:
    if isinstance(value, types.ModuleType):
        path = _installed_or_file(value)
        if path is not None and path not in files:
            files.add(path)
            for member in list(vars(value).values()):
                if getattr(member, "__module__", None) == value.__name__:
                    _follow_value(member, files, seen)
    elif isinstance(value, type):
        if _source_file(value) is not None:
            for function in _functions_of(value):
                _follow(function, files, seen)
    elif _code_of(value) is not None:
        _follow(value, files, seen)


def _names(code: Any) -> Iterator[str]:
    """Global and attribute names the code and its nested functions and comprehensions read."""
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _names(const)


def _functions_of(cls: type) -> List[Any]:
    members: List[Any] = []
    for value in vars(cls).values():
        value = getattr(value, "__func__", value)  # staticmethod / classmethod
        if isinstance(value, property):
            members.extend(f for f in (value.fget, value.fset) if f is not None)
        elif _code_of(value) is not None:
            members.append(value)
    return members


def _user_file(function: Any) -> Any:
    target = getattr(function, "__func__", function)
    name = getattr(target, "__module__", None) or ""
    try:
        file = inspect.getsourcefile(target)
    except (OSError, TypeError):
        return None
    if file is None or _installed(file, name) or not Path(file).is_file():
        return None
    return Path(file).resolve()


def _installed_or_file(module: types.ModuleType) -> Any:
    """The module's source file when it is user code, else None."""
    file = getattr(module, "__file__", None)
    if file is None or _installed(file, module.__name__) or not file.endswith(".py") or not Path(file).is_file():
        return None
    return Path(file).resolve()


def _source_file(cls: type) -> Any:
    try:
        file = inspect.getsourcefile(cls)
    except (OSError, TypeError):
        return None
    return Path(file).resolve() if file and Path(file).is_file() else None


def _class_code(cls: type) -> bytes:
    functions = _functions_of(cls)
    return b"".join(_code_bytes(_code_of(f)) for f in functions) or cls.__qualname__.encode()


def _installed(file: Any, module_name: str) -> bool:
    """Code shipped by Python or an installed package (keyed by its version, not its files)."""
    if module_name.split(".")[0] in ("torch", "builtins", "numpy"):
        return True
    if not file:
        return module_name in sys.builtin_module_names
    resolved = str(Path(file).resolve())
    return any(resolved.startswith(root + "/") for root in _installed_roots())


@lru_cache(maxsize=1)
def _installed_roots() -> Tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    roots |= {p for p in sys.path if p.endswith(("site-packages", "dist-packages"))}
    return tuple(sorted(str(Path(r).resolve()) for r in roots))
