"""Load workflow files: `.py` modules (and `.flow` files through the DSL).

Each call imports the file as a fresh module with a unique name, after evicting modules that
were imported from the file's own folder, so an edited helper module is read again too.
The flow and its helpers are compiled from source, never from (or into) `__pycache__`: a
cached .pyc is keyed on the file's mtime in whole seconds, so an edit within the same second
could otherwise run the old code. Nothing stays registered: two loads give two independent
sets of workflows.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import itertools
import os
import sys
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from .errors import LoadError, TuiFlowError, ValidationError
from .task import Task
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


def load(path: str | os.PathLike[str]) -> LoadedFile:
    """Load the workflows of a `.py` (or `.flow`) file.

    Raises `LoadError` (file, line, short reason) when the file cannot be imported and
    `ValidationError` (every problem, each with file and line) when a workflow is invalid.
    """
    p = Path(path).resolve()
    if not p.exists():
        raise LoadError(str(path), "no such file")
    if p.is_dir():
        raise LoadError(str(path), "is a folder; give a workflow file (.py or .flow)")
    if p.suffix == ".flow":
        from .dsl import load_flow  # the DSL builds on this module

        return load_flow(p)
    if p.suffix != ".py":
        raise LoadError(str(path), f"unsupported file type {p.suffix!r}; expected .py or .flow")
    module = import_fresh(p)
    workflows = workflows_of(module, p)
    return LoadedFile(p, workflows, source_hash(p), [p])


def import_fresh(p: Path) -> ModuleType:
    """Import `p` as a new module object; turn any failure into a `LoadError`.

    Modules that live in the flow's folder (helpers it imports) are evicted from
    `sys.modules` before the import, so an edited helper is read again, and after it, so a
    helper of the same name beside another flow is never mistaken for this one.
    """
    folder = str(p.parent)
    name = f"tui_flow_user_{_safe(p.stem)}_{next(_counter)}"
    with _lock:
        _evict_modules_under(p.parent)
        importlib.invalidate_caches()  # see files created since the last import
        spec = importlib.util.spec_from_file_location(
            name, p, loader=_SourceOnlyLoader(name, str(p))
        )
        if spec is None or spec.loader is None:
            raise LoadError(str(p), "cannot be imported as a Python module")
        module = importlib.util.module_from_spec(spec)
        added = folder not in sys.path
        if added:
            sys.path.insert(0, folder)
        finder = _FolderFinder((folder + os.sep,))
        sys.meta_path.insert(0, finder)
        before = set(sys.modules)
        sys.modules[name] = module  # dataclasses / pydantic look the module up while it runs
        try:
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
            sys.meta_path.remove(finder)
            sys.modules.pop(name, None)
            _evict_modules_under(p.parent, only=set(sys.modules) - before)
            if added:
                try:
                    sys.path.remove(folder)
                except ValueError:
                    pass
    return module


def workflows_of(module: ModuleType, p: Path) -> dict[str, Workflow]:
    """The module's Workflow objects, or one workflow of all its tasks named after the file."""
    found: dict[str, Workflow] = {}
    for value in vars(module).values():
        if isinstance(value, Workflow) and not any(value is w for w in found.values()):
            if value.name in found:
                raise LoadError(
                    str(p),
                    f"two workflows are named {value.name!r}; names must be unique",
                    value.line,
                )
            found[value.name] = value
    if not found:
        tasks = [v for v in vars(module).values() if isinstance(v, Task)]
        tasks = list({id(t): t for t in tasks}.values())
        if not tasks:
            raise LoadError(str(p), "no tasks found: mark functions with @task")
        tasks.sort(key=lambda t: (t.source_file != str(p), t.source_line or 0))
        wf = Workflow(p.stem, tasks)
        wf.line = None
        found[wf.name] = wf
    digest = source_hash(p)
    for wf in found.values():
        wf.file = str(p)
        wf.source_hash = digest
    return found


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
