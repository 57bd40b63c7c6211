"""Every `--json` output carries its schema version and validates against the JSON Schema
generated from `tui_flow.documents` (published in docs/json-schema/, printed by
`tui-flow schema NAME`): real output of real runs, a failed one, fan-out and a fallback
included."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tui_flow.cli import DOCUMENTS as DOCUMENT_NAMES
from tui_flow.documents import DOCUMENTS, SCHEMA_VERSION, json_schema

ROOT = Path(__file__).resolve().parent.parent
PUBLISHED = ROOT / "docs" / "json-schema"

FLOW = """
from tui_flow import Context, Workflow, task

@task
def split(context: Context) -> None:
    print("splitting")
    context.insert("parts", [1, 2, 3])

@task(dependencies=[split], map_over="parts")
def double(context: Context) -> int:
    return context.item * 2

def cached(context: Context) -> None:
    context.set("price", 1.5)

@task(retry_attempts=1, fallback=cached)
def price(context: Context) -> None:
    raise ConnectionError("no service")

@task(dependencies=[double, price])
def end(context: Context) -> None:
    if context.get("fail", default=False):
        raise ValueError("asked to fail")

workflow = Workflow("docs", tasks=[split, double, price, end], max_concurrency=2)
"""


def valid(name: str, doc: Any) -> Any:
    jsonschema.Draft202012Validator(json_schema(name)).validate(doc)
    assert doc["schema"] == SCHEMA_VERSION
    return doc


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The JSON of each output, from two runs (one completed, one failed) in one database."""
    from tui_flow.cli import dispatch

    folder = tmp_path_factory.mktemp("documents")
    (folder / "flow.py").write_text(FLOW)
    db = str(folder / "runs.db")
    out: dict[str, Any] = {}

    def run(*argv: str) -> Any:
        with pytest.MonkeyPatch.context() as m:
            m.setenv("NO_COLOR", "1")
            m.chdir(folder)
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(io.StringIO()):
                dispatch(list(argv))
        return json.loads(buf.getvalue())

    out["run"] = run("run", "flow.py", "--db", db, "--json")
    out["run failed"] = run("run", "flow.py", "--db", db, "--json", "--set", "fail=true")
    out["show"] = run("show", out["run"]["run_id"], "--db", db, "--json")
    out["show failed"] = run("show", "last", "--db", db, "--json")
    out["history"] = run("history", "--db", db, "--json")
    out["logs"] = run("show", "last", "--db", db, "--logs", "split", "--json")
    out["compare"] = run("compare", "flow.py", "-c", "1,2", "--json")
    return out


@pytest.mark.parametrize(
    ("output", "name"),
    [
        ("run", "run"),
        ("run failed", "run"),
        ("show", "show"),
        ("show failed", "show"),
        ("history", "history"),
        ("logs", "logs"),
        ("compare", "compare"),
    ],
)
def test_each_output_is_valid_against_its_schema(
    outputs: dict[str, Any], output: str, name: str
) -> None:
    valid(name, outputs[output])


def test_the_outputs_hold_what_they_say(outputs: dict[str, Any]) -> None:
    run, failed = outputs["run"], outputs["run failed"]
    assert run["status"] == "completed" and failed["status"] == "failed"
    assert {"double[0]", "double[2]"} <= set(run["tasks"])
    assert run["tasks"]["price"]["via_fallback"] is True
    assert failed["tasks"]["end"]["error"] == "ValueError: asked to fail"
    assert outputs["show"]["tasks"] == run["tasks"]  # the store gives back what the run said
    assert [r["run_id"] for r in outputs["history"]["runs"]] == [failed["run_id"], run["run_id"]]
    logs = outputs["logs"]
    assert (logs["run_id"], logs["task_id"]) == (failed["run_id"], "split")
    assert [ln["text"] for ln in logs["lines"]] == ["splitting"]
    assert [s["concurrency"] for s in outputs["compare"]["settings"]] == [1, 2]


def test_a_key_the_schema_does_not_know_is_refused(outputs: dict[str, Any]) -> None:
    """So a key added to an output without its model fails the tests above."""
    for name, doc in [("run", outputs["run"]), ("compare", outputs["compare"])]:
        with pytest.raises(jsonschema.ValidationError, match="unexpected_key"):
            valid(name, {**doc, "unexpected_key": 1})
    with pytest.raises(jsonschema.ValidationError):
        valid("run", {k: v for k, v in outputs["run"].items() if k != "schema"})


@pytest.mark.parametrize("name", list(DOCUMENTS))
def test_the_published_schema_is_the_generated_one(name: str) -> None:
    path = PUBLISHED / f"{name}.schema.json"
    assert path.exists(), f"missing: tui-flow schema {name} > {path.relative_to(ROOT)}"
    assert json.loads(path.read_text()) == json_schema(name), (
        f"{path.relative_to(ROOT)} is out of date: tui-flow schema {name} > "
        f"{path.relative_to(ROOT)}"
    )
    assert json_schema(name)["properties"]["schema"]["const"] == SCHEMA_VERSION


def test_tui_flow_schema_prints_each_document(cli: Any) -> None:
    assert DOCUMENT_NAMES == tuple(DOCUMENTS)  # the command line names them without loading
    p = cli("schema", "history")
    assert p.returncode == 0 and json.loads(p.stdout) == json_schema("history")
    p = cli("schema", "nope")
    assert p.returncode == 2 and "invalid choice: 'nope'" in p.stderr
