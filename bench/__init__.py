"""Benchmarks of cobee_django: each figure a ratio to its baseline, measured side by side in one run.

Run them all with ``python -m bench`` (see docs/performance.md).
"""
