"""`python -m bench`: the HTTP benchmark of bench/run.py (flags: `python -m bench --help`)."""

import sys

from .run import main

sys.exit(main())
