"""`python -m ragrouter_cli`: the `ragrouter` command without its console script (a scheduled run, a worktree)."""

import sys

from ragrouter_cli import main

sys.exit(main())
