"""Modules tui-flow provides to workflow files written for other tools: `import cloaca`
(Cloacina's Python package) and `import taskinity` resolve to `tui_flow.compat.*`.

The finder sits LAST on `sys.meta_path`, so an installed cloaca or taskinity is always found
first and used. The loader adds it only while it imports a workflow file
(`fresh_import.compat_modules`); `install()` adds it for good, for `python file.py` (the
wheel's `tui_flow_compat.pth` calls it at start-up). This module imports nothing heavy: it
runs at every interpreter start.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.machinery
import sys
from types import ModuleType
from typing import Any

COMPAT_MODULES: dict[str, str] = {
    "cloaca": "tui_flow.compat.cloaca",
    "taskinity": "tui_flow.compat.taskinity",
}


class _CompatLoader(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: Any) -> ModuleType:
        return importlib.import_module(self.target)  # the one module object, shared

    def exec_module(self, module: ModuleType) -> None:
        pass  # (executed when first imported as tui_flow.compat.*)


class CompatFinder(importlib.abc.MetaPathFinder):
    """Finds `cloaca` and `taskinity` when nothing before it on `sys.meta_path` did."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        module = COMPAT_MODULES.get(fullname)
        if module is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _CompatLoader(module))


FINDER = CompatFinder()


def install() -> None:
    """Provide the compat modules to every import of this interpreter (last on the path)."""
    if FINDER not in sys.meta_path:
        sys.meta_path.append(FINDER)


def uninstall() -> None:
    """Undo `install()` (the loader still provides the modules while it imports a file)."""
    with contextlib.suppress(ValueError):
        sys.meta_path.remove(FINDER)
