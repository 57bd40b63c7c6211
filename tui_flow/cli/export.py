"""`tui-flow export FILE --format flow|mermaid [-o OUT]`: write a workflow out as DSL or Mermaid.

Any workflow file works (`.py` or `.flow`). `--format flow` writes every workflow of the file
(or the one named with `--workflow`); Mermaid draws one graph, so a file with several workflows
needs `--workflow`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import BadInput
from ..status import EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from ..dsl import dump_flow, to_mermaid
    from ..loader import load

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
