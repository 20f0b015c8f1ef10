"""perfmon: a self-hosted performance-monitoring server."""

__version__ = "0.1.0"
