"""`perfmon agent`: samples this machine's CPU and posts it, spooling while the server is away.

A client of the HTTP API only: nothing here imports the server's container, adapters or domain."""
