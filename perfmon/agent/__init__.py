"""`perfmon agent`: samples this machine (PROTOCOL.md part 3's catalogue) and posts it as a host's
history, spooling while the server is away.

A client application of the HTTP API, a small hexagon of its own: `model` (plain values), `ports` (the
server, the spool and the machine reading it needs, and their errors), `sampler`, `sender` and `agent` (the
work, written against the ports), `status` (what its user sees), `adapters/` (the HTTP client, the spool
files, the machine meter over psutil) and `command` (the `perfmon agent` subcommand, which wires them). It
imports nothing of the server's packages; of those, only `perfmon.entrypoints.cli` imports it."""
