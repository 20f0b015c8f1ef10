"""`python -m perfmon` is the `perfmon` command."""

from perfmon.entrypoints.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
