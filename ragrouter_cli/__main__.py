"""`python -m ragrouter_cli ...`: the CLI from this checkout, whichever `ragrouter` script is on PATH."""

import sys

from ragrouter_cli import main

sys.exit(main())
