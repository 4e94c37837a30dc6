"""Helpers for real-browser tests: a Confidant server on a free port and headless Chromium."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_server(data_dir: Path, *extra_args: str, env_extra: dict | None = None):
    """Start ``confidant serve`` and yield its URL once it answers HTTP; stop it afterwards."""
    port = free_port()
    env = {**os.environ, "CONFIDANT_MAX_TOKENS": "64", **(env_extra or {})}
    log = open(data_dir.parent / f"server-{port}.log", "w")
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "confidant"), "serve", "--port", str(port), "--data-dir", str(data_dir), *extra_args],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited: {(data_dir.parent / f'server-{port}.log').read_text()}")
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
