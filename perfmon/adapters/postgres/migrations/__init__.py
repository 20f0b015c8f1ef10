"""Alembic's script directory, a package so that it ships inside perfmon's wheel."""
