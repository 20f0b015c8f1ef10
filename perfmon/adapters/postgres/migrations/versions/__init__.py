"""The revisions, one module each; Alembic skips this __init__ when it scans for them."""
