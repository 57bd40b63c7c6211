"""`python -m tui_flow.cli` (the tests and tools run the command line this way)."""

import sys

from . import main

sys.exit(main())
