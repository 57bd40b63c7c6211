"""What the app's mixins (`run_actions`, `log_actions`, `reload`, `layout_actions`) use of the
app they are mixed into, for the type checker.

At run time `AppBase` is `object`: the mixins add behaviour to `TuiFlowApp`, which is also a
Textual `App`. For mypy it is a Textual `App` plus the widgets, state and methods that
`TuiFlowApp` (app.py) defines, so a mixin's use of them is checked where it is written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from textual.app import App

    from ..fresh_import import LoadedFile
    from .reload import Diff
    from .session import RunSession
    from .widgets.dag_tree import DagTree
    from .widgets.log_view import LogPanel, LogView
    from .widgets.timeline import Timeline

    class AppBase(App[int]):
        clock: Callable[[], float]
        use_store: bool

        @property
        def tree(self) -> DagTree: ...  # type: ignore[override]  # Textual's DOMNode.tree
        @property
        def logs(self) -> LogPanel: ...
        @property
        def log_view(self) -> LogView: ...
        @property
        def timeline(self) -> Timeline: ...
        @property
        def running(self) -> bool: ...
        def show_session(self, session: RunSession, *, keep_panels: bool = False) -> None: ...
        def report_error(self, where: str, exc: BaseException) -> None: ...
        def _update_header(self, now: float) -> None: ...
        def _tick(self) -> None: ...
        def _apply_loaded(self, loaded: LoadedFile, *, fixed: bool = False) -> Diff: ...

else:
    AppBase = object

__all__ = ["AppBase"]
