"""Signals end a headless run cleanly and within bounds, and the run stays recorded, whatever
its bodies do (block the loop, never return, swallow exceptions). Real processes: signals and
process exit are the point. Bodies tell the test where they are through a pipe (no polling)."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

BODIES = {
    # an async body computing without ever awaiting: it holds the loop
    "async-cpu": """
        @task
        async def body(ctx):
            tell("started")
            while True:
                pass
        """,
    # an async body calling a blocking function: it holds the loop too
    "async-sleep": """
        import time

        @task
        async def body(ctx):
            tell("started")
            time.sleep(600)  # the workload: a body that blocks (ok)
        """,
    # a thread body that never returns: the loop is free, the thread cannot be stopped
    "thread-stuck": """
        import threading

        @task
        def body(ctx):
            tell("started")
            threading.Event().wait()
        """,
}

SWALLOWS = """
    import time

    @task
    async def body(ctx):
        while True:
            try:
                tell("ready")
                time.sleep(600)  # the workload (ok)
            except BaseException:
                tell("caught")
    """


def flow(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "flow.py"
    head = (
        "import os\n"
        "from tui_flow import task\n\n"
        "def tell(what):\n"
        "    os.write(int(os.environ['TELL_FD']), (what + '\\n').encode())\n"
    )
    path.write_text(head + textwrap.dedent(body))
    return path


class Run:
    """`tui-flow run FILE` in a process of its own; `wait_for(word)` reads the bodies' pipe."""

    def __init__(self, tmp_path: Path, body: str, *args: str, prefix: tuple[str, ...] = ()):
        self.db = tmp_path / "runs.db"
        self.read_fd, write_fd = os.pipe()
        env = dict(os.environ, PYTHONPATH=str(ROOT), CI="true", TELL_FD=str(write_fd))
        command = [sys.executable, "-m", "tui_flow.cli", "run", str(flow(tmp_path, body))]
        self.proc = subprocess.Popen(
            [*prefix, *command, "--db", str(self.db), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            pass_fds=(write_fd,),
            cwd=tmp_path,
        )
        os.close(write_fd)
        self.heard = b""

    def wait_for(self, word: str) -> None:
        while word.encode() + b"\n" not in self.heard:
            chunk = os.read(self.read_fd, 1024)  # blocks until a body writes (or all exit)
            assert chunk, f"the run ended before a body said {word!r}"
            self.heard += chunk
        self.heard = self.heard.replace(word.encode() + b"\n", b"", 1)

    def finish(self, limit: float = 20) -> tuple[int, str, float]:
        """Wait for the process to end: its exit code, stderr and how long it took. What the
        bodies wrote and the test did not wait for is left in `heard`."""
        began = time.monotonic()
        _, err = self.proc.communicate(timeout=limit)
        took = time.monotonic() - began
        while chunk := os.read(self.read_fd, 1024):  # every writer has ended: no wait
            self.heard += chunk
        os.close(self.read_fd)
        return self.proc.returncode, err.decode(), took

    def status(self) -> tuple[str, str | None]:
        with sqlite3.connect(self.db) as conn:
            [(status, error)] = conn.execute("SELECT status, error FROM runs").fetchall()
        return status, error


CASES = [(kind, signal.SIGINT, 130) for kind in BODIES] + [
    ("async-cpu", signal.SIGTERM, 143),
    ("thread-stuck", signal.SIGTERM, 143),
    ("async-sleep", signal.SIGHUP, 129),
]


@pytest.mark.parametrize(("kind", "sig", "code"), CASES)
def test_a_signal_cancels_the_run_cleanly_whatever_the_body_does(tmp_path, kind, sig, code):
    run = Run(tmp_path, BODIES[kind])
    run.wait_for("started")
    run.proc.send_signal(sig)
    rc, err, took = run.finish()
    assert rc == code, err
    assert took < 2.0
    assert run.status() == ("cancelled", None)
    assert "Traceback" not in err


@pytest.mark.parametrize("signals", [("SIGINT", "SIGINT"), ("SIGTERM",)])
def test_a_body_that_will_not_stop_ends_the_process_within_two_seconds(tmp_path, signals):
    run = Run(tmp_path, SWALLOWS)
    for name in signals:
        run.wait_for("ready")
        run.proc.send_signal(getattr(signal, name))
        run.wait_for("caught")  # the body swallowed what the handler raised in it
    rc, err, took = run.finish()
    assert rc == (130 if signals[0] == "SIGINT" else 143)
    assert took < 2.0
    status, error = run.status()
    assert status == "interrupted"
    assert error == f"ended by {signals[-1]}: the run did not stop within 1.5 s"
    assert "tui-flow resume" in err and "Traceback" not in err


def test_the_run_is_on_disk_before_a_body_blocks_the_loop(tmp_path):
    run = Run(tmp_path, BODIES["async-cpu"])
    run.wait_for("started")
    run.proc.kill()  # SIGKILL: nothing of the process's own runs after this
    run.finish()
    with sqlite3.connect(run.db) as conn:
        rows = conn.execute("SELECT status FROM runs").fetchall()
    assert rows == [("running",)]  # the next process to open the store marks it interrupted


def _without_write_permission() -> tuple[str, ...]:
    """A command prefix under which this process's permissions apply to its own files."""
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: file permissions do not apply")
    return (setpriv, "--bounding-set", "-dac_override,-dac_read_search")


@pytest.mark.parametrize("where", ["read-only file", "read-only folder"])
def test_a_store_that_cannot_be_written_stops_the_run_before_any_body(tmp_path, where):
    prefix = _without_write_permission()
    body = "@task\nasync def body(ctx):\n    tell('ran')\n"
    if where == "read-only file":
        made = Run(tmp_path, body)  # a database written once, then made read-only
        made.wait_for("ran")
        assert made.finish()[0] == 0
        for p in tmp_path.glob("runs.db*"):
            p.chmod(0o444)
        db = made.db
    else:
        (tmp_path / "ro").mkdir(mode=0o555)
        db = tmp_path / "ro" / "runs.db"
    run = Run(tmp_path, body, "--db", str(db), prefix=prefix)
    rc, err, _ = run.finish()
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert ("read-only" if where == "read-only file" else "not writable") in err
    assert run.heard == b""  # no body ran


FLOODS = {
    "thread": "@task\ndef body(ctx):\n    while True:\n        print('flood')\n",
    "async": (
        "import asyncio\n\n@task\nasync def body(ctx):\n    while True:\n"
        "        print('flood')\n        await asyncio.sleep(0)\n"  # the workload (ok)
    ),
}


@pytest.mark.parametrize("kind", list(FLOODS))
def test_a_closed_stdout_ends_the_run_cleanly(tmp_path, kind):
    """`tui-flow run FILE | head`: the reader goes away; the run ends, recorded, no trace."""
    run = Run(tmp_path, FLOODS[kind])
    assert run.proc.stdout is not None
    for _ in range(3):
        assert run.proc.stdout.readline()  # what `head -3` reads
    run.proc.stdout.close()  # ... before it goes away
    rc, err, took = run.finish()
    assert rc == 141, err  # as a process ended by SIGPIPE
    assert took < 10
    assert err == ""  # no traceback, no warning
    assert run.status() == ("cancelled", None)


def test_the_watchdog_never_pokes_after_its_handler_is_gone() -> None:
    """The loop watchdog pokes a blocked loop with SIGUSR2, whose default action ends the
    process: stopping it (a run's end) while it pokes must never let a poke land after its
    handler is put back. (A 100,000-task run died of it.) Many starts and stops under a
    blocked loop, with the GIL handed over as often as Python allows, to open the window."""
    code = textwrap.dedent(
        """
        import asyncio, sys, time
        from tui_flow.engine import watchdog as w

        sys.setswitchinterval(1e-6)
        w.BLOCKED_S, w.POKE_EVERY_S, w.BEAT_S = 0.002, 0.0002, 0.001

        async def main():
            loop = asyncio.get_running_loop()
            for _ in range(400):
                dog = w.watchdog_for(loop, lambda frame: None)
                dog.add("run")
                time.sleep(0.004)  # the workload: the loop held, so the watchdog pokes
                dog.remove("run")
            print("survived")

        asyncio.run(main())
        """
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0 and done.stdout.strip() == "survived", done
