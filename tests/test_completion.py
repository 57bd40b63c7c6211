"""Tab completion (argcomplete, answered by `main()` when the shell asks) and `--help`: the
app's own options are in `tui-flow --help`, and neither costs the command line's start-up."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def completions(line: str, cwd: Path = ROOT) -> list[str]:
    """What completing at the end of `line` offers, as the shell would be told (a process,
    as the shell starts one: argcomplete writes to descriptors of its own)."""
    out = cwd / ".completions"
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        _ARGCOMPLETE="1",
        COMP_LINE=line,
        COMP_POINT=str(len(line)),
        _ARGCOMPLETE_STDOUT_FILENAME=str(out),
    )
    env.pop("_ARGCOMPLETE_SHELL", None)
    p = subprocess.run(
        [sys.executable, "-m", "tui_flow"], cwd=cwd, env=env, capture_output=True, timeout=60
    )
    assert p.returncode == 0, p.stderr
    try:
        return sorted(w.strip() for w in out.read_text().split("\x0b") if w.strip())
    finally:
        out.unlink()


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("tui-flow r", ["rerun", "resume", "run"]),
        ("tui-flow fl", ["flows/"]),
        ("tui-flow flows/cat", ["flows/catalog.py"]),
        ("tui-flow flows/parallel_tasks.f", ["flows/parallel_tasks.flow"]),
        ("tui-flow flows/catalog.py --w", ["--workflow"]),
        ("tui-flow flows/catalog.py --m", ["--max-concurrency"]),
        ("tui-flow run --ex", ["--executor"]),
        ("tui-flow run flows/catalog.py --executor ", ["dask", "local"]),
        ("tui-flow history --l", ["--limit"]),
        ("tui-flow show ", ["last"]),
        ("tui-flow completion ", ["bash", "fish", "powershell", "tcsh", "zsh"]),
        ("tui-flow schema h", ["history"]),
    ],
)
def test_completion_offers(line: str, expected: list[str], tmp_path: Path) -> None:
    work = tmp_path / "work"
    shutil.copytree(ROOT / "flows", work / "flows")
    assert completions(line, work) == expected


def test_the_first_word_is_a_command_or_a_workflow_file(tmp_path: Path) -> None:
    (tmp_path / "wf.py").touch()
    (tmp_path / "wf.flow").touch()
    (tmp_path / "notes.txt").touch()
    (tmp_path / "sub").mkdir()
    offered = completions("tui-flow ", tmp_path)
    assert {"run", "history", "compare", "sub/", "wf.py", "wf.flow"} <= set(offered)
    assert "notes.txt" not in offered and "--help" not in offered  # options after a '-'
    assert "--version" in completions("tui-flow --v", tmp_path)


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completes_through_the_printed_shell_code(tmp_path: Path) -> None:
    """End to end: what `tui-flow completion bash` prints, loaded in bash, calls tui-flow."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "tui-flow").write_text(f'#!/bin/sh\nexec {sys.executable} -m tui_flow "$@"\n')
    (bin_dir / "tui-flow").chmod(0o755)
    script = """
    eval "$(tui-flow completion bash)"
    COMP_LINE="tui-flow run --exe"; COMP_POINT=${#COMP_LINE}
    COMP_WORDS=(tui-flow run --exe); COMP_CWORD=2
    _python_argcomplete tui-flow --exe run
    printf '%s\\n' "${COMPREPLY[@]}"
    """
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", PYTHONPATH=str(ROOT))
    p = subprocess.run(
        ["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 0, p.stderr
    assert [w.strip() for w in p.stdout.splitlines()] == ["--executor"]


def test_help_shows_the_apps_options_and_the_commands(cli: Any) -> None:
    p = cli("--help")
    assert p.returncode == 0
    usage, _, rest = p.stdout.partition("open the app:")
    assert "tui-flow FILE [options]" in usage and "tui-flow COMMAND [options]" in usage
    for option in ("--workflow NAME", "--max-concurrency N, -j N", "--set KEY=JSON", "--db PATH"):
        assert option in rest, option
    for command in ("run", "history", "schema", "completion"):
        assert f"\n    {command} " in rest, command
    assert "tui-flow.toml" in rest  # where the defaults come from
    assert cli("run", "--help").stdout.startswith("usage: tui-flow run ")


def test_help_version_and_a_normal_start_load_no_completion_or_config() -> None:
    probe = (
        "import contextlib, io, json, sys\n"
        "from tui_flow.cli import main\n"
        "for argv in (['--help'], ['--version'], ['run', '--help']):\n"
        "    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "        main(argv)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    loaded = set(json.loads(out.splitlines()[-1]))
    assert not loaded & {"argcomplete", "pydantic", "pydantic_settings", "platformdirs"}
    # (tui_flow.provided: the compat .pth of an installed tui-flow imports it at every start)
    ours = {m for m in loaded if m.startswith("tui_flow")} - {"tui_flow.provided"}
    assert ours == {"tui_flow", "tui_flow.cli", "tui_flow.cli.common", "tui_flow.errors"} | {
        "tui_flow.status"
    }
