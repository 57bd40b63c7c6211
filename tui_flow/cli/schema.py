"""`tui-flow schema NAME`: the JSON Schema of a `--json` output (see `tui_flow.documents`)."""

from __future__ import annotations

import argparse
import json
import sys

from ..status import EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    from ..documents import json_schema

    sys.stdout.write(json.dumps(json_schema(args.document), indent=2) + "\n")
    return EXIT_OK
