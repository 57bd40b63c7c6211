"""Small screens: help, and the prompt for a different concurrency."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from ...status import GLYPHS, STYLES

PANELS = [
    ("Tasks", "every task once, under its latest dependency; 'after:' names the others"),
    ("Details", "the selected task: dependencies, retries, attempts, error and traceback"),
    ("Logs", "all tasks merged with coloured prefixes, or only the selected task (l)"),
    ("Timeline", "a bar per task on one time axis; * marks the critical path"),
    ("Retries", "every retry: task, attempt, error and delay"),
    ("Report", "speedup of what is possible, where the wall time went, errors, slowest"),
]


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark,f1", "close", "Close", id="help.close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 90%; max-width: 96; height: 90%;
        border: round $primary; background: $surface; padding: 0 2;
    }
    """

    def __init__(self, bindings: list[tuple[str, str]]) -> None:
        super().__init__()
        self.keys = bindings

    def compose(self) -> ComposeResult:
        keys = Table.grid(padding=(0, 2))
        keys.add_column(style="bold", no_wrap=True)
        keys.add_column()
        for key, desc in self.keys:
            keys.add_row(key, desc)
        keys.add_row(
            "ctrl+p", "command palette: run with another concurrency, re-run, history, theme"
        )
        panels = Table.grid(padding=(0, 2))
        panels.add_column(style="bold", no_wrap=True)
        panels.add_column()
        for name, desc in PANELS:
            panels.add_row(name, desc)
        statuses = Text()
        for st, g in GLYPHS.items():
            if st == "interrupted":
                continue
            statuses.append(f"{g} {st}", style=STYLES.get(st, ""))
            statuses.append("   ")
        with VerticalScroll() as box:
            box.border_title = "tui-flow help"
            box.border_subtitle = "Esc to close"
            yield Static(Text("Keys", style="bold underline"))
            yield Static(keys)
            yield Static(Text("\nPanels", style="bold underline"))
            yield Static(panels)
            yield Static(Text("\nStatuses", style="bold underline"))
            yield Static(statuses)
            yield Static(
                Text(
                    "\nSaving the workflow file (or a module beside it) reloads it; a file "
                    "that does not load keeps the last good version on screen and shows the "
                    "error until it is fixed. A running run keeps the version it started with.",
                    style="dim",
                )
            )

    def action_close(self) -> None:
        self.dismiss(None)


class ConcurrencyPrompt(ModalScreen[int | None]):
    BINDINGS = [Binding("escape", "close", "Cancel", id="prompt.close")]
    DEFAULT_CSS = """
    ConcurrencyPrompt { align: center middle; }
    ConcurrencyPrompt > Vertical {
        width: 60; height: auto; border: round $primary; background: $surface; padding: 0 1;
    }
    ConcurrencyPrompt #prompt-error { color: $error; height: auto; }
    """

    def __init__(self, current: int) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "Run with a different concurrency"
            yield Static(f"Max tasks at once (now {self.current}), then Enter:")
            yield Input(str(self.current), type="integer", id="prompt-input")
            yield Static("", id="prompt-error")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            value = int(event.value)
        except ValueError:
            value = 0
        if value < 1:
            self.query_one("#prompt-error", Static).update("Give a whole number, 1 or more.")
            return
        self.dismiss(value)

    def action_close(self) -> None:
        self.dismiss(None)
