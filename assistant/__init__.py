"""Confidant's engine: settings, store, backends, prompts and the pipeline of one turn."""

__version__ = "0.1.0"
