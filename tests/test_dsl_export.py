"""Writing workflows out: DSL round trips, Mermaid, and `tui-flow export`."""

from __future__ import annotations

import io
import re
import sys
import tempfile
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError as PydanticValidationError

from tui_flow import Workflow, load, run
from tui_flow.cli import dispatch as main
from tui_flow.dsl import dump_flow, to_mermaid
from tui_flow.tasks import TaskSpec, make_task

BODIES = """
def prepare(context):
    context.set("items", [1, 2, 3])

def square(context):
    return context.item * context.item

def total(context):
    context.set("total", sum(context.get("square")))

def renamed_body(context):
    context.set("renamed", True)

def rescue(context):
    context.set("rescued", True)
"""

# the canonical text dump_flow writes: loading it and dumping again must give it back unchanged
CANONICAL = r"""flow Everything:
    description: "A flow with \"every\" option\tand a \\ backslash"
    max_concurrency: 3

    task prepare:
        description: "Make the list"
        retry_attempts: 3
        retry_delay_ms: 250
        retry_backoff: exponential
        retry_max_delay_ms: 2000
        retry_jitter: true
        timeout_s: 1.5
    task gate:
        noop: true
    task square:
        runner: process
        map_over: items
    task renamed:
        trigger_rule: all_done
        python: renamed_body
        fallback: rescue
    task helper:
        python: helpers_mod:helper
    task total:
        map_over: "odd key"

    prepare -> [gate, square]
    gate -> renamed
    square -> [renamed, total]
"""


def write(tmp_path: Path, text: str, name: str = "demo") -> Path:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(BODIES))
    (tmp_path / "helpers_mod.py").write_text("def helper(context):\n    pass\n")
    path = tmp_path / f"{name}.flow"
    path.write_text(text)
    return path


def specs(wf) -> dict[str, dict]:
    return {
        t.id: {**t.spec.model_dump(), "dependencies": set(t.spec.dependencies)}
        for t in wf.tasks.values()
    }


def test_dsl_to_workflow_to_dsl_gives_the_same_text(tmp_path: Path) -> None:
    wf = load(write(tmp_path, CANONICAL)).workflow()
    assert dump_flow(wf) == CANONICAL


def test_a_free_form_flow_round_trips_to_the_same_workflow(tmp_path: Path) -> None:
    text = """
    # comments, chains and lists are normalised away; the graph and options stay
    flow Loose:
        task total:
            map_over: squares
        task prepare
        task square:  # trailing comment
            map_over: items
            retry_attempts: 2
        prepare -> square -> total
        prepare -> total
    """
    first = load(write(tmp_path, textwrap.dedent(text))).workflow()
    dumped = dump_flow(first)
    second = load(write(tmp_path, dumped, name="demo")).workflow()
    assert specs(second) == specs(first)
    assert second.name == first.name and second.order == first.order
    assert dump_flow(second) == dumped  # stable after one pass


async def test_a_python_workflow_exported_beside_its_file_loads_and_runs_the_same(
    tmp_path: Path,
) -> None:
    py = tmp_path / "pipeline.py"
    py.write_text(
        textwrap.dedent(
            """
            from tui_flow import task, Workflow

            @task
            def prepare(context):
                context.set("items", [2, 3])

            @task(id="square", dependencies=[prepare], map_over="items", retry_attempts=1)
            def square_one(context):
                return context.item ** 2

            def plan_b(context):
                context.set("plan", "b")

            @task(dependencies=[square_one], trigger_rule="all_done", fallback=plan_b)
            def finish(context):
                '''Add it up.'''
                context.set("sum", sum(context.get("square")))

            workflow = Workflow("pipeline", [prepare, square_one, finish], max_concurrency=2)
            """
        )
    )
    original = load(py).workflow()
    text = dump_flow(original)
    assert "    task square:\n        retry_attempts: 1\n        map_over: items\n" in text
    assert "        python: square_one\n" in text  # a function of pipeline.py, another name
    assert "        fallback: plan_b\n" in text
    assert '        description: "Add it up."\n' in text
    flow = tmp_path / "pipeline.flow"
    flow.write_text(text)
    exported = load(flow).workflow()
    assert specs(exported) == specs(original)
    assert exported.max_concurrency == 2
    result = await run(exported)
    assert result.status == "completed"
    assert result.context["sum"] == 13


def test_dump_several_workflows(tmp_path: Path) -> None:
    text = "flow A:\n    task prepare\nflow B:\n    task total\n"
    loaded = load(write(tmp_path, text))
    both = dump_flow(loaded.workflows.values())
    assert both == "flow A:\n\n    task prepare\n\nflow B:\n\n    task total\n"
    assert load(write(tmp_path, both, name="again")).names == ["A", "B"]


def test_mermaid_draws_every_task_and_dependency(tmp_path: Path) -> None:
    wf = load(write(tmp_path, CANONICAL)).workflow()
    text = to_mermaid(wf)
    lines = text.splitlines()
    assert lines[:4] == ["---", "title: Everything", "---", "flowchart TD"]
    assert '    prepare["prepare"]' in lines
    assert '    gate(["gate"])' in lines  # a noop task
    assert '    square[["square<br/><small>for each in items</small>"]]' in lines
    assert "    prepare --> gate" in lines
    assert "    prepare --> square" in lines
    assert "    gate -.->|all_done| renamed" in lines  # another trigger rule: dotted, labelled
    assert "    square -.->|all_done| renamed" in lines
    assert "    square --> total" in lines
    edges = [ln for ln in lines if "-->" in ln or "-.->" in ln]
    assert len(edges) == sum(len(t.spec.dependencies) for t in wf)


def test_mermaid_ids_are_safe_and_labels_escaped(tmp_path: Path) -> None:
    text = (
        "flow F:\n"
        "    task load-data:\n        noop: true\n"
        "    task load_data:\n        noop: true\n"
        "    task end:\n        noop: true\n"
        '    task q:\n        noop: true\n        map_over: "a<b>\\"c"\n'
        "    load-data -> load_data -> end -> q\n"
    )
    mermaid = to_mermaid(load(write(tmp_path, text)).workflow())
    assert '    load_data(["load-data"])' in mermaid
    assert '    load_data_2(["load_data"])' in mermaid
    assert '    end_(["end"])' in mermaid  # 'end' is a Mermaid keyword
    assert "for each in a#lt;b#gt;#quot;c" in mermaid
    assert "    load_data --> load_data_2\n    load_data_2 --> end_\n" in mermaid


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Done]:
    """`tui-flow ARGS` in process (no subprocess: quick)."""

    def run(*args: str) -> Done:
        capsys.readouterr()
        code = main(list(args))
        return Done(code, *capsys.readouterr())

    return run


def test_export_command(tmp_path: Path, cli: Callable[..., Done]) -> None:
    path = write(tmp_path, CANONICAL)
    done = cli("export", str(path))
    assert done.returncode == 0, done.stderr
    assert done.stdout == CANONICAL

    out = tmp_path / "graph.mmd"
    done = cli("export", str(path), "--format", "mermaid", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert out.read_text().startswith("---\ntitle: Everything\n---\nflowchart TD\n")
    assert f"wrote {out}" in done.stderr

    two = write(tmp_path, "flow A:\n    task prepare\nflow B:\n    task total\n", name="two")
    done = cli("export", str(two), "-f", "mermaid")
    assert done.returncode == 2
    assert "holds 2 workflows (A, B)" in done.stderr and "--workflow" in done.stderr
    done = cli("export", str(two), "-f", "mermaid", "-w", "B")
    assert done.returncode == 0 and "title: B" in done.stdout
    done = cli("export", str(two), "-w", "B")
    assert done.stdout == "flow B:\n\n    task total\n"

    done = cli("export", str(tmp_path / "nope.flow"))
    assert done.returncode == 2 and "no such file" in done.stderr


# -- any id a .py flow accepts survives export ---------------------------------------------------

# pieces the DSL and Mermaid treat specially, mixed into random unicode text
TRICKY = [
    "->",
    ":",
    "#",
    '"',
    "'",
    "\\",
    " ",
    ",",
    "`",
    "task",
    "flow",
    "true",
    "end",
    "é",
    "数据",
    "🚀",
    "\\n",
    "\\u00e9",
    "#quot;",
    "<b>",
    "\x0b",
    "\x0c",
    "\x85",
    "\u2028",
    "\ufeff",
    "\x00",
    "\ud800",
]
TASK_OPTIONS = {
    "retry_attempts": st.integers(0, 10**20),
    "retry_delay_ms": st.floats(0, allow_infinity=False),
    "retry_backoff": st.sampled_from(["fixed", "linear", "exponential"]),
    "retry_max_delay_ms": st.none() | st.floats(0, allow_infinity=False),
    "retry_jitter": st.booleans(),
    "timeout_s": st.none() | st.floats(0, exclude_min=True, allow_infinity=False),
    "trigger_rule": st.sampled_from(["all_success", "all_done", "one_failed", "none_failed"]),
    "runner": st.sampled_from([None, "thread", "process"]),
}


def _text(chars: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    piece = st.sampled_from(TRICKY) | st.text(chars, min_size=1, max_size=3)
    return st.lists(piece, min_size=1, max_size=4).map("".join)


def _valid_id(s: str) -> bool:
    try:
        TaskSpec(id=s)
    except PydanticValidationError:
        return False
    return True


task_ids = _text(st.characters(exclude_characters="\n\r\t[]")).map(str.strip).filter(_valid_id)
any_text = _text(st.characters())


@st.composite
def workflows(draw: st.DrawFn) -> dict:
    """A random small DAG: ids, dependencies on earlier tasks, options; and the flow's own."""
    ids = draw(st.lists(task_ids, min_size=1, max_size=5, unique=True))
    tasks = []
    for i, tid in enumerate(ids):
        deps = [d for d in ids[:i] if draw(st.booleans())]
        options = {k: draw(v) for k, v in TASK_OPTIONS.items() if draw(st.booleans())}
        if draw(st.booleans()):
            options["description"] = draw(st.just("") | any_text)
        if draw(st.booleans()):
            options["map_over"] = draw(task_ids | any_text.filter(str.strip))
        tasks.append((tid, deps, options, draw(st.booleans())))  # last: with a fallback
    return {
        "name": draw(any_text.filter(str.strip)),
        "description": draw(st.none() | st.just("") | any_text),
        "max_concurrency": draw(st.integers(1, 10**6)),
        "tasks": tasks,
    }


def python_source(flow: dict) -> str:
    """The workflow as a `.py` file: body `t<i>` for task i, `fb` as every fallback."""
    out = ["from tui_flow import Workflow, task", "", "def fb(context):", "    pass", ""]
    for i, (tid, deps, options, fallback) in enumerate(flow["tasks"]):
        args = [f"id={tid!r}", f"dependencies={deps!r}"]
        args += [f"{k}={v!r}" for k, v in options.items()]
        args += ["fallback=fb"] if fallback else []
        out += [f"@task({', '.join(args)})", f"def t{i}(context):", "    pass", ""]
    bodies = ", ".join(f"t{i}" for i in range(len(flow["tasks"])))
    out.append(
        f"workflow = Workflow({flow['name']!r}, [{bodies}], "
        f"max_concurrency={flow['max_concurrency']!r}, description={flow['description']!r})"
    )
    return "\n".join(out) + "\n"


def everything(wf) -> dict:
    return {
        "name": wf.name,
        "description": wf.description,
        "max_concurrency": wf.max_concurrency,
        "order": list(wf.tasks),
        "specs": specs(wf),
        "bodies": {t.id: (t.fn.__name__, getattr(t.fallback_fn, "__name__", None)) for t in wf},
    }


KEYWORDS = {  # names the DSL reads as its own words, chained so each starts an edge line
    "name": "flow",
    "description": None,
    "max_concurrency": 4,
    "tasks": [
        ("flow", [], {}, False),
        ("task", ["flow"], {"map_over": "task"}, False),
        ("true", ["task"], {}, False),
        ("é", ["true"], {}, False),
    ],
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flow=workflows())
@example(flow=KEYWORDS)
def test_export_round_trips_any_workflow_a_python_file_accepts(flow: dict) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        py = Path(tmp) / "pipeline.py"
        py.write_text(python_source(flow), encoding="utf-8")
        original = load(py).workflow()
        out = Path(tmp) / "pipeline.flow"  # beside the .py: the bodies are found there
        assert main(["export", str(py), "-o", str(out)]) == 0
        text = out.read_text(encoding="utf-8")
        lines = text.splitlines()
        assert len(lines) == text.count("\n")  # no line break but "\n" (\u2028, \x85...)
        assert all(line.isprintable() for line in lines)
        exported = load(out).workflow()
        assert everything(exported) == everything(original)
        assert dump_flow(exported) == text  # and the export of the export is the same text


MERMAID_NODE = re.compile(r'    ([A-Za-z_]\w*)(\["|\(\["|\[\[")(.*?)("\]|"\]\)|"\]\])')


def mermaid_label(text: str) -> str:
    named = {"quot": '"', "amp": "&", "lt": "<", "gt": ">"}
    return re.sub(r"#(\w+);", lambda m: named.get(m[1]) or chr(int(m[1])), text.split("<br/>")[0])


@settings(max_examples=100, deadline=None)
@given(flow=workflows())
def test_mermaid_has_one_node_line_per_task_with_its_label(flow: dict) -> None:
    made = {}
    for tid, deps, options, _ in flow["tasks"]:
        made[tid] = make_task(lambda context: None, id=tid, dependencies=deps, **options)
    wf = Workflow(flow["name"], list(made.values()))
    lines = to_mermaid(wf).splitlines()
    assert lines[3] == "flowchart TD"
    nodes = [m for ln in lines[4:] if (m := MERMAID_NODE.fullmatch(ln))]
    assert [mermaid_label(m[3]) for m in nodes] == list(wf.tasks)
    for m in nodes:
        assert m[1].lower() not in ("end", "graph", "subgraph", "style", "class", "click")
        assert '"' not in m[3] and all(c.isprintable() for c in m[3])
    node_ids = [m[1] for m in nodes]
    assert len(set(node_ids)) == len(node_ids)
    edges = [ln.split() for ln in lines[4 + len(nodes) :]]
    assert all(e[0] in node_ids and e[-1] in node_ids for e in edges)
    assert len(edges) == sum(len(t.spec.dependencies) for t in wf)


@pytest.mark.parametrize("name", ["Everything", "a: b", "true", "#x", "é\u2028\"'", "\ud800 "])
def test_mermaid_title_is_yaml_that_reads_back_as_the_name(name: str) -> None:
    yaml = pytest.importorskip("yaml")
    wf = Workflow(name, [make_task(lambda context: None, id="a")])
    front = to_mermaid(wf).split("---\n")[1]
    assert yaml.safe_load(front) == {"title": name}


def test_export_to_an_ascii_stdout_says_to_use_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, 'flow "données":\n    task "é":\n        noop: true\n')
    ascii_out = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    monkeypatch.setattr(sys, "stdout", ascii_out)
    assert main(["export", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == (
        "tui-flow: standard output (ascii) cannot take this workflow's text: write it to a "
        "file with -o OUT (UTF-8)\n"
    )
    assert main(["export", str(path), "-o", str(tmp_path / "out.flow")]) == 0
    assert load(tmp_path / "out.flow").workflow().name == "données"
