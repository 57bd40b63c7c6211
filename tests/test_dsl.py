"""The .flow grammar: every construct parses to what it says; every error has line, column and
what was expected."""

from __future__ import annotations

import textwrap

import pytest

from tui_flow.dsl import FlowError, parse, tokenize
from tui_flow.errors import LoadError


def flow(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def edges(f) -> list[tuple[str, str]]:
    return [(e.src, e.dst) for e in f.edges]


def problems(text: str) -> list[tuple[int, int, str]]:
    with pytest.raises(FlowError) as info:
        parse(flow(text), "t.flow")
    return [(p.line, p.col, p.message) for p in info.value.problems]


# -- constructs ----------------------------------------------------------------------------------


def test_the_issue_example_parses_with_descriptions_kept_apart() -> None:
    (f,) = parse(
        flow(
            """
            flow ParallelProcessingDemo:
                description: "Flow for parallel processing demonstration"
                task DataPreparation:
                    description: "Prepare data for processing"
                task ProcessChunk1:
                    description: "Process first chunk of data"
                task AggregateResults
                DataPreparation -> ProcessChunk1
                ProcessChunk1 -> AggregateResults
            """
        )
    )
    assert f.name == "ParallelProcessingDemo"
    assert [(p.name, p.value.value) for p in f.props] == [
        ("description", "Flow for parallel processing demonstration")
    ]
    assert [t.name for t in f.tasks] == ["DataPreparation", "ProcessChunk1", "AggregateResults"]
    assert f.tasks[0].props[0].value.value == "Prepare data for processing"
    assert f.tasks[2].props == []
    assert edges(f) == [
        ("DataPreparation", "ProcessChunk1"),
        ("ProcessChunk1", "AggregateResults"),
    ]


def test_chains_and_lists_expand_to_every_edge() -> None:
    (f,) = parse(
        flow(
            """
            flow F:
                task A
                task B
                task C
                task D
                task E
                A -> B -> C
                A -> [B, C]
                [B, C] -> D
                A -> [B, C] -> [D, E]
            """
        )
    )
    assert edges(f) == [
        ("A", "B"),
        ("B", "C"),
        ("A", "B"),
        ("A", "C"),
        ("B", "D"),
        ("C", "D"),
        ("A", "B"),
        ("A", "C"),
        ("B", "D"),
        ("B", "E"),
        ("C", "D"),
        ("C", "E"),
    ]


def test_a_list_may_span_lines_and_end_with_a_comma() -> None:
    (f,) = parse(
        flow(
            """
            flow F:
                task A
                task B
                task C
                A -> [
                    B,   # the first
                    C,
                ]
                task D
            """
        )
    )
    assert edges(f) == [("A", "B"), ("A", "C")]
    assert [t.name for t in f.tasks] == ["A", "B", "C", "D"]


def test_comments_blank_lines_and_trailing_comments_are_ignored() -> None:
    text = (
        "# a header comment\n"
        "\n"
        "flow F:   # trailing\n"
        "    \n"
        "    # a comment line in the block\n"
        "    task A:  # here too\n"
        "        # and inside a task\n"
        '        description: "has a # inside"  # not this one\n'
        "\n"
        "    task B\n"
        "    A -> B # edge comment\n"
    )
    (f,) = parse(text)
    assert f.tasks[0].props[0].value.value == "has a # inside"
    assert edges(f) == [("A", "B")]


def test_every_property_kind_parses_to_its_value() -> None:
    (f,) = parse(
        flow(
            r"""
            flow F:
                max_concurrency: 3
                task A:
                    description: 'single "quoted" \t text\n'
                    retry_attempts: 3
                    retry_delay_ms: 250.5
                    retry_backoff: exponential
                    retry_max_delay_ms: 1e4
                    retry_jitter: true
                    timeout_s: 10
                    runner: process
                    trigger_rule: "all_done"
                    map_over: partitions
                    fallback: rescue
                    python: my_pkg.my_mod:do_it
                    noop: false
                task B:
                    python: "mod:fn"
                    map_over: "key with spaces"
            """
        )
    )
    values = {p.name: p.value.value for p in f.tasks[0].props}
    assert values == {
        "description": 'single "quoted" \t text\n',
        "retry_attempts": 3,
        "retry_delay_ms": 250.5,
        "retry_backoff": "exponential",
        "retry_max_delay_ms": 1e4,
        "retry_jitter": True,
        "timeout_s": 10,
        "runner": "process",
        "trigger_rule": "all_done",
        "map_over": "partitions",
        "fallback": "rescue",
        "python": "my_pkg.my_mod:do_it",
        "noop": False,
    }
    assert {p.name: p.value.value for p in f.tasks[1].props} == {
        "python": "mod:fn",
        "map_over": "key with spaces",
    }
    assert f.props[0].value.value == 3


def test_several_flows_in_one_file_and_task_names_with_dashes() -> None:
    a, b = parse(
        flow(
            """
            flow first:
                task load-data
                task clean_2
                load-data->clean_2
            flow second:
                task x
            """
        )
    )
    assert (a.name, b.name) == ("first", "second")
    assert edges(a) == [("load-data", "clean_2")]
    assert [t.name for t in b.tasks] == ["x"]


def test_any_name_may_be_quoted_in_flows_tasks_and_edges() -> None:
    (f,) = parse(
        flow(
            r"""
            flow "Données 2024":
                task "load data":
                    retry_attempts: 1
                task 'a -> b: #1'
                task "caf\u00e9 \U0001f600\r"
                task plain
                "load data" -> ['a -> b: #1', "caf\u00e9 \U0001f600\r"] -> plain
            """
        )
    )
    assert f.name == "Données 2024"
    assert [t.name for t in f.tasks] == ["load data", "a -> b: #1", "café 😀\r", "plain"]
    assert edges(f) == [
        ("load data", "a -> b: #1"),
        ("load data", "café 😀\r"),
        ("a -> b: #1", "plain"),
        ("café 😀\r", "plain"),
    ]
    assert f.edges[0].dst_at == (7, 21)  # at the quote


def test_tasks_declare_with_or_without_a_colon_and_windows_line_ends() -> None:
    (f,) = parse("flow F:\r\n    task A:\r\n    task B\r\n    A -> B\r\n")
    assert [t.name for t in f.tasks] == ["A", "B"]
    assert edges(f) == [("A", "B")]


def test_positions_are_recorded_for_later_errors() -> None:
    (f,) = parse(flow("flow F:\n    task A\n    task B\n    A -> [B]\n"))
    assert (f.line, f.col) == (1, 1)
    assert (f.tasks[1].line, f.tasks[1].col) == (3, 10)
    assert f.edges[0].src_at == (4, 5) and f.edges[0].dst_at == (4, 11)


def test_tabs_work_when_used_consistently() -> None:
    (f,) = parse("flow F:\n\ttask A:\n\t\tretry_attempts: 1\n\ttask B\n\tA -> B\n")
    assert f.tasks[0].props[0].value.value == 1


def test_tokens_carry_line_and_column() -> None:
    tokens, errs = tokenize('flow F:\n    task A:\n        description: "x"\n')
    assert errs == []
    string = next(t for t in tokens if t.kind == "STRING")
    assert (string.line, string.col, string.value) == (3, 22, "x")
    assert [t.kind for t in tokens].count("INDENT") == 2
    assert [t.kind for t in tokens].count("DEDENT") == 2


# -- errors --------------------------------------------------------------------------------------

ERRORS = [
    ("", 1, 1, "expected 'flow NAME:'"),
    ("# only a comment\n", 1, 1, "the file holds no flow"),
    ("task A\n", 1, 1, "expected 'flow NAME:', found 'task'"),
    ("flow F\n    task A\n", 1, 7, "expected ':' after 'flow F', found the end of the line"),
    ("flow:\n    task A\n", 1, 5, "expected the flow's name after 'flow', found ':'"),
    ("flow F:\ntask A\n", 2, 1, "expected an indented block with the description, tasks"),
    ("flow F: task A\n", 1, 9, "expected the end of the line after 'flow F:', found 'task'"),
    (
        "flow F:\n    task A:\n        retry_attempt: 2\n",
        3,
        9,
        "unknown task property 'retry_attempt' (did you mean 'retry_attempts'?); expected one of",
    ),
    ("flow F:\n    colour: 3\n", 2, 5, "unknown flow property 'colour'; expected one of: desc"),
    (
        'flow F:\n    task A:\n        retry_attempts: "3"\n',
        3,
        25,
        "expected a whole number as the value of 'retry_attempts', found the string \"3\"",
    ),
    (
        "flow F:\n    task A:\n        retry_attempts: 1.5\n",
        3,
        25,
        "expected a whole number as the value of 'retry_attempts', found the number 1.5",
    ),
    (
        "flow F:\n    task A:\n        retry_jitter: yes\n",
        3,
        23,
        "expected true or false as the value of 'retry_jitter', found 'yes'",
    ),
    (
        "flow F:\n    task A:\n        description: Prepare data\n",
        3,
        22,
        "expected a quoted string (\"...\") as the value of 'description', found 'Prepare'",
    ),
    (
        "flow F:\n    task A:\n        timeout_s: 3 4\n",
        3,
        22,
        "expected the end of the line after the value of 'timeout_s', found the number 4",
    ),
    (
        "flow F:\n    task A:\n        runner:\n",
        3,
        16,
        "expected a name or a quoted string as the value of 'runner', found the end of the line",
    ),
    (
        "flow F:\n    task A:\n        python: mod:\n",
        3,
        21,
        "expected a function name after 'mod:', found the end of the line",
    ),
    (
        'flow F:\n    description: "unclosed\n',
        2,
        18,
        'string is not closed: expected " before the end of the line',
    ),
    ('flow F:\n    description: "a\\qb"\n', 2, 20, "unknown escape '\\q'"),
    ('flow F:\n    description: "a\\u00g9"\n', 2, 20, "'\\u' needs 4 hex digits, like \\u00e9"),
    ('flow F:\n    description: "\\U0011ffff"\n', 2, 19, "'\\U0011ffff' is not a Unicode code"),
    ('flow F:\n    task "A"\n    "A" B\n', 3, 9, "expected '->' (an edge) or ':'"),
    ("flow F:\n    task 1\n", 2, 10, "expected a task name after 'task', found the number 1"),
    ("flow F:\n    task A\n    A -> B @\n", 3, 12, "unexpected character '@'"),
    ("flow F:\n    task A:\n      retry_attempts: 1\n     task B\n", 4, 6, "inconsistent"),
    ("flow F:\n  task A\n \ttask B\n", 3, 3, "inconsistent indentation"),
    ("flow F:\n    task A:\n        task B\n", 3, 9, "tasks are declared at the flow's level"),
    ("flow F:\n    task A:\n        timeout_s: 1\n            x: 1\n", 4, 13, "unexpected indent"),
    ("flow F:\n    task A\n    A -> A\n      task C\n", 4, 7, "unexpected indentation: only a"),
    ("flow F:\n    task A\n    A ->\n", 3, 9, "expected a task name or '['"),
    ("flow F:\n    task A\n    A\n", 3, 6, "expected '->' (an edge) or ':' (a property)"),
    ("flow F:\n    task A\n    task B\n    A B\n", 4, 7, "expected '->' (an edge) or ':'"),
    ("flow F:\n    task A\n    A -> [B C]\n", 3, 13, "expected ',' or ']', found 'C'"),
    ("flow F:\n    task A\n    [] -> A\n", 3, 6, "expected a task name, found ']'"),
    ("flow F:\n    task A\n    A -> [B,\n", 3, 10, "'[' is never closed: expected ']'"),
    ("flow F:\n    task\n", 2, 9, "expected a task name after 'task', found the end of"),
    ("flow F:\n    task A B\n", 2, 12, "expected the end of the line after 'task A' (or ':'"),
    ("flow F:\n    task A:\n        -> B\n", 3, 9, "expected a property of task 'A'"),
    ("flow F:\n    task A:\n        runner process\n", 3, 16, "expected ':' after 'runner'"),
    ("flow F:\n    -> A\n", 2, 5, "expected a task ('task NAME:'), a flow property"),
    ("flow F:\n    task A\n    A -> 3\n", 3, 10, "expected a task name or '['"),
]


@pytest.mark.parametrize(("text", "line", "col", "message"), ERRORS)
def test_syntax_errors_name_line_column_and_what_was_expected(
    text: str, line: int, col: int, message: str
) -> None:
    found = problems(text)
    assert (found[0][0], found[0][1]) == (line, col), found
    assert message in found[0][2]


def test_every_syntax_error_is_reported_not_just_the_first() -> None:
    found = problems(
        """
        flow F:
            task A:
                retries: 2
                timeout_s: 5
            task B
            A B
            A -> B
            task C:
                runner process
        """
    )
    assert [(line, col) for line, col, _ in found] == [(3, 9), (6, 7), (9, 16)]


def test_a_bad_statement_skips_its_own_block_only() -> None:
    found = problems(
        """
        flow F:
            task A B:
                retry_attempts: 2
                bogus: 1
            task C:
                bogus: 2
        """
    )
    # the properties under the broken task line are skipped; C's are still checked
    assert [(line, col) for line, col, _ in found] == [(2, 12), (6, 9)]


def test_flow_error_reads_file_line_column_and_is_a_load_error() -> None:
    with pytest.raises(FlowError) as info:
        parse("flow F\n", "/x/demo.flow")
    err = info.value
    assert isinstance(err, LoadError)
    assert (err.file, err.line, err.column) == ("/x/demo.flow", 1, 7)
    assert str(err) == ("/x/demo.flow:1:7: expected ':' after 'flow F', found the end of the line")
