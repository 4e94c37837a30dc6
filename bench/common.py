"""What every performance benchmark shares: the command line, the machine, statistics, output.

Contract:
- ``parser(doc)`` is an ``argparse`` parser with ``--out FILE.json``; ``finish(result, out)``
  adds the machine description, prints the JSON and writes it to ``out`` when given.
- ``machine()`` says what the figures were measured on, including the load from other
  programs (this machine is shared, so absolute times carry the load they were taken under).
- ``stats(values)`` gives p50/p95/mean of a list of milliseconds; ``ratio(a, b)`` the median of
  paired ratios, which is how A/B comparisons are reported (robust to drifting load).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

FRIENDS_DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mqd-friends"


def friends_dir() -> Path:
    """The Friends MQD folder: ``$CONFIDANT_BENCH_FRIENDS`` (the tests point it at their fixture
    slice), else ``../shared/data/mqd-friends`` beside the project."""
    return Path(os.environ.get("CONFIDANT_BENCH_FRIENDS") or FRIENDS_DEFAULT)


def parser(doc: str | None) -> argparse.ArgumentParser:
    head = (doc or "").strip().splitlines()
    result = argparse.ArgumentParser(description=head[0] if head else None)
    result.add_argument("--out", type=Path, help="also write the JSON result to this file")
    return result


def machine() -> dict:
    from assistant.machine import describe

    return {**describe(), "python": platform.python_version(), "platform": platform.platform(), "nice": os.nice(0)}


def versions(*modules: str) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in modules:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def stats(values_ms) -> dict:
    values = np.asarray(list(values_ms), dtype=np.float64)
    if len(values) == 0:
        return {"n": 0}
    return {
        "n": int(len(values)),
        "p50": round(float(np.percentile(values, 50)), 3),
        "p95": round(float(np.percentile(values, 95)), 3),
        "mean": round(float(values.mean()), 3),
    }


def ratio(numerators, denominators) -> float:
    """Median of the paired ratios a_i / b_i (each pair measured back to back)."""
    pairs = [a / b for a, b in zip(numerators, denominators) if b > 0]
    return round(float(np.median(pairs)), 4) if pairs else float("nan")


class Clock:
    """Wall time and this process's CPU time between ``start()`` and ``stop()``."""

    def __enter__(self) -> "Clock":
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()
        self.load0 = os.getloadavg()[0]
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self.wall0
        self.cpu = time.process_time() - self.cpu0
        self.load = (self.load0 + os.getloadavg()[0]) / 2

    def describe(self) -> dict:
        return {"wall_s": round(self.wall, 2), "cpu_s": round(self.cpu, 2), "load_average": round(self.load, 2)}


class Steps:
    """Wall time (ms) spent in wrapped callables, by step name, until ``take()``. A wrapped call
    made inside another counts for the outer step only, so the steps add up without overlap."""

    def __init__(self):
        self.current: dict[str, float] = defaultdict(float)
        self.active = False

    def wrap(self, owner, attribute: str, step: str) -> None:
        original = getattr(owner, attribute)

        def timed(*args, **kwargs):
            if self.active:
                return original(*args, **kwargs)
            self.active, start = True, time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.current[step] += (time.perf_counter() - start) * 1000
                self.active = False

        setattr(owner, attribute, timed)

    def take(self) -> dict[str, float]:
        taken, self.current = dict(self.current), defaultdict(float)
        return taken


def finish(result: dict, out: Path | None, module: str, argv=None) -> dict:
    """Print ``result`` with the machine and the command (``python -m module args``), and write it."""
    args = sys.argv[1:] if argv is None else list(argv)
    result = {**result, "machine": machine(), "command": " ".join(["python", "-m", module, *args])}
    text = json.dumps(result, indent=2, default=_plain)
    print(text)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
    return result


def _plain(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON: {type(value).__name__}")
