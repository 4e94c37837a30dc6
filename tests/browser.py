"""Helpers for tests against real servers: start one on a free port, wait until it answers, stop it;
and the headless Chromium that browser tests drive."""

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
def serving(command: list[str], ready_url: str, headers: dict | None = None, log=subprocess.DEVNULL, env=None,
            ready_timeout: float = 120):
    """Start ``command`` and yield once ``ready_url`` answers 200 (within ``ready_timeout`` s); stop it afterwards."""
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + ready_timeout
        while not _answers(ready_url, headers or {}):
            if process.poll() is not None:
                raise RuntimeError(f"{command[0]} exited while starting (exit code {process.returncode})")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{ready_url} did not answer within {ready_timeout:.0f} s")
            time.sleep(0.3)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _answers(url: str, headers: dict) -> bool:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@contextmanager
def running_server(data_dir: Path, *extra_args: str, env_extra: dict | None = None, ready_timeout: float = 120):
    """Start ``confidant serve`` on a free port and yield its URL once it answers HTTP."""
    port = free_port()
    env = {**os.environ, "CONFIDANT_MAX_TOKENS": "64", **(env_extra or {})}
    url = f"http://127.0.0.1:{port}/"
    command = [str(Path(sys.executable).parent / "confidant"), "serve", "--port", str(port), "--data-dir", str(data_dir), *extra_args]
    with open(data_dir.parent / f"server-{port}.log", "w") as log, serving(command, url, log=log, env=env, ready_timeout=ready_timeout):
        yield url
