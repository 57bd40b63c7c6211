"""What a package index and an installer see: the wheel's metadata and files, the README as
the index shows it, `python -m tui_flow`, and the constraints files against the declared
requirements (constraints-lowest.txt pins every direct requirement at its floor: what the
lowest-versions job of .ci/run installs)."""

from __future__ import annotations

import email
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

import tui_flow

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _import_hook() -> ModuleType:
    sys.path.insert(0, str(ROOT))
    try:
        import hatch_build
    finally:
        sys.path.remove(str(ROOT))
    return hatch_build


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    (path,) = out.glob("tui_flow-*.whl")
    return zipfile.ZipFile(path)


def _metadata(wheel: zipfile.ZipFile) -> email.message.Message:
    (name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    return email.message_from_bytes(wheel.read(name))


def test_the_wheel_is_typed_licensed_and_says_where_it_runs(wheel: zipfile.ZipFile) -> None:
    names = wheel.namelist()
    assert "tui_flow/py.typed" in names  # users' type checkers read the annotations
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    meta = _metadata(wheel)
    assert meta["Version"] == tui_flow.__version__  # the version is written in one place
    assert meta["License-Expression"] == "MIT"
    classifiers = meta.get_all("Classifier")
    assert {"Operating System :: POSIX", "Operating System :: MacOS", "Typing :: Typed"} <= set(
        classifiers
    )
    assert not any("Windows" in c for c in classifiers)
    assert meta["Requires-Python"] == ">=3.11"


def test_the_readme_on_the_index_has_no_relative_links(wheel: zipfile.ZipFile) -> None:
    hook = _import_hook()
    description = _metadata(wheel).get_payload()
    assert "tui-flow" in description and "## Commands" in description
    relative = [
        m[0] for m in hook.LINK.finditer(description) if not m["target"].startswith(hook.ABSOLUTE)
    ]
    assert relative == []
    assert "the engine (`docs/engine.md`)" in description  # a link kept as text and path


def test_relative_links_become_absolute_when_the_addresses_are_set() -> None:
    hook = _import_hook()
    text = (
        "![a run](screenshots/running.png) see [the store](docs/store.md#crash) and "
        "[Textual](https://textual.textualize.io) or [below](#layout)"
    )
    out = hook.absolute_links(text, "https://h/r/blob/main/", "https://raw.h/r/main/")
    assert out == (
        "![a run](https://raw.h/r/main/screenshots/running.png) see "
        "[the store](https://h/r/blob/main/docs/store.md#crash) and "
        "[Textual](https://textual.textualize.io) or [below](#layout)"
    )
    plain = hook.absolute_links(text, None, None)
    assert plain.startswith("*(a run)* see the store (`docs/store.md`) and [Textual](")


def test_python_dash_m_tui_flow_is_the_command_line() -> None:
    p = subprocess.run(
        [sys.executable, "-m", "tui_flow", "--version"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert p.stdout.strip() == f"tui-flow {tui_flow.__version__}"


# -- dependency floors ----------------------------------------------------------------------


def _declared() -> list[Requirement]:
    project = PYPROJECT["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        reqs += [Requirement(r) for r in extra]
    return reqs


def _pins(name: str) -> dict[str, str]:
    pins = {}
    for line in (ROOT / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            ((op, version),) = [(s.operator, s.version) for s in req.specifier]
            assert op == "==", line
            pins[canonicalize_name(req.name)] = version
    return pins


def _floor(req: Requirement) -> str:
    floors = [s.version for s in req.specifier if s.operator in (">=", "==")]
    assert floors, f"{req} declares no lowest version"
    return floors[0]


def test_constraints_lowest_pins_every_direct_requirement_at_its_floor() -> None:
    pins = _pins("constraints-lowest.txt")
    for req in _declared():
        pinned = pins.get(canonicalize_name(req.name))
        assert pinned is not None, f"{req.name} is missing from constraints-lowest.txt"
        assert Version(pinned) == Version(_floor(req)), (
            f"{req}: constraints-lowest.txt pins {pinned}; regenerate it (scripts/constraints.sh)"
        )


def test_constraints_pins_versions_every_requirement_allows() -> None:
    pins = _pins("constraints.txt")
    for req in _declared():
        pinned = pins.get(canonicalize_name(req.name))
        assert pinned is not None, f"{req.name} is missing from constraints.txt"
        assert req.specifier.contains(pinned, prereleases=True), (
            f"{req}: constraints.txt pins {pinned}; regenerate it (scripts/constraints.sh)"
        )


def test_task_is_typed_for_users_type_checkers() -> None:
    """`@task` and `@task(...)` give a `Task` (not Any), and a misspelt option is a type error
    as well as the runtime's clear one: the overloads take no other keyword."""
    from collections.abc import Callable
    from typing import get_overloads, get_type_hints

    from tui_flow.tasks import Task, task

    bare, configured = (get_type_hints(f) for f in get_overloads(task))
    assert bare["return"] is Task
    assert configured["return"] == Callable[[Callable[..., Any]], Task]
    assert "retry_attempts" in configured and "unknown" not in configured


def test_the_wheel_provides_cloaca_to_scripts_through_a_pth_at_its_root(
    wheel: zipfile.ZipFile,
) -> None:
    # at the root of site-packages a .pth runs at start-up: `python file.py` of a cloaca file
    # then finds tui-flow's compat module when no real cloaca is installed (provided.py)
    pth = ROOT / "tui_flow" / "compat" / "tui_flow_compat.pth"
    assert wheel.read("tui_flow_compat.pth").decode() == pth.read_text()
