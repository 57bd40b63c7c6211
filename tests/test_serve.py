"""`tui-flow serve FILE`: the app in a browser (textual-serve). The end-to-end test drives a
real headless Chromium (Debian's `chromium`, through playwright pointed at it: nothing is
downloaded at run time): the page connects, the task tree arrives, `r` typed into the page
runs the workflow and its report arrives. What the browser receives is the app's terminal
output over the page's websocket; the test reads it there (xterm.js draws on a canvas).

Skipped, saying why, when chromium, playwright or textual-serve is missing, except in CI
(`CI=true`), where it must run: `.ci/run` installs what it needs.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tui_flow.cli import dispatch
from tui_flow.cli.serve import app_command, is_loopback

FLOW = """
from tui_flow import task, Context

@task
async def extract_rows(context: Context) -> None:
    context.log("extracted")

@task(dependencies=[extract_rows])
async def publish_rows(context: Context) -> None:
    context.log("published")
"""

ANSI = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07]*\x07|[@-Z\\-_])")


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def missing() -> str | None:
    """What the browser test lacks, if anything."""
    if importlib.util.find_spec("textual_serve") is None:
        return 'textual-serve is not installed (pip install -e ".[test]")'
    if importlib.util.find_spec("playwright") is None:
        return 'playwright is not installed (pip install -e ".[test]")'
    if chromium() is None:
        return "no chromium on PATH (Debian: apt-get install chromium; .ci/run does it)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], limit: float = 30.0) -> None:
    """Until the server accepts connections (or it died: then say what it printed)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            raise AssertionError(f"tui-flow serve exited ({proc.returncode}):\n{out}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)  # allowed: polling the port of another process (no event to wait on)
    raise AssertionError(f"tui-flow serve did not listen on {port} within {limit} s")


def test_the_app_in_a_real_browser(tmp_path: Path) -> None:
    why = missing()
    if why is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the browser test must run in CI: {why}")
        pytest.skip(why)
    from playwright.sync_api import sync_playwright

    flow = tmp_path / "flow.py"
    flow.write_text(textwrap.dedent(FLOW))
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui_flow", "serve", str(flow), "--port", str(port), "--no-store"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, proc)
        received: list[str] = []

        def screen_has(*words: str):  # a frame predicate: the screen text so far has `words`
            def check(payload: bytes | str) -> bool:
                data = payload if isinstance(payload, str) else payload.decode(errors="replace")
                received.append(ANSI.sub("", data))
                seen = "".join(received)
                return all(w in seen for w in words)

            return check

        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=chromium(), headless=True, args=["--no-sandbox"]
            )
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.route("**/fonts.googleapis.com/**", lambda route: route.abort())
                with page.expect_websocket() as ws_info:
                    page.goto(f"http://127.0.0.1:{port}/", wait_until="domcontentloaded")
                ws = ws_info.value
                # the tree: every task of the file, drawn in the page
                ws.wait_for_event(
                    "framereceived",
                    predicate=screen_has("extract_rows", "publish_rows"),
                    timeout=60_000,
                )
                page.wait_for_selector("body.-first-byte", timeout=30_000)
                page.click(".textual-terminal")
                page.keyboard.press("r")
                # the run ends, the Report panel opens by itself: its figures arrive
                ws.wait_for_event(
                    "framereceived",
                    predicate=screen_has("slot utilisation", "possible", "wall time went to"),
                    timeout=60_000,
                )
            finally:
                browser.close()
        seen = "".join(received)
        assert "completed" in seen
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_serve_builds_the_apps_command_and_warns_off_loopback(tmp_path: Path, capsys) -> None:
    import argparse

    args = argparse.Namespace(
        file="my flow.py",
        workflow="w",
        max_concurrency=3,
        set=[("n", 5)],
        db=None,
        no_store=True,
        executor=None,
        scheduler=None,
        present=True,
    )
    command = app_command(args)
    assert command.startswith(f"{sys.executable} -m tui_flow 'my flow.py' --workflow w")
    assert command.endswith("--max-concurrency 3 --set n=5 --no-store --present")
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.20")
    # a bad file: one clear message and exit 2, before anything listens
    (tmp_path / "bad.py").write_text("this is not python(\n")
    assert dispatch(["serve", str(tmp_path / "bad.py")]) == 2
    assert "bad.py" in capsys.readouterr().err


def test_serve_warns_when_it_listens_beyond_this_machine(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("textual_serve")
    import textual_serve.server

    served: list[tuple[str, str, int]] = []

    class FakeServer:
        def __init__(self, command: str, host: str, port: int, title: str) -> None:
            served.append((command, host, port))

        def serve(self) -> None:
            pass

    monkeypatch.setattr(textual_serve.server, "Server", FakeServer)
    flow = tmp_path / "flow.py"
    flow.write_text(textwrap.dedent(FLOW))
    assert dispatch(["serve", str(flow)]) == 0
    assert served[-1][1:] == ("127.0.0.1", 8000) and "warning" not in capsys.readouterr().err
    assert dispatch(["serve", str(flow), "--host", "0.0.0.0", "--port", "9001"]) == 0
    assert served[-1][1:] == ("0.0.0.0", 9001)
    assert "warning: serving on 0.0.0.0: anyone who can reach" in capsys.readouterr().err
