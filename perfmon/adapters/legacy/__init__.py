"""Readers of the original PerformanceMonitor's two storage formats, as legacy sources for the import."""
