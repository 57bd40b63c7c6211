"""Importing a workflow file fresh: a new module each time, compiled from source.

Each import makes a module with a unique name, after evicting the modules that were imported
from the file's own folder, so an edited helper module is read again too. The file and its
helpers are compiled from source, never from (or into) `__pycache__`: a cached .pyc is keyed on
the file's mtime in whole seconds, so an edit within the same second could otherwise run the
old code. Nothing stays registered: two imports give two independent modules.

`importing_from(folder)` is that discipline for any import (the DSL imports `module:function`
bodies through it); `import_fresh(path)` imports one file; the loader, the DSL and the worker
processes all import through here.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import itertools
import os
import sys
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .errors import LoadError, TuiFlowError, ValidationError
from .provided import COMPAT_MODULES, FINDER

if TYPE_CHECKING:
    from .workflow import Workflow

_counter = itertools.count(1)
_lock = threading.Lock()


class _SourceOnlyLoader(importlib.machinery.SourceFileLoader):
    """Compiles from source every time: no stale .pyc is read, none is written."""

    def path_stats(self, path: str) -> dict[str, float]:
        raise OSError("tui-flow compiles workflow files from source")  # skips the bytecode cache


class _FolderFinder(importlib.abc.MetaPathFinder):
    """While a flow imports, modules found in its folder are loaded from source too."""

    def __init__(self, prefixes: tuple[str, ...]) -> None:
        self.prefixes = prefixes

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if (
            spec is None
            or not isinstance(spec.loader, importlib.machinery.SourceFileLoader)
            or not str(spec.origin or "").startswith(self.prefixes)
        ):
            return None
        spec.loader = _SourceOnlyLoader(spec.loader.name, spec.loader.path)
        return spec


@contextlib.contextmanager
def compat_modules() -> Iterator[None]:
    """Provide the compat modules to what is imported meanwhile (see CompatFinder); a compat
    module the file imported is not left in `sys.modules` under its borrowed name, whether the
    finder was on the path already (nested, or `install()`ed by the .pth) or not."""
    ours = FINDER not in sys.meta_path
    before = {name: name in sys.modules for name in COMPAT_MODULES}
    if ours:
        sys.meta_path.append(FINDER)
    try:
        yield
    finally:
        if ours:
            with contextlib.suppress(ValueError):
                sys.meta_path.remove(FINDER)
        for name, target in COMPAT_MODULES.items():
            if before[name]:
                continue
            if name in sys.modules and sys.modules[name] is sys.modules.get(target):
                del sys.modules[name]


@dataclass
class LoadedFile:
    """What a workflow file holds: one or more workflows, by name, in definition order."""

    path: Path
    workflows: dict[str, Workflow]
    source_hash: str
    watch_paths: list[Path] = field(default_factory=list)

    def workflow(self, name: str | None = None) -> Workflow:
        """The workflow called `name`, or the only/first one when `name` is None."""
        if name is None:
            return next(iter(self.workflows.values()))
        try:
            return self.workflows[name]
        except KeyError:
            known = ", ".join(self.workflows)
            raise LoadError(
                str(self.path), f"no workflow named {name!r} (found: {known})"
            ) from None

    @property
    def names(self) -> list[str]:
        return list(self.workflows)


def source_hash(*paths: Path) -> str:
    h = hashlib.sha256()
    for p in paths:
        try:
            h.update(p.read_bytes())
        except OSError:
            h.update(b"<missing>")
    return h.hexdigest()[:16]


@contextlib.contextmanager
def importing_from(folder: Path) -> Iterator[None]:
    """Import with `folder` first on the path, its modules compiled fresh from source and
    evicted again afterwards (so a same-named module beside another flow is never reused).
    One import at a time, process-wide."""
    with _lock:
        _evict_modules_under(folder)
        importlib.invalidate_caches()  # see files created since the last import
        added = str(folder) not in sys.path
        if added:
            sys.path.insert(0, str(folder))
        finder = _FolderFinder((str(folder) + os.sep,))
        sys.meta_path.insert(0, finder)
        before = set(sys.modules)
        try:
            with compat_modules():
                yield
        finally:
            sys.meta_path.remove(finder)
            _evict_modules_under(folder, only=set(sys.modules) - before)
            if added:
                with contextlib.suppress(ValueError):
                    sys.path.remove(str(folder))


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector waits while a workflow file runs: a generated workflow of
    100,000 tasks makes millions of objects that all live on, and every collection on the
    way would walk them all again (a third of the cost of building each task)."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def import_fresh(p: Path) -> ModuleType:
    """Import `p` as a new module object; turn any failure into a `LoadError`.

    Modules that live in the flow's folder (helpers it imports) are evicted from
    `sys.modules` before the import, so an edited helper is read again, and after it, so a
    helper of the same name beside another flow is never mistaken for this one.
    """
    name = f"tui_flow_user_{_safe(p.stem)}_{next(_counter)}"
    with importing_from(p.parent):
        spec = importlib.util.spec_from_file_location(
            name, p, loader=_SourceOnlyLoader(name, str(p))
        )
        if spec is None or spec.loader is None:
            raise LoadError(str(p), "cannot be imported as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses / pydantic look the module up while it runs
        try:
            with _collector_paused():
                spec.loader.exec_module(module)
        except (ValidationError, LoadError):
            raise
        except SyntaxError as exc:
            raise LoadError(
                exc.filename or str(p), f"syntax error: {exc.msg}", exc.lineno
            ) from None
        except TuiFlowError as exc:
            file, line = _where(exc, p)
            raise LoadError(file, str(exc), line) from None
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            file, line = _where(exc, p)
            kind = "import failed" if isinstance(exc, ImportError) else "error while importing"
            raise LoadError(file, f"{kind}: {type(exc).__name__}: {exc}", line) from None
        finally:
            sys.modules.pop(name, None)
    return module


def _safe(stem: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in stem)


def _evict_modules_under(folder: Path, only: set[str] | None = None) -> None:
    """Drop from `sys.modules` the modules whose file is inside `folder` (or among `only`)."""
    resolved_folder = folder.resolve()
    prefixes = tuple({str(resolved_folder) + os.sep, str(folder) + os.sep})
    names = list(sys.modules) if only is None else [n for n in only if n in sys.modules]
    for mod_name in names:
        mod = sys.modules.get(mod_name)
        file = getattr(mod, "__file__", None)
        if not isinstance(file, str) or not file or "site-packages" in file:
            continue
        if mod_name in ("__main__", "__mp_main__") or (
            mod_name.startswith("tui_flow") and not mod_name.startswith("tui_flow_user_")
        ):
            continue
        if not os.path.isabs(file):
            try:
                file = str(Path(file).resolve())
            except OSError:
                continue
        if file.startswith(prefixes):
            sys.modules.pop(mod_name, None)


def _where(exc: BaseException, p: Path) -> tuple[str, int | None]:
    """The deepest traceback frame inside the flow's folder (else the flow file itself)."""
    folder = str(p.parent) + os.sep
    best: tuple[str, int | None] = (str(p), None)
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename.startswith(folder) or frame.filename == str(p):
            best = (frame.filename, frame.lineno)
    return best
