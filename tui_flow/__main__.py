"""`python -m tui_flow`: the command line, as `tui-flow`."""

import sys

from .cli import main

sys.exit(main())
