"""Benchmarks of Confidant's components, run as ``python -m bench.<name>``."""
