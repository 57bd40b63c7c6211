"""`logging` in tasks: `--log-level`, the logger's name and `extra=` fields kept beside the
text (the store's columns, `show --logs`, its JSON, the app's log view)."""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path

import pytest
from conftest import CLI
from textual.app import App, ComposeResult

from tui_flow import Context, Workflow, task
from tui_flow.engine import TaskLogs, run
from tui_flow.engine.logs import capture, level_number
from tui_flow.ui.session import log_entry
from tui_flow.ui.widgets.log_view import LogView

FLOW = """
import logging
from tui_flow import Context, Workflow, task

log = logging.getLogger("shop.orders")

@task()
def a(context: Context) -> None:
    log.debug("checking %s", "stock", extra={"order": 42})
    log.info("placed", extra={"order": 7, "tags": ["x"], "when": object})
    logging.warning("from the root")
    print("printed")

@task(runner="process")
def p(context: Context) -> None:
    log.debug("in a process", extra={"k": 1})

workflow = Workflow("logs", [a, p])
"""


@pytest.fixture(autouse=True)
def default_level() -> object:
    yield
    capture.set_level(logging.INFO)  # --log-level is process-wide: leave it as it was


def test_log_level_and_the_source_of_each_line(tmp_path: Path, cli: CLI) -> None:
    flow = tmp_path / "logs.py"
    flow.write_text(FLOW)
    db = tmp_path / "runs.db"
    assert cli("run", str(flow), "--db", str(db), "--plain").returncode == 0
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT task_id, level, text, logger, extra FROM logs").fetchall()
    assert ("a", "debug", "checking stock", "shop.orders", '{"order":42}') not in rows
    assert ("a", "info", "placed", "shop.orders") in [r[:4] for r in rows]
    placed = next(r for r in rows if r[2] == "placed")
    assert json.loads(placed[4]) == {"order": 7, "tags": ["x"], "when": "<class 'object'>"}
    assert ("a", "warning", "from the root", None, None) in rows  # the root logger: no name
    assert ("a", "info", "printed", None, None) in rows
    assert not any(r[0] == "p" for r in rows)  # its only line is DEBUG

    code, out, _ = cli("run", str(flow), "--db", str(db), "--plain", "--log-level", "DEBUG")
    assert code == 0 and "a: shop.orders: checking stock" in out
    code, out, _ = cli("show", "last", "--db", str(db), "--logs", "a", "--plain")
    lines = [ln.split("  ", 1)[1] for ln in out.splitlines()[1:]]
    assert lines[0] == "debug    shop.orders: checking stock  order=42"
    assert lines[1] == 'info     shop.orders: placed  order=7 tags=["x"] when="<class \'object\'>"'
    assert lines[2:] == ["warning  from the root", "info     printed"]
    code, out, _ = cli("show", "last", "--db", str(db), "--logs", "p", "--json")
    (line,) = json.loads(out)["lines"]
    assert (line["text"], line["logger"], line["extra"]) == (
        "in a process",
        "shop.orders",
        {"k": 1},
    )

    code, _, err = cli("run", str(flow), "--db", str(db), "--log-level", "loud")
    assert code == 2 and "--log-level: invalid choice" in err


async def test_the_python_api_takes_a_log_level() -> None:
    log = logging.getLogger("api")

    @task()
    def t(context: Context) -> None:
        log.debug("fine detail")

    seen: list[TaskLogs] = []
    await run(Workflow("w", [t]), subscribers=[seen.append], log_level="debug")
    assert [(ln.text, ln.logger) for e in seen if isinstance(e, TaskLogs) for ln in e.lines] == [
        ("fine detail", "api")
    ]
    with pytest.raises(ValueError, match="a log level is one of debug"):
        level_number("loud")


class LogApp(App[None]):
    def compose(self) -> ComposeResult:
        yield LogView(max_lines=100, id="log")


async def test_the_app_log_view_shows_the_logger_and_extras() -> None:
    app = LogApp()
    async with app.run_test(size=(80, 6)) as pilot:
        view = app.query_one(LogView)
        view.write(
            [
                log_entry("t", "info", "plain line", None, None),
                log_entry("t", "info", "placed", "shop.orders", {"order": 7}),
            ]
        )
        await pilot.pause()
        shot = app.export_screenshot()
        assert "[shop.orders order=7] placed" in view.text() and "order=7" in shot
        assert view.text().splitlines()[0].endswith("│ plain line")
        assert view.search("placed") == 1
