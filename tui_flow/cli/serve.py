"""`tui-flow serve FILE`: the app in a browser, for a workshop's attendees without a working
terminal. textual-serve (`pip install "tui-flow[serve]"`) serves a page; each browser that
opens it gets its own app, a `tui-flow FILE` process whose screen travels over a websocket.

On 127.0.0.1 by default: whoever opens the page can run, cancel and re-run the workflow (and
so run its code) on this machine. `--host` serves another address, with a warning saying so.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import shlex
import sys

from ..errors import BadInput, err
from ..status import EXIT_OK

LOOPBACK = "127.0.0.1"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def app_command(args: argparse.Namespace) -> str:
    """The command each browser's app runs: `tui-flow FILE` with the options given here."""
    argv = [sys.executable, "-m", "tui_flow", args.file]
    if args.workflow:
        argv += ["--workflow", args.workflow]
    if args.max_concurrency:
        argv += ["--max-concurrency", str(args.max_concurrency)]
    for key, value in args.set or ():
        argv += ["--set", f"{key}={json.dumps(value)}"]
    if args.db:
        argv += ["--db", args.db]
    if args.no_store:
        argv.append("--no-store")
    if args.executor:
        argv += ["--executor", args.executor]
    if args.scheduler:
        argv += ["--scheduler", args.scheduler]
    if getattr(args, "present", False):
        argv.append("--present")
    return shlex.join(argv)


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        from textual_serve.server import Server
    except ImportError:
        raise BadInput(
            'tui-flow serve needs textual-serve: pip install "tui-flow[serve]"'
        ) from None
    from .common import load_workflow

    load_workflow(args.file, args.workflow)  # a bad file: one message here, not in each browser
    host = args.host
    if not is_loopback(host):
        err(
            f"warning: serving on {host}: anyone who can reach this address and port can run, "
            "cancel and re-run this workflow, which runs its code on this machine"
        )
    server = Server(app_command(args), host=host, port=args.port, title=f"tui-flow {args.file}")
    print(f"tui-flow: serving {args.file} on http://{host}:{args.port} (Ctrl+C stops)")
    sys.stdout.flush()
    server.serve()
    return EXIT_OK
