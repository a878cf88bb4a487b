"""`python -m nspawn_lab ARGS` (what test/lab/labctl runs)."""

import sys

from .cli import main

sys.exit(main(sys.argv[1:]))
