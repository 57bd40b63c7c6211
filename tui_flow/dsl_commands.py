"""`tui-flow export FILE --format flow|mermaid [-o OUT]`: write a workflow out as DSL or Mermaid.

Any workflow file works (`.py` or `.flow`). `--format flow` writes every workflow of the file
(or the one named with `--workflow`); Mermaid draws one graph, so a file with several workflows
needs `--workflow`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .errors import BadInput
from .status import EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from .dsl import dump_flow, to_mermaid
    from .loader import load

    loaded = load(args.file)
    if args.workflow:
        chosen = [loaded.workflow(args.workflow)]
    else:
        chosen = list(loaded.workflows.values())
    if args.format == "mermaid":
        if len(chosen) > 1:
            names = ", ".join(loaded.workflows)
            raise BadInput(
                f"{args.file} holds {len(chosen)} workflows ({names}); a Mermaid graph shows one: "
                "choose it with --workflow NAME"
            )
        text = to_mermaid(chosen[0])
    else:
        text = dump_flow(chosen)
    if args.output and args.output != "-":
        out = Path(args.output)
        try:
            out.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise BadInput(f"cannot write {out}: {exc.strerror or exc}") from None
        print(f"wrote {out} ({args.format})", file=sys.stderr)
    else:
        try:
            sys.stdout.write(text)
        except UnicodeEncodeError:
            raise BadInput(
                f"standard output ({sys.stdout.encoding}) cannot take this workflow's text: "
                "write it to a file with -o OUT (UTF-8)"
            ) from None
    return EXIT_OK


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "export",
        help="write a workflow out as a .flow file or a Mermaid graph",
        description="Write a workflow (from a .py or .flow file) out as DSL text or Mermaid.",
    )
    p.add_argument("file", help="workflow file (.py or .flow)")
    p.add_argument(
        "--format",
        "-f",
        choices=("flow", "mermaid"),
        default="flow",
        help="flow: the text DSL (default); mermaid: a Mermaid flowchart",
    )
    p.add_argument("--workflow", "-w", help="which workflow, when the file holds several")
    p.add_argument("--output", "-o", help="write to this file instead of standard output")
    p.set_defaults(func=cmd_export)
